"""The policy pack the Pulumi CLI runs: `pulumi preview --policy-pack policypack` (from the project's folder).

Its rules live in `flashsale_policies` (plain functions, tested without an engine); this file only serves them.
Every policy is mandatory unless it says otherwise; a team changes a level or a setting with
`--policy-pack-config <file>` (see docs/pulumi-conventions.md).
"""

from flashsale_policies import PACK_NAME, POLICIES
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=list(POLICIES))
