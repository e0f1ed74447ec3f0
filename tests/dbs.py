"""The Redis database number of every test suite and of the benchmarks, in one place.

They all share one Redis server (CLOCKWALL_TEST_REDIS, CLOCKWALL_BENCH_REDIS), and each flushes
its database before and after use, so two suites on one number would wipe each other's data
whenever they run at once. Redis has 16 databases (0-15); 0 is left to the developer's own
data. Checked at import: every number is in 1-15 and none is used twice. A suite that needs
another number shares one deliberately, by using an existing name whose comment says why.

A plain module, no test tools: bench/common.py imports it too.
"""

from __future__ import annotations

# tests/test_multiprocess.py and the process test of test_reporting.py: two `clockwall serve`
# sharing one database, one test at a time.
MULTIPROCESS = 1
PROXY = 2  # tests/test_proxy.py: two `clockwall serve` behind nginx
PIPE = 3  # tests/test_pipe.py
LOG_REDACTION = 4  # tests/test_log_redaction.py
FAULTS = 5  # tests/test_faults.py: the thousand-client load test
SHARE_PAGE = 6  # tests/test_share_page.py
# tests/test_poller.py, test_poll_shapes.py and test_rates.py: the poller against the simulated
# Clockify, one test at a time.
POLLER = 7
ADMIN = 8  # tests/test_admin.py
SNAPSHOT_CACHE = 9  # tests/test_snapshot_cache.py
SSE = 10  # tests/test_sse.py
# tests/test_pages.py, test_browser_ids.py, test_wall_room.py and the Chromium tests of
# test_progress.py and test_breaks.py: the same pages in Chromium, each test with a fresh app on
# a flushed database, one test at a time.
PAGES = 11
LIVE_HARDENING = 12  # tests/test_live_hardening.py
# bench/: every benchmark, one after another (`python -m bench`), each flushing before it runs.
BENCH = 13
# tests/conftest.py: the `redis` fixture and make_settings(), so every in-process test that
# takes them, one test at a time.
CORE = 14
BUDGET = 15  # tests/test_budget.py: the Clockify client's request budget


def check(numbers: dict[str, int]) -> None:
    """ValueError if a number is outside 1-15 or two names share one."""
    seen: dict[int, str] = {}
    for name, db in numbers.items():
        if not 1 <= db <= 15:
            raise ValueError(f"tests/dbs.py: {name} = {db} is outside 1-15")
        if db in seen:
            raise ValueError(
                f"tests/dbs.py: {name} and {seen[db]} both use database {db}; give one a free "
                "number, or use the other's name where sharing is deliberate (and say why)"
            )
        seen[db] = name


check({name: value for name, value in dict(globals()).items() if name.isupper()})
