"""The demo team: about a dozen people in several time zones, four clients billed in EUR and
USD and an internal project, a week of history, and one plausible action at a time for the
demo to play."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from app.sim.records import SimEntry

if TYPE_CHECKING:  # the workspace calls in here; only its type is needed
    from app.sim.state import SimulatedWorkspace

_DEMO_CLIENTS = (
    ("Acme GmbH", "EUR"),
    ("Globex Corporation", "USD"),
    ("Initech", "USD"),
    ("Umbrella SARL", "EUR"),
)
# name, client index, color, hourly rate in minor units (None: non-billable), estimate hours
_DEMO_PROJECTS: tuple[tuple[str, int | None, str, int | None, int | None], ...] = (
    ("Acme Website Relaunch", 0, "#E91E63", 9500, 160),
    ("Acme Mobile App", 0, "#9C27B0", 11000, 300),
    ("Globex Data Platform", 1, "#3F51B5", 12500, 400),
    ("Globex Support", 1, "#009688", 8000, None),
    ("Initech Migration", 2, "#FF9800", 10500, 120),
    ("Umbrella Brand Refresh", 3, "#795548", 9000, 80),
    ("Internal", None, "#607D8B", None, None),
)
_DEMO_TAGS = ("meeting", "development", "design", "review", "support")
_DEMO_PEOPLE = (
    ("Ada Lovelace", "Europe/London", "MONDAY"),
    ("Grace Hopper", "America/New_York", "SUNDAY"),
    ("Linus Berg", "Europe/Berlin", "MONDAY"),
    ("Mei Tanaka", "Asia/Tokyo", "MONDAY"),
    ("Carlos Ruiz", "Europe/Madrid", "MONDAY"),
    ("Priya Nair", "Asia/Kolkata", "MONDAY"),
    ("Tom Wright", "America/Los_Angeles", "SUNDAY"),
    ("Sofia Rossi", "Europe/Rome", "MONDAY"),
    ("Jamal Carter", "America/Edmonton", "SUNDAY"),
    ("Olivia Brown", "Australia/Sydney", "MONDAY"),
    ("Nils Johansson", "Europe/Stockholm", "MONDAY"),
    ("Amara Okafor", "Africa/Lagos", "MONDAY"),
)
_DESCRIPTIONS = (
    "Sprint planning",
    "Code review",
    "Bug fixing",
    "Client call",
    "Design mockups",
    "Deploy and monitoring",
    "Writing docs",
    "Data migration",
    "",
)


def seed_demo_team(sim: SimulatedWorkspace, n_users: int, rng: random.Random, *, days: int) -> None:
    """About a dozen people in several time zones, four clients billed in EUR and USD, an
    internal non-billable project, and `days` of history ending now; a few timers run.
    History is written directly (no webhook deliveries): it predates the webhooks."""
    clients = [sim.add_client(name, cur) for name, cur in _DEMO_CLIENTS]
    projects = [
        sim.add_project(
            name,
            clients[client_index] if client_index is not None else None,
            color=color,
            billable=rate is not None,
            hourly_rate_minor=rate,
            estimate_s=estimate_h * 3600 if estimate_h else None,
        )
        for name, client_index, color, rate, estimate_h in _DEMO_PROJECTS
    ]
    tags = [sim.add_tag(name) for name in _DEMO_TAGS]
    users = []
    for index in range(n_users):
        if index < len(_DEMO_PEOPLE):
            name, zone_name, week_start = _DEMO_PEOPLE[index]
        else:
            name, zone_name, week_start = f"Teammate {index + 1}", "UTC", "MONDAY"
        users.append(sim.add_user(name, time_zone=zone_name, week_start=week_start))
    now = sim.now()
    for user in users:
        zone = ZoneInfo(user.time_zone)
        local_today = now.astimezone(zone).date()
        for days_ago in range(days, -1, -1):
            day = local_today - timedelta(days=days_ago)
            if day.weekday() >= 5:
                continue
            cursor = datetime(day.year, day.month, day.day, 9, tzinfo=zone)
            cursor += timedelta(minutes=rng.randint(0, 60))
            for _ in range(rng.randint(2, 4)):
                length = timedelta(minutes=rng.randint(30, 180))
                if (cursor + length).astimezone(UTC) >= now:
                    break
                project = rng.choice(projects)
                tag_list = [rng.choice(tags)] if rng.random() < 0.6 else []
                entry = sim.add_manual_entry(
                    user,
                    cursor.astimezone(UTC),
                    (cursor + length).astimezone(UTC),
                    project,
                    rng.choice(_DESCRIPTIONS),
                    tags=tag_list,
                    notify=False,
                )
                entry.created_at_s = entry.updated_at_s = (cursor + length).timestamp()
                cursor += length + timedelta(minutes=rng.randint(5, 45))
    for user in users[:: max(1, len(users) // 4)]:
        started = now - timedelta(minutes=rng.randint(10, 120))
        if sim.running_entry(user.id) is None:
            entry = sim.store_entry(
                user.id, started, None, rng.choice(projects), "Focus time", None, ()
            )
            entry.created_at_s = entry.updated_at_s = started.timestamp()


def simulate_step(sim: SimulatedWorkspace, rng: random.Random) -> SimEntry:
    """One plausible action of a random teammate (for the demo): stop a running timer or
    start one; now and then log a manual entry or edit a description."""
    user = rng.choice(list(sim.users.values()))
    projects = [p for p in sim.projects.values() if not p.archived]
    roll = rng.random()
    running = sim.running_entry(user.id)
    if running is not None and roll < 0.6:
        return sim.stop_timer(user)
    if roll < 0.1:
        end = sim.now() - timedelta(minutes=rng.randint(5, 90))
        start = end - timedelta(minutes=rng.randint(15, 120))
        return sim.add_manual_entry(user, start, end, rng.choice(projects), "Catch-up")
    if roll < 0.15 and running is not None:
        return sim.update_entry(running.id, description=rng.choice(_DESCRIPTIONS))
    tags = [rng.choice(list(sim.tags.values()))] if sim.tags else []
    return sim.start_timer(user, rng.choice(projects), rng.choice(_DESCRIPTIONS), None, tags)
