"""Stopping background tasks for certain."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)


async def stop_tasks(tasks: Iterable[asyncio.Task[Any]], nudge_s: float = 0.5) -> None:
    """Cancel `tasks` and return once every one has ended.

    One `cancel()` is not always enough: a library may turn a cancellation into an error it
    retries. redis-py does this when a socket timeout fires in the same loop turn as the cancel.
    The timeout becomes a redis TimeoutError, its Retry runs the command again, and the task goes
    on as if nothing had been asked. A shutdown that awaited such a task would hang. So cancel
    again every `nudge_s` until the task is done, and log what a task died of, if it was not the
    cancellation."""
    tasks = list(tasks)
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=nudge_s)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s had failed: %r", task.get_name(), task.exception())
