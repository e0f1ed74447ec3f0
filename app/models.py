"""TimeEntry and friends: lenient parsing of Clockify payloads into normalized state. No I/O.

Webhook bodies carry hydrated `project`/`task`/`tags`/`user` objects; REST rows carry
`projectId`/`taskId`/`tagIds`; Reports rows carry integer-second durations. All become one
`TimeEntry`, the only shape the store applies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, TypeVar, dataclass_transform

_ISO_DURATION = re.compile(
    r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)
_COLOR = re.compile(r"^#[0-9A-Fa-f]{3,8}$")
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
# Clockify's entry types are REGULAR, BREAK, HOLIDAY and TIME_OFF; another word is kept as it is
# (a type added later), but nothing that could split a cell key (`|`) or break a field.
_TYPE = re.compile(r"[A-Z][A-Z0-9_]{0,19}")
# Clockify's ids are MongoDB ObjectIds: 24 hex digits. Nothing else is taken, so an id can never
# split a Redis field such as `<user>|<project>`, nor be `__proto__` or `constructor` in a page.
# Used with fullmatch: `$` would let a trailing newline through.
_ID = re.compile(r"[0-9a-fA-F]{24}")
ID_RULE = "an id of 24 hexadecimal characters, as Clockify makes them"
MAX_TEXT_LEN = 3000
MAX_SPAN = timedelta(days=3660)
MIN_INSTANT = datetime(1, 1, 2, tzinfo=UTC)
MAX_INSTANT = datetime(9980, 1, 1, tzinfo=UTC)
# 100,000.00 an hour. Totals hold amounts exactly as rate x seconds (rounded once when read, as
# Clockify's reports do), so this bounds what one entry adds: ten years x rate, about 3.2 x 10^15,
# inside 2^53, where Redis's int64, Lua's doubles and JSON readers all hold it exactly (a total
# that would leave it is refused whole by apply_entry.lua).
MAX_RATE_MINOR = 10**7


_T = TypeVar("_T")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def record(cls: type[_T]) -> type[_T]:
    """A value record: frozen to the type checker (mypy refuses an assignment to a field) and
    hashable by its compared fields, but built without `frozen=True`'s `object.__setattr__`
    per field. Every webhook builds a handful (its entry, rates, user, project, client, tags),
    and a frozen 15-field record costs six times as much to build (1.4 us against 0.24 us a
    Named, measured with timeit)."""
    return dataclass(slots=True, unsafe_hash=True)(cls)


class PayloadError(ValueError):
    """The body cannot be a time entry (or a named thing); the message names the field."""


def parse_duration_s(value: Any, where: str = "timeInterval.duration") -> int | None:
    """ISO-8601 (`PT19471H16M48S`, hours not rolled into days) or integer seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise PayloadError(f"{where} must be an ISO-8601 duration such as 'PT1H30M'")
    seconds: int | None = None
    if isinstance(value, int | float):
        if value < 0:
            raise PayloadError(f"{where} must not be negative")
        seconds = int(value)
    elif isinstance(value, str) and len(value) <= 40:  # int() of thousands of digits raises
        if value.isascii() and value.isdigit():
            seconds = int(value)
        elif (match := _ISO_DURATION.match(value)) and value not in ("P", "PT"):
            d, h, m, s = match.groups()
            whole_s = int(float(s)) if s and "." in s else int(s or 0)
            seconds = int(d or 0) * 86400 + int(h or 0) * 3600 + int(m or 0) * 60 + whole_s
    if seconds is None:
        raise PayloadError(
            f"{where} must be an ISO-8601 duration such as 'PT1H30M', got {value!r:.80}"
        )
    if seconds > MAX_SPAN.total_seconds():
        raise PayloadError(f"{where} spans more than ten years")
    return seconds


def parse_instant(value: Any, where: str) -> datetime | None:
    """A UTC timestamp with or without fractions; a naive one is taken as UTC."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise PayloadError(f"{where} must be a timestamp such as '2024-03-01T09:00:00Z'")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise PayloadError(
            f"{where} must be a timestamp such as '2024-03-01T09:00:00Z', got {value!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # Far enough from datetime's limits that converting to the reporting zone or adding up to
    # MAX_SPAN can never overflow (an OverflowError would be a 500, not the sender's 400).
    if not MIN_INSTANT <= moment <= MAX_INSTANT:
        raise PayloadError(f"{where} must be between the years 1 and 9979, got {value!r}")
    if moment.tzinfo is UTC and not moment.microsecond:  # "...Z" in whole seconds: as is
        return moment
    return moment.astimezone(UTC).replace(microsecond=0)


def format_instant(moment: datetime) -> str:
    # Not strftime("%Y..."): glibc writes year 500 as "500", which fromisoformat cannot read
    # back, so one stored state before the year 1000 broke every read that parses it.
    if moment.tzinfo is UTC and not moment.microsecond:  # as parse_instant leaves it
        return moment.isoformat()[:-6] + "Z"  # "...+00:00" -> "...Z"
    return moment.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


# Ids checked once are remembered: the same user, project, tag and workspace ids arrive with
# almost every delivery, and a set lookup costs a fraction of the pattern match.
_KNOWN_IDS: set[str] = set()
_KNOWN_IDS_MAX = 100_000


def _is_id(value: str) -> bool:
    """A Clockify id: exactly 24 hexadecimal characters."""
    if value in _KNOWN_IDS:
        return True
    if not _ID.fullmatch(value):
        return False
    if len(_KNOWN_IDS) >= _KNOWN_IDS_MAX:
        _KNOWN_IDS.clear()
    _KNOWN_IDS.add(value)
    return True


def _str(obj: dict[str, Any], key: str, where: str, required: bool = False) -> str | None:
    value = obj.get(key)
    if value.__class__ is str and value in _KNOWN_IDS:
        return value
    if value is None or value == "":
        if required:
            raise PayloadError(f"{where}{key} is required")
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{where}{key} must be a string, got {type(value).__name__}")
    if not _is_id(value):
        raise PayloadError(f"{where}{key} must be {ID_RULE}")
    return value


def _text(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PayloadError(f"{where}{key} must be a string, got {type(value).__name__}")
    return value[:MAX_TEXT_LEN]


def _bool(obj: dict[str, Any], key: str, where: str) -> bool:
    value = obj.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise PayloadError(f"{where}{key} must be true or false, got {type(value).__name__}")
    return value


def _obj(obj: dict[str, Any], key: str, where: str) -> dict[str, Any] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise PayloadError(f"{where}{key} must be an object, got {type(value).__name__}")
    return value


@record
class Rate:
    amount_minor: int
    currency: str


def parse_rate(obj: dict[str, Any], key: str, where: str = "") -> Rate | None:
    raw = _obj(obj, key, where)
    if raw is None:
        return None
    amount = raw.get("amount")
    if amount is None:
        return None
    if (
        isinstance(amount, bool)
        or not isinstance(amount, int | float)
        or not 0 <= amount <= MAX_RATE_MINOR
    ):
        raise PayloadError(
            f"{where}{key}.amount must be a non-negative number of minor units "
            f"(at most {MAX_RATE_MINOR})"
        )
    currency = raw.get("currency") or ""
    if not isinstance(currency, str) or (currency and not _CURRENCY.match(currency)):
        raise PayloadError(f"{where}{key}.currency must be an ISO currency code such as 'EUR'")
    return Rate(int(amount), currency.upper())


def parse_flat_rate(obj: dict[str, Any]) -> Rate | None:
    """A Reports row's rate: flat `rate` (or `earnedRate`) in minor units per hour and an
    optional `currency` ("" when the row does not say). Rate 0 is the reports' "no rate"."""
    return _flat_rate(obj, "rate" if obj.get("rate") is not None else "earnedRate")


def parse_cost_rate(obj: dict[str, Any]) -> Rate | None:
    """An entry's cost rate: a `costRate` object `{amount, currency}` as webhook and REST bodies
    carry it, or a Reports row's flat `costRate` (minor units per hour, in the row's
    `currency`; 0 is the reports' "no cost rate"). Decided by the value, not the body's shape,
    so a row that mixes the two still reads."""
    value = obj.get("costRate")
    if value is None:
        return None
    if isinstance(value, dict):
        rate = parse_rate(obj, "costRate")
        # 0 is no cost rate, as in a report row: both shapes of one entry fingerprint alike.
        return rate if rate is not None and rate.amount_minor else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _flat_rate(obj, "costRate")
    raise PayloadError(
        "costRate must be an object {amount, currency} or a whole number of minor units per "
        f"hour, got {type(value).__name__}"
    )


def _flat_rate(obj: dict[str, Any], key: str) -> Rate | None:
    amount = obj.get(key)
    if amount is None:
        return None
    if (
        isinstance(amount, bool)
        or not isinstance(amount, int | float)
        or not 0 <= amount <= MAX_RATE_MINOR
        or amount != int(amount)
    ):
        raise PayloadError(
            f"{key} must be a non-negative whole number of minor units per hour "
            f"(at most {MAX_RATE_MINOR})"
        )
    currency = obj.get("currency") or ""
    if not isinstance(currency, str) or (currency and not _CURRENCY.match(currency)):
        raise PayloadError("currency must be an ISO currency code such as 'EUR'")
    return Rate(int(amount), currency.upper()) if amount else None


@record
class Named:
    """A user, project, client, task or tag as the wall shows it. A project also carries what
    its progress is measured against: a time estimate or a money budget, each maybe resetting."""

    kind: str  # "user" | "project" | "client" | "tag" | "task"
    id: str
    name: str
    color: str | None = None
    client_id: str | None = None
    estimate_s: int | None = None
    archived: bool = False
    # Deleted in Clockify (PROJECT_/CLIENT_/TAG_/TASK_DELETED, USER_DELETED_FROM_WORKSPACE):
    # its entries report "Without project" (client, tag, task), while a user's time stays
    # under the user. Archiving is not deleting: an archived project keeps its name.
    deleted: bool = False
    estimate_reset: str | None = None  # WEEKLY | MONTHLY | YEARLY; None: over the project's life
    billable_only: bool = False  # the time estimate leaves non-billable time out
    budget_minor: int | None = None  # a money budget instead of a time estimate
    currency: str | None = None  # the project's currency, which its budget is in
    # Clockify's total tracked on the project over its life (REST `duration`); never stored with
    # the name, as a webhook's embedded project would overwrite the poller's fresher figure.
    tracked_s: int | None = field(default=None, compare=False)
    # Only what a Reports row says of a project (name, colour, client: no estimate nor budget):
    # it names a project clockwall has not heard of, and never overwrites a fuller record.
    partial: bool = field(default=False, compare=False)
    project_id: str | None = None  # a task's project

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "name": self.name}
        if self.color:
            out["color"] = self.color
        if self.deleted:
            out["deleted"] = True
        if self.kind == "task" and self.project_id:
            out["projectId"] = self.project_id
        if self.kind == "project":
            out["clientId"] = self.client_id
            out["estimateSeconds"] = self.estimate_s
            out["archived"] = self.archived
            # Only when set: most projects have none, and every byte is in every snapshot.
            if self.estimate_reset:
                out["estimateReset"] = self.estimate_reset
            if self.billable_only:
                out["billableOnly"] = True
            if self.budget_minor:
                out["budgetMinor"] = self.budget_minor
            if self.currency:
                out["currency"] = self.currency
        return out


def parse_named(kind: str, raw: Any, where: str, tracked: bool = True) -> Named | None:
    """A name record from an embedded object or a USER_/PROJECT_/CLIENT_/TAG_/TASK_ event
    body. `tracked`: read a project's `duration` (what Clockify has tracked on it) too; an
    entry's embedded project skips it, as its figure is never kept (see `Named.tracked_s`)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise PayloadError(f"{where} must be an object, got {type(raw).__name__}")
    ident = _str(raw, "id", f"{where}.", required=True)
    assert ident is not None
    name = _text(raw, "name", f"{where}.")[:200]
    color = raw.get("color")
    if not (isinstance(color, str) and _COLOR.match(color)):
        color = None
    archived = raw.get("archived") is True
    if kind == "task":
        project_id = raw.get("projectId")
        if not (isinstance(project_id, str) and _is_id(project_id)):
            project_id = None  # a task's record names it only where it reads as an id
        return shared_named(kind, ident, name, color, archived=archived, project_id=project_id)
    if kind != "project":
        return shared_named(kind, ident, name, color, archived=archived)
    client_id = _str(raw, "clientId", f"{where}.")
    tracked_s = _project_seconds(raw.get("duration")) if tracked else None
    currency = _project_currency(raw)
    estimate = _project_estimate(raw)
    key = (ident, name, color, client_id, archived, tracked_s, currency, *estimate.items())
    project = _SHARED_PROJECTS.get(key)
    if project is None:
        if len(_SHARED_PROJECTS) >= _SHARED_MAX:
            _SHARED_PROJECTS.clear()
        project = _SHARED_PROJECTS[key] = Named(
            kind,
            ident,
            name,
            color,
            client_id,
            archived=archived,
            tracked_s=tracked_s,
            currency=currency,
            **estimate,
        )
    return project


# One Named per distinct record, handed out again whenever a payload describes it alike: the
# same people, projects, clients and tags come with almost every delivery, and a record met
# before is then neither built nor compared field by field again (TotalsStore checks by
# identity first whether it was sent lately). Bounded: cleared when full.
_SHARED_MAX = 20_000
_SHARED_NAMES: dict[tuple[Any, ...], Named] = {}
_SHARED_PROJECTS: dict[tuple[Any, ...], Named] = {}


def shared_named(
    kind: str,
    ident: str,
    name: str,
    color: str | None = None,
    *,
    archived: bool = False,
    project_id: str | None = None,
) -> Named:
    """The Named of a user, client, tag or task record (not a project's: parse_named)."""
    key = (kind, ident, name, color, archived, project_id)
    named = _SHARED_NAMES.get(key)
    if named is None:
        if len(_SHARED_NAMES) >= _SHARED_MAX:
            _SHARED_NAMES.clear()
        named = _SHARED_NAMES[key] = Named(
            kind, ident, name, color, archived=archived, project_id=project_id
        )
    return named


RESET_OPTIONS = ("WEEKLY", "MONTHLY", "YEARLY")
MAX_BUDGET_MINOR = 10**15  # far inside 2^53, as every total
MAX_PROJECT_S = 10**11  # a project's life total: thousands of people over decades fit


def _project_seconds(value: Any) -> int | None:
    """A project's duration or time estimate: ISO 8601 as Clockify sends it (`PT412H7M`, hours
    never rolled into days, and beyond the ten years one entry may span); a bare number string
    is milliseconds, as Clockify's OpenAPI describes these fields. None when unreadable."""
    if isinstance(value, str) and len(value) <= 40 and value.isascii():
        if value.isdigit():
            seconds = int(value) // 1000
        elif (match := _ISO_DURATION.match(value)) and value not in ("P", "PT"):
            d, h, m, s = match.groups()
            seconds = int(d or 0) * 86400 + int(h or 0) * 3600 + int(m or 0) * 60
            seconds += int(float(s)) if s else 0
        else:
            return None
        return seconds if seconds <= MAX_PROJECT_S else None
    return None


def _reset_of(block: dict[str, Any], raw: dict[str, Any]) -> str | None:
    option = block.get("resetOption")
    if option is None and isinstance(raw.get("estimateReset"), dict):
        option = raw["estimateReset"].get("interval")
    return option if option in RESET_OPTIONS else None


def _project_estimate(raw: dict[str, Any]) -> dict[str, Any]:
    """What the project's progress is measured against (Named's fields): its time estimate, or
    its money budget when that is the active one. A malformed block is no estimate."""
    active = raw.get("activeEstimate")  # TIME | BUDGET | NONE, where Clockify sends it
    budget = raw.get("budgetEstimate")
    budget_on = isinstance(budget, dict) and (
        active == "BUDGET" or (active is None and budget.get("active") is True)
    )
    if budget_on and isinstance(budget, dict):
        amount = budget.get("estimate")  # minor units, as every amount in Clockify's API
        if (
            isinstance(amount, int | float)
            and not isinstance(amount, bool)
            and 0 < amount <= MAX_BUDGET_MINOR
        ):
            return {"budget_minor": int(amount), "estimate_reset": _reset_of(budget, raw)}
    if active in ("NONE", "BUDGET"):
        return {}
    # timeEstimate {estimate: "PT10H", active, resetOption} (2024) or estimate {estimate} (older).
    for key in ("timeEstimate", "estimate"):
        block = raw.get(key)
        if isinstance(block, dict):
            if block.get("active") is False:
                continue
            seconds = _project_seconds(block.get("estimate"))
            if seconds:
                return {
                    "estimate_s": seconds,
                    "estimate_reset": _reset_of(block, raw),
                    "billable_only": block.get("includeNonBillable") is False,
                }
    return {}


def _project_currency(raw: dict[str, Any]) -> str | None:
    # NEW_PROJECT bodies carry currency {code}; REST projects only their rate's currency.
    candidates = (raw.get("currency"), raw.get("hourlyRate"))
    for block in candidates:
        code = (block.get("code") or block.get("currency")) if isinstance(block, dict) else block
        if isinstance(code, str) and _CURRENCY.match(code):
            return code.upper()
    return None


@record
class TimeEntry:
    """One time entry, normalized. `end is None` means a running timer."""

    id: str
    workspace_id: str
    user_id: str
    start: datetime
    end: datetime | None
    project_id: str | None = None
    task_id: str | None = None
    tag_ids: tuple[str, ...] = ()
    description: str = ""
    billable: bool = False
    hourly_rate: Rate | None = None
    # What the entry costs an hour (Pro and Enterprise), billable or not. Stored in the one
    # `currency` of the state: the hourly rate's where both are set (Clockify keeps one
    # currency per client or workspace), else the cost rate's.
    cost_rate: Rate | None = None
    entry_type: str = "REGULAR"
    names: tuple[Named, ...] = field(default=(), compare=False)
    # State keys (see to_state) the payload did not carry: a poll row must not erase them, so
    # the store fills them from the state it holds (fill_unknown) before a sync.
    unknown: frozenset[str] = field(default=frozenset(), compare=False)

    @property
    def running(self) -> bool:
        return self.end is None

    @property
    def duration_s(self) -> int:
        if self.end is None:
            return 0
        return max(0, int((self.end - self.start).total_seconds()))

    @property
    def client_id(self) -> str | None:
        for named in self.names:
            if named.kind == "project" and named.id == self.project_id:
                return named.client_id
        return None

    def to_state(self) -> dict[str, Any]:
        """The JSON-able state the store keeps; equal states mean a duplicate delivery."""
        return {
            "id": self.id,
            "workspaceId": self.workspace_id,
            "userId": self.user_id,
            "projectId": self.project_id,
            "taskId": self.task_id,
            "tagIds": list(self.tag_ids),
            "description": self.description,
            "billable": self.billable,
            "start": format_instant(self.start),
            "end": format_instant(self.end) if self.end else None,
            "rate": self.hourly_rate.amount_minor if self.hourly_rate else None,
            "costRate": self.cost_rate.amount_minor if self.cost_rate else None,
            "currency": self.currency,
            "type": self.entry_type,
        }

    @property
    def currency(self) -> str | None:
        """The state's one currency: the hourly rate's, else the cost rate's (None: no rate)."""
        rate, cost = self.hourly_rate, self.cost_rate
        if rate is not None and (rate.currency or cost is None):
            return rate.currency
        return cost.currency if cost is not None else None

    def fill_unknown(self, stored: dict[str, Any] | None) -> TimeEntry:
        """This entry with each field its payload did not carry taken from `stored`, the state
        held for it; where that holds nothing, the parsed value (a default or a guess) stays."""
        if not self.unknown or not stored:
            return self

        def kept(key: str, own: Any) -> Any:
            value = stored.get(key)
            return value if key in self.unknown and value not in (None, "") else own

        rate, cost = self.hourly_rate, self.cost_rate
        amount = kept("rate", rate.amount_minor if rate else None)
        cost_amount = kept("costRate", cost.amount_minor if cost else None)
        currency = kept("currency", self.currency or "")
        tag_ids = kept("tagIds", None)
        return replace(
            self,
            project_id=kept("projectId", self.project_id),
            task_id=kept("taskId", self.task_id),
            tag_ids=tuple(tag_ids) if tag_ids is not None else self.tag_ids,
            description=kept("description", self.description),
            billable=kept("billable", self.billable),
            hourly_rate=Rate(int(amount), currency or "") if amount is not None else None,
            cost_rate=Rate(int(cost_amount), currency or "") if cost_amount is not None else None,
            entry_type=kept("type", self.entry_type),
            unknown=frozenset(),
        )


def parse_time_entry(body: Any) -> TimeEntry:
    """Parse a webhook body, a REST row (hydrated or not) or a Reports detailed row."""
    if not isinstance(body, dict):
        raise PayloadError(f"the body must be a JSON object, got {type(body).__name__}")
    ident = _str(body, "id", "", required=False) or _str(body, "_id", "", required=False)
    if ident is None:
        raise PayloadError("id is required")
    workspace_id = _str(body, "workspaceId", "", required=True)
    user_id = _str(body, "userId", "", required=False)
    user_obj = _obj(body, "user", "")
    if user_id is None and user_obj is not None:
        user_id = _str(user_obj, "id", "user.", required=False)
    if user_id is None:
        raise PayloadError("userId is required")
    interval = _obj(body, "timeInterval", "")
    if interval is None:
        raise PayloadError("timeInterval is required")
    start = parse_instant(interval.get("start"), "timeInterval.start")
    if start is None:
        raise PayloadError("timeInterval.start is required")
    end = parse_instant(interval.get("end"), "timeInterval.end")
    duration = parse_duration_s(interval.get("duration"))
    if end is None and duration is not None and body.get("currentlyRunning") is not True:
        end = start + timedelta(seconds=duration)
    if end is not None and end < start:
        raise PayloadError("timeInterval.end is before timeInterval.start")
    if end is not None and (end - start) > MAX_SPAN:
        raise PayloadError("timeInterval spans more than ten years")

    project_obj = _obj(body, "project", "")
    project_id = _str(body, "projectId", "")
    if project_id is None and project_obj is not None:
        project_id = _str(project_obj, "id", "project.")
    task_obj = _obj(body, "task", "")
    task_id = _str(body, "taskId", "")
    if task_id is None and task_obj is not None:
        task_id = _str(task_obj, "id", "task.")

    tag_ids: list[str] = []
    names: list[Named] = []
    raw_tags = body.get("tags")
    if raw_tags is not None:
        if not isinstance(raw_tags, list):
            raise PayloadError("tags must be a list")
        for i, tag in enumerate(raw_tags[:100]):
            named = parse_named("tag", tag, f"tags[{i}]")
            if named:
                tag_ids.append(named.id)
                names.append(named)
    raw_tag_ids = body.get("tagIds")
    if raw_tag_ids is not None:
        if not isinstance(raw_tag_ids, list) or not all(
            isinstance(t, str) and _is_id(t) for t in raw_tag_ids
        ):
            raise PayloadError(
                "tagIds must be a list of id strings, 24 hexadecimal characters each"
            )
        tag_ids.extend(t for t in raw_tag_ids[:100] if t not in tag_ids)

    # REST and webhook bodies carry an `hourlyRate` object; Reports rows flat `rate`/`currency`.
    rate = parse_rate(body, "hourlyRate") if "hourlyRate" in body else parse_flat_rate(body)
    cost_rate = parse_cost_rate(body)
    entry_type = body.get("type") or "REGULAR"
    if not isinstance(entry_type, str):
        raise PayloadError("type must be a string such as 'REGULAR'")
    # One spelling, so the wall can tell a BREAK (or HOLIDAY, TIME_OFF) timer from work.
    entry_type = entry_type.strip().upper() or "REGULAR"
    if not _TYPE.fullmatch(entry_type):
        raise PayloadError(
            "type must be a word of letters, digits and '_' such as 'REGULAR' or 'BREAK' "
            "(up to 20 characters)"
        )

    if user_obj is not None and user_obj.get("id"):
        user = parse_named("user", user_obj, "user")
        if user:
            names.append(user)
    elif isinstance(body.get("userName"), str):
        names.append(shared_named("user", user_id, body["userName"][:200]))
    if project_obj is not None:
        project = parse_named("project", project_obj, "project", tracked=False)
        if project:
            names.append(project)
            client_name = project_obj.get("clientName")
            if project.client_id and isinstance(client_name, str) and client_name:
                names.append(shared_named("client", project.client_id, client_name[:200]))
    elif project_id and isinstance(body.get("projectName"), str):
        # Reports rows: flat projectName/projectColor/clientId/clientName.
        client_id = _str(body, "clientId", "")
        color = body.get("projectColor")
        names.append(
            Named(
                "project",
                project_id,
                body["projectName"][:200],
                color if isinstance(color, str) and _COLOR.match(color) else None,
                client_id,
                partial=True,
            )
        )
        if client_id and isinstance(body.get("clientName"), str):
            names.append(shared_named("client", client_id, body["clientName"][:200]))
    if task_obj is not None and task_obj.get("id"):
        task = parse_named("task", task_obj, "task")
        if task:
            names.append(task)

    return TimeEntry(
        id=ident,
        workspace_id=workspace_id or "",
        user_id=user_id,
        start=start,
        end=end,
        project_id=project_id,
        task_id=task_id,
        tag_ids=tuple(sorted(set(tag_ids))),
        description=_text(body, "description", ""),
        billable=_bool(body, "billable", ""),
        hourly_rate=rate,
        cost_rate=cost_rate,
        entry_type=entry_type,
        names=tuple(names),
        unknown=_unknown_keys(body),
    )


# Which payload keys carry each state key: a state key none of them is in was not reported.
_STATE_SOURCES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("projectId", ("projectId", "project")),
    ("taskId", ("taskId", "task")),
    ("tagIds", ("tagIds", "tags")),
    ("description", ("description",)),
    ("billable", ("billable",)),
    ("type", ("type",)),
    ("rate", ("hourlyRate", "rate", "earnedRate")),
    ("costRate", ("costRate",)),
    ("currency", ("hourlyRate", "currency")),
)


# A webhook body carries every one of these, so it reports every state key: the hot path's check.
# `costRate` is not among them: a webhook body is the whole entry, so one without it (older
# captures, plans without cost rates) says the entry has no cost rate.
_WEBHOOK_KEYS = frozenset(
    ("projectId", "task", "tags", "description", "billable", "type", "hourlyRate")
)
_NOTHING_UNKNOWN: frozenset[str] = frozenset()


def _unknown_keys(body: dict[str, Any]) -> frozenset[str]:
    """The state keys `body` says nothing of (a poll row must not erase them)."""
    if body.keys() >= _WEBHOOK_KEYS:
        return _NOTHING_UNKNOWN
    return frozenset(key for key, sources in _STATE_SOURCES if not any(s in body for s in sources))


# Keys (lower case) under which a RATE_UPDATED body may name the first day the re-applied rate
# covers. Clockify does not document that payload, so every plausible spelling is tried.
_SINCE_KEYS = frozenset(
    (
        "since",
        "sincedate",
        "from",
        "fromdate",
        "datefrom",
        "date",
        "start",
        "startdate",
        "effectivefrom",
        "applyfrom",
        "appliedfrom",
        "validfrom",
    )
)
_RATE_WALK_NODES = 1000  # a hostile body cannot make the walk long
_EPOCH_MIN_S = 10**9  # 2001-09-09: a smaller number is no epoch a rate could start at
_EPOCH_MS_FROM = 10**12  # a number this large is milliseconds (in seconds: the year 33658)


@dataclass(frozen=True)
class RateChange:
    """What a BILLABLE_RATE_UPDATED / COST_RATE_UPDATED body (payload type RATE_UPDATED, shape
    undocumented) says, as far as it can be read; anything may be missing."""

    workspace_id: str | None = None
    user_ids: tuple[str, ...] = ()
    project_ids: tuple[str, ...] = ()
    since: date | None = None  # the earliest day named, in the reporting zone


def parse_rate_change(body: Any, zone: tzinfo) -> RateChange:
    """Whatever a RATE_UPDATED body names: its workspace, users, projects and the earliest day
    the rate applies from (an instant is taken as its day in `zone`). Never raises: a body it
    cannot read is a change of unknown reach."""
    if not isinstance(body, dict):
        return RateChange()
    workspace = body.get("workspaceId")
    users: list[str] = []
    projects: list[str] = []
    days: list[date] = []
    stack: list[tuple[Any, str]] = [(body, "")]
    visited = 0
    while stack and visited < _RATE_WALK_NODES:
        node, key = stack.pop()
        visited += 1
        if isinstance(node, dict):
            stack.extend((value, str(name)) for name, value in list(node.items())[:200])
            if key == "user" and isinstance(node.get("id"), str):
                users.append(node["id"])
            elif key == "project" and isinstance(node.get("id"), str):
                projects.append(node["id"])
            continue
        if isinstance(node, list):
            stack.extend((item, key) for item in node[:200])
            continue
        name = key.lower()
        if name in ("userid", "userids") and isinstance(node, str):
            users.append(node)
        elif name in ("projectid", "projectids") and isinstance(node, str):
            projects.append(node)
        elif name in _SINCE_KEYS:
            day = _day_of(node, zone)
            if day is not None:
                days.append(day)
    return RateChange(
        workspace if isinstance(workspace, str) and _is_id(workspace) else None,
        tuple(sorted({u for u in users if _is_id(u)})),
        tuple(sorted({p for p in projects if _is_id(p)})),
        min(days, default=None),
    )


def _day_of(value: Any, zone: tzinfo) -> date | None:
    """A day from `2026-03-01`, an ISO instant or epoch seconds or milliseconds; else None."""
    moment: datetime | None = None
    if isinstance(value, str) and 10 <= len(value) <= 64:
        if len(value) == 10:
            try:
                return date.fromisoformat(value)
            except ValueError:
                return None
        try:
            moment = parse_instant(value, "since")
        except PayloadError:
            return None
    elif isinstance(value, int) and not isinstance(value, bool) and value >= _EPOCH_MIN_S:
        try:
            moment = datetime.fromtimestamp(value / 1000 if value >= _EPOCH_MS_FROM else value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if moment is None or not MIN_INSTANT <= moment <= MAX_INSTANT:
        return None
    return moment.astimezone(zone).date()


def parse_entry_id(body: Any) -> tuple[str, str | None]:
    """For deletes: only the id (and workspace) are needed; the rest may be partial."""
    if not isinstance(body, dict):
        raise PayloadError(f"the body must be a JSON object, got {type(body).__name__}")
    ident = _str(body, "id", "", required=True)
    assert ident is not None
    return ident, _str(body, "workspaceId", "")
