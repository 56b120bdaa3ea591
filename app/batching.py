"""Adaptive batching: items that arrive together share one call, and a lone item is never kept waiting.

A call costs about the same CPU whatever its size (a boto3 or signed HTTP call is ~0.4-1 ms of Python either way),
so under load the receiver should make few large calls; at a trickle it must not linger to collect company (that
would only add latency). The rule that gives both: when no call is in flight, an arrival is sent at once, alone;
while calls are in flight, arrivals wait in a group, which goes out as soon as a call returns, or at once when it
reaches the API's batch size and fewer than `max_calls` are in flight. So the group grows with the load (arrival
rate x call time), bounded by the batch size (and, where the API caps a call's bytes, by a total `weight`), and an
item waits at most about one call time before its own starts.

Every item gets its own answer: the call returns one result per item, in order, and an entry that failed
(an exception in its place) fails only its own `submit()`; a call that raises fails every item of that call.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

BatchCall = Callable[[list[T]], Awaitable[Sequence[R | BaseException]]]


@dataclass
class BatchCounters:
    calls: int = 0
    items: int = 0
    largest: int = 0  # items in the largest call so far


class Batcher(Generic[T, R]):
    """`await submit(item)` gives that item's result, or raises its exception; `call` does whole batches."""

    def __init__(
        self,
        call: BatchCall[T, R],
        *,
        max_batch: int,
        max_calls: int,
        weight: Callable[[T], int] | None = None,
        max_weight: int = 0,
    ) -> None:
        """`weight` and `max_weight`: a call carries items of at most `max_weight` in all (an item heavier than
        that goes alone), e.g. SNS PublishBatch's 256 KiB for all its messages together."""
        if max_batch < 1 or max_calls < 1 or (weight is not None and max_weight < 1):
            raise ValueError(
                f"max_batch, max_calls and max_weight must be at least 1, got {max_batch}, {max_calls} and {max_weight}"
            )
        self._call = call
        self.max_batch = max_batch
        self.max_calls = max_calls
        self._weight = weight
        self._max_weight = max_weight
        self._waiting: deque[tuple[T, int, asyncio.Future[R]]] = deque()
        self._waiting_weight = 0
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.counters = BatchCounters()

    @property
    def in_flight(self) -> int:
        """Calls under way."""
        return self._in_flight

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        weight = self._weight(item) if self._weight is not None else 0
        self._waiting.append((item, weight, future))
        self._waiting_weight += weight
        if self._in_flight == 0 or self._full():
            self._flush(whole_batches_only=self._in_flight > 0)
        return await future

    def _full(self) -> bool:
        """Enough waits for a whole call."""
        return len(self._waiting) >= self.max_batch or (
            self._weight is not None and self._waiting_weight >= self._max_weight
        )

    def _take(self) -> list[tuple[T, asyncio.Future[R]]]:
        """The next call's items: the oldest, up to the batch size and (after the first) the weight limit."""
        batch: list[tuple[T, asyncio.Future[R]]] = []
        total = 0
        while self._waiting and len(batch) < self.max_batch:
            item, weight, future = self._waiting[0]
            if batch and self._weight is not None and total + weight > self._max_weight:
                break
            self._waiting.popleft()
            self._waiting_weight -= weight
            total += weight
            batch.append((item, future))
        return batch

    def _flush(self, *, whole_batches_only: bool) -> None:
        """Start calls while there is room: the first may take a partial group unless `whole_batches_only`."""
        while self._waiting and self._in_flight < self.max_calls:
            if whole_batches_only and not self._full():
                return
            batch = self._take()
            self._in_flight += 1
            self.counters.calls += 1
            self.counters.items += len(batch)
            self.counters.largest = max(self.counters.largest, len(batch))
            task = asyncio.create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            whole_batches_only = True

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results: Sequence[R | BaseException] = await self._call([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"a batch call returned {len(results)} results for {len(batch)} items")
        except Exception as e:  # the whole call failed: so did each of its items
            results = [e] * len(batch)
        except asyncio.CancelledError:  # shutting down: nobody gets an answer
            for _, future in batch:
                future.cancel()
            raise
        finally:
            self._in_flight -= 1
        for (_, future), result in zip(batch, results, strict=False):
            if future.done():  # its caller went away (cancelled)
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
        # The group that waited for this call goes now, whatever its size.
        self._flush(whole_batches_only=False)
