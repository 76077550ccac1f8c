"""`run_inline` runs a coroutine in the caller's task until it suspends, then in a task."""

from __future__ import annotations

import asyncio

import pytest

from chatapp.core.inline import _Resumed as Resumed
from chatapp.core.inline import run_inline


async def test_a_coroutine_that_never_suspends_finishes_in_the_call():
    done: list[str] = []

    async def quick() -> None:
        done.append("ran")

    assert run_inline(quick()) is None
    assert done == ["ran"]


async def test_one_that_suspends_goes_on_in_a_task_from_where_it_stopped():
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    steps: list[str] = []

    async def slow() -> None:
        steps.append("before")
        steps.append(await gate)
        await asyncio.sleep(0)  # a bare yield passes through too
        steps.append("after")

    task = run_inline(slow())
    assert task is not None
    assert steps == ["before"]
    gate.set_result("woken")
    await task
    assert steps == ["before", "woken", "after"]


async def test_an_error_before_suspending_reaches_the_caller():
    async def broken() -> None:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        run_inline(broken())


async def test_cancelling_the_task_cancels_the_coroutine_where_it_waits():
    seen: list[str] = []

    async def waits() -> None:
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            seen.append("cancelled inside")
            raise

    task = run_inline(waits())
    assert task is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled inside"]


async def test_the_carried_on_coroutine_can_also_be_awaited_directly():
    gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    got: list[int] = []

    async def slow() -> None:
        got.append(await gate)

    coro = slow()
    yielded = coro.send(None)
    asyncio.get_running_loop().call_soon(gate.set_result, 7)
    await Resumed(coro, yielded)
    assert got == [7]
