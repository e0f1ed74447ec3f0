// Summary report: hours, billable hours and amounts grouped one or two levels deep (project,
// client, person, tag, task, date, type), filtered, with hours per day and the share of the
// first grouping drawn above the table. Shown hours add up: rows and their total are rounded
// together (report.js apportion), in the workspace's duration format unless the reader picks
// another.

import { dot, fill, fmtDay, fmtMoney, h, params } from "./common.js";
import { dailyChart, shareChart } from "./charts.js";
import { TYPE_LABELS, WITHOUT, apportion, fmtUnits, startReport } from "./report.js";

// Maps, not objects: the page URL picks the key, and no key may reach Object.prototype.
const GROUPS = new Map([
  ["PROJECT", "Project"],
  ["CLIENT", "Client"],
  ["USER", "Person"],
  ["TAG", "Tag"],
  ["TASK", "Task"],
  ["DATE", "Date"],
  ["TYPE", "Type"],
]);
const PLURAL = new Map([
  ["PROJECT", "project"],
  ["CLIENT", "client"],
  ["USER", "person"],
  ["TAG", "tag"],
  ["TASK", "task"],
  ["DATE", "day"],
  ["TYPE", "type"],
]);
const MAX_STACKED_GROUPS = 8;
const ND = "\u2013";
const $ = (id) => document.getElementById(id);
const groupSelect = $("group");
const thenSelect = $("group2");
const collapsed = new Set(); // "<level>|<id>" of the subtotal rows the reader folded

function initialLevels() {
  const asked = (params.get("groupBy") || "PROJECT")
    .toUpperCase()
    .split(",")
    .map((p) => p.trim())
    .filter((p) => GROUPS.has(p));
  const first = asked[0] || "PROJECT";
  const second = asked[1] && asked[1] !== first ? asked[1] : "";
  return [first, second];
}
{
  const [first, second] = initialLevels();
  groupSelect.value = first;
  thenSelect.value = second;
}
const stackInputs = [...document.querySelectorAll('input[name="stack"]')];
if (params.get("stack") === "group") for (const input of stackInputs) input.checked = input.value === "group";

function levels() {
  const first = groupSelect.value;
  const second = thenSelect.value && thenSelect.value !== first ? thenSelect.value : "";
  return second ? [first, second] : [first];
}

function syncThenOptions() {
  for (const option of thenSelect.options) option.disabled = option.value !== "" && option.value === groupSelect.value;
  if (thenSelect.value === groupSelect.value) thenSelect.value = "";
}
syncThenOptions();

// Labels -------------------------------------------------------------------------------------------
function groupLabel(level, g, view) {
  if (level === "DATE") {
    const sameYear = view.range && view.range.start.slice(0, 4) === view.range.end.slice(0, 4);
    return fmtDay(g.id, { weekday: "short", month: "short", day: "numeric", ...(sameYear ? {} : { year: "numeric" }) });
  }
  if (level === "TYPE") return TYPE_LABELS[g.id] || g.name;
  if (g.id === null || g.id === undefined) return WITHOUT[level] || g.name;
  return g.name;
}

/** What tells two same-named rows apart: a task's project. */
function groupSub(level, g, view) {
  if (level !== "TASK" || !g.id) return null;
  const task = view.names?.task?.get(g.id);
  const project = task?.projectId ? view.names?.project?.get(task.projectId) : null;
  return project ? project.name : null;
}

// Money in one currency order for the whole page: the total's largest first, then by code. ---------
function currencyOrder(data) {
  const order = (data.amounts || []).map((a) => a.currency);
  const others = new Set();
  const visit = (g) => {
    for (const list of [g.amounts, g.costAmounts, g.profitAmounts]) for (const a of list || []) others.add(a.currency);
    for (const child of g.children || []) visit(child);
  };
  visit(data);
  for (const g of data.groups || []) visit(g);
  return [...order, ...[...others].filter((c) => !order.includes(c)).sort()];
}

function fmtAmountsIn(list, order) {
  const by = new Map((list || []).map((a) => [a.currency, a.amount]));
  const text = order
    .filter((c) => by.has(c) && by.get(c) !== 0)
    .map((c) => fmtMoney(by.get(c), c))
    .join(" + ");
  return text || ND;
}

// The table ----------------------------------------------------------------------------------------
function columns(data) {
  const cost = Boolean(data.costAmounts?.length);
  return { cost };
}

function head(lv, cols) {
  $("group-label").textContent = lv.map((l) => GROUPS.get(l)).join(" / ");
  const row = $("group-label").parentElement;
  fill(
    row,
    $("group-label"),
    h("th", { scope: "col", class: "num", text: "Hours" }),
    h("th", { scope: "col", class: "num", text: "Billable" }),
    h("th", { scope: "col", class: "num", text: "Amount" }),
    cols.cost ? h("th", { scope: "col", class: "num", text: "Cost" }) : null,
    cols.cost ? h("th", { scope: "col", class: "num", text: "Profit" }) : null,
  );
}

function cells(bucket, units, cols, order, format) {
  return [
    h("td", { class: "num hours", text: fmtUnits(units.total, format) }),
    h("td", { class: "num billable", text: fmtUnits(units.billable, format) }),
    h("td", { class: "num amount", text: fmtAmountsIn(bucket.amounts, order) }),
    cols.cost ? h("td", { class: "num cost", text: fmtAmountsIn(bucket.costAmounts, order) }) : null,
    cols.cost ? h("td", { class: "num profit", text: fmtAmountsIn(bucket.profitAmounts, order) }) : null,
  ];
}

function nameCell(level, g, view, { toggle = null } = {}) {
  const sub = groupSub(level, g, view);
  return h(
    "td",
    { class: "name" },
    toggle,
    level === "PROJECT" ? dot(g.id ? g.color || "" : "") : null,
    h("span", { class: "label", text: groupLabel(level, g, view) }),
    sub ? h("span", { class: "sub", text: sub }) : null,
  );
}

function renderTable(data, view) {
  const lv = data.groupBy?.length ? data.groupBy : levels();
  const cols = columns(data);
  const order = currencyOrder(data);
  const format = view.durationFormat;
  head(lv, cols);
  const groups = data.groups || [];
  const width = 4 + (cols.cost ? 2 : 0);
  const hasTime = groups.some((g) => g.totalSeconds > 0 || g.runningSeconds > 0) || data.totalSeconds > 0;
  if (!hasTime) {
    const filtered = view.filters?.active;
    fill(
      $("rows"),
      h(
        "tr",
        { class: "empty-row" },
        h("td", { class: "empty", colspan: String(width), text: filtered ? "No time tracked for this period with these filters." : "No time tracked for this period." }),
      ),
    );
    fill($("total"), h("tr", {}, h("th", { scope: "row", text: "Total" }), cells(data, { total: 0, billable: 0 }, cols, order, format)));
    return { units: null };
  }
  const total = apportion(data.totalSeconds, groups.map((g) => g.totalSeconds), format);
  const billable = apportion(data.billableSeconds, groups.map((g) => g.billableSeconds), format);
  const rows = [];
  groups.forEach((g, i) => {
    const units = { total: total.parts[i], billable: billable.parts[i] };
    if (lv.length < 2) {
      rows.push(h("tr", { class: "group" }, nameCell(lv[0], g, view), cells(g, units, cols, order, format)));
      return;
    }
    const key = `${lv[0]}|${g.id}`;
    const open = !collapsed.has(key);
    const children = g.children || [];
    const label = groupLabel(lv[0], g, view);
    const toggle = h("button", {
      type: "button",
      class: "twisty",
      "aria-expanded": String(open),
      "aria-label": `${open ? "Hide" : "Show"} the ${children.length} ${PLURAL.get(lv[1])} row${children.length === 1 ? "" : "s"} of ${label}`,
      disabled: children.length ? null : true,
    });
    const parent = h("tr", { class: "group parent", "data-key": key }, nameCell(lv[0], g, view, { toggle }), cells(g, units, cols, order, format));
    const childTotal = apportion(g.totalSeconds, children.map((c) => c.totalSeconds), format, units.total);
    const childBillable = apportion(g.billableSeconds, children.map((c) => c.billableSeconds), format, units.billable);
    const childRows = children.map((c, j) =>
      h(
        "tr",
        { class: "child", "data-parent": key, hidden: open ? null : true },
        nameCell(lv[1], c, view),
        cells(c, { total: childTotal.parts[j], billable: childBillable.parts[j] }, cols, order, format),
      ),
    );
    toggle.addEventListener("click", () => {
      const nowOpen = toggle.getAttribute("aria-expanded") !== "true";
      if (nowOpen) collapsed.delete(key);
      else collapsed.add(key);
      toggle.setAttribute("aria-expanded", String(nowOpen));
      toggle.setAttribute("aria-label", toggle.getAttribute("aria-label").replace(/^(Hide|Show)/, nowOpen ? "Hide" : "Show"));
      for (const row of childRows) row.hidden = !nowOpen;
    });
    rows.push(parent, ...childRows);
  });
  fill($("rows"), rows);
  fill(
    $("total"),
    h("tr", {}, h("th", { scope: "row", text: "Total" }), cells(data, { total: total.whole, billable: billable.whole }, cols, order, format)),
  );
  return { units: total };
}

// The charts -------------------------------------------------------------------------------------------
function stackMode() {
  return stackInputs.find((i) => i.checked)?.value || "billable";
}

function renderCharts(data, view, hasTime) {
  const charts = document.querySelector(".charts");
  const daily = view.also.daily;
  charts.hidden = !hasTime || !daily;
  if (charts.hidden) return;
  const lv = data.groupBy?.length ? data.groupBy : levels();
  const first = lv[0];
  const groups = (data.groups || []).filter((g) => g.totalSeconds > 0 || g.runningSeconds > 0);
  const canStack = first !== "DATE" && groups.length >= 1 && groups.length <= MAX_STACKED_GROUPS;
  const toggle = $("stack-toggle");
  toggle.hidden = !canStack;
  $("stack-group-label").textContent = `By ${GROUPS.get(first).toLowerCase()}`;
  const days = (daily.groups || []).map((d) => d.id);
  let series;
  if (canStack && stackMode() === "group") {
    series = groups.map((g) => ({
      key: String(g.id),
      label: groupLabel(first, g, view),
      color: first === "PROJECT" && g.id ? g.color : null,
      values: (daily.groups || []).map((d) => (d.children || []).find((c) => c.id === g.id)?.totalSeconds || 0),
    }));
  } else {
    series = [
      { key: "billable", label: "Billable", values: (daily.groups || []).map((d) => d.billableSeconds) },
      { key: "non-billable", label: "Non-billable", color: "#9aa5b4", pattern: 1, values: (daily.groups || []).map((d) => d.totalSeconds - d.billableSeconds) },
    ];
  }
  const fmt = view.fmt;
  dailyChart($("chart-days"), { days, series, title: "Hours per day", fmt });
  $("share-title").textContent = `Share by ${PLURAL.get(first)}`;
  shareChart($("chart-share"), {
    items: groups.map((g) => ({
      key: String(g.id),
      label: groupLabel(first, g, view),
      color: first === "PROJECT" && g.id ? g.color : null,
      seconds: g.totalSeconds,
    })),
    title: `Share by ${PLURAL.get(first)}`,
    fmt,
  });
}

// The page ----------------------------------------------------------------------------------------------
function render(data, view) {
  const { units } = renderTable(data, view);
  renderCharts(data, view, units !== null);
  const lv = data.groupBy?.length ? data.groupBy : levels();
  const notes = [];
  if (data.includesRunning) notes.push("Includes running timers up to now.");
  if (lv.includes("TAG")) notes.push("An entry with two tags counts under each of them, so tag rows can add up to more than the total.");
  if (units && view.durationFormat !== "FULL") {
    const unit = view.durationFormat === "DECIMAL" ? "hundredths of an hour" : "whole minutes";
    notes.push(`Rows are rounded to ${unit} so that they add up to their total.`);
  }
  $("note").textContent = notes.join(" ");
}

const report = startReport({
  apiUrl: (query) => {
    query.set("groupBy", levels().join(","));
    return `/api/summary?${query}`;
  },
  also: {
    daily: (query) => {
      const first = levels()[0];
      query.set("groupBy", first === "DATE" ? "DATE" : `DATE,${first}`);
      return `/api/summary?${query}`;
    },
  },
  render,
  extraParams: ["groupBy", "stack"],
  filters: $("filters"),
  coverage: $("coverage"),
  durations: $("duration-format"),
  csv: $("download-csv"),
  print: $("print"),
  filterSummary: $("filter-summary"),
});

function regroup() {
  syncThenOptions();
  report.setParam("groupBy", levels().join(","));
}
groupSelect.addEventListener("change", regroup);
thenSelect.addEventListener("change", regroup);
for (const input of stackInputs) {
  input.addEventListener("change", () => {
    report.view.params.set("stack", stackMode());
    if (stackMode() === "billable") report.view.params.delete("stack");
    report.rerender();
    history.replaceState(null, "", urlWith("stack", stackMode() === "group" ? "group" : null));
  });
}

function urlWith(name, value) {
  const url = new URL(location.href);
  if (value) url.searchParams.set(name, value);
  else url.searchParams.delete(name);
  return url.pathname + url.search;
}
