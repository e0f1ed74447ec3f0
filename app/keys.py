"""Every Redis key name, in one place. Each carries the workspace id as a Redis Cluster hash tag
(`cw:{ws}:...`), so all keys of a workspace live in one slot and every script touches one slot.
"""

from __future__ import annotations

PREFIX = "cw"

# Dimension codes of the per-day total hashes (`day_totals`).
DIM_PROJECT = "P"
DIM_USER = "U"
DIM_CLIENT = "C"
DIM_TAG = "T"
DIM_TEAM = "X"  # user|project -> seconds, for the heatmap
DIM_ALL = "A"  # the day's team total
DIMENSIONS = (DIM_PROJECT, DIM_USER, DIM_CLIENT, DIM_TAG, DIM_TEAM, DIM_ALL)
NONE_ID = "-"  # group id of entries without project, client or tag


def workspace_prefix(ws: str) -> str:
    """The common prefix; the Lua scripts append `d:<day>:<dim>` and `ix:<day>` to it."""
    return f"{PREFIX}:{{{ws}}}:"


def day_totals(ws: str, day: str, dim: str) -> str:
    return f"{workspace_prefix(ws)}d:{day}:{dim}"


def month_totals(ws: str, month: str, dim: str) -> str:
    """The same totals as `day_totals`, summed over a month (`YYYY-MM`), kept by the Lua."""
    return f"{workspace_prefix(ws)}m:{month}:{dim}"


def day_index(ws: str, day: str) -> str:
    """Sorted set of entry ids started that day, scored by start epoch seconds."""
    return f"{workspace_prefix(ws)}ix:{day}"


def entry_meta(ws: str) -> str:
    """Hash entry id -> `<status>|<fingerprint>|<day>`; status R running, L stopped, D deleted."""
    return f"{workspace_prefix(ws)}meta"


def entry_states(ws: str) -> str:
    """Hash entry id -> normalized state JSON."""
    return f"{workspace_prefix(ws)}entries"


def entry_contributions(ws: str) -> str:
    """Hash entry id -> JSON of what the entry adds to the day totals."""
    return f"{workspace_prefix(ws)}contrib"


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
