"""The stack config model (stackconfig.schema): one definition of every key that reads stack files (YAML values) and
the Pulumi engine's strings alike, and says what is wrong in one line per problem; `python -m ops.config` checks stack
files with it, without Pulumi."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.localaws.program import config_strings
from stackconfig import schema
from stackconfig.alarm_profiles import ALARM_PROFILES
from stackconfig.files import ROOT, stack_files, stack_of

# The keys and defaults stack files and `pulumi config set` have always used: renaming one breaks existing stacks.
PUBLISHED_DEFAULTS = {
    "deploySync": True,
    "deployAsync": True,
    "syncTaskCount": 2,
    "workerCount": 20,
    "workerTasks": 1,
    "minWorkerTasks": 1,
    "maxWorkerTasks": 10,
    "receiverTasks": 1,
    "paymentSeconds": 3.0,
    "paymentDeclineRate": 0.05,
    "acceptableLatencySeconds": 60,
    "alarmProfile": "normal",
    "alertEmails": (),
    "alertWebhookUrl": None,
    "certificateArn": "",
    "protectData": True,  # new: on, so a stack that never set it is protected
    "sales": (),
    "saleLeadSeconds": 300,
    # new: multi-region (docs/multi-region.md); the defaults keep a stack in its aws:region alone, as before
    "regions": (),
    "hostedZoneId": "",
    "ordersDomain": "",
}


def test_the_keys_and_their_defaults_are_the_published_ones() -> None:
    assert schema.CONFIG_DEFAULTS.model_dump(by_alias=True) == PUBLISHED_DEFAULTS
    assert schema.KEYS == tuple(PUBLISHED_DEFAULTS)
    assert schema.from_config({}, source="empty") == schema.CONFIG_DEFAULTS  # the defaults pass their own rules


def test_every_key_has_help_text_and_every_number_both_bounds_around_its_default() -> None:
    for key, field in schema.StackConfig.model_fields.items():
        assert field.description, key
        if field.annotation in (int, float):
            bounds = schema.bounds(field.alias or key)
            assert bounds and bounds[0] <= field.default <= bounds[1], key
    assert schema.CONFIG_DEFAULTS.alarm_profile in ALARM_PROFILES
    assert schema.SECRET_KEYS == {"alertWebhookUrl"}


@pytest.mark.parametrize("path", stack_files(), ids=stack_of)
def test_a_stack_file_reads_the_same_as_yaml_and_as_the_engines_strings(path: Path) -> None:
    config = schema.read_stack_file(path)
    assert schema.load_stack_file(path) == schema.from_config(config_strings(config), source=path.name)


def test_pulumi_config_set_strings_become_typed_values() -> None:
    config = schema.from_config(
        {
            "flashsale:workerCount": "200",
            "flashsale:deploySync": "false",
            "flashsale:paymentSeconds": "0.5",
            "flashsale:alertEmails": '["ops@example.com"]',
            "aws:region": "eu-west-1",
        },
        source="Pulumi.x.yaml",
    )
    assert (config.worker_count, config.deploy_sync, config.payment_seconds, config.alert_emails) == (
        200,
        False,
        0.5,
        ("ops@example.com",),
    )


def test_every_problem_is_its_own_line_naming_the_file_the_key_and_the_value() -> None:
    with pytest.raises(schema.ConfigError) as error:
        schema.from_config(
            {"flashsale:workerCount": "0", "flashsale:paymentDeclineRate": "half", "flashsale:receiverTasks": True},
            source="Pulumi.x.yaml",
        )
    assert str(error.value).splitlines() == [
        "Pulumi.x.yaml: workerCount must be 1..2000, got 0",
        "Pulumi.x.yaml: receiverTasks must be a whole number, got True",
        "Pulumi.x.yaml: paymentDeclineRate must be a number, got 'half'",
    ]  # in the model's order


def test_a_secret_must_be_encrypted_and_is_never_shown() -> None:
    with pytest.raises(
        schema.ConfigError, match="alertWebhookUrl is a secret: set it with `pulumi config set --secret"
    ):
        schema.from_config({"flashsale:alertWebhookUrl": "https://hooks.example.com/T0/B0/x"}, source="s")
    config = schema.from_config({"flashsale:alertWebhookUrl": {"secure": "v1:AAAA"}}, source="s")
    assert config.alert_webhook_url is not None and "v1:AAAA" not in repr(config)
    given = schema.from_config(
        {"flashsale:alertWebhookUrl": "https://hooks.example.com/T0/B0/x"},
        source="s",
        secret_keys=["flashsale:alertWebhookUrl"],
    )
    assert "hooks.example.com" not in repr(given)


def test_a_file_that_is_no_stack_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.a.yaml").write_text("config: [unclosed")
    (tmp_path / "Pulumi.b.yaml").write_text("name: flashsale\n")
    (tmp_path / "Pulumi.c.yaml").write_bytes(b"\xff\xfe")
    with pytest.raises(schema.ConfigError, match=r"^Pulumi.a.yaml: not YAML \(.* at line 1, column \d+\)$"):
        schema.read_stack_file(tmp_path / "Pulumi.a.yaml")  # PyYAML's own message spans lines: one here
    with pytest.raises(schema.ConfigError, match=r"^Pulumi.b.yaml: no `config:` mapping"):
        schema.read_stack_file(tmp_path / "Pulumi.b.yaml")
    with pytest.raises(schema.ConfigError, match=r"^Pulumi.c.yaml: not UTF-8 text$"):
        schema.read_stack_file(tmp_path / "Pulumi.c.yaml")


def test_a_key_that_is_no_string_is_a_problem_not_a_crash() -> None:
    with pytest.raises(schema.ConfigError, match=r"x.yaml: 1 is not a config key"):
        schema.from_config({1: 2}, source="x.yaml")  # type: ignore[dict-item]  # a YAML file can hold it


def test_ops_config_checks_stack_files_without_pulumi(tmp_path: Path) -> None:
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text("config:\n  flashsale:workerCount: 5000\n  flashsale:wrkers: 1\n")
    too_big = tmp_path / "Pulumi.sale.yaml"  # valid keys, but a sale above maxWorkerTasks: the program's next check
    too_big.write_text(
        "config:\n  aws:region: us-west-2\n  flashsale:sales:\n"
        '  - {name: a, start: "2030-01-01T10:00:00Z", end: "2030-01-01T11:00:00Z", tasks: 50}\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "ops.config", "--json", str(bad), str(too_big), *map(str, stack_files())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    first, sale, *stacks = json.loads(done.stdout)
    assert sale["problems"] == [
        "Pulumi.sale.yaml: sales[0] a needs 50 worker tasks, above maxWorkerTasks 10: raise "
        "maxWorkerTasks or lower the sale's rate"
    ]
    assert first["problems"] == [
        "Pulumi.bad.yaml: aws:region is not set (`pulumi config set aws:region us-west-2`)",
        "Pulumi.bad.yaml: workerCount must be 1..2000, got 5000",
        "Pulumi.bad.yaml: unknown key flashsale:wrkers (known keys: " + ", ".join(schema.KEYS) + ")",
    ]
    assert all(s["ok"] for s in stacks) and len(stacks) >= 2
    keys = subprocess.run(
        [sys.executable, "-m", "ops.config", "--keys"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "workerCount                integer 1..2000, default 20" in keys


# --- Pulumi.yaml's config declarations (what the Pulumi CLI checks before the program runs) --------------------------

PULUMI_TYPES = {"string", "integer", "boolean", "array", "object"}  # the CLI's, sdk/go/common/workspace/project.json


def cli_accepts(declared: dict[str, Any], value: Any) -> bool:
    """Whether the Pulumi CLI accepts a stack value for a declared key, as its ValidateConfigValue
    (sdk/go/common/workspace/project.go) does: a scalar arrives as its text, a list or map as itself."""
    kind = declared["type"]
    if kind == "array":
        return isinstance(value, list) and all(cli_accepts(declared["items"], item) for item in value)
    if kind == "object":
        return isinstance(value, dict)
    if isinstance(value, (list, dict)):
        return False
    text = json.dumps(value) if isinstance(value, bool) else str(value)
    if kind == "integer":
        return re.fullmatch(r"[+-]?\d+", text) is not None
    if kind == "boolean":
        return text in ("true", "false")
    return True


def test_pulumi_yaml_declares_every_key_as_the_model_does() -> None:
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert declared == schema.project_config(), "regenerate it: python -m ops.config --project-config"
    assert tuple(declared) == schema.KEYS


def test_the_declarations_are_ones_the_pulumi_cli_takes() -> None:
    for key, declared in schema.project_config().items():
        assert declared["type"] in PULUMI_TYPES and declared["description"], key
        assert declared["type"] != "array" or declared["items"]["type"] in PULUMI_TYPES, key
        if key in schema.SECRET_KEYS:
            assert declared["secret"] is True and "default" not in declared, key
            continue
        # The CLI checks a default's YAML type exactly (a string default must be a string), then hands it over.
        yaml_type = {"string": str, "integer": int, "boolean": bool, "array": list}[declared["type"]]
        assert type(declared["default"]) is yaml_type, key
    defaults = {f"flashsale:{key}": d["default"] for key, d in schema.project_config().items() if "default" in d}
    assert schema.from_config(config_strings(defaults), source="Pulumi.yaml") == schema.CONFIG_DEFAULTS


@pytest.mark.parametrize("path", stack_files(), ids=stack_of)
def test_the_cli_takes_the_stack_files(path: Path) -> None:
    declared = schema.project_config()
    for full_key, value in schema.read_stack_file(path).items():
        key = full_key.removeprefix("flashsale:")
        if key in declared:
            assert cli_accepts(declared[key], value), f"{path.name}: {full_key}"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("workerCount", "abc"),
        ("workerCount", "2.5"),
        ("deploySync", "yes"),
        ("alertEmails", "ops@example.com"),
        ("sales", ["not a sale"]),
    ],
)
def test_the_cli_refuses_a_wrong_type_before_the_program_runs(key: str, value: Any) -> None:
    assert not cli_accepts(schema.project_config()[key], value)
