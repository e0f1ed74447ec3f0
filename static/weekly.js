// Weekly report: entries grouped by day with day and week totals and per-person and per-project
// subtotals; filtered like every report; printable (a day taller than a page breaks between
// its entries, its heading kept with the first ones) and copyable as text for an e-mail. Shown
// hours add up: entries to their day, days and subtotals to the week (report.js apportion).

import { dot, fill, fmtDay, fmtRange, h, timeInZone } from "./common.js";
import { WITHOUT, apportion, fmtUnits, startReport } from "./report.js";

const $ = (id) => document.getElementById(id);
const WITHOUT_PROJECT = WITHOUT.PROJECT;
let lastText = "";

function groupByDay(entries) {
  const days = new Map();
  for (const entry of entries) {
    if (!days.has(entry.day)) days.set(entry.day, []);
    days.get(entry.day).push(entry);
  }
  return [...days.entries()].sort((a, b) => a[0].localeCompare(b[0]));
}

/** "09:00–11:30"; a running entry "09:00–now" on screen (its duration grows with each refresh). */
function timeSpan(entry, tz) {
  const start = timeInZone(new Date(entry.start), tz);
  return entry.end ? `${start}–${timeInZone(new Date(entry.end), tz)}` : `${start}–now`;
}

function projectLabel(entry) {
  if (!entry.project) return WITHOUT_PROJECT;
  return entry.client?.name ? `${entry.project.name} (${entry.client.name})` : entry.project.name;
}

/** Text on one line: a description or name with a line break (or a tab, or any other control
 * character) would otherwise start lines of its own in the copied report, e.g. a forged total. */
function oneLine(text) {
  return String(text ?? "").replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, " ");
}

/** [{key, label, color, seconds}] per person and per project, largest first. */
function subtotals(entries) {
  const people = new Map();
  const projects = new Map();
  const add = (map, key, label, color, seconds) => {
    const row = map.get(key) || { key, label, color, seconds: 0 };
    row.seconds += seconds;
    map.set(key, row);
  };
  for (const e of entries) {
    add(people, e.user.id, e.user.name, null, e.durationSeconds);
    add(projects, e.project?.id ?? "", projectLabel(e), e.project?.color ?? "", e.durationSeconds);
  }
  const order = (map) => [...map.values()].sort((a, b) => b.seconds - a.seconds || a.label.localeCompare(b.label));
  return { people: order(people), projects: order(projects) };
}

function subtotalTable(caption, head, rows, texts, total, withDots) {
  return h(
    "table",
    { class: "table subtotal-table" },
    h("caption", { text: caption }),
    h("thead", {}, h("tr", {}, h("th", { scope: "col", text: head }), h("th", { scope: "col", class: "num", text: "Hours" }))),
    h(
      "tbody",
      {},
      rows.map((r, i) =>
        h(
          "tr",
          {},
          h("th", { scope: "row", class: "name" }, withDots ? dot(r.color || "") : null, r.label),
          h("td", { class: "num", text: texts[i] }),
        ),
      ),
    ),
    h("tfoot", {}, h("tr", {}, h("th", { scope: "row", text: "Total" }), h("td", { class: "num", text: total }))),
  );
}

/**
 * Every shown duration, in the page's format: the week, each day, each entry, each subtotal;
 * the parts of each whole add up to it as shown.
 */
function shownTimes(data, days, sums, format) {
  const text = (units) => fmtUnits(units, format);
  const dayTotals = days.map(([, entries]) => entries.reduce((sum, e) => sum + e.durationSeconds, 0));
  const week = apportion(data.totalSeconds, dayTotals, format);
  const entries = days.map(([, list], d) =>
    apportion(dayTotals[d], list.map((e) => e.durationSeconds), format, week.parts[d]).parts.map(text),
  );
  const part = (rows) => apportion(data.totalSeconds, rows.map((r) => r.seconds), format, week.whole).parts.map(text);
  return {
    week: text(week.whole),
    days: week.parts.map(text),
    entries,
    people: part(sums.people),
    projects: part(sums.projects),
  };
}

function render(data, view) {
  const tz = view.ctx.timezone;
  // A running entry's duration is as of the answer: paper and the copied text say when that was.
  const asOf = timeInZone(new Date(), tz);
  const days = groupByDay(data.entries);
  const sums = subtotals(data.entries);
  const shown = shownTimes(data, days, sums, view.durationFormat);
  const empty = view.filters?.active ? "No time tracked for this period with these filters." : "No time tracked for this period.";
  $("week-total").textContent = `Total ${shown.week} h`;
  fill(
    $("days"),
    days.length ? null : h("p", { class: "empty", text: empty }),
    days.map(([day, entries], d) =>
      h(
        "section",
        { class: "day", "data-day": day },
        h("h3", {}, h("span", { class: "day-name", text: fmtDay(day) }), h("span", { class: "day-total", text: shown.days[d] })),
        h(
          "ul",
          { class: "entries" },
          entries.map((e, i) =>
            h(
              "li",
              { class: `entry${e.running ? " running" : ""}` },
              h(
                "span",
                { class: "time" },
                timeSpan(e, tz),
                e.running ? h("span", { class: "as-of", text: `(as of ${asOf})` }) : null,
              ),
              h("span", { class: "duration", text: shown.entries[d][i] }),
              h("span", { class: "tag" }, dot(e.project?.color || ""), h("span", { text: projectLabel(e) })),
              h("span", { class: "desc", text: e.description || "(no description)" }),
              h("span", { class: "who", text: e.user.name }),
            ),
          ),
        ),
      ),
    ),
  );
  $("subtotals").hidden = !data.entries.length;
  fill(
    $("subtotals-tables"),
    data.entries.length
      ? [
          subtotalTable("By person", "Person", sums.people, shown.people, shown.week, false),
          subtotalTable("By project", "Project", sums.projects, shown.projects, shown.week, true),
        ]
      : null,
  );
  const rounded = view.durationFormat !== "FULL" && data.entries.length;
  $("note").textContent = [
    data.includesRunning ? `Includes running timers up to ${asOf}.` : "",
    data.truncated ? `Only the first ${data.entries.length} entries are shown.` : "",
    rounded
      ? `Entries are rounded to ${view.durationFormat === "DECIMAL" ? "hundredths of an hour" : "whole minutes"} so that they add up to their day's total.`
      : "",
  ]
    .filter(Boolean)
    .join(" ");
  lastText = asText(view, days, sums, shown, asOf);
}

/**
 * Plain text for an e-mail: a heading, each day with its total and one line per entry, then the
 * subtotals as a plain list ("Name: 3:15 h"), which needs no alignment to read in any font.
 */
function asText(view, days, sums, shown, asOf) {
  const tz = view.ctx.timezone;
  const lines = [`Weekly report · ${fmtRange(view.range.start, view.range.end)}`, `Total: ${shown.week} h`];
  const words = view.filters?.describe();
  if (words) lines.push(`Filtered: ${oneLine(words)}`);
  days.forEach(([day, entries], d) => {
    lines.push("", `${fmtDay(day)} — ${shown.days[d]} h`);
    entries.forEach((e, i) => {
      const desc = e.description ? ` — ${oneLine(e.description)}` : "";
      const who = oneLine(e.user.name);
      const span = e.running ? `${timeSpan(e, tz)} (as of ${asOf})` : timeSpan(e, tz);
      lines.push(`  ${span}  ${shown.entries[d][i].padStart(5)}  ${oneLine(projectLabel(e))}${desc} (${who})`);
    });
  });
  if (days.length) {
    lines.push("", "By person");
    sums.people.forEach((r, i) => lines.push(`  ${oneLine(r.label)}: ${shown.people[i]} h`));
    lines.push("", "By project");
    sums.projects.forEach((r, i) => lines.push(`  ${oneLine(r.label)}: ${shown.projects[i]} h`));
  }
  return `${lines.join("\n")}\n`;
}

$("copy").addEventListener("click", async () => {
  const status = $("copied");
  try {
    await navigator.clipboard.writeText(lastText);
    status.textContent = "Copied.";
  } catch {
    status.textContent = "The browser did not allow copying.";
  }
  setTimeout(() => (status.textContent = ""), 3000);
});

startReport({
  apiUrl: (query) => `/api/entries?${query}`,
  render,
  filters: $("filters"),
  coverage: $("coverage"),
  durations: $("duration-format"),
  csv: $("download-csv"),
  print: $("print"),
  filterSummary: $("filter-summary"),
});
