"""What one lab run is asked to do: its scale, parts and levels (built by `python -m bench.lab`'s parser, read by the
run and by the report it writes)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ops import cost, loadtest
from planning import scaling
from planning.report import REPORT_WORKER_LEVELS
from planning.strategies import Strategy

# 180 orders/s, 1 s payments: the whole lab in about 8 minutes on 2 cores, with every level's rate within a few
# per cent of N/t (measured with `python -m bench.lab`).
DEFAULT_SCALE = 3.0


@dataclass(frozen=True)
class LabArgs:
    results: Path
    time_scale: float = DEFAULT_SCALE
    sale_fraction: float = 1.0  # of the report's load durations (quick: fewer orders)
    profiles: tuple[str, ...] = loadtest.PROFILE_NAMES  # Part I
    levels: tuple[int, ...] = REPORT_WORKER_LEVELS
    strategies: tuple[Strategy, ...] = tuple(Strategy)
    startup_seconds: float = scaling.FARGATE_STARTUP_SECONDS  # report time: a new task's start-up
    prices: Mapping[str, float] = field(default_factory=cost.prices)
    drain_limit_seconds: float = 150.0  # wall clock: longer drains are extrapolated from a window
    window_seconds: float = 10.0  # wall clock, after the sale, for extrapolated drains
    quick: bool = False
