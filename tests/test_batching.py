"""app.batching: a lone item is sent at once, arrivals during a call share the next one (bounded by the batch size,
the calls in flight and the weight), and every item gets its own answer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from app.batching import Batcher


class Recorder:
    """A batch call that records what it was given and answers once released (or at once)."""

    def __init__(self, *, fail: set[str] | None = None, raises: bool = False, hold: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail or set()
        self.raises = raises
        self.release = asyncio.Event()
        if not hold:
            self.release.set()

    async def __call__(self, items: list[str]) -> Sequence[str | BaseException]:
        self.calls.append(items)
        await self.release.wait()
        if self.raises:
            raise ConnectionError("the whole call failed")
        return [ValueError(f"{item} failed") if item in self.fail else item.upper() for item in items]


async def _started(batcher: Batcher[str, str], *items: str) -> list[asyncio.Task[str]]:
    tasks = [asyncio.create_task(batcher.submit(item)) for item in items]
    for _ in range(3):  # each submit runs up to its await, and the calls it started up to theirs
        await asyncio.sleep(0)
    return tasks


def test_a_lone_item_is_sent_at_once_and_gets_its_result() -> None:
    async def scenario() -> None:
        call = Recorder(hold=True)
        batcher = Batcher(call, max_batch=10, max_calls=4)
        (task,) = await _started(batcher, "a")
        assert call.calls == [["a"]] and batcher.in_flight == 1  # sent before anything else could join it
        call.release.set()
        assert await task == "A"

    asyncio.run(scenario())


def test_arrivals_during_a_call_share_the_next_one_bounded_by_the_batch_size() -> None:
    async def scenario() -> None:
        call = Recorder(hold=True)
        batcher = Batcher(call, max_batch=3, max_calls=1)
        tasks = await _started(batcher, "a", "b", "c", "d", "e", "f", "g")
        assert call.calls == [["a"]]  # the others wait: one call in flight at most
        call.release.set()
        assert [await t for t in tasks] == ["A", "B", "C", "D", "E", "F", "G"]
        assert call.calls == [["a"], ["b", "c", "d"], ["e", "f", "g"]]
        assert (batcher.counters.calls, batcher.counters.items, batcher.counters.largest) == (3, 7, 3)

    asyncio.run(scenario())


def test_a_full_group_starts_another_call_while_one_is_in_flight() -> None:
    async def scenario() -> None:
        call = Recorder(hold=True)
        batcher = Batcher(call, max_batch=2, max_calls=2)
        tasks = await _started(batcher, "a", "b", "c", "d", "e")
        # a alone (idle), then b+c as soon as they fill a batch; d+e would too, but two calls are in flight already.
        assert call.calls == [["a"], ["b", "c"]]
        call.release.set()
        await asyncio.gather(*tasks)
        assert call.calls == [["a"], ["b", "c"], ["d", "e"]]

    asyncio.run(scenario())


def test_a_failed_entry_fails_only_its_own_item() -> None:
    async def scenario() -> None:
        call = Recorder(fail={"c"}, hold=True)
        batcher = Batcher(call, max_batch=10, max_calls=1)
        tasks = await _started(batcher, "a", "b", "c", "d")
        call.release.set()
        a, b, c, d = tasks
        assert (await a, await b, await d) == ("A", "B", "D")
        with pytest.raises(ValueError, match="c failed"):
            await c
        assert call.calls == [["a"], ["b", "c", "d"]]

    asyncio.run(scenario())


def test_a_call_that_raises_fails_each_of_its_items_and_only_those() -> None:
    async def scenario() -> None:
        failing = Recorder(raises=True, hold=True)
        batcher = Batcher(failing, max_batch=10, max_calls=1)
        tasks = await _started(batcher, "a", "b")
        failing.release.set()
        for task in tasks:
            with pytest.raises(ConnectionError):
                await task
        failing.raises = False
        assert await batcher.submit("c") == "C"  # the batcher carries on

    asyncio.run(scenario())


def test_the_weight_limit_splits_a_group() -> None:
    async def scenario() -> None:
        call = Recorder(hold=True)
        batcher = Batcher(call, max_batch=10, max_calls=1, weight=len, max_weight=5)
        tasks = await _started(batcher, "x", "aa", "bbb", "cc", "dddddddd", "e")
        call.release.set()
        await asyncio.gather(*tasks)
        # 2+3 fit in 5; "cc" starts the next call; the 8-long item is too heavy for any company, so it goes alone.
        assert call.calls == [["x"], ["aa", "bbb"], ["cc"], ["dddddddd"], ["e"]]

    asyncio.run(scenario())


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Batcher(Recorder(), max_batch=0, max_calls=1)
