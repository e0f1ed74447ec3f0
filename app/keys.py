"""Every Redis key name, in one place. Each carries the workspace id as a Redis Cluster hash tag
(`cw:{ws}:...`), so all keys of a workspace live in one slot and every script touches one slot.
"""

from __future__ import annotations

PREFIX = "cw"

NONE_ID = "-"  # group id of entries without project, client or tag


def workspace_prefix(ws: str) -> str:
    """The common prefix of every key of the workspace."""
    return f"{PREFIX}:{{{ws}}}:"


def projection(ws: str) -> str:
    """Hash of the totals' generations (app/rebuild.py): `gen` (the one answers read),
    `basis` (its settings JSON), `next`/`nextBasis` while a rebuild builds another, `max` (the
    last generation number handed out), `done`/`total` (rebuild progress), `garbage` (an old
    generation whose keys are still to be deleted)."""
    return f"{workspace_prefix(ws)}proj"


def generation_prefix(ws: str, gen: int | str) -> str:
    """The keys of one generation of totals; the Lua scripts append `c:<day>`, `ver`,
    `il:<day>` and `contrib` to it."""
    return f"{workspace_prefix(ws)}g{gen}:"


def cells_day(ws: str, gen: int | str, day: str) -> str:
    """Hash `<cell>|<kind>` -> integer of one local day (app/projection.py)."""
    return f"{generation_prefix(ws, gen)}c:{day}"


def project_months(ws: str, gen: int | str) -> str:
    """The match pattern of the per-project month rollups clockwall kept before 2026-12
    (`pm:<month>`; progress is now summed from the days): found only to be deleted."""
    return f"{generation_prefix(ws, gen)}pm:*"


def day_list(ws: str, gen: int | str, day: str) -> str:
    """String of the ids of entries that came to that local day, each followed by a space
    (apply_entry.lua appends, never removes): candidates, which a reader checks against each
    entry's contribution (app/reports.py `Reports.indexed`)."""
    return f"{generation_prefix(ws, gen)}il:{day}"


def day_index(ws: str, gen: int | str, day: str) -> str:
    """Sorted set of entry ids started that local day, the index before 2026-12: still read
    (a generation built before then keeps it until its next rebuild), no longer written."""
    return f"{generation_prefix(ws, gen)}ix:{day}"


def day_versions(ws: str, gen: int | str) -> str:
    """Hash day (YYYY-MM-DD) -> a count that goes up with every change to the day's totals
    (apply_entry.lua, rebuild_batch.lua): what a reader's cache of a day's sums is checked
    against; a month's version is the sum of its days' (`month_version`). A generation from
    before 2026-12 also holds month (YYYY-MM) fields, no longer read."""
    return f"{generation_prefix(ws, gen)}ver"


def entry_contributions(ws: str, gen: int | str) -> str:
    """Hash entry id -> JSON {d: day, f: cell fields, p: project fields} it adds (projection)."""
    return f"{generation_prefix(ws, gen)}contrib"


# The meta hash's field holding a copy of the projection hash's generations, "<gen>" or
# "<gen>,<next>" (never an entry id: those are 24 hex digits). apply_entry.lua reads it with the
# entry's record and makes it from the projection hash when it is missing; whatever changes gen
# or next deletes it in the same atomic step.
GENS_FIELD = "gens"


def entry_meta(ws: str) -> str:
    """Hash entry id -> `<status>|<fingerprint>|<day>`; status R running, L stopped, D deleted;
    the day is the entry's in the generation answers read. Also `GENS_FIELD`."""
    return f"{workspace_prefix(ws)}meta"


def entry_states(ws: str) -> str:
    """Hash entry id -> normalized state JSON."""
    return f"{workspace_prefix(ws)}entries"


def running(ws: str) -> str:
    """Hash entry id -> state JSON of every running timer."""
    return f"{workspace_prefix(ws)}running"


def names(ws: str, kind: str) -> str:
    """Hash id -> JSON {id, name, color, ...} for kind user, project, client, tag, task."""
    return f"{workspace_prefix(ws)}n:{kind}"


def changes(ws: str) -> str:
    """Stream of change events, trimmed to about CLOCKWALL_STREAM_MAXLEN."""
    return f"{workspace_prefix(ws)}changes"


def budget(ws: str) -> str:
    """Sorted set of Clockify API request ids scored by send time (epoch seconds), one rolling
    hour deep; shared by every process that calls Clockify for the workspace."""
    return f"{workspace_prefix(ws)}budget"


def poller_lease(ws: str) -> str:
    """String holding the id of the one process that polls this workspace (with a TTL)."""
    return f"{workspace_prefix(ws)}poller:lease"


def poller_state(ws: str) -> str:
    """Hash of the poller's cursor, backfill marker and last published state."""
    return f"{workspace_prefix(ws)}poller:state"


def revoked_shares(ws: str) -> str:
    """Sorted set of revoked share-link ids scored by the link's expiry (epoch seconds, `inf`
    when unknown), so ids are dropped once the link would have expired anyway."""
    return f"{workspace_prefix(ws)}share:revoked"


def project_tracked(ws: str) -> str:
    """Hash project id -> seconds Clockify has tracked on the project over its life (its REST
    `duration`), plus `readAt` (ISO instant); replaced whole each time the poller reads the
    projects, so a deleted project leaves it."""
    return f"{workspace_prefix(ws)}projects:tracked"


def reporting_settings(ws: str) -> str:
    """String of JSON {timeZone, weekStart, source}: the zone that decides each entry's day and
    the week start, settled once (app/reporting.py) and read by every process."""
    return f"{workspace_prefix(ws)}reporting"


def rates_dirty(ws: str) -> str:
    """Hash {since: YYYY-MM-DD or "", at: ISO instant, marks: count}: Clockify re-applied a
    billable or cost rate to past entries from day `since` on (BILLABLE_/COST_RATE_UPDATED;
    app/rates.py; "" reads as the current month), last marked at `at`; the poller re-reads that
    range and deletes the hash (or moves `since` on) if `marks` did not change meanwhile."""
    return f"{workspace_prefix(ws)}rates:dirty"


def coverage(ws: str) -> str:
    """Hash: `from` (the first local day whose data is complete, YYYY-MM-DD) and `import` (JSON
    progress of the history import); read into every report answer as `coverage`."""
    return f"{workspace_prefix(ws)}coverage"
