"""The share report's entry list is scoped before it is limited: a busy workspace never crowds
a client's own entries out of their report, and a list the limit does cut says so."""

from __future__ import annotations

from datetime import date

import pytest
from redis.asyncio import Redis

from app.main import create_app
from app.share import ShareReport, ShareScope
from tests.conftest import WS, FixedClock, make_settings
from tests.payloads import INTERNAL, WEBSITE, client_for, entry_2024, post_webhook

DAY = date(2026, 3, 24)


def body(n: int, project: object) -> dict[str, object]:
    start = f"2026-03-24T{8 + n // 60:02d}:{n % 60:02d}:00Z"
    end = f"2026-03-24T{8 + n // 60:02d}:{n % 60:02d}:30Z"
    return entry_2024(f"{n:024x}", start, end, project=project)  # type: ignore[arg-type]


@pytest.fixture
async def busy(redis: Redis, clock: FixedClock) -> ShareReport:
    """Sixty entries of another project first in the day, then three of the shared one."""
    app = create_app(make_settings(), redis=redis, clock=clock)
    async with client_for(app) as client:
        for n in range(60):
            assert (await post_webhook(client, "NEW_TIME_ENTRY", body(n, INTERNAL))).is_success
        for n in range(60, 63):
            assert (await post_webhook(client, "NEW_TIME_ENTRY", body(n, WEBSITE))).is_success
    return ShareReport(make_settings(), app.state.service.store, entry_limit=50)


def website(expires_at: int = 2**40) -> ShareScope:
    return ShareScope(WS, "project", WEBSITE.id, expires_at)


async def test_a_scope_keeps_its_entries_however_busy_the_rest_of_the_workspace(
    busy: ShareReport,
) -> None:
    report = await busy.read(website(), DAY, DAY)
    assert [e["project"]["id"] for e in report["entries"]] == [WEBSITE.id] * 3
    assert report["truncated"] is False
    assert report["totalSeconds"] == 3 * 30


async def test_a_list_cut_by_the_limit_says_truncated_and_totals_stay_whole(
    busy: ShareReport,
) -> None:
    busy.entry_limit = 2
    report = await busy.read(website(), DAY, DAY)
    assert len(report["entries"]) == 2
    assert report["truncated"] is True
    assert report["totalSeconds"] == 3 * 30  # the totals come from the totals, not the list
