// The client report behind a share link: one project or client, hours and (unless hidden)
// money. Everything comes from /api/share/report, which the server scopes to the link; the
// scoped /events stream only says which days changed, and the page refetches.

import { LiveStream, debounce, dot, fill, fmtApiAmounts, fmtDay, fmtHM, fmtRange, h, params } from "./common.js";
import { presetRange } from "./report.js";

const $ = (id) => document.getElementById(id);
const share = params.get("share") || "";
const state = { ctx: null, preset: params.get("range") || "this-month", range: null, data: null };
$("preset").value = state.preset;

function render(data) {
  const name = data.scope.name;
  document.title = `${name} · hours`;
  $("title").textContent = name;
  const what = data.hideAmounts ? "Hours" : "Hours and amounts";
  $("heading").textContent = data.scope.kind === "client" ? `${what}, all projects` : what;
  $("range-label").textContent = fmtRange(data.dateRange.start, data.dateRange.end);
  $("total-hours").textContent = fmtHM(data.totalSeconds);
  $("total-billable").textContent = fmtHM(data.billableSeconds);
  $("amount-box").hidden = data.hideAmounts;
  for (const cell of document.querySelectorAll(".amount-col")) cell.hidden = data.hideAmounts;
  if (!data.hideAmounts) $("total-amount").textContent = fmtApiAmounts(data.amounts) || "–";
  fill(
    $("projects"),
    data.projects.length
      ? data.projects.map((p) =>
          h(
            "tr",
            {},
            h("td", { class: "name" }, dot(p.color || ""), p.name),
            h("td", { class: "num", text: fmtHM(p.totalSeconds) }),
            h("td", { class: "num", text: fmtHM(p.billableSeconds) }),
            data.hideAmounts ? null : h("td", { class: "num", text: fmtApiAmounts(p.amounts) || "–" }),
          ),
        )
      : h("tr", {}, h("td", { class: "empty", colspan: "4", text: "No time tracked in this range." })),
  );
  fill(
    $("entries"),
    data.entries.map((e) =>
      h(
        "tr",
        {},
        h("td", { text: fmtDay(e.day, { weekday: "short", month: "short", day: "numeric" }) }),
        h("td", {}, dot((e.project && e.project.color) || ""), e.project ? e.project.name : ""),
        h("td", { text: e.description || "" }),
        h("td", { text: e.user }),
        h("td", { class: "num", text: fmtHM(e.durationSeconds) + (e.running ? " ▸" : "") }),
      ),
    ),
  );
  const notes = [];
  if (data.includesRunning) notes.push("Includes timers running now.");
  if (data.truncated) {
    notes.push(`The list is cut at ${data.entries.length} entries; the totals above include every entry.`);
  }
  $("note").textContent = notes.join(" ");
}

async function refetch() {
  if (!state.ctx) return;
  const range = presetRange(state.preset, state.ctx);
  state.range = range;
  const query = new URLSearchParams({ share, start: range.start, end: range.end });
  try {
    const response = await fetch(`/api/share/report?${query}`, { headers: { Accept: "application/json" } });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error ? `${data.error}.` : `HTTP ${response.status}`);
    state.data = data;
    $("problem").hidden = true;
    render(data);
    document.body.dataset.loaded = `${range.start}..${range.end}`;
  } catch (error) {
    $("problem").hidden = false;
    $("problem-text").textContent = `Could not load the report: ${error.message}`;
  }
}
const refetchSoon = debounce(refetch, 500);

$("preset").addEventListener("change", () => {
  state.preset = $("preset").value;
  refetch();
});
$("retry").addEventListener("click", () => refetch());

function showState(stream) {
  const conn = $("conn");
  conn.className = `conn ${stream.state === "live" ? "ok" : "wait"}`;
  $("conn-text").textContent = stream.state === "live" ? "Live" : "Reconnecting…";
}

const stream = new LiveStream(`/events?${new URLSearchParams({ share })}`, {
  onSnapshot(data) {
    state.ctx = { timezone: data.timezone || "UTC", weekStart: data.weekStart || "MONDAY" };
    refetch();
  },
  onChange(data) {
    const days = data.days || [];
    if (!state.range || days.some((d) => d >= state.range.start && d <= state.range.end)) refetchSoon();
  },
  onStatus() {},
  onState() {
    showState(stream);
  },
});
stream.start();
setInterval(() => {
  if (state.data && state.data.includesRunning) refetch();
}, 60000);
