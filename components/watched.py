"""Watched: what the alarms and the dashboard watch, as CloudWatch dimensions per `alarm_catalogue.AlarmSubject`.

Checked whole when made: every subject of each deployed system has its dimensions and no other subject has any. So
an alarm or a dashboard line is left out only because its system is not deployed (no async stack, no queue alarms),
never because a component forgot a subject.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from app.alarm_catalogue import AlarmSubject, System

Dimensions = Mapping[str, pulumi.Input[str]]


@dataclass(frozen=True)
class Watched:
    systems: frozenset[System]  # the systems the stack deploys
    dimensions: Mapping[AlarmSubject, Dimensions]

    def __post_init__(self) -> None:
        expected = {s for s in AlarmSubject if s.system in self.systems and not s.metric_math}
        missing, extra = expected - set(self.dimensions), set(self.dimensions) - expected
        if missing or extra:
            raise ValueError(
                f"watched subjects of the {'/'.join(sorted(self.systems))} system(s): missing "
                f"{sorted(map(str, missing))}, not deployed {sorted(map(str, extra))}"
            )

    def has(self, subject: AlarmSubject) -> bool:
        """Whether the stack deploys what `subject` watches."""
        return subject.system in self.systems

    def __getitem__(self, subject: AlarmSubject) -> Dimensions:
        return self.dimensions[subject]


@dataclass(frozen=True)
class Replication:
    """A global table's replication out of one region (its `ReplicationLatency`, published in that region) to each
    of the others."""

    table_name: pulumi.Input[str]
    source_region: str
    receiving_regions: tuple[str, ...]
