"""`clockwall share` (issue 12, item 7): it finds the project or client by id or name in
Clockify (the fake one on a loopback port) or in the store's names (a real Redis), lists the
candidates of an ambiguous name, refuses an unknown one, an expiry in the past or beyond the
maximum, and says when the link expires; the link carries the sender, range and no-running
options it was asked for."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis

from app.cli import main
from app.config import Secret
from app.main import create_app
from app.share import ShareScope, verify_token
from app.sim import SimulatedWorkspace
from app.sim.server import run_simulator_in_thread
from tests import dbs
from tests.conftest import WS, FixedClock, make_settings, redis_url
from tests.payloads import (
    ACME,
    GLOBEX,
    MOBILE,
    WEBSITE,
    client_for,
    new_client,
    new_project,
    post_webhook,
)

SECRET = "share-cli-test-signing-key-0123456789"


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The CLI's environment: ours only (no Clockify, no Redis until a test sets them)."""
    for name in list(os.environ):
        if name.startswith(("CLOCKIFY_", "CLOCKWALL_")) or name == "REDIS_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("CLOCKIFY_WORKSPACE_ID", WS)
    monkeypatch.setenv("CLOCKWALL_SECRET_KEY", SECRET)
    return monkeypatch


def shared_scope(out: str) -> ShareScope:
    assert out.count("\n") == 1 and "/share?share=" in out, out
    return verify_token(Secret(SECRET), out.strip().split("share=", 1)[1])


# Clockify ------------------------------------------------------------------------------------


@pytest.fixture
def clockify(cli_env: pytest.MonkeyPatch) -> Iterator[SimulatedWorkspace]:
    """A fake Clockify with two projects named "Website relaunch" (Acme's and Globex's) and
    one "Mobile app", served from a thread (the CLI runs its own event loop)."""
    sim = SimulatedWorkspace(plan="PRO_2021", rng=random.Random(5))
    sim.add_user("Olga Owner")
    acme, globex = sim.add_client("Acme GmbH"), sim.add_client("Globex Ltd")
    sim.add_project("Website relaunch", acme)
    sim.add_project("Website relaunch", globex)
    sim.add_project("Mobile app", globex)
    with run_simulator_in_thread(sim) as url:
        cli_env.setenv("CLOCKIFY_API_KEY", sim.api_key)
        cli_env.setenv("CLOCKIFY_WORKSPACE_ID", sim.id)
        cli_env.setenv("CLOCKIFY_API_URL", f"{url}/api/v1")
        cli_env.setenv("CLOCKIFY_REPORTS_URL", f"{url}/reports/v1")
        yield sim


def project_id(sim: SimulatedWorkspace, name: str, client: str | None = None) -> str:
    (found,) = [
        p.id
        for p in sim.projects.values()
        if p.name == name and (client is None or sim.clients[p.client_id or ""].name == client)
    ]
    return found


def test_share_finds_a_project_by_name_in_clockify_and_signs_the_options_asked_for(
    clockify: SimulatedWorkspace, capsys: pytest.CaptureFixture[str]
) -> None:
    before = int(time.time())
    code = main(
        [
            "share",
            "--project",
            "mobile APP",
            "--sender",
            "Ana Lopez",
            "--no-running",
            "--range",
            "last-month",
            "--expires",
            "12h",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    scope = shared_scope(out)
    assert scope.id == project_id(clockify, "Mobile app")
    assert (scope.sender, scope.no_running, scope.default_range) == (
        "Ana Lopez",
        True,
        "last-month",
    )
    assert before + 12 * 3600 <= scope.expires_at <= int(time.time()) + 12 * 3600
    assert f"shares project Mobile app (id {scope.id}, client Globex Ltd)" in err
    expires = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(scope.expires_at))
    assert f"link id {scope.link_id}, expires {expires} (in 12 hours)" in err
    assert clockify.api_key not in out + err


def test_share_lists_every_project_an_ambiguous_name_could_mean_and_exits_2(
    clockify: SimulatedWorkspace, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["share", "--project", "Website relaunch"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "2 projects are named 'Website relaunch'" in err
    for client in ("Acme GmbH", "Globex Ltd"):
        ident = project_id(clockify, "Website relaunch", client)
        assert f"Website relaunch (id {ident}, client {client})" in err
    # Its id settles it.
    ident = project_id(clockify, "Website relaunch", "Acme GmbH")
    assert main(["share", "--project", ident]) == 0
    assert shared_scope(capsys.readouterr().out).id == ident


@pytest.mark.parametrize("wanted", ["64d0000000000000000000ff", "Website", "Mobil app"])
def test_share_refuses_a_project_clockify_does_not_know_and_exits_2(
    clockify: SimulatedWorkspace, capsys: pytest.CaptureFixture[str], wanted: str
) -> None:
    assert main(["share", "--project", wanted]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"no project with the id or name {wanted!r} in workspace {clockify.id}" in err
    assert "(looked in Clockify)" in err
    if wanted == "Website":  # a part of a name: the candidates are offered
        assert "did you mean Website relaunch (id " in err


def test_share_finds_a_client_by_name_in_clockify(
    clockify: SimulatedWorkspace, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["share", "--client", "globex ltd"]) == 0
    out, err = capsys.readouterr()
    (globex,) = [c.id for c in clockify.clients.values() if c.name == "Globex Ltd"]
    scope = shared_scope(out)
    assert (scope.kind, scope.id) == ("client", globex)
    assert f"shares client Globex Ltd (id {globex})" in err


# The store -----------------------------------------------------------------------------------


async def cli(*argv: str) -> int:
    # The CLI runs its own event loop (asyncio.run), so it runs beside this one.
    return await asyncio.to_thread(main, list(argv))


async def test_share_looks_names_up_in_the_store_when_clockify_is_not_configured(
    redis: Redis,
    clock: FixedClock,
    cli_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli_env.setenv("REDIS_URL", redis_url(dbs.CORE))
    app = create_app(make_settings(), redis=redis, clock=clock)
    async with client_for(app) as client:
        for event, body in (
            ("NEW_CLIENT", new_client(ACME)),
            ("NEW_CLIENT", new_client(GLOBEX)),
            ("NEW_PROJECT", new_project(WEBSITE)),
            ("NEW_PROJECT", new_project(MOBILE)),
        ):
            assert (await post_webhook(client, event, body)).is_success
    assert await cli("share", "--project", "website relaunch") == 0
    out, err = capsys.readouterr()
    assert shared_scope(out).id == WEBSITE.id
    assert f"shares project Website relaunch (id {WEBSITE.id}, client ACME GmbH)" in err
    assert await cli("share", "--client", "Globex Ltd", "--hide-amounts") == 0
    scope = shared_scope(capsys.readouterr().out)
    assert (scope.kind, scope.id, scope.hide_amounts) == ("client", GLOBEX.id, True)

    assert await cli("share", "--project", "64d0000000000000000000ff") == 2
    out, err = capsys.readouterr()
    assert out == "" and "(looked in the store (REDIS_URL))" in err


# Nothing to check against, and the bounds -----------------------------------------------------


def test_share_without_clockify_or_store_warns_that_the_id_was_not_checked(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["share", "--project", WEBSITE.id]) == 0
    out, err = capsys.readouterr()
    assert shared_scope(out).id == WEBSITE.id
    assert f"warning: could not check that project {WEBSITE.id} exists" in err
    # A name cannot be taken on trust.
    assert main(["share", "--project", "Website relaunch"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "'Website relaunch' is not a project id" in err and "CLOCKIFY_API_KEY" in err


async def test_an_empty_store_is_no_evidence_that_a_project_does_not_exist(
    redis: Redis, cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_env.setenv("REDIS_URL", redis_url(dbs.CORE))
    assert await cli("share", "--project", WEBSITE.id) == 0
    out, err = capsys.readouterr()
    assert shared_scope(out).id == WEBSITE.id
    assert "the store (REDIS_URL) knows no project names yet" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--expires", "0m"], "--expires must be between 1m and 366d, not '0m'"),
        (["--expires=-2h"], "--expires must be between 1m and 366d, not '-2h'"),
        (["--expires", "367d"], "--expires must be between 1m and 366d, not '367d'"),
        (["--expires", "tomorrow"], "--expires 'tomorrow' is not a duration"),
        (["--sender", "x" * 81], "--sender must be 1 to 80 characters"),
    ],
)
def test_share_refuses_an_expiry_or_sender_it_cannot_honour_and_exits_2(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["share", "--project", WEBSITE.id, *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and message in err


def test_share_refuses_a_range_it_does_not_offer(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["share", "--project", WEBSITE.id, "--range", "next-year"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'next-year'" in capsys.readouterr().err
