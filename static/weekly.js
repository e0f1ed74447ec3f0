// Weekly report: entries grouped by day with day and week totals, printable, copyable as text.

import { dot, fill, fmtDay, fmtHM, fmtRange, h, timeInZone } from "./common.js";
import { startReport } from "./report.js";

const $ = (id) => document.getElementById(id);
let lastText = "";

function groupByDay(entries) {
  const days = new Map();
  for (const entry of entries) {
    if (!days.has(entry.day)) days.set(entry.day, []);
    days.get(entry.day).push(entry);
  }
  return [...days.entries()].sort((a, b) => a[0].localeCompare(b[0]));
}

function timeSpan(entry, tz) {
  const start = timeInZone(new Date(entry.start), tz);
  return entry.end ? `${start}–${timeInZone(new Date(entry.end), tz)}` : `${start}–now`;
}

function projectLabel(entry) {
  if (!entry.project) return "No project";
  return entry.client?.name ? `${entry.project.name} (${entry.client.name})` : entry.project.name;
}

/** Text on one line: a description or name with a line break (or a tab, or any other control
 * character) would otherwise start lines of its own in the copied report, e.g. a forged total. */
function oneLine(text) {
  return String(text ?? "").replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, " ");
}

function render(data, view) {
  const tz = view.ctx.timezone;
  const days = groupByDay(data.entries);
  $("week-total").textContent = `Total ${fmtHM(data.totalSeconds)} h`;
  fill(
    $("days"),
    days.length ? null : h("p", { class: "empty", text: "No time tracked in this range." }),
    days.map(([day, entries]) => {
      const total = entries.reduce((sum, e) => sum + e.durationSeconds, 0);
      return h(
        "section",
        { class: "day", "data-day": day },
        h("h3", {}, h("span", { class: "day-name", text: fmtDay(day) }), h("span", { class: "day-total", text: fmtHM(total) })),
        h(
          "ul",
          { class: "entries" },
          entries.map((e) =>
            h(
              "li",
              { class: `entry${e.running ? " running" : ""}` },
              h("span", { class: "time", text: timeSpan(e, tz) }),
              h("span", { class: "duration", text: fmtHM(e.durationSeconds) }),
              h("span", { class: "tag" }, dot(e.project?.color || ""), h("span", { text: projectLabel(e) })),
              h("span", { class: "desc", text: e.description || "(no description)" }),
              h("span", { class: "who", text: e.user.name }),
            ),
          ),
        ),
      );
    }),
  );
  $("note").textContent = [
    data.includesRunning ? "Includes running timers up to now." : "",
    data.truncated ? "Only the first 5000 entries are shown." : "",
  ].filter(Boolean).join(" ");
  lastText = asText(data, view, days);
}

/** Plain text for an e-mail: a heading, then each day with its total and one line per entry. */
function asText(data, view, days) {
  const tz = view.ctx.timezone;
  const lines = [`Weekly report · ${fmtRange(view.range.start, view.range.end)}`, `Total: ${fmtHM(data.totalSeconds)} h`];
  for (const [day, entries] of days) {
    const total = entries.reduce((sum, e) => sum + e.durationSeconds, 0);
    lines.push("", `${fmtDay(day)} — ${fmtHM(total)} h`);
    for (const e of entries) {
      const desc = e.description ? ` — ${oneLine(e.description)}` : "";
      const who = oneLine(e.user.name);
      lines.push(`  ${timeSpan(e, tz)}  ${fmtHM(e.durationSeconds).padStart(5)}  ${oneLine(projectLabel(e))}${desc} (${who})`);
    }
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

startReport({ apiUrl: (query) => `/api/entries?${query}`, render });
