"""Process settings for serving: garbage collection, the shutdown grace period, and running the
app under uvicorn the way `clockwall serve` does."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from typing import Any

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


def run_server(app: Any, exiting: asyncio.Event, *, header_timeout_s: float, **config: Any) -> bool:
    """Serve `app` until SIGTERM or SIGINT: uvicorn with a deadline on request headers, and
    `exiting` set the moment it begins to exit (the app's event streams end on it). `config`
    goes to uvicorn.Config. False when the server never started (e.g. the port is taken)."""
    import uvicorn

    from app.compat import ClockwallServer, header_deadline_protocol

    config.setdefault("timeout_graceful_shutdown", SHUTDOWN_GRACE_S)
    server = ClockwallServer(
        uvicorn.Config(app, http=header_deadline_protocol(header_timeout_s), **config), exiting
    )
    # SIGINT is raised again once uvicorn has shut down cleanly: the end, not an error.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return server.started
