"""LOCAL ONLY: IAM enforced on the local system, as AWS enforces it on a task's calls.

The emulators accept any call. So every request a task sends reaches them through its TLS front
(bench.localaws.tls), and the front asks this gate first: whose keys signed it (the credentials endpoint recorded
which role each access key it handed out belongs to), which IAM actions on which resources it is (AWS's mapping:
PartiQL by statement kind, SNS PublishBatch as `sns:Publish`, SQS batches as their single actions, ARNs built as AWS
builds them), and whether that role's policies as deployed (read back from the control plane's IAM) allow each one.
A call that is not allowed is answered as AWS answers it (AccessDenied, naming the role, the action and the
resource) and recorded; every allowed call is counted, so a grant that no run used can be reported.

Why not moto's own enforcement: it authorizes PartiQL as `dynamodb:BatchExecuteStatement` where AWS authorizes
`dynamodb:PartiQLInsert/Update/Select/Delete` by statement, and it does not see the calls the data plane
(ministack) serves. Why not moto's policy evaluator alone: it matches actions case-sensitively and patterns as
unescaped regular expressions, and has no `?` wildcard or NotResource. The evaluator here is small and its tests
are AWS's documented examples (tests/test_iam_gate.py).

What is recorded lives in files under one directory per process (`ledger()`): the key registry (one file per
access key, written before the key is handed out) and each front's snapshot of the calls it saw, rewritten when it
changes. The fronts run in processes of their own; files are how they and the process that reads them meet.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from bench.localaws.emulators import DUMMY_CREDENTIALS, emulator_client

POLICY_TTL_SECONDS: Final = 2.0  # a role's policies are read again this long after they were read
FREE_ACTIONS: Final = frozenset({"sts:GetCallerIdentity"})  # AWS authorizes these for any principal
SNAPSHOT_SUFFIX: Final = ".calls.json"
KEY_SUFFIX: Final = ".key"

# Service prefixes as the credential scope names them -> the IAM action prefix.
IAM_PREFIX: Final = {"monitoring": "cloudwatch", "email": "ses", "execute-api": "execute-api"}
# Batch operations AWS authorizes as the single action they batch.
BATCHED_AS: Final = {
    "sns:PublishBatch": "sns:Publish",
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}
PARTIQL_KIND: Final = {
    "SELECT": "PartiQLSelect",
    "INSERT": "PartiQLInsert",
    "UPDATE": "PartiQLUpdate",
    "DELETE": "PartiQLDelete",
}
# The single actions a DynamoDB transaction is authorized as, by the kind of each of its items.
TRANSACT_KIND: Final = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}
# The table a PartiQL statement names: INSERT INTO "t", SELECT ... FROM "t"."index", UPDATE "t", DELETE FROM "t".
PARTIQL_TABLE: Final = re.compile(r'(?:\bINTO|\bFROM|^\s*UPDATE)\s+"?([\w.-]+?)"?(?:\."?([\w.-]+?)"?)?(?:\s|$)', re.I)


class Unmapped(ValueError):
    """A request the gate cannot turn into IAM actions and resources: refused, so a new call is mapped, not missed."""


@dataclass(frozen=True)
class Call:
    """One IAM authorization a request needs: an action on a resource."""

    action: str  # e.g. "dynamodb:PartiQLInsert"
    resource: str  # an ARN, or "*" for actions that take no resource


@dataclass(frozen=True)
class Request:
    """What the gate reads of an HTTP request to an AWS endpoint."""

    method: str
    target: str  # the request target (path and query)
    headers: Mapping[str, str]  # lower-case names
    body: bytes

    @property
    def scope(self) -> tuple[str, str, str]:
        """(access key id, region, signing service) from the SigV4 Authorization header."""
        found = re.search(
            r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request", self.headers.get("authorization", "")
        )
        if found is None:
            raise Unmapped("the request is not signed with SigV4")
        key, region, service = found.groups()
        return key, region, service


# --- which actions on which resources a request is -------------------------------------------------------------------


def calls_of(request: Request, account: str) -> list[Call]:
    """The IAM authorizations `request` needs, as AWS maps them for the services the local system serves."""
    _, region, service = request.scope
    prefix = IAM_PREFIX.get(service, service)
    operation, params = _operation(request, prefix)
    action = BATCHED_AS.get(f"{prefix}:{operation}", f"{prefix}:{operation}")
    arn = _Arns(region, account)
    if prefix == "dynamodb":
        return _dynamodb(operation, params, arn)
    if prefix == "sqs":
        queue = params.get("QueueUrl") or params.get("QueueName")
        if not queue:
            return [Call(action, "*")]  # ListQueues
        return [Call(action, arn.queue(str(queue)))]
    if prefix == "sns":
        return [Call(action, str(params.get("TopicArn") or params.get("TargetArn") or "*"))]
    if prefix == "ecs":
        return _ecs(action, params, arn)
    if prefix == "logs":
        group, stream = params.get("logGroupName"), params.get("logStreamName")
        if group is None:
            return [Call(action, "*")]
        return [Call(action, arn.log_stream(str(group), str(stream)) if stream else arn.log_group(str(group)))]
    if prefix == "secretsmanager":
        return [Call(action, arn.secret(str(params.get("SecretId", ""))))]
    if prefix in ("cloudwatch", "sts"):
        return [Call(action, "*")]  # metric data and identity take no resource
    raise Unmapped(f"the local IAM gate has no mapping for {action}")


def _operation(request: Request, prefix: str) -> tuple[str, dict[str, Any]]:
    """The operation's name and its parameters, from whichever protocol the service speaks."""
    target = request.headers.get("x-amz-target")
    if target:  # JSON protocols: X-Amz-Target "DynamoDB_20120810.PutItem", body JSON
        try:
            params = json.loads(request.body or b"{}")
        except ValueError as error:
            raise Unmapped(f"{target}: the body is not JSON") from error
        return target.rsplit(".", 1)[-1], params if isinstance(params, dict) else {}
    path = urlsplit(request.target).path
    if "/operation/" in path:  # Smithy RPC v2 CBOR (CloudWatch): /service/<Service>/operation/<Operation>
        return path.rsplit("/operation/", 1)[1], {}
    form = (
        parse_qs(request.body.decode("utf-8", "replace")) if request.body else parse_qs(urlsplit(request.target).query)
    )
    if "Action" in form:  # query protocols (SNS, STS): form fields, one value each
        return form["Action"][0], {name: values[0] for name, values in form.items()}
    raise Unmapped(f"a {prefix} request with no operation the gate can read ({request.method} {path})")


@dataclass(frozen=True)
class _Arns:
    region: str
    account: str

    def table(self, name: str, index: str | None = None) -> str:
        if name.startswith("arn:"):
            return name
        return f"arn:aws:dynamodb:{self.region}:{self.account}:table/{name}" + (f"/index/{index}" if index else "")

    def queue(self, url_or_name: str) -> str:
        parts = [unquote(p) for p in urlsplit(url_or_name).path.split("/") if p]
        account, name = (parts[-2], parts[-1]) if len(parts) >= 2 else (self.account, url_or_name)
        return f"arn:aws:sqs:{self.region}:{account}:{name}"

    def ecs(self, kind: str, cluster: str, name: str) -> str:
        if name.startswith("arn:"):
            return name
        cluster_name = cluster.rsplit("/", 1)[-1] if cluster else "default"
        return f"arn:aws:ecs:{self.region}:{self.account}:{kind}/{cluster_name}/{name}"

    def log_group(self, group: str) -> str:
        return f"arn:aws:logs:{self.region}:{self.account}:log-group:{group}"

    def log_stream(self, group: str, stream: str) -> str:
        return f"{self.log_group(group)}:log-stream:{stream}"

    def secret(self, secret_id: str) -> str:
        # A name (not an ARN) cannot be turned into the ARN AWS authorizes (it ends in a random suffix): "NAME-*"
        # matches the grants that name the secret by its ARN.
        return (
            secret_id
            if secret_id.startswith("arn:")
            else f"arn:aws:secretsmanager:{self.region}:{self.account}:secret:{secret_id}-*"
        )


def _dynamodb(operation: str, params: Mapping[str, Any], arn: _Arns) -> list[Call]:
    if operation == "ExecuteStatement":
        return [_partiql(str(params.get("Statement", "")), arn)]
    if operation in ("BatchExecuteStatement", "ExecuteTransaction"):
        statements = params.get("Statements") or params.get("TransactStatements") or []
        return _unique(_partiql(str(s.get("Statement", "")), arn) for s in statements)
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [Call(f"dynamodb:{operation}", arn.table(table)) for table in params.get("RequestItems", {})]
    if operation in ("TransactWriteItems", "TransactGetItems"):
        return _unique(
            Call(f"dynamodb:{TRANSACT_KIND[kind]}", arn.table(item[kind]["TableName"]))
            for item in params.get("TransactItems", [])
            for kind in item
            if kind in TRANSACT_KIND
        )
    if "TableName" in params:
        return [Call(f"dynamodb:{operation}", arn.table(str(params["TableName"]), params.get("IndexName")))]
    return [Call(f"dynamodb:{operation}", "*")]  # ListTables and the like


def _partiql(statement: str, arn: _Arns) -> Call:
    """A PartiQL statement is authorized by its kind on the table (or index) it names, not as the API call."""
    words = statement.split(None, 1)
    kind = PARTIQL_KIND.get(words[0].upper()) if words else None
    table = PARTIQL_TABLE.search(statement)
    if kind is None or table is None:
        raise Unmapped(f"a PartiQL statement the gate cannot read: {statement[:80]!r}")
    return Call(f"dynamodb:{kind}", arn.table(table.group(1), table.group(2)))


def _ecs(action: str, params: Mapping[str, Any], arn: _Arns) -> list[Call]:
    cluster = str(params.get("cluster", ""))
    if "services" in params:
        return [Call(action, arn.ecs("service", cluster, str(s))) for s in params["services"]]
    if "tasks" in params:
        return [Call(action, arn.ecs("task", cluster, str(t))) for t in params["tasks"]]
    if "service" in params:
        return [Call(action, arn.ecs("service", cluster, str(params["service"])))]
    return [Call(action, "*")]


def _unique(calls: Iterable[Call]) -> list[Call]:
    return list(dict.fromkeys(calls))


# --- the evaluator ---------------------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _pattern(glob: str, ignore_case: bool) -> re.Pattern[str]:
    """An IAM wildcard pattern (`*` any run, `?` one character, everything else literal)."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _matches(values: str | Sequence[str], value: str, *, ignore_case: bool) -> bool:
    listed = [values] if isinstance(values, str) else values
    return any(_pattern(v, ignore_case).match(value) for v in listed)


def _applies(statement: Mapping[str, Any], call: Call) -> bool:
    """Whether a statement covers the call. Actions match case-insensitively and resources case-sensitively, as in
    AWS. A statement with a Condition is never evaluated here: an Allow with one does not apply and a Deny with one
    does (the local system refuses rather than guesses)."""
    if "Action" in statement:
        action_ok = _matches(statement["Action"], call.action, ignore_case=True)
    else:
        action_ok = not _matches(statement.get("NotAction", []), call.action, ignore_case=True)
    if "Resource" in statement:
        resource_ok = _matches(statement["Resource"], call.resource, ignore_case=False)
    else:
        resource_ok = not _matches(statement.get("NotResource", []), call.resource, ignore_case=False)
    if not (action_ok and resource_ok):
        return False
    return statement.get("Effect") == "Deny" or "Condition" not in statement


def allowed(policies: Sequence[Mapping[str, Any]], call: Call) -> bool:
    """AWS's evaluation within one account's identity policies: an explicit Deny wins, then any Allow, else denied."""
    statements = [s for policy in policies for s in _statements(policy)]
    if any(s.get("Effect") == "Deny" and _applies(s, call) for s in statements):
        return False
    return any(s.get("Effect") == "Allow" and _applies(s, call) for s in statements)


def _statements(policy: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = policy.get("Statement", [])
    return [found] if isinstance(found, dict) else list(found)


def grants(policies: Sequence[Mapping[str, Any]]) -> list[Call]:
    """Every (action pattern, resource pattern) a role's Allow statements name: what can go unused."""
    return _unique(
        Call(action, resource)
        for policy in policies
        for s in _statements(policy)
        if s.get("Effect") == "Allow"
        for action in _listed(s.get("Action", []))
        for resource in _listed(s.get("Resource", "*"))
    )


def used(grant: Call, calls: Iterable[Call]) -> bool:
    return any(
        _pattern(grant.action, True).match(c.action) and _pattern(grant.resource, False).match(c.resource)
        for c in calls
    )


def _listed(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


# --- keys, policies and the record of calls --------------------------------------------------------------------------


class Ledger:
    """One process's directory: which role each access key belongs to, and the fronts' snapshots of calls."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)

    def record_key(self, access_key: str, role_arn: str) -> None:
        """Written before the key is handed out, so a front never sees a key it cannot look up."""
        _write_atomically(self.directory / f"{access_key}{KEY_SUFFIX}", role_arn)

    def role_of(self, access_key: str) -> str | None:
        if not re.fullmatch(r"[A-Z0-9]{16,128}", access_key):
            return None
        try:
            return (self.directory / f"{access_key}{KEY_SUFFIX}").read_text()
        except FileNotFoundError:
            return None

    def seen(self) -> Counter[tuple[str, str, str, bool]]:
        """Every call the fronts have seen: (role ARN, action, resource, allowed) -> how many."""
        total: Counter[tuple[str, str, str, bool]] = Counter()
        for snapshot in self.directory.glob(f"*{SNAPSHOT_SUFFIX}"):
            try:
                rows = json.loads(snapshot.read_text())
            except (OSError, ValueError):
                continue  # a front that is being replaced
            for role, action, resource, ok, count in rows:
                total[role, action, resource, bool(ok)] += int(count)
        return total

    def usage_since(self, before: Counter[tuple[str, str, str, bool]] | None = None) -> Usage:
        """The calls seen since `before` (a `seen()` taken earlier; None: since the start)."""
        return Usage(self.seen() - (before or Counter()))


@dataclass(frozen=True)
class Denial:
    role_arn: str
    action: str
    resource: str
    count: int

    def __str__(self) -> str:
        role = self.role_arn.rsplit("/", 1)[-1]
        return f"role {role} may not {self.action} on {self.resource} (refused {self.count}x)"


@dataclass(frozen=True)
class Usage:
    """Calls the fronts saw: (role ARN, action, resource, allowed) -> how many."""

    calls: Counter[tuple[str, str, str, bool]]

    @property
    def denials(self) -> list[Denial]:
        return [Denial(r, a, res, n) for (r, a, res, ok), n in sorted(self.calls.items()) if not ok]

    @property
    def roles(self) -> list[str]:
        return sorted({role for role, _, _, ok in self.calls if ok})

    def allowed_calls(self, role_arn: str) -> list[Call]:
        return [Call(a, res) for (r, a, res, ok) in self.calls if ok and r == role_arn]

    def unused(self, policies: Policies, roles: Iterable[str]) -> dict[str, list[Call]]:
        """Per role of `roles`: the grants of its policies that none of its calls used."""
        found = {}
        for role in sorted(set(roles)):
            calls = self.allowed_calls(role)
            idle = [g for g in grants(policies.read(role)) if not used(g, calls)]
            if idle:
                found[role] = idle
        return found


@dataclass(frozen=True)
class Account:
    """What one local system's tasks did with IAM: the refused calls, and the grants none of its calls used (roles
    and resources by their logical names, without the deploy's random suffix, so that deployments compare)."""

    refused: list[str]
    unused: list[str]

    @staticmethod
    def of(usage: Usage, policies: Policies, roles: Iterable[str]) -> Account:
        """`roles`: every role the system's tasks and functions run as (a role that made no call has every grant
        unused)."""
        unused = [
            f"{logical(role.rsplit('/', 1)[-1])}: {grant.action} on {logical(grant.resource)}"
            for role, idle in usage.unused(policies, roles).items()
            for grant in idle
        ]
        return Account([str(d) for d in usage.denials], sorted(unused))


def logical(name: str) -> str:
    """A deployed name without the random suffix Pulumi's autonaming adds (`orders-table-1f68d4b` -> `orders-table`)."""
    return re.sub(r"-[0-9a-f]{7}(?=$|[/:])", "", name)


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    partial.write_text(text)
    os.replace(partial, path)


class Policies:
    """Each role's policies as deployed, read back from the control plane's IAM. A read older than
    POLICY_TTL_SECONDS is still used while one thread reads them again: only a role's first call waits for IAM (a call
    that waited for every re-read timed out a client's 50 ms budget)."""

    def __init__(self, iam_endpoint: str, region: str = "us-east-1") -> None:
        self._iam = emulator_client(
            "iam", iam_endpoint, region, Config(connect_timeout=2, read_timeout=10, retries={"total_max_attempts": 3})
        )
        self._lock = threading.Lock()
        self._read: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        self._rereading: set[str] = set()

    def known(self, role_arn: str) -> list[dict[str, Any]] | None:
        """The role's policies as last read (None: never read; read them with `read`), read again in the background
        once they are older than the TTL."""
        with self._lock:
            found = self._read.get(role_arn)
            stale = found is not None and time.monotonic() - found[0] >= POLICY_TTL_SECONDS
            if stale and role_arn not in self._rereading:
                self._rereading.add(role_arn)
                threading.Thread(target=self._reread, args=(role_arn,), name="iam-policies", daemon=True).start()
        return found[1] if found else None

    def _reread(self, role_arn: str) -> None:
        try:
            self.read(role_arn)
        except (BotoCoreError, ClientError):
            pass  # kept as last read; the next call past the TTL tries again
        finally:
            with self._lock:
                self._rereading.discard(role_arn)

    def read(self, role_arn: str) -> list[dict[str, Any]]:
        """Inline and attached policies of the role (blocking: call it off the front's event loop)."""
        name = role_arn.rsplit("/", 1)[-1]
        documents: list[dict[str, Any]] = []
        for policy_name in self._iam.list_role_policies(RoleName=name)["PolicyNames"]:
            documents.append(
                _document(self._iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"])
            )
        for attached in self._iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            version = self._iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
            found = self._iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=version)
            documents.append(_document(found["PolicyVersion"]["Document"]))
        with self._lock:
            self._read[role_arn] = (time.monotonic(), documents)
        return documents


def _document(document: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(document, str):
        parsed: dict[str, Any] = json.loads(unquote(document))
        return parsed
    return document


class Refusal(NamedTuple):
    """What AWS answers instead of serving a request."""

    status: int
    code: str
    message: str


class Gate:
    """The decision for one front: look up the key's role, map the request, evaluate, record."""

    def __init__(self, ledger: Ledger, policies: Policies, snapshot: Path, account: str | None = None) -> None:
        self.ledger = ledger
        self.policies = policies
        self.account = account  # whose resources the front serves (None: the role's own account)
        self._snapshot = snapshot
        self._roles: dict[str, str] = {}
        self._calls: Counter[tuple[str, str, str, bool]] = Counter()
        self._dirty = False

    def identify(self, request: Request) -> str | None:
        """The role that signed `request`; None for the emulators' own keys (the bench's calls are not gated)."""
        key = request.scope[0]
        if key == DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"]:
            return None
        if key not in self._roles:
            role = self.ledger.role_of(key)
            if role is None:
                raise PermissionError(key)
            self._roles[key] = role
        return self._roles[key]

    def decide(self, request: Request, role_arn: str, policies: Sequence[Mapping[str, Any]]) -> Refusal | None:
        """None if `policies` (the role's) allow every call the request makes, else AWS's refusal of the first."""
        account = self.account or role_arn.split(":")[4]
        try:
            calls = calls_of(request, account)
        except Unmapped as error:
            self._count(role_arn, "unmapped", str(error), ok=False)
            return Refusal(400, "AccessDeniedException", f"local IAM gate: {error}")
        for call in calls:
            ok = call.action in FREE_ACTIONS or allowed(policies, call)
            self._count(role_arn, call.action, call.resource, ok=ok)
            if not ok:
                who = role_arn.replace(":iam::", ":sts::").replace(":role/", ":assumed-role/")
                return Refusal(
                    403 if request.headers.get("x-amz-target") is None else 400,
                    "AccessDeniedException",
                    f"User: {who} is not authorized to perform: {call.action} on resource: {call.resource} "
                    f"because no identity-based policy allows the {call.action} action",
                )
        return None

    def unknown_key(self, key: str) -> Refusal:
        self._count("unknown", "sts:key", key, ok=False)
        return Refusal(403, "UnrecognizedClientException", "The security token included in the request is invalid")

    def _count(self, role_arn: str, action: str, resource: str, *, ok: bool) -> None:
        self._calls[role_arn, action, resource, ok] += 1
        self._dirty = True
        if not ok:
            self.flush()  # a refusal is on disk before the caller hears of it

    def flush(self) -> None:
        if self._dirty:
            self._dirty = False
            rows = [[*key, count] for key, count in self._calls.items()]
            _write_atomically(self._snapshot, json.dumps(rows))


def upstream_account(endpoint: str) -> str | None:
    """The account an emulator keeps its resources in (each emulator has its own), from its STS; None if it has none
    (the local ECS API facade): the ARNs of a call are built in that account, as AWS builds them in the caller's."""
    sts = emulator_client(
        "sts", endpoint, "us-east-1", Config(connect_timeout=2, read_timeout=5, retries={"total_max_attempts": 2})
    )
    try:
        account: str = sts.get_caller_identity()["Account"]
    except (BotoCoreError, ClientError):
        return None
    return account


_LEDGER: Ledger | None = None
_LEDGER_LOCK = threading.Lock()


def ledger() -> Ledger:
    """This process's ledger (a temporary directory, removed at exit), shared by its credentials endpoint and fronts."""
    global _LEDGER
    with _LEDGER_LOCK:
        if _LEDGER is None:
            directory = Path(tempfile.mkdtemp(prefix="flashsale-local-iam-"))
            atexit.register(shutil.rmtree, directory, ignore_errors=True)
            _LEDGER = Ledger(directory)
        return _LEDGER
