"""The suite's own rules, so they cannot drift: every test that starts a process, drives
Chromium or runs a fuzz or model test is marked `slow` (the inner loop, `-m "not slow"`, stays
under a minute); a hung test fails at the timeout; a misspelt marker is an error; every suite
takes its Redis database from tests/dbs.py; there is one `free_port` and one place that starts
server processes.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

from app.child_server import ROOT
from tests import dbs

# What makes a test slow: a process of its own (clockwall serve, redis-server, nginx,
# docker-compose), Chromium, a webhook load, a thousand SSE clients, Hypothesis.
HEAVY_NAMES = {
    "AppProcess",
    "RedisProcess",
    "NginxProcess",
    "WebhookLoad",
    "open_raw_clients",
    "sync_playwright",
    "async_playwright",
    "given",
    "RuleBasedStateMachine",
}
HEAVY_STRINGS = {"docker-compose"}


def sources(*folders: str) -> dict[Path, str]:
    """Every module of these folders but this one (whose text names what it looks for)."""
    return {
        path: path.read_text()
        for folder in folders
        for path in sorted((ROOT / folder).glob("*.py"))
        if path != Path(__file__).resolve()
    }


def _is_heavy(node: ast.AST, heavy: set[str]) -> bool:
    for child in ast.walk(node):
        if isinstance(child, ast.Name) and child.id in heavy:
            return True
        if isinstance(child, ast.Attribute) and child.attr in heavy:
            return True
        if isinstance(child, ast.Constant) and child.value in HEAVY_STRINGS:
            return True
    return False


def _takes(node: ast.AST, heavy: set[str]) -> bool:
    """A fixture or test that takes a heavy fixture by name."""
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return False
    return any(arg.arg in heavy for arg in node.args.args)


def _marked_slow(node: ast.AST) -> bool:
    return "mark.slow" in ast.unparse(node)


def heavy_names(tree: ast.Module, imported: set[str]) -> set[str]:
    """The module's fixtures, helpers and classes that start something heavy, directly or
    through one another (to a fixed point), plus `imported` ones."""
    heavy = HEAVY_NAMES | imported
    definitions = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and not node.name.startswith("test_")
    ]
    while True:
        found = {
            d.name
            for d in definitions
            if d.name not in heavy and (_is_heavy(d, heavy) or _takes(d, heavy))
        }
        if not found:
            return heavy
        heavy |= found


def _unmarked_in(name: str, tree: ast.Module, heavy: set[str]) -> list[str]:
    module_slow = any(
        isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets)
        and _marked_slow(node.value)
        for node in tree.body
    )
    if module_slow:
        return []
    # Decorators of this module that mark what they decorate slow.
    slow_decorators = {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and not node.name.startswith("test_")
        and _marked_slow(node)
    }
    problems = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            test = node.name.startswith("test_")
            uses = _is_heavy(node, heavy) or _takes(node, heavy)
            slow = any(
                _marked_slow(d) or (isinstance(d, ast.Name) and d.id in slow_decorators)
                for d in node.decorator_list
            )
            if test and uses and not slow:
                problems.append(f"{name}::{node.name}")
        elif isinstance(node, ast.Assign):  # a Hypothesis state machine's TestCase
            target = ast.unparse(node.targets[0])
            uses = _is_heavy(node.value, heavy)
            if target.startswith("Test") and uses and not _marked_slow(node.value):
                problems.append(f"{name}::{target}")
    return problems


def unmarked_heavy_tests() -> list[str]:
    modules = {p: s for p, s in sources("tests").items() if p.name.startswith("test_")}
    heavy_by_module: dict[str, set[str]] = {}
    problems: list[str] = []
    # A module that imports fixtures from another test module comes after the others.
    for path in sorted(modules, key=lambda p: "from tests.test_" in modules[p]):
        tree = ast.parse(modules[path])
        imported: set[str] = set()
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tests.test_"):
                theirs = heavy_by_module.get(node.module or "", set())
                imported |= {a.asname or a.name for a in node.names if a.name in theirs}
        heavy = heavy_names(tree, imported)
        heavy_by_module[f"tests.{path.stem}"] = heavy
        problems += _unmarked_in(path.name, tree, heavy)
    return problems


def test_every_process_browser_fuzz_and_model_test_is_marked_slow() -> None:
    assert unmarked_heavy_tests() == [], (
        "mark these @pytest.mark.slow (or the module: pytestmark = pytest.mark.slow), so the "
        'inner loop (pytest -m "not slow") stays under a minute'
    )


def test_the_check_follows_helpers_and_fixtures_to_what_they_start() -> None:
    tree = ast.parse(
        "async def serve() -> None:\n"
        "    await AppProcess(env, log).astart()\n"
        "@pytest.fixture\n"
        "def served(tmp_path): ...\n"
        "async def test_direct() -> None:\n"
        "    await serve()\n"
        "def test_through_a_fixture(served) -> None: ...\n"
        "@pytest.mark.slow\n"
        "def test_marked(served) -> None: ...\n"
        "def in_chromium(test):\n"
        "    return pytest.mark.slow(test)\n"
        "@in_chromium\n"
        "def test_marked_by_a_decorator(served) -> None: ...\n"
        "def test_light(tmp_path) -> None: ...\n"
    )
    heavy = heavy_names(tree, {"served"})
    assert _unmarked_in("m.py", tree, heavy) == [
        "m.py::test_direct",
        "m.py::test_through_a_fixture",
    ]


def test_a_hung_test_fails_and_a_misspelt_marker_is_an_error(
    pytestconfig: pytest.Config,
) -> None:
    ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "--strict-markers" in ini["addopts"].split()
    assert any(line.startswith("slow:") for line in pytestconfig.getini("markers"))
    # pytest-timeout is installed (its ini key exists) and set.
    assert 0 < float(pytestconfig.getini("timeout")) <= 600
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(r.startswith("pytest-timeout") for r in extras["optional-dependencies"]["test"])


# One database per suite ----------------------------------------------------------------------
LITERAL_DB = re.compile(
    r"redis_url\(\s*\d|^DB\s*=\s*\d|REDIS_BASE\}/\d|127\.0\.0\.1:6379/\d", re.MULTILINE
)


def test_every_suite_takes_its_redis_database_from_the_registry() -> None:
    literal = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path, text in sources("tests", "bench").items()
        if path.name != "dbs.py"
        for match in LITERAL_DB.finditer(text)
    ]
    assert literal == [], "take the number from tests/dbs.py (add a name there if need be)"


def test_the_registry_refuses_database_0_and_a_number_used_twice() -> None:
    with pytest.raises(ValueError, match="ADMIN and POLLER both use database 8"):
        dbs.check({"POLLER": 8, "ADMIN": 8})
    with pytest.raises(ValueError, match="outside 1-15"):
        dbs.check({"MINE": 0})
    dbs.check({"A": 1, "B": 15})


# One free_port, one place that starts servers ------------------------------------------------
def test_one_free_port_and_one_place_that_starts_processes() -> None:
    everything = sources("app", "tests", "bench")
    defines = [p.relative_to(ROOT) for p, s in everything.items() if "def free_port(" in s]
    assert [str(p) for p in defines] == ["app/child_server.py"]
    popen = {str(p.relative_to(ROOT)) for p, s in everything.items() if "subprocess.Popen(" in s}
    assert popen == {"app/child_server.py", "tests/processes.py"}
