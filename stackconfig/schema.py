"""The one model of the stack's config: every key of `Pulumi.<stack>.yaml`, its type, default, bounds and help text.

Keys are the camelCase aliases of the fields (`workerCount`), as people write them in a stack file or with
`pulumi config set workerCount 200`. The same model reads a stack file's `config:` mapping (YAML values, for the ops
commands) and the strings the Pulumi engine hands the program (`"200"`, `"true"`, structured values as JSON), and
refuses anything else with one line per problem that names the file, the key, the value and what is allowed.

Pure (no Pulumi, no AWS): `components.settings` adds what only the engine knows (the region, the secret as an
Output). pydantic rather than dataclasses: the calendar's sales already are pydantic models, it parses the engine's
strings into typed values with bounds, and its error list locates each problem (`sales[1].end`), which is what the
messages are made from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Annotated, Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from app import contract, expected_wait
from stackconfig.alarm_profiles import ALARM_PROFILES, DEFAULT_ALARM_PROFILE, AlarmThresholds
from stackconfig.regions import KNOWN_REGIONS, MAX_REGIONS

PROJECT: Final = "flashsale"  # the config namespace: Pulumi.yaml's name
REGION_KEY: Final = "aws:region"
SECURE: Final = "secure"  # a stack file's encrypted value: {"secure": ciphertext}
SALES_KEY: Final = "sales"
REGIONS_KEY: Final = "regions"


class ConfigError(ValueError):
    """Stack config the program cannot use: one line per problem, each naming the file and the key."""


def _flag(value: Any) -> Any:
    """Booleans as Pulumi writes them (`true` / `false`); pydantic alone would also take yes, on, 1."""
    if isinstance(value, str):
        if value.lower() not in ("true", "false"):
            raise ValueError(f"must be true or false, got {value!r}")
        return value.lower() == "true"
    return value


def _list(what: str) -> Callable[[Any], Any]:
    """The engine hands structured values to the program as JSON text; a stack file as YAML."""

    def decode(value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"must be {what}, got {value!r}")
        return value

    return decode


def _not_flag(what: str) -> Callable[[Any], Any]:
    """pydantic would read true as 1."""

    def check(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"must be {what}, got {value!r}")
        return value

    return check


Flag = Annotated[bool, BeforeValidator(_flag)]
Whole = Annotated[int, BeforeValidator(_not_flag("a whole number"))]
Number = Annotated[float, BeforeValidator(_not_flag("a number"))]


class Sale(BaseModel):
    """One announced sale of the `sales` calendar, as written in the stack file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    start: AwareDatetime
    end: AwareDatetime
    rate: PositiveFloat | None = None  # peak orders per second: the planner says how many tasks
    tasks: PositiveInt | None = None  # or the worker tasks, given
    timezone: str = "UTC"  # IANA zone the scheduled actions are written in

    @model_validator(mode="after")
    def _consistent(self) -> Sale:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}", self.name):
            raise ValueError("name must be 1..40 letters, digits, - or _")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if (self.rate is None) == (self.tasks is None):
            raise ValueError("give either rate (peak orders/s) or tasks")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone {self.timezone!r} is not an IANA time zone") from None
        return self


class StackConfig(BaseModel):
    """One stack's config. Field names are the snake_case of the keys; a key left out has the default here."""

    # Keys are only ever the camelCase aliases: `worker_count` in a stack file is an unknown key, not a synonym.
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel)

    deploy_sync: Flag = Field(True, description="build the synchronous order service (report Part I)")
    deploy_async: Flag = Field(True, description="build the asynchronous order service (report Part III)")
    sync_task_count: Whole = Field(2, ge=1, le=100, description="sync service tasks (the report ran 2)")
    worker_count: Whole = Field(20, ge=1, le=2000, description="concurrent payments per worker task (WORKER_COUNT)")
    worker_tasks: Whole = Field(1, ge=1, le=100, description="worker tasks at deploy time")
    min_worker_tasks: Whole = Field(
        1,
        ge=1,
        le=100,
        description="auto-scaling minimum worker tasks of a new stack (then: ops.prescale --restore --normal-tasks)",
    )
    max_worker_tasks: Whole = Field(
        10, ge=1, le=100, description="auto-scaling maximum worker tasks (the report's 6.5 used 10)"
    )
    receiver_tasks: Whole = Field(1, ge=1, le=100, description="receiver tasks")
    payment_seconds: Number = Field(
        contract.SERVICE_DEFAULTS.payment_seconds, ge=0.001, le=60, description="seconds per payment"
    )
    payment_decline_rate: Number = Field(
        contract.SERVICE_DEFAULTS.payment_decline_rate, ge=0, le=1, description="share of payments declined"
    )
    acceptable_latency_seconds: Whole = Field(
        60, ge=1, le=86_400, description="queueing delay the worker auto-scaling aims for"
    )
    alarm_profile: str = Field(
        DEFAULT_ALARM_PROFILE,
        description="alarm thresholds of new alarms (then: ops.alarms apply --profile): " + " | ".join(ALARM_PROFILES),
        json_schema_extra={"enum": list(ALARM_PROFILES)},
    )
    alert_emails: Annotated[tuple[str, ...], BeforeValidator(_list("a list of strings"))] = Field(
        (), description="e-mail addresses subscribed to the alerts topic"
    )
    alert_webhook_url: SecretStr | None = Field(
        None,
        description="optional HTTPS webhook (chat tool) for alerts; set it with --secret",
        json_schema_extra={"secret": True},
    )
    certificate_arn: str = Field("", description="ACM certificate for HTTPS on the ALBs; HTTP only when empty")
    protect_data: Flag = Field(
        True,
        description="protect the orders table and queues from deletion and replacement; to tear the stack down: "
        "set false, pulumi up, pulumi destroy",
    )
    sales: Annotated[tuple[Sale, ...], BeforeValidator(_list("a list of sales"))] = Field(
        (),
        description="the sale calendar: [{name, start, end, rate | tasks, timezone}], ISO 8601 times with a "
        "zone; each becomes scheduled actions on the worker service",
    )
    # Fargate tasks take 1-2 minutes from RunTask to RUNNING behind a load balancer (image pull and start); the
    # raise lands well before the sale's first order, with room for a failed task to be replaced once.
    sale_lead_seconds: Whole = Field(
        300, ge=60, le=86_400, description="how long before a sale's start the calendar raises the worker service"
    )

    # Multi-region (docs/multi-region.md): empty or one region is today's single-region stack, unchanged.
    regions: Annotated[tuple[str, ...], BeforeValidator(_list("a list of AWS regions"))] = Field(
        (),
        description="AWS regions of the async system, the stack's aws:region (the primary) first; two or more: "
        "a copy of the async system per region, the orders table a global table, latency DNS records "
        "(ordersDomain in hostedZoneId); empty: aws:region only",
    )
    hosted_zone_id: str = Field(
        "", description="Route 53 hosted zone of ordersDomain (required with two or more regions)"
    )
    orders_domain: str = Field(
        "",
        description="the name buyers call with two or more regions: latency records to each region's receiver ALB, "
        "health-checked on /health",
    )

    @field_validator("alarm_profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        if value not in ALARM_PROFILES:
            raise ValueError(f"must be one of {', '.join(ALARM_PROFILES)}, got {value!r}")
        return value

    @field_validator("alert_emails")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for email in value:
            if "@" not in email:
                raise ValueError(f"must hold e-mail addresses, got {email!r}")
        return value

    @field_validator("certificate_arn")
    @classmethod
    def _acm(cls, value: str) -> str:
        if value and not value.startswith("arn:aws:acm:"):
            raise ValueError(f"must be an ACM certificate ARN, got {value!r}")
        return value

    @field_validator("regions")
    @classmethod
    def _known_regions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for index, region in enumerate(value):
            if region not in KNOWN_REGIONS:
                raise ValueError(f"[{index}]: {region!r} is not a known region ({', '.join(KNOWN_REGIONS)})")
            if value.index(region) != index:
                raise ValueError(f"[{index}]: {region!r} is listed twice")
        if len(value) > MAX_REGIONS:
            raise ValueError(f"may list at most {MAX_REGIONS} regions, got {len(value)}")
        return value

    @field_validator("hosted_zone_id")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value and not re.fullmatch(r"Z[A-Z0-9]{1,31}", value):
            raise ValueError(f"must be a Route 53 hosted zone id (Z...), got {value!r}")
        return value

    @field_validator("orders_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        label = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
        if value and (len(value) > 253 or not re.fullmatch(rf"{label}(\.{label})+", value)):
            raise ValueError(f"must be a DNS name in lower case (orders.example.com), got {value!r}")
        return value

    @field_validator("sales")
    @classmethod
    def _unique_names(cls, value: tuple[Sale, ...]) -> tuple[Sale, ...]:
        names = [sale.name for sale in value]
        for index, name in enumerate(names):
            if names.index(name) != index:
                raise ValueError(f"[{index}].name: {name!r} is used twice")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> StackConfig:
        """Rules that span several keys."""
        if not self.min_worker_tasks <= self.worker_tasks <= self.max_worker_tasks:
            raise ValueError(
                f"workerTasks must be within minWorkerTasks..maxWorkerTasks ({self.min_worker_tasks}.."
                f"{self.max_worker_tasks}), got {self.worker_tasks}"
            )
        if not (self.deploy_sync or self.deploy_async):
            raise ValueError("deployAsync and deploySync are both false: nothing to deploy")
        if self.multi_region:
            if not self.deploy_async:
                raise ValueError(
                    "regions lists two or more regions, but deployAsync is false: only the async "
                    "system has regional copies"
                )
            missing = [
                key
                for key, value in (("hostedZoneId", self.hosted_zone_id), ("ordersDomain", self.orders_domain))
                if not value
            ]
            if self.certificate_arn:
                raise ValueError(
                    "certificateArn is one region's ACM certificate: with two or more regions each region's ALB "
                    "needs its own, not supported yet (docs/multi-region.md); leave it empty"
                )
            if missing:
                raise ValueError(
                    f"regions lists two or more regions: set {' and '.join(missing)} (the latency "
                    "records that route buyers to the nearest healthy region)"
                )
        return self

    @property
    def multi_region(self) -> bool:
        """Two or more regions: regional copies, a global table, latency routing."""
        return len(self.regions) >= 2

    @property
    def https(self) -> bool:
        return bool(self.certificate_arn)

    @property
    def thresholds(self) -> AlarmThresholds:
        return ALARM_PROFILES[self.alarm_profile]

    @property
    def backlog_per_task_target(self) -> float:
        """Queued orders one worker task may hold and still start each within the acceptable latency."""
        return expected_wait.backlog_per_task_target(
            self.acceptable_latency_seconds, self.worker_count, self.payment_seconds
        )


CONFIG_DEFAULTS: Final = StackConfig()  # typed: CONFIG_DEFAULTS.worker_count
_FIELDS: Final = {field.alias or name: field for name, field in StackConfig.model_fields.items()}
KEYS: Final = tuple(_FIELDS)
SECRET_KEYS: Final = frozenset(
    key
    for key, field in _FIELDS.items()
    if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("secret")
)


def bounds(key: str) -> tuple[float, float] | None:
    """A key's (minimum, maximum), for keys with both."""
    metadata = _FIELDS[key].metadata
    low = next((m.ge for m in metadata if hasattr(m, "ge")), None)
    high = next((m.le for m in metadata if hasattr(m, "le")), None)
    return (low, high) if low is not None and high is not None else None


# The types the Pulumi CLI checks a project's config declarations with (Pulumi.yaml `config:`); it has no number
# type, so a number with a fraction is a string to it and the program checks it.
_PULUMI_TYPES: Final = {
    "boolean": "boolean",
    "integer": "integer",
    "number": "string",
    "string": "string",
    "array": "array",
    "object": "object",
}


def _pulumi_type(prop: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON Schema property's type as a Pulumi config declaration (`type`, and `items` for a list)."""
    kind = next((p["type"] for p in prop.get("anyOf", [prop]) if p.get("type") not in (None, "null")), "object")
    declared: dict[str, Any] = {"type": _PULUMI_TYPES[kind]}
    if kind == "array":
        declared["items"] = _pulumi_type(prop["items"])
    return declared


def project_config() -> dict[str, dict[str, Any]]:
    """The `config:` declarations of Pulumi.yaml, from this model: the CLI refuses a value of the wrong type
    (`pulumi config set workerCount abc`) before the program runs, and `pulumi config` shows each key's help."""
    declarations: dict[str, dict[str, Any]] = {}
    for key, prop in StackConfig.model_json_schema(by_alias=True)["properties"].items():
        declared = _pulumi_type(prop)
        number = "a number, " if prop.get("type") == "number" else ""
        limits = f" ({number}{prop['minimum']:g}..{prop['maximum']:g})" if "minimum" in prop else ""
        declared["description"] = prop["description"] + limits
        if key in SECRET_KEYS:
            declared["secret"] = True
        elif number:
            declared["default"] = f"{prop['default']:g}"
        else:
            declared["default"] = prop["default"]
        declarations[key] = declared
    return declarations


def least(key: str) -> int:
    """A whole-number key's minimum (ValueError for a key without one)."""
    limits = bounds(key)
    if limits is None or _FIELDS[key].annotation is not int:
        raise ValueError(f"{key} has no whole-number minimum")
    return int(limits[0])


# pydantic's error types, as what the key allows.
_ALLOWED: Final = {
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "int_type": "a whole number",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "tuple_type": "a list",
    "list_type": "a list",
}


def _problem(error: Any) -> str:
    """One pydantic error as `key must be <what is allowed>, got <value>` (or the rule's own words)."""
    loc = list(error["loc"])
    if not loc:  # a rule across keys: its message names them
        return str(error["msg"]).removeprefix("Value error, ")
    key = str(loc[0])
    where = key + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc[1:])
    message = str(error["msg"]).removeprefix("Value error, ")
    value, kind = error.get("input"), error["type"]
    shown = f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else repr(value)
    if key == SALES_KEY and len(loc) > 1:  # inside one sale: the calendar's own words
        return f"{where}: {message}"
    if kind == "extra_forbidden":
        return f"unknown key {PROJECT}:{key} (known keys: {', '.join(KEYS)})"
    if kind == "string_type" and len(loc) > 1:  # an item of a list of strings
        return f"{key} must be a list of strings, got {shown}"
    if kind == "value_error":
        return f"{where}{'' if message.startswith('[') else ' '}{message}"
    limits = bounds(key) if key in _FIELDS else None
    if kind in ("greater_than_equal", "less_than_equal") and limits:
        # a number: as typed (the engine's text) or as written in YAML
        return f"{key} must be {limits[0]:g}..{limits[1]:g}, got {value if isinstance(value, str) else shown}"
    if kind in _ALLOWED:
        return f"{where} must be {_ALLOWED[kind]}, got {shown}"
    return f"{where}: {message[0].lower()}{message[1:]}, got {shown}"


def from_config(
    config: Mapping[str, Any], *, source: str, secret_keys: Collection[str] = (), project: str = PROJECT
) -> StackConfig:
    """The project's keys of a stack's config (`project:key` -> value, YAML values or the engine's strings), checked.

    A secret key must be given as a secret: in `secret_keys` (the engine's list) or as a stack file's
    `{"secure": ciphertext}` (then the ciphertext stands for it: the value is the engine's to decrypt).
    Raises ConfigError with every problem, each line starting with `source: `.
    """
    prefix = f"{project}:"
    raw: dict[str, Any] = {}
    problems: list[str] = []
    for full_key, value in config.items():
        if not isinstance(full_key, str):
            problems.append(f"{full_key!r} is not a config key (keys are `{prefix}name` strings)")
            continue
        if not full_key.startswith(prefix):
            continue  # another namespace (aws:region...): its owner checks it
        key = full_key.removeprefix(prefix)
        if key in SECRET_KEYS:
            if isinstance(value, Mapping) and set(value) == {SECURE}:
                value = value[SECURE]
            elif full_key not in secret_keys:
                problems.append(f"{key} is a secret: set it with `pulumi config set --secret {key} VALUE`")
                continue
        raw[key] = value
    try:
        parsed = StackConfig.model_validate(raw)
    except ValidationError as error:
        problems += [_problem(item) for item in error.errors()]
    else:
        problems += _primary_problems(parsed, config.get(REGION_KEY))
        if not problems:
            return parsed
    raise ConfigError("\n".join(f"{source}: {problem}" for problem in problems))


def _primary_problems(parsed: StackConfig, region: Any) -> list[str]:
    """The stack's own region (`aws:region`, where its default provider deploys) is the primary: first of `regions`.
    No `aws:region`: `region_of` says so."""
    if not parsed.regions or not isinstance(region, str) or not region or parsed.regions[0] == region:
        return []
    if region in parsed.regions:
        return [
            f"{REGIONS_KEY}: the primary region {region} ({REGION_KEY}) must come first, got {list(parsed.regions)}"
        ]
    return [
        f"{REGIONS_KEY} must start with the stack's {REGION_KEY} {region} (the primary), got {list(parsed.regions)}"
    ]


def region_of(config: Mapping[str, Any], *, source: str) -> str:
    """The stack's AWS region (`aws:region`, the provider's key): required, the report's is us-west-2."""
    region = config.get(REGION_KEY)
    if not isinstance(region, str) or not region:
        raise ConfigError(
            f"{source}: {REGION_KEY} is not set (`pulumi config set {REGION_KEY} {contract.AWS_REGION_DEFAULT}`)"
        )
    return region


def _yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's message in one line: what is wrong and where (its own runs over several lines)."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"{error.problem} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(error).split())


def read_stack_file(path: Path) -> dict[str, Any]:
    """A stack file's `config:` block, as written (secure values stay {"secure": ciphertext})."""
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as error:
        raise ConfigError(f"cannot read {path.name}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path.name}: not UTF-8 text") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path.name}: not YAML ({_yaml_problem(error)})") from None
    config = (document or {}).get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise ConfigError(f"{path.name}: no `config:` mapping")
    return dict(config)


def load_stack_file(path: Path) -> StackConfig:
    """A stack file's config, checked as the program checks it (for the commands that read one without it)."""
    return from_config(read_stack_file(path), source=path.name)
