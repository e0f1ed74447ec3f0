// Team report: a people x projects heatmap of hours with row and column totals. The map scrolls
// sideways inside a focusable region with the names and the header row fixed; each shade holds
// about a fifth of the non-empty cells (by rank, so one outlier cannot wash the rest out); a
// cell links to the weekly report of its person and project. On paper the map is cut into
// landscape pages of PRINT_COLUMNS projects, each repeating the names. Shown hours add up along
// each row and along the totals (report.js apportion). Below: hours per day and the share of
// each project (charts.js).

import { dailyChart, shareChart } from "./charts.js";
import { dot, fill, fmtDay, fmtDuration, fmtMoney, h, params } from "./common.js";
import { apportion, fmtUnits, startReport } from "./report.js";

const $ = (id) => document.getElementById(id);
export const SHADES = 5;
const PRINT_COLUMNS = 12;
const RESET_WORD = { WEEKLY: "weekly ", MONTHLY: "monthly ", YEARLY: "yearly " };

/**
 * The shade (1..SHADES, 0 for none) of each value by its rank among the non-zero values: the
 * share of them at or below it, in SHADES equal steps. `bands` lists, per shade used, the
 * smallest and largest value in it (the legend).
 */
export function shadeScale(values) {
  const sorted = values.filter((v) => v > 0).sort((a, b) => a - b);
  const n = sorted.length;
  const atOrBelow = (v) => {
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid] <= v) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const shadeOf = (v) => (v > 0 && n ? Math.max(1, Math.ceil((atOrBelow(v) / n) * SHADES)) : 0);
  const bands = [];
  for (const v of sorted) {
    const shade = shadeOf(v);
    if (!bands[shade]) bands[shade] = { shade, min: v, max: v };
    bands[shade].max = v;
  }
  return { shadeOf, bands: bands.filter(Boolean) };
}

/** "312% of 160 h estimate": the project's progress as Clockify shows it. */
function progressText(p) {
  const word = RESET_WORD[p.reset] || "";
  const estimate =
    p.kind === "budget"
      ? `${p.currency ? fmtMoney(p.estimate / 100, p.currency) : (p.estimate / 100).toFixed(2)} ${word}budget`
      : `${fmtDuration(p.estimate)} ${word}estimate`;
  return `${p.percent}% of ${estimate}`;
}

function projectHeader(p) {
  const progress = p.progress;
  const over = Boolean(progress?.over);
  const title = progress ? `${p.name}: ${progressText(progress)}` : p.name;
  return h(
    "th",
    { scope: "col", class: `project${over ? " over" : ""}`, title },
    h("span", { class: "project-name" }, dot(p.color || ""), h("span", { text: p.name })),
    // Said in words, not only in red: "over 312%" under the name.
    over ? h("span", { class: "over-mark", text: `over ${progress.percent}%` }) : null,
  );
}

/** What a progress figure is based on, when it is not Clockify's own. */
function basisNote(data) {
  const seen = data.projects.filter((p) => p.progress?.basis === "seen");
  if (!seen.length) return "";
  const since = data.progressSince ? ` since ${fmtDay(data.progressSince, { month: "short", day: "numeric", year: "numeric" })}` : "";
  return `Project progress is based on what clockwall has seen${since}.`;
}

/** The query of this view: its range, workspace, filters and duration format. */
function viewQuery(view) {
  const query = new URLSearchParams({ start: view.range.start, end: view.range.end });
  if (params.get("workspace")) query.set("workspace", params.get("workspace"));
  if (view.filters) for (const [name, value] of view.filters.query()) query.set(name, value);
  if (view.params.get("duration")) query.set("duration", view.params.get("duration"));
  return query;
}

/** The weekly report of one person on one project over this range (and the other filters). */
function cellHref(user, project, view) {
  const query = viewQuery(view);
  query.set("users", user.id);
  query.set("projects", project.id ?? "none");
  return `/weekly?${query}`;
}

function cell(seconds, text, user, project, shade, view) {
  if (!seconds) return h("td", { class: "cell zero", text: "–" });
  return h(
    "td",
    { class: `cell shade-${shade}` },
    view
      ? h("a", {
          href: cellHref(user, project, view),
          text,
          "aria-label": `${user.name} on ${project.name}: ${text}; open the entries`,
        })
      : text,
  );
}

/**
 * The shown text of every figure, in the page's duration format, so that each row's cells add
 * up to the row's total, the row totals to the grand total, and the column totals to it too.
 */
function shownTimes(data, format) {
  const people = apportion(data.totalSeconds, data.users.map((u) => u.totalSeconds), format);
  const projects = apportion(data.totalSeconds, data.projects.map((p) => p.totalSeconds), format, people.whole);
  const cells = data.users.map((u, i) => apportion(u.totalSeconds, data.cells[i], format, people.parts[i]).parts);
  const text = (units) => fmtUnits(units, format);
  return {
    grand: text(people.whole),
    people: people.parts.map(text),
    projects: projects.parts.map(text),
    cells: cells.map((row) => row.map(text)),
  };
}

/** The heatmap's table: all projects on screen (`view` given: cells are links), or a slice. */
function heatTable(data, shown, shadeOf, columns, { view = null, withTotal = true } = {}) {
  return [
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col", class: "corner", text: "Person" }),
        columns.map((j) => projectHeader(data.projects[j])),
        withTotal ? h("th", { scope: "col", class: "num row-total", text: "Total" }) : null,
      ),
    ),
    h(
      "tbody",
      {},
      data.users.map((u, i) =>
        h(
          "tr",
          {},
          h("th", { scope: "row", class: "name", text: u.name }),
          columns.map((j) => cell(data.cells[i][j], shown.cells[i][j], u, data.projects[j], shadeOf(data.cells[i][j]), view)),
          withTotal ? h("td", { class: "num total row-total", text: shown.people[i] }) : null,
        ),
      ),
    ),
    h(
      "tfoot",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "row", class: "name", text: "Total" }),
        columns.map((j) => h("td", { class: "num total", text: shown.projects[j] })),
        withTotal ? h("td", { class: "num total grand row-total", text: shown.grand }) : null,
      ),
    ),
  ];
}

function legend(bands, fmt) {
  return [
    h("span", { class: "legend-title", text: "Shades by rank, each about a fifth of the filled cells:" }),
    ...bands.map((b) =>
      h(
        "span",
        { class: "legend-item" },
        h("span", { class: `legend-swatch shade-${b.shade}`, "aria-hidden": "true" }),
        b.min === b.max ? fmt(b.min) : `${fmt(b.min)}–${fmt(b.max)}`,
      ),
    ),
  ];
}

/** Paper: slices of PRINT_COLUMNS projects, each a table of its own repeating the names. */
function printTables(data, shown, shadeOf) {
  const count = data.projects.length;
  const slices = [];
  for (let first = 0; first < count; first += PRINT_COLUMNS) {
    const columns = [];
    for (let j = first; j < Math.min(count, first + PRINT_COLUMNS); j++) columns.push(j);
    const last = first + PRINT_COLUMNS >= count;
    slices.push(
      h(
        "section",
        { class: "heat-slice" },
        count > PRINT_COLUMNS
          ? h("h3", { class: "heat-slice-title", text: `Projects ${first + 1}–${columns.at(-1) + 1} of ${count}` })
          : null,
        h("table", { class: "table heatmap" }, heatTable(data, shown, shadeOf, columns, { withTotal: last })),
      ),
    );
  }
  return slices;
}

/** Hours per day (billable and not) over the range, and each project's share. */
function renderCharts(data, view) {
  const charts = document.querySelector(".charts");
  const daily = view.also.daily?.groups || [];
  charts.hidden = !data.users.length;
  if (charts.hidden) return;
  dailyChart($("chart-days"), {
    days: daily.map((d) => d.id),
    series: [
      { key: "billable", label: "Billable", values: daily.map((d) => d.billableSeconds) },
      { key: "non-billable", label: "Non-billable", color: "#9aa5b4", pattern: 1, values: daily.map((d) => d.totalSeconds - d.billableSeconds) },
    ],
    title: "Hours per day",
    fmt: view.fmt,
  });
  shareChart($("chart-share"), {
    items: data.projects.map((p) => ({ key: String(p.id), label: p.name, color: p.id ? p.color : null, seconds: p.totalSeconds })),
    title: "Share by project",
    fmt: view.fmt,
  });
}

function render(data, view) {
  const table = $("heatmap");
  if (!data.users.length) {
    const text = view.filters?.active ? "No time tracked for this period with these filters." : "No time tracked for this period.";
    fill(table, h("tbody", {}, h("tr", {}, h("td", { class: "empty", text }))));
    fill($("heatmap-print"));
    fill($("legend"));
    renderCharts(data, view);
    $("note").textContent = "";
    return;
  }
  const { shadeOf, bands } = shadeScale(data.cells.flat());
  const shown = shownTimes(data, view.durationFormat);
  const all = data.projects.map((_, j) => j);
  fill(table, heatTable(data, shown, shadeOf, all, { view }));
  fill($("heatmap-print"), printTables(data, shown, shadeOf));
  fill($("legend"), legend(bands, view.fmt));
  renderCharts(data, view);
  const over = data.projects.filter((p) => p.progress?.over).length;
  const rounded = view.durationFormat !== "FULL";
  $("note").textContent = [
    over ? `${over === 1 ? "1 project is" : `${over} projects are`} over estimate (marked “over” in red).` : "",
    data.includesRunning ? "Includes running timers up to now." : "",
    rounded ? `Cells are rounded to ${view.durationFormat === "DECIMAL" ? "hundredths of an hour" : "whole minutes"} so that each row adds up to its total.` : "",
    basisNote(data),
  ]
    .filter(Boolean)
    .join(" ");
}

startReport({
  apiUrl: (query) => `/api/team?${query}`,
  also: {
    daily: (query) => {
      query.set("groupBy", "DATE");
      return `/api/summary?${query}`;
    },
  },
  render,
  filters: $("filters"),
  coverage: $("coverage"),
  durations: $("duration-format"),
  csv: $("download-csv"),
  print: $("print"),
  filterSummary: $("filter-summary"),
});
