// The client report behind a share link: one project or client, hours and (unless hidden)
// money. Everything comes from /api/share/report, which the server scopes to the link; the
// scoped /events stream only says which days changed, and the page refetches. The link's
// expiry is kept by the page's clock: at that moment the stream is closed and the page says so.
// Charts (plain SVG, charts.js): hours per day, billable and not, and the share of each project
// (a client's link) or task (a project's link).

import { LiveStream, debounce, dot, fill, fmtApiAmounts, fmtDay, fmtHM, fmtRange, h, params } from "./common.js";
import { presetRange } from "./report.js";
import { dailyChart, shareChart } from "./charts.js";

const $ = (id) => document.getElementById(id);
const PRESETS = ["this-month", "last-month", "this-week", "last-week", "custom"];
const REFETCH_DEBOUNCE_MS = 500;
const RUNNING_REFRESH_MS = 60000;
const CONTEXT_WAIT_MS = 5000;
const share = params.get("share") || "";
const state = {
  ctx: null,
  // null until the server names the link's default range in its first answer.
  preset: PRESETS.includes(params.get("range")) ? params.get("range") : null,
  custom: { start: params.get("start"), end: params.get("end") },
  range: null,
  data: null,
  expiresAt: null,
  expired: false,
};
if (!state.preset && state.custom.start && state.custom.end) state.preset = "custom";
if (state.preset) $("preset").value = state.preset;

const fmtWhen = (epochS) =>
  new Intl.DateTimeFormat(undefined, { dateStyle: "long", timeStyle: "short" }).format(new Date(epochS * 1000));

function money(amounts, hide) {
  return hide ? null : h("td", { class: "num amount", text: fmtApiAmounts(amounts) || "–" });
}

function totalsRow(label, row, hide, extra = null) {
  return h(
    "tr",
    {},
    h("td", { class: "name" }, label, extra),
    h("td", { class: "num", text: fmtHM(row.totalSeconds) }),
    h("td", { class: "num", text: fmtHM(row.billableSeconds) }),
    money(row.amounts, hide),
  );
}

/** "Mar 2 – 8", "Mar 30 – Apr 5": the year is in the range label above. */
function weekLabel(week) {
  const short = { month: "short", day: "numeric" };
  if (week.start === week.end) return fmtDay(week.start, short);
  const sameMonth = week.start.slice(0, 7) === week.end.slice(0, 7);
  return `${fmtDay(week.start, short)} – ${fmtDay(week.end, sameMonth ? { day: "numeric" } : short)}`;
}

function emptyRow(columns, text) {
  return h("tr", {}, h("td", { class: "empty", colspan: String(columns), text }));
}

function render(data) {
  const hide = data.hideAmounts;
  const columns = hide ? 3 : 4;
  const client = data.scope.kind === "client";
  const name = data.scope.name;
  document.title = `${name} · hours`;
  $("title").textContent = name;
  const meta = [];
  if (data.sender) meta.push(`Sent by ${data.sender}`);
  meta.push(`Link valid until ${fmtWhen(data.expiresAt)}`);
  $("meta").textContent = meta.join(" · ");
  const what = hide ? "Hours" : "Hours and amounts";
  $("heading").textContent = client ? `${what}, all projects` : what;
  $("range-label").textContent = fmtRange(data.dateRange.start, data.dateRange.end);
  $("total-hours").textContent = fmtHM(data.totalSeconds);
  $("total-billable").textContent = fmtHM(data.billableSeconds);
  $("amount-box").hidden = hide;
  for (const cell of document.querySelectorAll(".amount-col")) cell.hidden = hide;
  if (!hide) $("total-amount").textContent = fmtApiAmounts(data.amounts) || "–";

  // A range before the data clockwall holds would read as zeros: say so, in the client's terms.
  const coverage = data.coverage;
  const short = Boolean(coverage) && coverage.complete === false;
  $("coverage").hidden = !short;
  if (short) {
    const who = data.sender || "the sender";
    const from = coverage.from ? fmtDay(coverage.from, { month: "short", day: "numeric", year: "numeric" }) : null;
    $("coverage").textContent = from
      ? `Hours before ${from} are not in this report yet, so totals that reach before it are short; ask ${who} to add them.`
      : `The hours of this range may not all be in this report yet; ask ${who} to add them.`;
  }
  const running = $("running-note");
  running.hidden = !(data.includesRunning || data.excludesRunning);
  running.textContent = data.excludesRunning
    ? "Timers still running are left out until they stop."
    : `Includes ${fmtHM(data.runningSeconds)} from timers still running; these totals grow until they stop.`;

  // A project link's one project is the totals above: the table is for a client's projects.
  $("projects-block").hidden = !client;
  fill(
    $("projects"),
    data.projects.length
      ? data.projects.map((p) => totalsRow([dot(p.color || ""), p.name], p, hide))
      : emptyRow(columns, "No time tracked in this range."),
  );
  fill(
    $("weeks"),
    (data.weeks || []).map((w) => totalsRow(weekLabel(w), w, hide)),
  );
  // Tasks are worth a table only when some entry has one.
  const tasks = data.tasks || [];
  $("tasks-block").hidden = !tasks.some((t) => t.id);
  fill(
    $("tasks"),
    tasks.map((t) =>
      totalsRow(t.name, t, hide, client && t.project?.name ? h("span", { class: "sub", text: t.project.name }) : null),
    ),
  );
  renderCharts(data, client);
  for (const cell of document.querySelectorAll(".project-col")) cell.hidden = !client;
  fill(
    $("entries"),
    data.entries.length
      ? data.entries.map((e) =>
          h(
            "tr",
            { class: e.running ? "running" : null },
            h("td", { class: "when", text: fmtDay(e.day, { weekday: "short", month: "short", day: "numeric" }) }),
            client ? h("td", { class: "proj" }, dot((e.project && e.project.color) || ""), e.project ? e.project.name : "") : null,
            h("td", { class: "desc" }, e.description || "", e.task ? h("span", { class: "sub", text: e.task }) : null),
            h("td", { class: "who", text: e.user }),
            h(
              "td",
              { class: "num dur" },
              fmtHM(e.durationSeconds),
              e.running ? h("span", { class: "running-pill", text: "running" }) : null,
            ),
          ),
        )
      : emptyRow(client ? 5 : 4, "No entries in this range."),
  );
  const notes = [];
  if (data.truncated) {
    notes.push(`The list is cut at ${data.entries.length} entries; the totals above include every entry.`);
  }
  $("note").textContent = notes.join(" ");
  const foot = [];
  if (data.sender) foot.push(`Report shared by ${data.sender}.`);
  foot.push(`This link works until ${fmtWhen(data.expiresAt)}.`);
  $("foot").textContent = foot.join(" ");
}

/** Hours per day (billable and not), and the share of each project or task. */
function renderCharts(data, client) {
  const daily = data.daily || [];
  dailyChart($("chart-daily"), {
    days: daily.map((d) => d.day),
    series: [
      { key: "billable", label: "Billable", values: daily.map((d) => d.billableSeconds) },
      { key: "non-billable", label: "Non-billable", color: "#9aa5b4", pattern: 1, values: daily.map((d) => d.totalSeconds - d.billableSeconds) },
    ],
    title: "Hours per day",
    fmt: fmtHM,
  });
  // A client's projects, or a project's tasks; one slice alone says nothing: no chart then.
  const items = (client ? data.projects : data.tasks || [])
    .filter((it) => it.totalSeconds > 0)
    .map((it, i) => ({
      key: `${it.id ?? "none"}|${it.project?.id ?? ""}|${i}`,
      label: it.name,
      color: client ? it.color : null,
      seconds: it.totalSeconds,
    }));
  const title = client ? "Share by project" : "Share by task";
  $("chart-share-title").textContent = title;
  $("chart-share").closest("figure").hidden = items.length < 2;
  if (items.length >= 2) shareChart($("chart-share"), { items, title, fmt: fmtHM });
  else fill($("chart-share"));
}

function showControls() {
  $("custom").hidden = state.preset !== "custom";
  if (state.preset) $("preset").value = state.preset;
  if (state.range) {
    $("start").value = state.range.start;
    $("end").value = state.range.end;
  }
}

function syncUrl() {
  const next = new URLSearchParams({ share });
  if (state.preset && state.preset !== "custom") next.set("range", state.preset);
  if (state.preset === "custom" && state.range) {
    next.set("start", state.range.start);
    next.set("end", state.range.end);
  }
  history.replaceState(null, "", `${location.pathname}?${next}`);
}

function computeRange() {
  if (!state.preset) return null; // the server's default
  if (state.preset === "custom") {
    const { start, end } = state.custom;
    return start && end && start <= end ? { start, end } : null;
  }
  return presetRange(state.preset, state.ctx);
}

let generation = 0;
let runningTimer = null;
async function refetch() {
  if (!state.ctx || state.expired) return;
  const range = computeRange();
  const query = new URLSearchParams({ share });
  if (range) {
    query.set("start", range.start);
    query.set("end", range.end);
  }
  const mine = ++generation;
  document.body.classList.add("loading");
  try {
    const response = await fetch(`/api/share/report?${query}`, { headers: { Accept: "application/json" } });
    const data = await response.json().catch(() => ({}));
    if (mine !== generation) return;
    if (!response.ok) throw new Error(data.error ? `${data.error}.` : `HTTP ${response.status}`);
    state.data = data;
    state.expiresAt = data.expiresAt;
    if (!state.preset) state.preset = data.preset || "this-month";
    state.range = { start: data.dateRange.start, end: data.dateRange.end };
    $("problem").hidden = true;
    render(data);
    showControls();
    syncUrl();
    document.body.dataset.loaded = `${state.range.start}..${state.range.end}`;
    clearTimeout(runningTimer);
    if (data.includesRunning) runningTimer = setTimeout(refetch, RUNNING_REFRESH_MS);
    checkExpiry();
  } catch (error) {
    if (mine !== generation) return;
    $("problem").hidden = false;
    $("problem-text").textContent = `Could not load the report: ${error.message}`;
  } finally {
    if (mine === generation) document.body.classList.remove("loading");
  }
}
const refetchSoon = debounce(refetch, REFETCH_DEBOUNCE_MS);

$("preset").addEventListener("change", () => {
  state.preset = $("preset").value;
  if (state.preset === "custom" && state.range) Object.assign(state.custom, state.range);
  showControls();
  refetch();
});
for (const input of [$("start"), $("end")]) {
  input.addEventListener("change", () => {
    state.custom = { start: $("start").value, end: $("end").value };
    if (state.custom.start && state.custom.end && state.custom.start <= state.custom.end) refetch();
  });
}
$("print").addEventListener("click", () => window.print());
$("retry").addEventListener("click", () => {
  if (!state.expired) stream.restart();
  refetch();
});

function showState() {
  if (state.expired) return;
  const live = stream.state === "live";
  $("conn").className = `conn ${live ? "ok" : stream.failed ? "bad" : "wait"}`;
  $("conn-text").textContent = live ? "Live" : stream.state === "connecting" ? "Connecting…" : "Reconnecting…";
  if (stream.failed && stream.problem && !state.data) {
    $("problem").hidden = false;
    $("problem-text").textContent = `The report cannot be opened: ${stream.problem}`;
  }
}

/** At the link's expiry (by this page's clock) the stream closes and the page says so. */
function checkExpiry() {
  if (state.expired || state.expiresAt === null || Date.now() < state.expiresAt * 1000) return;
  state.expired = true;
  stream.stop();
  clearTimeout(runningTimer);
  for (const control of $("range").elements) control.disabled = true;
  $("expired").hidden = false;
  $("conn").className = "conn bad";
  $("conn-text").textContent = "Link expired";
  document.body.dataset.expired = "1";
}

const stream = new LiveStream(`/events?${new URLSearchParams({ share })}`, {
  onSnapshot(data) {
    state.ctx = { timezone: data.timezone || "UTC", weekStart: data.weekStart || "MONDAY" };
    refetch(); // first load, or after a reconnect that could not resume
  },
  onChange(data) {
    const days = data.days || [];
    const touched = days.some((d) => d >= state.range?.start && d <= state.range?.end);
    if (!state.range || data.all || touched) refetchSoon();
  },
  onStatus() {},
  onState: showState,
});
stream.start();
// A timer, not a timeout at the expiry: a link may live a year (past setTimeout's ~24.8 days),
// and a laptop that slept must notice at once on waking.
setInterval(() => {
  stream.tick();
  showState();
  checkExpiry();
}, 1000);
// Without a snapshot (an SSE-hostile proxy) still show numbers, in the browser's zone.
setTimeout(() => {
  if (state.ctx) return;
  state.ctx = { timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC", weekStart: "MONDAY" };
  refetch();
}, CONTEXT_WAIT_MS);
