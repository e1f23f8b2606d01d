"""`MicroBatcher`: one call of `fn` per event-loop turn, each caller its own slice, errors to every caller."""

from __future__ import annotations

import asyncio

import pytest

from fusion.serving.batching import MicroBatcher


def test_calls_of_one_turn_make_one_call_and_get_their_own_slices():
    calls, sizes = [], []

    def double(items: list) -> list:
        calls.append(list(items))
        return [2 * x for x in items]

    batcher = MicroBatcher(double, on_batch=sizes.append)

    async def run():
        first = await asyncio.gather(batcher([1, 2]), batcher([]), batcher([3]))
        second = await batcher([4])  # a later turn: a batch of its own
        return first, second

    first, second = asyncio.run(run())
    assert first == [[2, 4], [], [6]] and second == [8]
    assert calls == [[1, 2, 3], [4]] and sizes == [3, 1]


def test_a_coroutine_fn_is_awaited_once_per_batch():
    calls = []

    async def lookup(keys: list) -> list:
        calls.append(list(keys))
        await asyncio.sleep(0.001)
        return [k.upper() for k in keys]

    batcher = MicroBatcher(lookup)

    async def run():
        return await asyncio.gather(batcher(["a", "b"]), batcher(["c"]))

    assert asyncio.run(run()) == [["A", "B"], ["C"]] and calls == [["a", "b", "c"]]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_an_error_reaches_every_caller_of_its_batch_and_the_next_batch_works(kind):
    def fail(items: list) -> list:
        raise ValueError(f"cannot score {items}")

    async def fail_later(items: list) -> list:
        await asyncio.sleep(0)
        fail(items)

    batcher = MicroBatcher(fail if kind == "sync" else fail_later)

    async def run():
        outcomes = await asyncio.gather(batcher([1]), batcher([2, 3]), return_exceptions=True)
        batcher.fn = lambda items: [0] * len(items)
        return outcomes, await batcher([4])

    outcomes, after = asyncio.run(run())
    assert [str(e) for e in outcomes] == ["cannot score [1, 2, 3]"] * 2 and after == [0]

