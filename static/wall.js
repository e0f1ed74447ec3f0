// The wall: a snapshot plus change events folded into day maps. A data change re-renders the
// panels keyed by id (nodes are kept, text is written only where it differs) and measures their
// pages once; the one-second tick rewrites only texts that changed, so an idle wall costs at most
// one layout a second. From the address: ?distance=3 (metres to the screen, 5 by default)
// scales every size, ?rotate=10 (seconds a page stays), ?hide=money (an office TV), ?kiosk=1.

import {
  LiveStream,
  adoptDays,
  adoptNames,
  applyChange,
  bucketMinor,
  dayInZone,
  daysBetween,
  fmtClock,
  fmtDay,
  fmtDuration,
  fmtHoursMinutes,
  fmtMoney,
  h,
  idMap,
  kiosk,
  mergeNames,
  minorOfExact,
  params,
  safeColor,
  setupPage,
  streamIdTime,
  timeInZone,
} from "./common.js";

const FEED_KEPT = 30;
const NONE = "-"; // a cell part that is absent; the group of time without a project or client
const ALERTS_SHOWN = 2;
const STALE_AFTER_MS = 60_000; // a stream down this long: the numbers shown are stale
const $ = (id) => document.getElementById(id);

function numberParam(name, min, max, fallback) {
  const value = Number.parseFloat(params.get(name) || "");
  return Number.isFinite(value) ? Math.min(max, Math.max(min, value)) : fallback;
}
const distanceM = numberParam("distance", 1, 20, 5);
const rotateMs = numberParam("rotate", 3, 600, 10) * 1000;
const hideMoney = (params.get("hide") || "").split(",").includes("money");
const scrolling = matchMedia("(max-width: 760px)"); // a phone: every row shown, the page scrolls

const state = {
  snapshot: null, // the last snapshot's context: range, timezone, weekStart, longTimerHours
  streamId: null, // the newest change the wall holds ("0-0": the workspace never had one)
  days: idMap(),
  running: new Map(),
  names: adoptNames(null),
  progressDelta: idMap(), // project id -> what changes since the snapshot added to its progress
  progressExact: idMap(), // project id -> the same for a budget's exact part (rate_minor x s)
  feed: [],
  lastChangeAt: null, // when the newest entry change was written (ms)
  currencies: [], // every currency seen, in the order first shown: amounts never swap places
  storeOk: true,
  lastToday: null,
  lastFreshAt: 0,
  turn: null, // which rotation step the paged panels show
  alertKeys: "",
  announced: "",
  order: { running: [], away: [], people: [], projects: [] }, // kept between data changes
  pages: new Map(), // list element -> [[node, ...], ...]
};

const query = new URLSearchParams();
if (params.get("workspace")) query.set("workspace", params.get("workspace"));
const stream = new LiveStream(`/events${query.toString() ? `?${query}` : ""}`, {
  onSnapshot(data, id) {
    state.snapshot = data;
    state.streamId = id;
    state.days = adoptDays(data.days);
    // Every day of the range is held, those without totals too: later changes land on them.
    if (data.range) for (const day of daysBetween(data.range.start, data.range.end)) state.days[day] ||= idMap();
    dataChanged();
    state.running = new Map((data.running || []).map((e) => [e.id, e]));
    state.names = adoptNames(data.names);
    state.progressDelta = idMap();
    state.progressExact = idMap();
    state.feed = (data.feed || []).slice(-FEED_KEPT);
    const newest = state.feed.length ? streamIdTime(state.feed[state.feed.length - 1].id) : null;
    state.lastChangeAt = newest ? newest.getTime() : null;
    noteCurrencies(bucketMinor(totals("A", weekDays(), Date.now()).get("")));
    scheduleRender();
  },
  onChange(data, id) {
    if (!state.snapshot) return;
    // A project's estimate or budget changed: its progress is measured anew by the server.
    const remeasure = data.type === "names" && estimatesChange(data);
    mergeNames(state.names, data);
    // Totals are grouped by the names at render time: a moved or deleted project re-groups.
    dataChanged();
    // The totals were rebuilt under new settings (zone, report rounding): start afresh.
    if (remeasure || data.type === "rebuilt") stream.restart({ fresh: true });
    if (data.type === "entry") {
      applyChange(state.days, data);
      applyProgress(data);
      if (data.running) state.running.set(data.entry.id, data.entry);
      else state.running.delete(data.entry.id);
      state.feed.push({ id, ...data });
      if (state.feed.length > FEED_KEPT) state.feed.splice(0, state.feed.length - FEED_KEPT);
      state.streamId = id;
      state.lastChangeAt = streamIdTime(id)?.getTime() ?? Date.now();
    }
    scheduleRender();
  },
  onStatus(data) {
    const ok = (data.store || "ok") === "ok";
    // The store is back, maybe empty (a Redis restarted without its data): resume from the last
    // id, which the server answers with a fresh snapshot when that id is gone.
    if (ok && !state.storeOk && state.snapshot) stream.restart();
    state.storeOk = ok;
    renderStatus(Date.now());
  },
  onState() {
    renderStatus(Date.now());
  },
});

// Derived numbers --------------------------------------------------------------------------------
const tz = () => state.snapshot?.timezone || "UTC";
const elapsedOf = (entry, now) => Math.max(0, Math.floor((now - Date.parse(entry.start)) / 1000));
const userName = (id) => state.names.user?.[id]?.name || "Someone";
const project = (id) => (id && id !== NONE ? state.names.project?.[id] : null);
const clientName = (id) => (id && id !== NONE ? state.names.client?.[id]?.name : null);
const longTimerS = () => (state.snapshot?.longTimerHours || 8) * 3600;

/**
 * An id as Clockify shows it now: NONE when there is none or it was deleted in Clockify (its
 * time stays, "Without project"), as /api/summary resolves it.
 */
function live(kind, id) {
  return !id || id === NONE || state.names[kind]?.[id]?.deleted ? NONE : id;
}

/** The client a project's time counts under now: its current client, unless either is deleted. */
function clientOf(projectId) {
  const id = live("project", projectId);
  return id === NONE ? NONE : live("client", state.names.project?.[id]?.clientId);
}

/** The group of time by `user` on `projectId` in dimension P (project), C (client), U or A (all). */
function groupOf(dim, user, projectId) {
  if (dim === "P") return live("project", projectId);
  if (dim === "C") return clientOf(projectId);
  return dim === "U" ? user : "";
}

// Cell keys parsed once: `user|project|task|billable|type|currency|tags` (common.js adoptDays).
const CELLS_KEPT = 100_000;
const parsedCells = new Map();
function parseCell(key) {
  let cell = parsedCells.get(key);
  if (!cell) {
    const [user, projectId, , billable, , currency] = key.split("|");
    cell = { user, projectId, billable: billable === "1", currency };
    if (parsedCells.size >= CELLS_KEPT) parsedCells.clear();
    parsedCells.set(key, cell);
  }
  return cell;
}

function emptyBucket() {
  return { s: 0, b: 0, m: idMap() };
}

// The cells' sums per group, kept until the data or the names change (`dataChanged`): the
// one-second tick then only adds the running timers.
const settledSums = new Map(); // "<dim> <days>" -> Map(group -> bucket)
function dataChanged() {
  settledSums.clear();
}

/**
 * The stopped entries' totals of one dimension over `dayList`, grouped by what the names say
 * now (a project moved to another client moves its hours; a deleted one's go to NONE). Seconds
 * as reports count them (`r` with report rounding on), billable seconds, and earned amounts
 * exact per currency (`m`), rounded once when shown (bucketMinor), as /api/summary answers.
 */
function settledTotals(dim, dayList) {
  const key = `${dim} ${dayList.join()}`;
  let out = settledSums.get(key);
  if (out) return out;
  out = new Map();
  const count = state.snapshot?.rounding ? "r" : "s";
  for (const day of dayList) {
    for (const [cellKey, fields] of Object.entries(state.days[day] || {})) {
      const cell = parseCell(cellKey);
      const group = groupOf(dim, cell.user, cell.projectId);
      let bucket = out.get(group);
      if (!bucket) out.set(group, (bucket = emptyBucket()));
      const seconds = fields[count] || 0;
      bucket.s += seconds;
      if (cell.billable) bucket.b += seconds;
      if (fields.e && cell.currency && cell.currency !== NONE) bucket.m[cell.currency] = (bucket.m[cell.currency] || 0) + fields.e;
    }
  }
  settledSums.set(key, out);
  return out;
}

/** Totals of one dimension over `dayList`, with running timers' elapsed time added (unrounded). */
function totals(dim, dayList, now) {
  const out = new Map();
  for (const [group, bucket] of settledTotals(dim, dayList)) out.set(group, { ...bucket, m: idMap(bucket.m) });
  const wanted = new Set(dayList);
  for (const entry of state.running.values()) {
    if (!wanted.has(dayInZone(new Date(entry.start), tz()))) continue;
    const elapsed = elapsedOf(entry, now);
    const group = groupOf(dim, entry.userId, entry.projectId);
    let bucket = out.get(group);
    if (!bucket) out.set(group, (bucket = emptyBucket()));
    bucket.s += elapsed;
    if (!entry.billable) continue;
    bucket.b += elapsed;
    if (entry.rate && entry.currency) bucket.m[entry.currency] = (bucket.m[entry.currency] || 0) + elapsed * entry.rate;
  }
  return out;
}

function weekDays() {
  return Object.keys(state.days).sort();
}

/** New currencies join the order once, largest first; the workspace's own always leads. */
function noteCurrencies(amounts) {
  const fresh = Object.entries(amounts || {})
    .filter(([c, v]) => v && !state.currencies.includes(c))
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  for (const [currency] of fresh) state.currencies.push(currency);
}

function currencyOrder() {
  const home = stream.status?.currencies?.[state.snapshot?.workspace];
  return home ? [home, ...state.currencies.filter((c) => c !== home)] : state.currencies;
}

/** The workspace has never had a change, a poll or a total: nothing has reached clockwall. */
function freshInstall() {
  if (!state.snapshot || state.lastChangeAt || state.running.size || stream.status?.poll) return false;
  if (state.streamId && state.streamId !== "0-0") return false;
  return !Object.values(state.days).some((dims) => Object.keys(dims).length);
}

// Away and progress ------------------------------------------------------------------------------
/** A running timer that is not work: a break, a holiday or time off (Clockify's entry types). */
const AWAY_TYPES = { BREAK: "break", HOLIDAY: "holiday", TIME_OFF: "time off" };
const isAway = (entry) => Object.hasOwn(AWAY_TYPES, entry.type || "REGULAR");
const working = () => [...state.running.values()].filter((e) => !isAway(e));

const PROGRESS_FIELDS = ["estimateSeconds", "budgetMinor", "estimateReset", "billableOnly", "currency"];
function estimatesChange(change) {
  return (change.names || []).some(({ kind, record }) => {
    if (kind !== "project" || !record?.id) return false;
    const held = state.names.project?.[record.id] || {};
    return PROGRESS_FIELDS.some((f) => (held[f] ?? null) !== (record[f] ?? null));
  });
}

/**
 * Add an entry change's deltas to the progress figures they count in. A cell field
 * ("<user>|<project>|<task>|<billable>|<type>|<currency>|<tags>[|<rate>|<cost>]|<kind>")
 * counts for its project as progress does (app/progress.py): its seconds (`s`; `b` too when
 * billable) and its exact earned amount (`e` -> `m|<currency>`).
 */
function applyProgress(change) {
  const progress = state.snapshot.progress?.projects;
  if (!progress) return;
  const count = (id, kind, day, delta) => {
    // Own keys only: the snapshot's progress is parsed JSON, where "__proto__" finds a prototype.
    const p = Object.hasOwn(progress, id) ? progress[id] : null;
    if (!p || !countsIn(p, kind, day)) return;
    const into = kind.startsWith("m|") ? state.progressExact : state.progressDelta;
    into[id] = (into[id] || 0) + delta;
  };
  const add = (part, sign) => {
    for (const [field, delta] of part?.f || []) {
      if (typeof field !== "string" || !Number.isFinite(delta)) continue;
      // Seven cell parts (nine with the rates of a newer generation), then the kind.
      const parts = field.split("|");
      if (parts.length !== 8 && parts.length !== 10) continue;
      const [, id, , billable, , currency] = parts;
      const kind = parts[parts.length - 1];
      if (kind === "s") {
        count(id, "s", part.day, sign * delta);
        if (billable === "1") count(id, "b", part.day, sign * delta);
      } else if (kind === "e") {
        count(id, `m|${currency}`, part.day, sign * delta);
      }
    }
  };
  add(change.prev, -1);
  add(change.next, +1);
}

function countsIn(p, field, day) {
  // A budget's field is a|<currency>: the exact m|<currency> deltas of that currency count.
  const matches = field === p.field || (p.field.startsWith("a|") && field === `m|${p.field.slice(2)}`);
  return matches && !(p.since && day < p.since) && !(p.until && day > p.until);
}

/** A project's progress now: the snapshot's figure, later changes and its running timers. */
function progressOf(id, now) {
  const projects = state.snapshot.progress?.projects;
  const p = projects && Object.hasOwn(projects, id) ? projects[id] : null;
  if (!p) return null;
  let value = p.tracked + (state.progressDelta[id] || 0);
  // A budget rounds its exact part once, after later changes and running timers join it.
  let exact = (p.trackedExact || 0) + (state.progressExact[id] || 0);
  value -= minorOfExact(p.trackedExact || 0);
  for (const entry of state.running.values()) {
    if (entry.projectId !== id || !countsIn(p, p.field, dayInZone(new Date(entry.start), tz()))) continue;
    const elapsed = elapsedOf(entry, now);
    if (p.field === "s") value += elapsed;
    else if (entry.billable && p.field === "b") value += elapsed;
    else if (entry.billable && entry.rate && p.field === `a|${entry.currency}`) exact += elapsed * entry.rate;
  }
  value += minorOfExact(exact);
  return { ...p, value, ratio: value / p.estimate };
}

const RESET_WORD = { WEEKLY: "weekly ", MONTHLY: "monthly ", YEARLY: "yearly " };
function progressText(p) {
  const estimate =
    p.kind === "budget"
      ? `${fmtMoney(p.estimate / 100, p.currency || currencyOrder()[0] || "EUR")} ${RESET_WORD[p.reset] || ""}budget`
      : `${fmtDuration(p.estimate)} ${RESET_WORD[p.reset] || ""}estimate`;
  return `${Math.round(p.ratio * 100)}% of ${estimate}`;
}

/** What the bars count when clockwall has no figure of Clockify's: said once, under them. */
function basisText(ids) {
  const seen = ids.map((id) => state.snapshot.progress?.projects?.[id]).filter((p) => p?.basis === "seen");
  if (!seen.length) return "";
  const kinds = new Set(seen.map((p) => p.kind));
  const what = kinds.size > 1 ? "hours and amounts" : kinds.has("budget") ? "amounts" : "hours";
  const since = state.snapshot.progress.since;
  const when = since ? ` since ${fmtDay(since, { month: "short", day: "numeric", year: "numeric" })}` : "";
  return `Progress based on ${what} clockwall has seen${when}`;
}

// DOM writes that do nothing when nothing changed ------------------------------------------------
function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

function setHidden(el, hidden) {
  if (el.hidden !== hidden) el.hidden = hidden;
}

function setStyle(el, property, value) {
  if (el.style.getPropertyValue(property) !== value) el.style.setProperty(property, value);
}

/**
 * Make `list`'s children the nodes of `items`, in order: a node is found by its key (data-key),
 * made by `create` when missing, and given its item by `update`. Unchanged items move nothing.
 */
function syncList(list, items, key, create, update) {
  const old = new Map();
  for (const node of list.children) old.set(node.dataset.key, node);
  let cursor = list.firstElementChild;
  for (const item of items) {
    const k = key(item);
    let node = old.get(k);
    if (node) old.delete(k);
    else {
      node = create(item);
      node.dataset.key = k;
    }
    update(node, item);
    if (node === cursor) cursor = cursor.nextElementSibling;
    else list.insertBefore(node, cursor);
  }
  for (const node of old.values()) node.remove();
}

/** Update existing nodes only (a tick): no node is added, removed or moved. */
function updateList(list, items, key, update) {
  const nodes = new Map();
  for (const node of list.children) nodes.set(node.dataset.key, node);
  for (const item of items) {
    const node = nodes.get(key(item));
    if (node) update(node, item);
  }
}

function dotNode(color) {
  const el = h("span", { class: "dot" });
  el.style.setProperty("--dot", safeColor(color));
  return el;
}

// Pages -------------------------------------------------------------------------------------------
/**
 * Split a list's items into pages that fit its box: measured once per data change (one layout
 * with every item shown); the tick then only shows one page or another.
 */
function measurePages(list) {
  const items = [...list.children];
  for (const item of items) setHidden(item, false);
  if (scrolling.matches || items.length < 2) return [items];
  const room = list.clientHeight;
  const pages = [];
  let page = [];
  let top = 0;
  for (const item of items) {
    const bottom = item.offsetTop + item.offsetHeight;
    if (page.length && bottom - top > room + 1) {
      pages.push(page);
      page = [];
    }
    if (!page.length) top = item.offsetTop;
    page.push(item);
  }
  pages.push(page);
  return pages;
}

function showPage(list, pager) {
  const pages = state.pages.get(list) || [[]];
  const index = pager ? (state.turn ?? 0) % pages.length : 0;
  pages.forEach((page, i) => page.forEach((item) => setHidden(item, i !== index)));
  if (pager) setText(pager, pages.length > 1 ? `${index + 1} / ${pages.length}` : "");
}

const PAGED = [
  ["running", "now-pager"],
  ["people", "people-pager"],
  ["projects", "projects-pager"],
  ["feed", null], // the newest changes that fit; older ones are just older
];

function paginate() {
  for (const [listId, pagerId] of PAGED) {
    const list = $(listId);
    if (listId === "running") fitRunning(list);
    else state.pages.set(list, measurePages(list));
    showPage(list, pagerId && $(pagerId));
  }
}

/** The roomiest card style in which every timer fits one page; the densest when none does. */
function fitRunning(list) {
  const modes = [[], ["compact"], ["compact", "dense"]];
  let pages = null;
  for (const mode of modes) {
    list.classList.toggle("compact", mode.includes("compact"));
    list.classList.toggle("dense", mode.includes("dense"));
    pages = measurePages(list);
    if (pages.length === 1) break;
  }
  state.pages.set(list, pages);
}

// Rendering ----------------------------------------------------------------------------------------
let renderQueued = false;
/** Data changed: render once after the events that arrived together. */
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  queueMicrotask(() => {
    renderQueued = false;
    render(Date.now(), true);
  });
}

/** `structure`: data changed, so order rows, add and remove nodes and measure pages again. */
function render(now, structure) {
  stream.tick();
  checkDate(now);
  setText($("clock"), timeInZone(new Date(now), tz()));
  renderStatus(now);
  if (!state.snapshot) return;
  const today = dayInZone(new Date(now), tz());
  const week = weekDays();
  if (renderAlerts(now, today)) structure = true; // the alert line appeared or changed
  renderRunning(now, structure);
  renderIdle(now, today, week);
  renderStat($("today"), totals("A", [today], now).get("") || emptyBucket(), fmtDay(today, { weekday: "long", month: "short", day: "numeric" }));
  const range = state.snapshot.range;
  const span = `${fmtDay(range.start, { month: "short", day: "numeric" })} – ${fmtDay(range.end, { month: "short", day: "numeric" })}`;
  renderStat($("week"), totals("A", week, now).get("") || emptyBucket(), span);
  renderProjects(totals("P", week, now), structure, now);
  renderPeople(totals("U", [today], now), totals("U", week, now), structure);
  renderFeed(now, structure);
  const turn = Math.floor(now / rotateMs);
  if (structure) {
    state.turn = turn;
    paginate();
  } else if (turn !== state.turn) {
    state.turn = turn;
    for (const [listId, pagerId] of PAGED) showPage($(listId), pagerId && $(pagerId));
  }
}

function tick() {
  render(Date.now(), false);
}

function renderStatus(now) {
  const live = stream.state === "live";
  const storeDown = stream.storeDown(now);
  const fresh = freshInstall();
  const poll = stream.status?.poll;
  const troubleMs = stream.troubleSince === null ? 0 : now - stream.troubleSince;
  const lost = !live && troubleMs > STALE_AFTER_MS;
  const stale = Boolean(state.snapshot) && (storeDown || lost);

  // The connection, apart from how old the data is.
  let cls;
  let text;
  if (storeDown) [cls, text] = ["bad", "Store unreachable"];
  else if (live) [cls, text] = [fresh || poll?.last_error ? "wait" : "ok", "Live"];
  else if (stream.state === "connecting" && stream.lastEventAt === null) [cls, text] = ["wait", "Connecting…"];
  else [cls, text] = [stream.failed ? "bad" : "wait", "Reconnecting…"];
  const conn = $("conn");
  for (const name of ["ok", "wait", "bad"]) conn.classList.toggle(name, name === cls);
  setText($("conn-text"), text);

  const age = $("data-age");
  age.classList.toggle("none", fresh);
  let ageText = "";
  if (fresh) ageText = "no webhook received yet";
  else if (state.lastChangeAt) ageText = `last change ${agoText(now - state.lastChangeAt)}`;
  else if (state.snapshot) ageText = "no change this week";
  if (poll?.last_error) ageText += ` · polling: ${poll.last_error}`;
  else if (poll?.last_success_at) ageText += ` · polled ${agoText(now - Date.parse(poll.last_success_at))}`;
  setText(age, ageText.replace(/^ · /, ""));

  const problem = $("problem");
  let problemText = null;
  if (stream.failed) {
    problemText = stream.problem
      ? `clockwall refused the live stream: ${stream.problem}. Retrying by itself…`
      : !state.snapshot
        ? "Can't reach clockwall. Retrying by itself…"
        : lost
          ? `The connection to clockwall was lost at ${timeInZone(new Date(stream.troubleSince), tz())}: these numbers are stale. Retrying by itself…`
          : "The connection to clockwall is lost. Showing the last known numbers; retrying by itself…";
  } else if (storeDown) {
    problemText = "The store (Redis) is unreachable: numbers may be stale until it is back.";
  } else if (webhookProblems().length) {
    problemText =
      `Clockify webhooks need attention (${webhookProblems().join("; ")}): the wall may miss ` +
      "changes. Run clockwall check for what to do.";
  }
  if (problem.hidden !== (problemText === null)) {
    problem.hidden = problemText === null;
    scheduleRender(); // the panels lost or gained room: measure their pages again
  }
  if (problemText !== null) setText($("problem-text"), problemText);
  document.body.classList.toggle("no-data", !state.snapshot);
  document.body.classList.toggle("stale", stale);

  // Screen readers hear a state change once, never the ticking texts.
  const phrase = [
    storeDown ? "The store is unreachable" : text.replace("…", ""),
    stale ? "the numbers shown are stale" : "",
    fresh ? "no webhook received yet" : "",
  ]
    .filter(Boolean)
    .join(": ");
  if (phrase !== state.announced) {
    state.announced = phrase;
    $("announce").textContent = phrase;
  }
}

/** The webhooks' problems in short: from this process's poller, else from the polling one's. */
function webhookProblems() {
  const status = stream.status;
  return status?.webhooks ?? status?.poll?.webhooks ?? [];
}

/** "just now", "3 min ago", "2 h ago": data age changes once a minute, not every second. */
function agoText(ms) {
  const minutes = Math.floor(Math.max(0, ms) / 60000);
  if (minutes < 1) return "just now";
  if (minutes < 60) return `${minutes} min ago`;
  if (minutes < 48 * 60) return `${Math.floor(minutes / 60)} h ago`;
  return `${Math.floor(minutes / 1440)} days ago`;
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

function createTimer(entry) {
  const li = h("li", { class: "timer", "data-entry": entry.id });
  li.parts = {
    who: h("div", { class: "who" }),
    dot: dotNode(null),
    project: h("span", { class: "project" }),
    client: h("span", { class: "client" }),
    desc: h("div", { class: "desc" }),
    elapsed: h("div", { class: "elapsed" }),
  };
  const p = li.parts;
  li.append(p.who, h("div", { class: "what" }, p.dot, p.project, p.client), p.desc, p.elapsed);
  return li;
}

function updateTimer(li, { entry, now }) {
  const p = li.parts;
  // As the totals: a deleted project is no project, and the client is the project's current one.
  const proj = project(live("project", entry.projectId));
  const client = clientName(clientOf(entry.projectId));
  setText(p.who, userName(entry.userId));
  setStyle(p.dot, "--dot", safeColor(proj?.color));
  setStyle(li, "--project", safeColor(proj?.color));
  setText(p.project, proj?.name || "No project");
  setText(p.client, client || "");
  setHidden(p.client, !client);
  setText(p.desc, entry.description || "");
  setHidden(p.desc, !entry.description);
  const elapsed = elapsedOf(entry, now);
  setText(p.elapsed, fmtClock(elapsed));
  // Forgotten only past the long-timer threshold: crossing midnight alone is normal work.
  li.classList.toggle("warn", elapsed > longTimerS());
}

const byStart = (a, b) => Date.parse(a.start) - Date.parse(b.start) || a.id.localeCompare(b.id);

function renderRunning(now, structure) {
  const list = $("running");
  const busy = working();
  if (structure) state.order.running = busy.sort(byStart).map((e) => e.id);
  const items = state.order.running
    .map((id) => state.running.get(id))
    .filter(Boolean)
    .map((entry) => ({ entry, now }));
  const key = (item) => item.entry.id;
  if (structure) syncList(list, items, key, (item) => createTimer(item.entry), updateTimer);
  else updateList(list, items, key, updateTimer);
  setText($("now-count"), busy.length ? String(busy.length) : "");
  setHidden(list, busy.length === 0);
  setHidden($("idle"), busy.length > 0);
  renderAway(now, structure);
}

function createAway() {
  const li = h("li", { class: "away-item" });
  li.parts = { who: h("span", { class: "who" }), what: h("span", { class: "what" }) };
  li.append(li.parts.who, li.parts.what);
  return li;
}

function updateAway(li, { entry, now }) {
  setText(li.parts.who, userName(entry.userId));
  // A break ticks like a timer; a holiday or time off just says so.
  setText(li.parts.what, entry.type === "BREAK" ? fmtClock(elapsedOf(entry, now)) : AWAY_TYPES[entry.type]);
}

/** People on a break (or a holiday, or time off): apart from the work, never in its count. */
function renderAway(now, structure) {
  if (structure) {
    state.order.away = [...state.running.values()].filter(isAway).sort(byStart).map((e) => e.id);
  }
  const items = state.order.away
    .map((id) => state.running.get(id))
    .filter(Boolean)
    .map((entry) => ({ entry, now }));
  const key = (item) => item.entry.id;
  if (structure) syncList($("away-list"), items, key, createAway, updateAway);
  else updateList($("away-list"), items, key, updateAway);
  setText($("away-count"), items.length ? String(items.length) : "");
  setHidden($("away"), items.length === 0);
}

/** Returns whether the set of alerts changed (the alert line may have appeared or gone). */
function renderAlerts(now, today) {
  const longS = longTimerS();
  const alerts = [];
  const entries = [...state.running.values()].sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
  for (const entry of entries) {
    const elapsed = elapsedOf(entry, now);
    if (elapsed <= longS) continue;
    const who = userName(entry.userId);
    const startDay = dayInZone(new Date(entry.start), tz());
    const text =
      startDay < today
        ? `${who}'s timer is still running since ${fmtDay(startDay, { weekday: "long", month: "short", day: "numeric" })}`
        : `${who}'s timer has been running for ${fmtDuration(elapsed)}`;
    alerts.push({ key: entry.id, text, cls: "alert" });
  }
  const shown = alerts.slice(0, ALERTS_SHOWN);
  if (alerts.length > shown.length) {
    const more = alerts.length - shown.length;
    shown.push({ key: "more", text: `+ ${more} more long timer${more > 1 ? "s" : ""}`, cls: "alert more-alerts" });
  }
  const keys = shown.map((a) => a.key).join();
  const changed = keys !== state.alertKeys;
  state.alertKeys = keys;
  const list = $("alerts");
  const update = (li, a) => {
    if (li.className !== a.cls) li.className = a.cls;
    setText(li, a.text);
  };
  if (changed) syncList(list, shown, (a) => a.key, () => h("li"), update);
  else updateList(list, shown, (a) => a.key, update);
  return changed;
}

/** Nobody is tracking: what happened yesterday and this week instead of an empty panel. */
function renderIdle(now, today, week) {
  const idle = working().length === 0;
  const fresh = freshInstall();
  setHidden($("onboarding"), !fresh);
  setText($("webhook-url"), `${location.origin}/webhooks/clockify`);
  if (!idle) return;
  const items = [];
  const best = (byId, nameOf) => {
    let top = null;
    for (const [id, bucket] of byId) if (bucket.s > 0 && (!top || bucket.s > top[1].s)) top = [id, bucket];
    return top ? `${nameOf(top[0])} · ${fmtHoursMinutes(top[1].s)}` : null;
  };
  const yesterday = week.filter((d) => d < today).pop();
  if (yesterday) {
    const total = totals("A", [yesterday], now).get("")?.s || 0;
    const people = [...totals("U", [yesterday], now).values()].filter((b) => b.s > 0).length;
    const label = fmtDay(yesterday, { weekday: "long" });
    if (total) items.push({ label, value: `${fmtHoursMinutes(total)} by ${people} ${people === 1 ? "person" : "people"}` });
  }
  const projectName = (id) => (id === NONE ? "No project" : project(id)?.name || "A project");
  const topProject = best(totals("P", week, now), projectName);
  if (topProject) items.push({ label: "Top project this week", value: topProject });
  const topPerson = best(totals("U", week, now), userName);
  if (topPerson) items.push({ label: "Most hours this week", value: topPerson });
  syncList(
    $("highlights"),
    items,
    (item) => item.label,
    () => {
      const li = h("li", { class: "highlight" });
      li.parts = { label: h("span", { class: "label" }), value: h("span", { class: "value" }) };
      li.append(li.parts.label, li.parts.value);
      return li;
    },
    (li, item) => {
      setText(li.parts.label, item.label);
      setText(li.parts.value, item.value);
    },
  );
}

function renderStat(el, bucket, rangeText) {
  if (!el.parts) {
    const span = (cls, text = "") => h("span", { class: cls, text });
    el.parts = {
      range: span("stat-range"),
      hours: span("n"),
      minutes: span("n"),
      share: span("share"),
      money: hideMoney ? null : h("div", { class: "money" }),
    };
    const p = el.parts;
    el.replaceChildren(
      h("div", { class: "stat-head" }, span("stat-label", el.dataset.label), p.range),
      h("div", { class: "stat-hours" }, h("span", { class: "big" }, p.hours, span("u", " h "), p.minutes, span("u", " m"))),
      h("div", { class: "stat-line" }, p.share),
      p.money,
    );
  }
  const p = el.parts;
  setText(p.range, rangeText);
  const [hours, minutes] = fmtHoursMinutes(bucket.s).split(" h ");
  setText(p.hours, hours);
  setText(p.minutes, minutes.replace(" m", ""));
  setText(p.share, `${bucket.s ? Math.round((bucket.b / bucket.s) * 100) : 0}% billable`);
  if (!p.money) return;
  const minor = bucketMinor(bucket);
  noteCurrencies(minor);
  const amounts = currencyOrder().filter((c) => minor[c]);
  syncList(
    p.money,
    amounts,
    (c) => c,
    () => h("span"),
    (span, c) => setText(span, fmtMoney(minor[c] / 100, c)),
  );
}

function createProject() {
  const li = h("li", { class: "bar-row" });
  li.parts = {
    dot: dotNode(null),
    name: h("span", { class: "name" }),
    client: h("span", { class: "client" }),
    hours: h("span", { class: "hours" }),
    fill: h("div", { class: "fill" }),
    budget: h("div", { class: "budget" }),
    budgetFill: h("div", { class: "fill" }),
    budgetText: h("span", { class: "budget-text" }),
  };
  const p = li.parts;
  p.budget.append(h("div", { class: "track" }, p.budgetFill), p.budgetText);
  li.append(h("div", { class: "bar-head" }, p.dot, p.name, p.client, p.hours), h("div", { class: "track" }, p.fill), p.budget);
  return li;
}

function updateProject(li, { id, bucket, max, now }) {
  const p = li.parts;
  const proj = project(id);
  const color = safeColor(proj?.color);
  const client = clientName(clientOf(id));
  setStyle(p.dot, "--dot", color);
  setText(p.name, proj?.name || "No project");
  setText(p.client, client || "");
  setHidden(p.client, !client);
  setText(p.hours, fmtHoursMinutes(bucket.s));
  setStyle(p.fill, "width", `${Math.max(1, (bucket.s / max) * 100).toFixed(1)}%`);
  setStyle(p.fill, "--bar", color);
  // Progress as Clockify shows it (over the project's life or since its estimate reset), not
  // this week's hours against the whole estimate.
  const progress = progressOf(id, now);
  setHidden(p.budget, !progress);
  if (!progress) return;
  const ratio = progress.ratio;
  p.budget.classList.toggle("over", ratio > 1);
  p.budget.classList.toggle("near", ratio <= 1 && ratio > 0.8);
  setStyle(p.budgetFill, "width", `${Math.min(100, ratio * 100).toFixed(1)}%`);
  setText(p.budgetText, progressText(progress));
}

function renderProjects(byProject, structure, now) {
  const list = $("projects");
  if (structure) {
    state.order.projects = [...byProject.entries()]
      .filter(([, b]) => b.s > 0)
      .sort((a, b) => b[1].s - a[1].s || a[0].localeCompare(b[0]))
      .map(([id]) => id);
  }
  const rows = state.order.projects.map((id) => ({ id, bucket: byProject.get(id) || emptyBucket() }));
  const max = Math.max(1, ...rows.map((r) => r.bucket.s));
  const items = rows.map((r) => ({ ...r, max, now }));
  if (!structure) return updateList(list, items, (r) => r.id, updateProject);
  const basis = basisText(state.order.projects);
  setText($("progress-basis"), basis);
  setHidden($("progress-basis"), !basis);
  if (items.length) syncList(list, items, (r) => r.id, createProject, updateProject);
  else syncList(list, [null], () => "-empty", () => h("li", { class: "empty small", text: "Nothing tracked this week yet." }), () => {});
}

function createPerson() {
  const li = h("li", { class: "person" });
  li.parts = { name: h("span", { class: "name" }), today: h("span", { class: "today" }), week: h("span", { class: "week" }) };
  li.append(li.parts.name, li.parts.today, li.parts.week);
  return li;
}

function updatePerson(li, { id, today, week, busy }) {
  setText(li.parts.name, userName(id));
  setText(li.parts.today, fmtHoursMinutes(today));
  setText(li.parts.week, fmtHoursMinutes(week));
  li.classList.toggle("busy", busy);
}

function renderPeople(todayByUser, weekByUser, structure) {
  const busy = new Set(working().map((e) => e.userId));
  if (structure) {
    const ids = [...weekByUser.entries()].filter(([, b]) => b.s > 0).map(([id]) => id);
    for (const id of busy) if (!weekByUser.has(id)) ids.push(id);
    const weekOf = (id) => weekByUser.get(id)?.s || 0;
    state.order.people = ids.sort((a, b) => weekOf(b) - weekOf(a) || userName(a).localeCompare(userName(b)));
  }
  const items = state.order.people.map((id) => ({
    id,
    today: todayByUser.get(id)?.s || 0,
    week: weekByUser.get(id)?.s || 0,
    busy: busy.has(id),
  }));
  if (structure) syncList($("people"), items, (r) => r.id, createPerson, updatePerson);
  else updateList($("people"), items, (r) => r.id, updatePerson);
}

function sentence(change) {
  const entry = change.entry || {};
  const who = change.names?.user || userName(entry.userId);
  const name = change.names?.project || project(entry.projectId)?.name || null;
  const seconds = entry.start && entry.end ? (Date.parse(entry.end) - Date.parse(entry.start)) / 1000 : 0;
  const amount = seconds ? fmtDuration(seconds) : "an entry";
  const on = name ? ` on ${name}` : "";
  const away = AWAY_TYPES[entry.type];
  if (away && (change.action === "started" || change.action === "stopped")) {
    return `${who} ${change.action === "started" ? "started" : "ended"} ${entry.type === "BREAK" ? "a break" : away}`;
  }
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

function createFeedItem(change) {
  const li = h("li", { class: `feed-item ${change.action}` });
  li.parts = { text: h("span", { class: "text", text: sentence(change) }), time: h("time") };
  li.append(dotNode(change.names?.color || project(change.entry?.projectId)?.color), li.parts.text, li.parts.time);
  return li;
}

function updateFeedItem(li, { change, now }) {
  const at = streamIdTime(change.id);
  if (!at) return;
  if (!li.parts.time.dateTime) li.parts.time.dateTime = at.toISOString();
  setText(li.parts.time, now - at < 3600_000 ? agoText(now - at) : timeInZone(at, tz()));
}

function renderFeed(now, structure) {
  const list = $("feed");
  const items = state.feed
    .slice()
    .reverse()
    .map((change) => ({ change, now }));
  const key = (item) => item.change.id;
  if (!structure) return updateList(list, items, key, updateFeedItem);
  if (items.length) syncList(list, items, key, (item) => createFeedItem(item.change), updateFeedItem);
  else syncList(list, [null], () => "-empty", () => h("li", { class: "empty small", text: "Changes appear here as they happen." }), () => {});
}

// Start ------------------------------------------------------------------------------------------------
setupPage();
document.documentElement.style.setProperty("--distance", String(distanceM));
// The shared header's connection line changes often; the wall announces through #announce.
$("conn").removeAttribute("aria-live");
$("conn").removeAttribute("role");
$("retry").addEventListener("click", () => stream.restart());
if (kiosk) $("retry").hidden = true;
addEventListener("resize", scheduleRender);
scrolling.addEventListener("change", scheduleRender);
stream.start();
render(Date.now(), true);
setInterval(tick, 1000);
