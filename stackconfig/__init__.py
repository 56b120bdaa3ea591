"""The stack's configuration: what `Pulumi.<stack>.yaml` and `pulumi config set KEY VALUE` may say.

`stackconfig.schema` is the one typed model of every config key (type, default, bounds, help text); it validates a
stack file's config for the ops commands and gives the Pulumi program its settings. `stackconfig.alarm_profiles`
holds the threshold profiles the `alarmProfile` key chooses from. The services never import this package: it is not
in the service image (build context app/) nor in the notifier Lambda.
"""
