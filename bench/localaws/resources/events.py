"""EventBridge (CloudWatch Events) handlers: scheduled rules and their targets. moto stores them and never fires a
schedule, so a rule's Lambda target becomes a `Schedule` that the local runtime runs on the rule's period
(bench.localaws.sweeps), with the function's handler and environment as deployed."""

from __future__ import annotations

import re

from bench.localaws.resources.registry import CONTROL, Context, Created, Declared, Invalid, Schedule, Standin, handles

# EventBridge's rate expressions: a positive whole number and a unit, singular for 1 ("rate(1 day)").
RATE = re.compile(r"rate\((?P<value>[1-9][0-9]*) (?P<unit>minute|minutes|hour|hours|day|days)\)")
UNIT_SECONDS = {"minute": 60, "hour": 3_600, "day": 86_400}


def rate_seconds(expression: str) -> int:
    """The period of a rate expression, checked as EventBridge checks it; cron() is not modelled here."""
    found = RATE.fullmatch(expression)
    if found is None:
        raise Invalid(f"schedule expression {expression!r} is not rate(<value> <unit>) (no cron() locally)")
    value, unit = int(found["value"]), found["unit"]
    if (value == 1) != (not unit.endswith("s")):
        raise Invalid(f"schedule expression {expression!r}: the unit is singular for 1 and plural otherwise")
    return value * UNIT_SECONDS[unit.removesuffix("s")]


@handles("aws:cloudwatch/eventRule:EventRule", CONTROL)
def rule(ctx: Context, r: Declared) -> Created:
    i = r.inputs
    arguments = {"Name": r.name, "State": i.get("state") or "ENABLED"}
    if i.get("scheduleExpression"):
        rate_seconds(i["scheduleExpression"])
        arguments["ScheduleExpression"] = i["scheduleExpression"]
    if i.get("eventPattern"):
        arguments["EventPattern"] = i["eventPattern"]
    if i.get("description"):
        arguments["Description"] = i["description"]
    arn = ctx.client("events").put_rule(**arguments)["RuleArn"]
    return r.name, {"arn": arn, "name": r.name}


@handles("aws:cloudwatch/eventTarget:EventTarget", CONTROL)
def target(ctx: Context, r: Declared) -> Created:
    """LOCAL STAND-IN for the schedule's firing: the target is stored, and a Lambda target on a scheduled rule is
    run by the local runtime on the rule's period."""
    events, rule_name, arn = ctx.client("events"), r.inputs["rule"], r.inputs["arn"]
    target_id = r.inputs.get("targetId") or r.logical[-64:]
    events.put_targets(Rule=rule_name, Targets=[{"Id": target_id, "Arn": arn}])
    expression = events.describe_rule(Name=rule_name).get("ScheduleExpression")
    if expression and ":lambda:" in arn:
        function_name = arn.rsplit(":", 1)[-1]
        found = ctx.client("lambda").get_function(FunctionName=function_name)["Configuration"]
        every = rate_seconds(expression)
        ctx.schedules.append(
            Schedule(
                function_name,
                found["Handler"],
                dict(found.get("Environment", {}).get("Variables", {})),
                every,
                found["Role"],
            )
        )
        ctx.standins.append(
            Standin(r.urn, f"Lambda {function_name} run every {every} s ({expression}) by the local runtime")
        )
    return f"{rule_name}-{target_id}", {"targetId": target_id}
