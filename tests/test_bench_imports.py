"""`python -m bench` runs on the runtime dependencies alone (`pip install -e .`, the README's
first command): no benchmark may import pytest or another test tool, directly or through tests/."""

from __future__ import annotations

import subprocess
import sys

from app.child_server import ROOT

TEST_TOOLS = ("pytest", "_pytest", "pytest_asyncio", "hypothesis", "playwright", "yaml")
BENCHMARKS = tuple(
    f"bench.{path.stem}"
    for path in sorted((ROOT / "bench").glob("*.py"))
    if path.stem != "__init__"
)


def test_every_benchmark_imports_with_the_test_tools_missing() -> None:
    # A None in sys.modules makes `import name` raise ImportError, as if it were not installed.
    code = (
        "import sys\n"
        f"for name in {TEST_TOOLS!r}:\n"
        "    sys.modules[name] = None\n"
        f"for name in {BENCHMARKS!r}:\n"
        "    __import__(name)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
