"""Process settings for serving: garbage collection and the shutdown grace period."""

from __future__ import annotations

import gc

# uvicorn's graceful shutdown: event streams end at once on SIGTERM, and a request still running
# this long after it is cancelled, so nothing stuck keeps a process (or a deploy) waiting.
SHUTDOWN_GRACE_S = 5

# CPython's default (700, 10, 10) runs a young collection every 700 container allocations and a
# full one every 100 of those. A process holding a thousand open event streams then spends tens
# of milliseconds in full collections several times a second, and every screen's update waits
# (bench/fanout.py: webhook-to-screen p99 126 ms with the defaults, 74 ms with these).
GC_THRESHOLDS = (10_000, 10, 10)


def tune_gc() -> None:
    """Before serving: move what start-up built (modules, the app, its routes) out of the
    collector's way for good, and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
