// The wall: a snapshot plus change events folded into day maps, re-rendered every second so
// running timers (and every total that includes them) tick even while the stream reconnects.

import {
  LiveStream,
  adoptDays,
  adoptNames,
  amountMinor,
  applyChange,
  dayInZone,
  dot,
  fill,
  fmtAgo,
  fmtAmounts,
  fmtClock,
  fmtDay,
  fmtDuration,
  fmtHM,
  h,
  idMap,
  kiosk,
  mergeNames,
  params,
  setupPage,
  streamIdTime,
  timeInZone,
} from "./common.js";

const FEED_SHOWN = 12;
const $ = (id) => document.getElementById(id);

const state = {
  snapshot: null, // the last snapshot's context: range, timezone, weekStart, longTimerHours
  days: idMap(),
  running: new Map(),
  names: adoptNames(null),
  feed: [],
  lastToday: null,
  lastFreshAt: 0,
};

const query = new URLSearchParams();
if (params.get("workspace")) query.set("workspace", params.get("workspace"));
const stream = new LiveStream(`/events${query.toString() ? `?${query}` : ""}`, {
  onSnapshot(data) {
    state.snapshot = data;
    state.days = adoptDays(data.days);
    state.running = new Map((data.running || []).map((e) => [e.id, e]));
    state.names = adoptNames(data.names);
    state.feed = (data.feed || []).slice(-FEED_SHOWN * 2);
    render();
  },
  onChange(data, id) {
    if (!state.snapshot) return;
    mergeNames(state.names, data);
    if (data.type === "entry") {
      applyChange(state.days, data);
      if (data.running) state.running.set(data.entry.id, data.entry);
      else state.running.delete(data.entry.id);
      state.feed.push({ id, ...data });
      if (state.feed.length > FEED_SHOWN * 2) state.feed.splice(0, state.feed.length - FEED_SHOWN * 2);
    }
    render();
  },
  onStatus() {
    renderConnection();
  },
  onState() {
    renderConnection();
  },
});

// Derived numbers --------------------------------------------------------------------------------
const tz = () => state.snapshot?.timezone || "UTC";
const today = () => dayInZone(new Date(), tz());
const elapsedOf = (entry, now) => Math.max(0, Math.floor((now - Date.parse(entry.start)) / 1000));
const userName = (id) => state.names.user?.[id]?.name || "Someone";
const project = (id) => (id ? state.names.project?.[id] : null);
const clientName = (id) => (id ? state.names.client?.[id]?.name : null);

function emptyBucket() {
  return { s: 0, b: 0, a: idMap() };
}

function addBucket(target, bucket) {
  target.s += bucket.s || 0;
  target.b += bucket.b || 0;
  for (const [currency, value] of Object.entries(bucket.a || {})) {
    target.a[currency] = (target.a[currency] || 0) + value;
  }
}

/** Totals of one dimension over `dayList`, with running timers' elapsed time added. */
function totals(dim, dayList, now) {
  const wanted = new Set(dayList);
  const out = new Map();
  const bucketOf = (id) => {
    if (!out.has(id)) out.set(id, emptyBucket());
    return out.get(id);
  };
  for (const day of dayList) {
    for (const [id, bucket] of Object.entries(state.days[day]?.[dim] || {})) addBucket(bucketOf(id), bucket);
  }
  for (const entry of state.running.values()) {
    if (!wanted.has(dayInZone(new Date(entry.start), tz()))) continue;
    const elapsed = elapsedOf(entry, now);
    const ids = {
      A: [""],
      P: [entry.projectId || "-"],
      U: [entry.userId],
      C: [entry.clientId || "-"],
    }[dim];
    const running = { s: elapsed, b: entry.billable ? elapsed : 0, a: idMap() };
    if (entry.billable && entry.rate && entry.currency) running.a[entry.currency] = amountMinor(elapsed, entry.rate);
    for (const id of ids) addBucket(bucketOf(id), running);
  }
  return out;
}

function weekDays() {
  return Object.keys(state.days).sort();
}

// Rendering ----------------------------------------------------------------------------------------
function render() {
  const now = Date.now();
  checkDate(now);
  renderConnection(now);
  $("clock").textContent = timeInZone(new Date(now), tz());
  if (!state.snapshot) return;
  const today = dayInZone(new Date(now), tz());
  renderRunning(now, today);
  renderAlerts(now, today);
  renderStat($("today"), "Today", totals("A", [today], now).get("") || emptyBucket());
  const week = weekDays();
  const range = state.snapshot.range;
  renderStat($("week"), "This week", totals("A", week, now).get("") || emptyBucket(), range);
  renderProjects(totals("P", week, now));
  renderPeople(totals("U", [today], now), totals("U", week, now));
  renderFeed(now);
}

function renderConnection(now = Date.now()) {
  stream.tick();
  const { cls, text } = stream.describe(now);
  const conn = $("conn");
  conn.className = `conn ${cls}`;
  $("conn-text").textContent = text;
  const problem = $("problem");
  if (stream.failed) {
    problem.hidden = false;
    $("problem-text").textContent = stream.problem
      ? `clockwall refused the live stream: ${stream.problem}. Retrying by itself…`
      : state.snapshot
        ? "The connection to clockwall is lost. Showing the last known numbers; retrying by itself…"
        : "Can't reach clockwall. Retrying by itself…";
  } else if (stream.storeDown(now)) {
    problem.hidden = false;
    $("problem-text").textContent =
      "The store (Redis) is unreachable: numbers may be stale until it is back.";
  } else {
    problem.hidden = true;
  }
  document.body.classList.toggle("no-data", !state.snapshot);
}

/** A new local day (midnight) or a week past the snapshot's range: reconnect for a fresh one. */
function checkDate(now) {
  if (!state.snapshot) return;
  const today = dayInZone(new Date(now), tz());
  if (state.lastToday === null) state.lastToday = today;
  const outOfRange = today > state.snapshot.range.end;
  if ((today !== state.lastToday || outOfRange) && now - state.lastFreshAt > 60000) {
    state.lastToday = today;
    state.lastFreshAt = now;
    stream.restart({ fresh: true });
  }
}

function renderRunning(now, today) {
  const entries = [...state.running.values()].sort(
    (a, b) => Date.parse(a.start) - Date.parse(b.start) || a.id.localeCompare(b.id),
  );
  $("empty").hidden = entries.length > 0;
  $("now-count").textContent = entries.length ? String(entries.length) : "";
  const longS = (state.snapshot.longTimerHours || 8) * 3600;
  $("running").classList.toggle("compact", entries.length > 5);
  fill(
    $("running"),
    entries.map((entry) => {
      const p = project(entry.projectId);
      const client = clientName(entry.clientId || p?.clientId);
      const elapsed = elapsedOf(entry, now);
      const startDay = dayInZone(new Date(entry.start), tz());
      const warn = elapsed > longS || startDay < today;
      return h(
        "li",
        { class: `timer${warn ? " warn" : ""}`, "data-entry": entry.id },
        h("div", { class: "who", text: userName(entry.userId) }),
        h(
          "div",
          { class: "what" },
          dot(p?.color),
          h("span", { class: "project", text: p?.name || "No project" }),
          client ? h("span", { class: "client", text: client }) : null,
        ),
        entry.description ? h("div", { class: "desc", text: entry.description }) : null,
        h("div", { class: "elapsed", text: fmtClock(elapsed) }),
      );
    }),
  );
  fitPanel($("running"), "running");
}

function renderAlerts(now, today) {
  const longS = (state.snapshot.longTimerHours || 8) * 3600;
  const alerts = [];
  for (const entry of state.running.values()) {
    const who = userName(entry.userId);
    const elapsed = elapsedOf(entry, now);
    const startDay = dayInZone(new Date(entry.start), tz());
    if (startDay < today) {
      alerts.push(`${who}'s timer is still running since ${fmtDay(startDay, { weekday: "long", month: "short", day: "numeric" })}`);
    } else if (elapsed > longS) {
      alerts.push(`${who}'s timer has been running for ${fmtDuration(elapsed)}`);
    }
  }
  fill($("alerts"), alerts.map((text) => h("li", { class: "alert", text })));
}

function renderStat(el, label, bucket, range) {
  const share = bucket.s ? Math.round((bucket.b / bucket.s) * 100) : 0;
  const money = fmtAmounts(bucket.a);
  fill(
    el,
    h("div", { class: "stat-label", text: label }),
    h("div", { class: "stat-range", text: range ? `${fmtDay(range.start, { month: "short", day: "numeric" })} – ${fmtDay(range.end, { month: "short", day: "numeric" })}` : fmtDay(today(), { weekday: "long", month: "short", day: "numeric" }) }),
    h("div", { class: "stat-hours" }, h("span", { class: "big", text: fmtHM(bucket.s) }), h("span", { class: "unit", text: " h" })),
    h(
      "div",
      { class: "stat-line" },
      h("span", { class: "share", text: `${share}% billable` }),
    ),
    money ? h("div", { class: "money" }, money.split(" + ").map((m) => h("span", { text: m }))) : null,
  );
}

function renderProjects(byProject) {
  const rows = [...byProject.entries()].filter(([, b]) => b.s > 0).sort((a, b) => b[1].s - a[1].s);
  const max = rows.length ? rows[0][1].s : 1;
  const shown = rows.slice(0, 8);
  fill(
    $("projects"),
    shown.length ? null : h("li", { class: "empty small", text: "Nothing tracked this week yet." }),
    shown.map(([id, bucket]) => {
      const p = project(id === "-" ? null : id);
      const color = p?.color || "#8a94a6";
      const estimate = p?.estimateSeconds;
      let budget = null;
      if (estimate) {
        const ratio = bucket.s / estimate;
        budget = h(
          "div",
          { class: `budget${ratio > 1 ? " over" : ratio > 0.8 ? " near" : ""}` },
          h("div", { class: "track" }, h("div", { class: "fill", style: { width: `${Math.min(100, ratio * 100).toFixed(1)}%` } })),
          h("span", { class: "budget-text", text: `${Math.round(ratio * 100)}% of ${fmtDuration(estimate)} estimate` }),
        );
      }
      return h(
        "li",
        { class: "bar-row" },
        h("div", { class: "bar-head" }, dot(color), h("span", { class: "name", text: p?.name || "No project" }), h("span", { class: "hours", text: fmtHM(bucket.s) })),
        h("div", { class: "track" }, h("div", { class: "fill", style: { width: `${Math.max(1, (bucket.s / max) * 100).toFixed(1)}%`, "--bar": color } })),
        budget,
      );
    }),
    rows.length > shown.length ? h("li", { class: "more", text: `+ ${rows.length - shown.length} more` }) : null,
  );
  fitPanel($("projects"), "projects");
}

function renderPeople(todayByUser, weekByUser) {
  const busy = new Set([...state.running.values()].map((e) => e.userId));
  const rows = [...weekByUser.entries()].filter(([, b]) => b.s > 0);
  for (const id of busy) if (!weekByUser.has(id)) rows.push([id, emptyBucket()]);
  rows.sort((a, b) => b[1].s - a[1].s || userName(a[0]).localeCompare(userName(b[0])));
  fill(
    $("people"),
    rows.map(([id, week]) =>
      h(
        "li",
        { class: `person${busy.has(id) ? " busy" : ""}` },
        h("span", { class: "name", text: userName(id) }),
        h("span", { class: "today", text: fmtHM(todayByUser.get(id)?.s || 0) }),
        h("span", { class: "week", text: fmtHM(week.s) }),
      ),
    ),
  );
  fitPanel($("people"), "people");
}

function sentence(change) {
  const entry = change.entry || {};
  const who = change.names?.user || userName(entry.userId);
  const name = change.names?.project || project(entry.projectId)?.name || null;
  const seconds = entry.start && entry.end ? (Date.parse(entry.end) - Date.parse(entry.start)) / 1000 : 0;
  const amount = seconds ? fmtDuration(seconds) : "an entry";
  const on = name ? ` on ${name}` : "";
  switch (change.action) {
    case "started":
      return `${who} started ${name || "a timer"}`;
    case "stopped":
      return `${who} stopped ${name || "a timer"} · ${fmtDuration(seconds)}`;
    case "created":
      return `${who} added ${amount}${on}`;
    case "deleted":
      return `${who} deleted ${amount}${on}`;
    case "restored":
      return `${who} restored ${amount}${on}`;
    default:
      return `${who} edited ${name ? `an entry on ${name}` : "an entry"}${seconds ? ` · ${fmtDuration(seconds)}` : ""}`;
  }
}

/**
 * Drop trailing items of `list` until its panel shows everything without scrolling, and say
 * how many did not fit (a TV cannot scroll).
 */
function fitPanel(list, noun) {
  const panel = list.closest(".panel");
  const items = [...list.children];
  let hidden = 0;
  while (panel.scrollHeight > panel.clientHeight + 1 && items.length > 1) {
    items.pop().remove();
    hidden += 1;
  }
  if (hidden) {
    if (items.length > 1) {
      items.pop().remove();
      hidden += 1;
    }
    list.append(h("li", { class: "more", text: `+ ${hidden} more ${noun}` }));
  }
}

function renderFeed(now) {
  const items = state.feed.slice(-FEED_SHOWN).reverse();
  fill(
    $("feed"),
    items.length ? null : h("li", { class: "empty small", text: "Changes appear here as they happen." }),
    items.map((change) => {
      const at = streamIdTime(change.id);
      return h(
        "li",
        { class: `feed-item ${change.action}` },
        dot(change.names?.color || project(change.entry?.projectId)?.color),
        h("span", { class: "text", text: sentence(change) }),
        at ? h("time", { datetime: at.toISOString(), text: (now - at) < 3600_000 ? fmtAgo((now - at) / 1000) : timeInZone(at, tz()) }) : null,
      );
    }),
  );
  fitPanel($("feed"), "changes");
}

// Start ------------------------------------------------------------------------------------------------
setupPage();
$("retry").addEventListener("click", () => stream.restart());
if (kiosk) $("retry").hidden = true;
stream.start();
render();
setInterval(render, 1000);
