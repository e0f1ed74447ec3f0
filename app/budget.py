"""The Clockify API request budget: a hard cap of N requests in any rolling hour, kept in Redis
so every process (and every restart) of a workspace draws from the same count.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from app import keys

WINDOW_S = 3600.0
FREE_PLAN_PER_HOUR = 30
# Paid plans allow 50 requests per second. We cap at an average of 10 per second: far above
# anything a poller needs, so it never throttles normal work, yet a fifth of Clockify's limit,
# leaving room for bursts and for other tools sharing the API key (whether the 50/s counts per
# key, user or workspace is undocumented), and still a hard stop for a runaway loop.
PAID_PLAN_PER_HOUR = 3600 * 10
_ACQUIRE_LUA = (Path(__file__).parent / "lua" / "budget_acquire.lua").read_text()


def budget_for_plan(plan: str | None, configured: int | None) -> int:
    """Requests per rolling hour: the configured value wins; else FREE (or an unknown, empty
    plan: the safe guess) gets Clockify's 30/hour, any paid plan 36000/hour."""
    if configured is not None:
        return configured
    if not plan or plan.strip().upper() == "FREE":
        return FREE_PLAN_PER_HOUR
    return PAID_PLAN_PER_HOUR


class RequestBudget:
    """`await acquire()` before each Clockify request; False means: do not send.

    `clock` returns epoch seconds; None (the default) uses the Redis server's clock, so
    processes on hosts with skewed clocks still agree. Tests inject a fake clock.
    """

    def __init__(
        self,
        redis: Redis,
        ws: str,
        limit_per_hour: int,
        *,
        clock: Callable[[], float] | None = None,
        window_s: float = WINDOW_S,
    ) -> None:
        if limit_per_hour < 1:
            raise ValueError("limit_per_hour must be at least 1")
        self._redis = redis
        self._key = keys.budget(ws)
        self.limit_per_hour = limit_per_hour
        self._clock = clock
        self._window_s = window_s
        self._acquire = redis.register_script(_ACQUIRE_LUA)

    async def acquire(self) -> bool:
        now_arg = "" if self._clock is None else repr(self._clock())
        member = uuid.uuid4().hex
        result: Any = await self._acquire(
            keys=[self._key], args=[now_arg, self._window_s, self.limit_per_hour, member]
        )
        return int(result[0]) == 1

    async def remaining(self) -> int:
        """Requests that may still be sent now."""
        now_s = await self._now_s()
        used = await self._redis.zcount(self._key, f"({now_s - self._window_s!r}", "+inf")
        return max(0, self.limit_per_hour - int(used))

    async def next_free_at(self) -> float:
        """Epoch seconds at which `acquire` will next succeed (now, when a slot is free)."""
        now_s = await self._now_s()
        low = f"({now_s - self._window_s!r}"
        used = int(await self._redis.zcount(self._key, low, "+inf"))
        if used < self.limit_per_hour:
            return now_s
        # The slot frees when enough of the oldest grants leave the window.
        oldest: Any = await self._redis.zrangebyscore(
            self._key, low, "+inf", start=used - self.limit_per_hour, num=1, withscores=True
        )
        return float(oldest[0][1]) + self._window_s if oldest else now_s

    async def _now_s(self) -> float:
        if self._clock is not None:
            return self._clock()
        seconds, microseconds = await self._redis.time()
        return seconds + microseconds / 1_000_000
