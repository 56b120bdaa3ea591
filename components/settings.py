"""The stack's configuration, read once into a typed, validated object.

Keys, defaults, ranges and help text live in `app.contract.CONFIG_KEYS`; this module only parses and checks them,
so every error names the stack file and the key a user must fix (`pulumi config set KEY VALUE`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi.runtime.config as runtime_config

from app import contract
from planning import calendar

AWS_REGION_KEY = "aws:region"


class ConfigError(ValueError):
    """A stack config value the program cannot use; the message names the stack file and the key."""


@dataclass(frozen=True)
class Settings:
    """One stack's settings; field names are the snake_case of `contract.CONFIG_KEYS`."""

    region: str
    deploy_sync: bool
    deploy_async: bool
    sync_task_count: int
    worker_count: int
    worker_tasks: int
    min_worker_tasks: int
    max_worker_tasks: int
    receiver_tasks: int
    payment_seconds: float
    payment_decline_rate: float
    acceptable_latency_seconds: int
    alarm_profile: str
    alert_emails: tuple[str, ...]
    alert_webhook_url: pulumi.Output[str] | None  # a secret: kept as an Output, never a plain str
    certificate_arn: str
    sales: tuple[calendar.Sale, ...]
    sale_lead_seconds: int

    @property
    def https(self) -> bool:
        return bool(self.certificate_arn)

    @property
    def thresholds(self) -> contract.AlarmThresholds:
        return contract.ALARM_PROFILES[self.alarm_profile]

    def calendar_inputs(self) -> calendar.CalendarInputs:
        return calendar.CalendarInputs(workers_per_task=self.worker_count, payment_seconds=self.payment_seconds,
                                       min_tasks=self.min_worker_tasks, max_tasks=self.max_worker_tasks,
                                       lead_seconds=self.sale_lead_seconds)

    @property
    def backlog_per_task_target(self) -> float:
        """Queued orders one worker task may hold and still start each within the acceptable latency."""
        return self.acceptable_latency_seconds / self.payment_seconds * self.worker_count


def stack_file() -> str:
    return f"Pulumi.{pulumi.get_stack()}.yaml"


def stack_prefix() -> str:
    """The prefix of every resource name (and of the alarm names the ops scripts look up)."""
    return f"{pulumi.get_project()}-{pulumi.get_stack()}"


def snake_case(key: str) -> str:
    return re.sub(r"([A-Z])", r"_\1", key).lower()


def _fail(key: str, problem: str) -> ConfigError:
    return ConfigError(f"{stack_file()}: {key} {problem}")


def _bounds(spec: contract.ConfigKey, value: float) -> None:
    if spec.minimum is None or spec.maximum is None:
        return
    if not spec.minimum <= value <= spec.maximum:
        raise _fail(spec.name, f"must be {spec.minimum:g}..{spec.maximum:g}, got {value:g}")


def parse(spec: contract.ConfigKey, raw: str) -> Any:
    """One raw config string, parsed as the type of the key's default and checked against its range."""
    default = spec.default
    if spec.structured:
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            raise _fail(spec.name, f"must be YAML or JSON structure, got {raw!r}") from None
        if spec.name == calendar.CONFIG_KEY:
            try:
                return tuple(calendar.parse_sales(value))
            except calendar.CalendarError as error:
                raise ConfigError(f"{stack_file()}: {error}") from None
        return value
    if isinstance(default, bool):
        if raw.lower() not in ("true", "false"):
            raise _fail(spec.name, f"must be true or false, got {raw!r}")
        return raw.lower() == "true"
    if isinstance(default, int):
        try:
            number: float = int(raw)
        except ValueError:
            raise _fail(spec.name, f"must be a whole number, got {raw!r}") from None
        _bounds(spec, number)
        return number
    if isinstance(default, float):
        try:
            number = float(raw)
        except ValueError:
            raise _fail(spec.name, f"must be a number, got {raw!r}") from None
        _bounds(spec, number)
        return number
    if isinstance(default, list):
        try:
            items = json.loads(raw)
        except json.JSONDecodeError:
            items = None
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise _fail(spec.name, f"must be a list of strings, got {raw!r}")
        return tuple(items)
    return raw


def _check(values: dict[str, Any]) -> None:
    """Rules that span a key's meaning or several keys."""
    if values["alarm_profile"] not in contract.ALARM_PROFILES:
        raise _fail("alarmProfile", f"must be one of {', '.join(contract.ALARM_PROFILES)}, got {values['alarm_profile']!r}")
    for email in values["alert_emails"]:
        if "@" not in email:
            raise _fail("alertEmails", f"must hold e-mail addresses, got {email!r}")
    if values["certificate_arn"] and not values["certificate_arn"].startswith("arn:aws:acm:"):
        raise _fail("certificateArn", f"must be an ACM certificate ARN, got {values['certificate_arn']!r}")
    if not values["min_worker_tasks"] <= values["worker_tasks"] <= values["max_worker_tasks"]:
        raise _fail(
            "workerTasks",
            f"must be within minWorkerTasks..maxWorkerTasks ({values['min_worker_tasks']}.."
            f"{values['max_worker_tasks']}), got {values['worker_tasks']}",
        )
    if not (values["deploy_sync"] or values["deploy_async"]):
        raise _fail("deployAsync", "and deploySync are both false: nothing to deploy")


def _unknown_keys(project: str) -> list[str]:
    known = {f"{project}:{spec.name}" for spec in contract.CONFIG_KEYS}
    present = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    return sorted(key for key in present if key.startswith(f"{project}:") and key not in known)


def load_settings() -> Settings:
    """Read and validate every config key of the project namespace; unknown keys (typos) are errors."""
    project = pulumi.get_project()
    unknown = _unknown_keys(project)
    if unknown:
        known = ", ".join(spec.name for spec in contract.CONFIG_KEYS)
        raise ConfigError(f"{stack_file()}: unknown key {', '.join(unknown)} (known keys: {known})")

    cfg = pulumi.Config()
    values: dict[str, Any] = {}
    for spec in contract.CONFIG_KEYS:
        if spec.secret:
            key = f"{project}:{spec.name}"
            if runtime_config.get_config(key) and not runtime_config.is_config_secret(key):
                raise _fail(spec.name, f"is a secret: set it with `pulumi config set --secret {spec.name} VALUE`")
            values[snake_case(spec.name)] = cfg.get_secret(spec.name)
            continue
        raw = cfg.get(spec.name)
        values[snake_case(spec.name)] = spec.default if raw is None else parse(spec, raw)
    values["alert_emails"] = tuple(values["alert_emails"])
    values["sales"] = tuple(values["sales"])
    region = pulumi.Config("aws").get("region")
    if not region:
        raise ConfigError(f"{stack_file()}: {AWS_REGION_KEY} is not set (`pulumi config set aws:region us-west-2`)")
    _check(values)
    return Settings(region=region, **values)
