"""Background tasks stop for certain, even one that absorbs a cancellation (as redis-py's retry
does when a socket timeout races the cancel)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from app.tasks import stop_tasks


async def absorbs_one_cancel(absorbed: list[int]) -> None:
    while True:
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            if absorbed:
                raise
            absorbed.append(1)  # what a retried command looks like from outside


async def test_a_task_that_absorbs_the_first_cancel_is_still_stopped() -> None:
    absorbed: list[int] = []
    stubborn = asyncio.create_task(absorbs_one_cancel(absorbed))
    plain = asyncio.create_task(asyncio.Event().wait())
    await asyncio.sleep(0)  # both started
    async with asyncio.timeout(5):
        await stop_tasks([stubborn, plain], nudge_s=0.01)
    assert absorbed == [1]
    assert stubborn.cancelled() and plain.cancelled()


async def test_a_failed_task_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def fails() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(fails(), name="failing-task")
    await asyncio.wait([task])
    with caplog.at_level(logging.ERROR, logger="app.tasks"):
        await stop_tasks([task])
    assert "failing-task" in caplog.text and "boom" in caplog.text


async def test_nothing_to_stop_returns_at_once() -> None:
    await stop_tasks([])
