"""CSV exports of the reports (`format=csv` on /api/summary, /api/team and /api/entries).

Each file is shaped from the very JSON answer of the same query, so the file and the page can
never disagree: the same rows, filters and totals. Durations appear twice, in the workspace's
duration format and in decimal hours; money one column per currency. A UTF-8 BOM lets Excel
read accents right, and a text cell a spreadsheet would run as a formula gets a leading '.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.responses import Response

BOM = "\ufeff"
MEDIA_TYPE = "text/csv; charset=utf-8"
# What spreadsheets read as the start of a formula (OWASP "CSV injection"), tab and CR too.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
DURATION_HEADERS = {"FULL": "h:mm:ss", "COMPACT": "h:mm", "DECIMAL": "decimal"}
LEVEL_HEADERS = {
    "PROJECT": "Project",
    "USER": "Person",
    "CLIENT": "Client",
    "TAG": "Tag",
    "TASK": "Task",
    "DATE": "Date",
    "TYPE": "Type",
}

Row = list[str]


def text(value: Any) -> str:
    """A cell of text that came from people (names, descriptions), made inert in spreadsheets."""
    out = "" if value is None else str(value)
    return "'" + out if out.startswith(FORMULA_STARTS) else out


def format_duration(seconds: int, duration_format: str) -> str:
    """`seconds` as Clockify shows durations: FULL h:mm:ss, COMPACT h:mm (to the nearest
    minute, so rows and totals round alike), DECIMAL hours with two decimals."""
    if duration_format == "DECIMAL":
        return decimal_hours(seconds)
    if duration_format == "COMPACT":
        minutes = (seconds + 30) // 60
        return f"{minutes // 60}:{minutes % 60:02d}"
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def decimal_hours(seconds: int) -> str:
    """Hours with two decimals, as the JSON answers' `totalHours`."""
    return f"{seconds / 3600:.2f}"


def money(amount: float) -> str:
    return f"{amount:.2f}"


def filename(report: str, start: str, end: str) -> str:
    return f"clockwall-{report}-{start}-{end}.csv"


def csv_response(report: str, date_range: dict[str, str], rows: Iterable[Row]) -> Response:
    """The file as an attachment named after the report and its range."""
    buffer = io.StringIO()
    buffer.write(BOM)
    csv.writer(buffer).writerows(rows)
    name = filename(report, date_range["start"], date_range["end"])
    return Response(
        buffer.getvalue().encode("utf-8"),
        media_type=MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# Money columns -----------------------------------------------------------------------------
def _by_currency(items: Iterable[dict[str, Any]] | None) -> dict[str, float]:
    return {item["currency"]: item["amount"] for item in items or ()}


class MoneyColumns:
    """One amount column per currency in a fixed order (the largest total first, then by
    code), and cost and profit columns when the answer has cost."""

    def __init__(self, total: dict[str, Any]) -> None:
        earned = _by_currency(total.get("amounts"))
        cost = _by_currency(total.get("costAmounts"))
        self.currencies = sorted(set(earned) | set(cost), key=lambda c: (-earned.get(c, 0), c))
        self.with_cost = bool(cost)

    def headers(self) -> Row:
        out = [f"Amount ({c})" for c in self.currencies]
        if self.with_cost:
            out += [f"Cost ({c})" for c in self.currencies]
            out += [f"Profit ({c})" for c in self.currencies]
        return out

    def cells(self, bucket: dict[str, Any]) -> Row:
        earned = _by_currency(bucket.get("amounts"))
        out = [money(earned.get(c, 0)) for c in self.currencies]
        if self.with_cost:
            cost = _by_currency(bucket.get("costAmounts"))
            out += [money(cost.get(c, 0)) for c in self.currencies]
            out += [money(earned.get(c, 0) - cost.get(c, 0)) for c in self.currencies]
        return out


# Summary ----------------------------------------------------------------------------------
def summary_rows(answer: dict[str, Any], duration_format: str) -> list[Row]:
    """One row per group; with two levels one row per child (its parent's name first) and a
    "Subtotal" row per parent; then a "Total" row."""
    levels: Sequence[str] = answer["groupBy"]
    money_columns = MoneyColumns(answer)
    unit = DURATION_HEADERS.get(duration_format, "h:mm:ss")
    # A project's client beside it, unless the client is a level of its own.
    client_level = (
        levels.index("PROJECT") if "PROJECT" in levels and "CLIENT" not in levels else None
    )
    header = [LEVEL_HEADERS[level] for level in levels]
    if client_level is not None:
        header.append("Client")
    header += [
        f"Duration ({unit})",
        "Hours (decimal)",
        f"Billable duration ({unit})",
        "Billable hours (decimal)",
    ]
    header += money_columns.headers()

    def figures(bucket: dict[str, Any]) -> Row:
        return [
            format_duration(bucket["totalSeconds"], duration_format),
            decimal_hours(bucket["totalSeconds"]),
            format_duration(bucket["billableSeconds"], duration_format),
            decimal_hours(bucket["billableSeconds"]),
            *money_columns.cells(bucket),
        ]

    def client_of(project_row: dict[str, Any] | None) -> Row:
        if client_level is None:
            return []
        client = (project_row or {}).get("client") or {}
        return [text(client.get("name"))]

    rows = [header]
    for group in answer["groups"]:
        if len(levels) == 1:
            rows.append([text(group["name"]), *client_of(group), *figures(group)])
            continue
        parent = text(group["name"])
        for child in group.get("children") or ():
            project = group if client_level == 0 else child
            rows.append([parent, text(child["name"]), *client_of(project), *figures(child)])
        # A subtotal's client is its parent's when the parent is the project.
        project = group if client_level == 0 else None
        rows.append([parent, "Subtotal", *client_of(project), *figures(group)])
    blanks = [""] * (len(levels) - 1 + (client_level is not None))
    rows.append(["Total", *blanks, *figures(answer)])
    return rows


# Team -------------------------------------------------------------------------------------
def team_rows(answer: dict[str, Any], duration_format: str) -> list[Row]:
    """One row per person, one column per project, in the workspace's format, with a total
    column and a total row in that format and again in decimal hours."""
    projects = answer["projects"]
    fmt = duration_format
    header = ["Person", *(text(p["name"]) for p in projects)]
    header += [f"Total ({DURATION_HEADERS.get(fmt, 'h:mm:ss')})", "Total (decimal hours)"]
    rows = [header]
    for user, cells in zip(answer["users"], answer["cells"], strict=True):
        seconds = user["totalSeconds"]
        rows.append([text(user["name"]), *(format_duration(s, fmt) for s in cells)])
        rows[-1] += [format_duration(seconds, fmt), decimal_hours(seconds)]
    total = answer["totalSeconds"]
    rows.append(["Total", *(format_duration(p["totalSeconds"], fmt) for p in projects)])
    rows[-1] += [format_duration(total, fmt), decimal_hours(total)]
    rows.append(["Total (decimal hours)", *(decimal_hours(p["totalSeconds"]) for p in projects)])
    rows[-1] += [decimal_hours(total), decimal_hours(total)]
    return rows


# Entries ----------------------------------------------------------------------------------
def entries_rows(answer: dict[str, Any], duration_format: str, zone: ZoneInfo) -> list[Row]:
    """One row per entry, its start and end in local time of the reporting zone (the end with
    its date when it falls on another day than the entry's)."""
    entries = answer["entries"]
    with_cost = any(e.get("costAmount") for e in entries)
    unit = DURATION_HEADERS.get(duration_format, "h:mm:ss")
    header = ["Date", "Start", "End", "Person", "Project", "Client", "Task", "Tags"]
    header += ["Description", "Billable", "Type", f"Duration ({unit})", "Hours (decimal)"]
    header += ["Amount", *(["Cost"] if with_cost else []), "Currency"]
    rows = [header]
    for entry in entries:
        start = _local(entry["start"], zone)
        if entry.get("running") or not entry.get("end"):
            end = "(running)"
        else:
            end_at = _local(entry["end"], zone)
            same_day = end_at.date() == date.fromisoformat(entry["day"])
            end = end_at.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S")
        tags = ", ".join(str(t["name"]) for t in entry.get("tags") or ())
        row = [entry["day"], start.strftime("%H:%M:%S"), end]
        row += [text(_name(entry.get(k))) for k in ("user", "project", "client", "task")]
        row += [text(tags), text(entry.get("description")), "Yes" if entry["billable"] else "No"]
        row += [entry["type"], format_duration(entry["durationSeconds"], duration_format)]
        row += [decimal_hours(entry["durationSeconds"]), money(entry["billableAmount"])]
        if with_cost:
            row.append(money(entry["costAmount"]))
        row.append(entry.get("currency") or "")
        rows.append(row)
    return rows


def _local(iso: str, zone: ZoneInfo) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(zone)


def _name(named: dict[str, Any] | None) -> str:
    return str(named.get("name") or "") if named else ""
