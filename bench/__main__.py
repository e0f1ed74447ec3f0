"""`python -m bench`: every benchmark in one run, one table of figures beside their baselines.

Each figure is measured side by side with its baseline in the same run (bare Starlette, the
one-EVALSHA floor, a naive sse-starlette fan-out, the request budget), because this machine's
2 shared cores make absolute numbers move from run to run; read the ratio column.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from typing import Any

from bench.common import print_table

BENCHMARKS = {
    "ingest": "webhook throughput and latency vs the one-EVALSHA floor",
    "summary": "report reads of a month (200 users, 50 projects, 20,000 entries)",
    "rebuild": "an online rebuild of a year (250,000 entries) while the server answers",
    "fanout": "SSE fan-out to many clients vs a naive sse-starlette endpoint",
    "poll": "Clockify API requests per poll cycle and per hour, 10 to 1,000 users",
    "history": "importing a year of a 20-person team (37,000 entries): requests, Free and paid",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts (about a minute)")
    parser.add_argument(
        "--only", default=",".join(BENCHMARKS), help="comma-separated: " + ", ".join(BENCHMARKS)
    )
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    for name in [n.strip() for n in args.only.split(",") if n.strip()]:
        if name not in BENCHMARKS:
            parser.error(f"unknown benchmark {name!r}")
        print(f"\n== {name}: {BENCHMARKS[name]} ==", flush=True)
        started = time.monotonic()
        module = importlib.import_module(f"bench.{name}")
        try:
            rows += module.run(quick=args.quick)
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            print(f"{name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            rows.append(
                {
                    "figure": f"{name} (failed)",
                    "value": "-",
                    "baseline": "-",
                    "ratio": "-",
                    "target": "-",
                    "unit": str(exc)[:60],
                }
            )
        print(f"({name} took {time.monotonic() - started:.0f} s)", flush=True)
    print("\n== all figures ==")
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
