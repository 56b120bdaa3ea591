"""The flashsale policy pack's rules (see policies.py); `policypack/__main__.py` serves them to the Pulumi CLI."""

from .policies import POLICIES

PACK_NAME = "flashsale-aws"

__all__ = ["PACK_NAME", "POLICIES"]
