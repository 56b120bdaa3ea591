"""The stack's settings as the program sees them: the stack config (`stackconfig.schema.StackConfig`, where every key,
type, default and bound is defined) read from the Pulumi engine, plus what only the engine knows: the AWS region and
the webhook secret as a secret Output.
"""

from __future__ import annotations

import pulumi
import pulumi.runtime.config as runtime_config
from pydantic import ConfigDict

from planning import calendar
from stackconfig import schema
from stackconfig.schema import ConfigError, StackConfig

__all__ = ["ConfigError", "Settings", "load_settings", "stack_file", "stack_prefix"]


class Settings(StackConfig):
    """One stack's settings: its config, and the engine's facts."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    region: str
    # The secret as the program hands it on: an Output Pulumi keeps encrypted in its state, never a plain str.
    alert_webhook_secret: pulumi.Output[str] | None = None

    def calendar_inputs(self) -> calendar.CalendarInputs:
        return calendar.inputs_of(self)


def stack_file() -> str:
    """The stack file's name as the user knows it, for messages: the engine's config comes from it."""
    return f"Pulumi.{pulumi.get_stack()}.yaml"


def stack_prefix() -> str:
    """The prefix of every resource name (and of the alarm names the ops scripts look up)."""
    return f"{pulumi.get_project()}-{pulumi.get_stack()}"


def load_settings() -> Settings:
    """Read and validate the stack's config as the engine hands it (strings); unknown keys (typos) are errors."""
    config = dict(runtime_config.CONFIG.get()) | runtime_config.get_config_env()
    secret_keys = [key for key in config if runtime_config.is_config_secret(key)]
    checked = schema.from_config(config, source=stack_file(), secret_keys=secret_keys, project=pulumi.get_project())
    region = schema.region_of(config, source=stack_file())
    webhook = checked.alert_webhook_url
    secret = pulumi.Output.secret(webhook.get_secret_value()) if webhook else None
    # Checked above, field by field: construct without checking again.
    return Settings.model_construct(**dict(checked), region=region, alert_webhook_secret=secret)
