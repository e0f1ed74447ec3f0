// Shared by the wall and the reports: formatting, dates in the reporting time zone, the day-map
// reducer that applies change events to snapshot totals, and the SSE client state machine.

export const LOCALE = navigator.language || "en-US";
export const params = new URLSearchParams(location.search);
export const kiosk = params.get("kiosk") === "1";

// DOM -----------------------------------------------------------------------------------------
/** h("div", {class: "x", text: "hi"}, child, ...): elements without innerHTML (CSP, no XSS). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "style") for (const [p, v] of Object.entries(value)) el.style.setProperty(p, v);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace an element's children (always: a page that re-renders often keys its nodes instead). */
export function fill(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

export function dot(color) {
  return h("span", { class: "dot", style: { "--dot": safeColor(color) } });
}

export function safeColor(color) {
  return typeof color === "string" && /^#[0-9a-fA-F]{3,8}$/.test(color) ? color : "#8a94a6";
}

/** Kiosk mode (no controls, no cursor) and nav links that keep workspace/kiosk. */
export function setupPage() {
  if (kiosk) document.documentElement.classList.add("kiosk");
  const keep = new URLSearchParams();
  for (const key of ["workspace"]) if (params.get(key)) keep.set(key, params.get(key));
  const suffix = keep.toString() ? `?${keep}` : "";
  for (const a of document.querySelectorAll("nav.nav a[data-page]")) {
    a.href = a.getAttribute("data-page") + suffix;
    if (a.getAttribute("data-page") === location.pathname) a.setAttribute("aria-current", "page");
  }
}

// Formatting ----------------------------------------------------------------------------------
/** Seconds as h:mm (minutes truncated, like a clock: 1:20 means 80 full minutes). */
export function fmtHM(seconds) {
  const s = Math.max(0, Math.floor(seconds || 0));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  return `${hours}:${String(minutes).padStart(2, "0")}`;
}

/**
 * Seconds as "16 h 52 m" (minutes truncated and padded): a total that cannot be read as a time
 * of day from across the room, as "16:52" beside a clock would be.
 */
export function fmtHoursMinutes(seconds) {
  const s = Math.max(0, Math.floor(seconds || 0));
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} m`;
}

/** Seconds as h:mm:ss for a ticking timer. */
export function fmtClock(seconds) {
  const s = Math.max(0, Math.floor(seconds || 0));
  const pad = (n) => String(n).padStart(2, "0");
  return `${Math.floor(s / 3600)}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
}

/** Seconds as "1h 20m", "45m", "2h" for sentences. */
export function fmtDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds || 0));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  if (hours && minutes) return `${hours}h ${minutes}m`;
  if (hours) return `${hours}h`;
  if (minutes) return `${minutes}m`;
  return `${s}s`;
}

const moneyFormats = new Map();
/** Major units (e.g. 210.5) with the currency's symbol and digits. */
export function fmtMoney(amount, currency) {
  if (!currency) return "";
  let format = moneyFormats.get(currency);
  if (!format) {
    try {
      format = new Intl.NumberFormat(LOCALE, { style: "currency", currency });
    } catch {
      format = { format: (v) => `${v.toFixed(2)} ${currency}` };
    }
    moneyFormats.set(currency, format);
  }
  return format.format(amount);
}

/** {EUR: 21050, USD: 900} minor units -> "€210.50 + $9.00" (largest first); "" when none. */
export function fmtAmounts(minorByCurrency) {
  return Object.entries(minorByCurrency || {})
    .filter(([, v]) => v)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([c, v]) => fmtMoney(v / 100, c))
    .join(" + ");
}

/** The API's [{currency, amount}] (major units) -> "€210.50 + $9.00". */
export function fmtApiAmounts(amounts) {
  return (amounts || []).map((a) => fmtMoney(a.amount, a.currency)).join(" + ");
}

/**
 * Minor units of an exact amount (rate_minor x seconds), rounded half up ONCE, as the store and
 * Clockify's reports round a group's total: sum the exact parts of every day and running timer
 * first, then call this. Integer steps only (a float division could land on the wrong side of a
 * half near 2^53); the remainder is taken non-negative, so a negative delta rounds half up too.
 */
export function minorOfExact(exact) {
  const rest = (((exact + 1800) % 3600) + 3600) % 3600;
  return (exact + 1800 - rest) / 3600;
}

/** A total's exact amounts ({currency: rate_minor x seconds}) in minor units, each rounded once. */
export function bucketMinor(bucket) {
  const out = idMap();
  for (const [currency, exact] of Object.entries(bucket?.m || {})) out[currency] = minorOfExact(exact);
  return out;
}

// Dates (ISO "YYYY-MM-DD" strings, computed in the reporting time zone) ------------------------
const dayFormats = new Map();
export function dayInZone(moment, timeZone) {
  const tz = timeZone || "UTC";
  let format = dayFormats.get(tz);
  if (!format) {
    format = new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" });
    dayFormats.set(tz, format);
  }
  return format.format(moment);
}

export function timeInZone(moment, timeZone) {
  return new Intl.DateTimeFormat(LOCALE, {
    timeZone: timeZone || "UTC",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).format(moment);
}

const isoDate = (day) => new Date(`${day}T00:00:00Z`);
export function addDays(day, n) {
  const d = isoDate(day);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

export function daysBetween(start, end) {
  const out = [];
  for (let d = start; d <= end; d = addDays(d, 1)) out.push(d);
  return out;
}

const WEEKDAYS = ["SUNDAY", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY"];
export function weekOf(day, weekStart = "MONDAY") {
  const first = WEEKDAYS.indexOf(weekStart) >= 0 ? WEEKDAYS.indexOf(weekStart) : 1;
  const offset = (isoDate(day).getUTCDay() - first + 7) % 7;
  const start = addDays(day, -offset);
  return { start, end: addDays(start, 6) };
}

export function monthOf(day) {
  const d = isoDate(day);
  const start = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
  const end = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0));
  return { start: start.toISOString().slice(0, 10), end: end.toISOString().slice(0, 10) };
}

/** "Monday, March 24" (or with options) for an ISO day, independent of the browser's zone. */
export function fmtDay(day, options = { weekday: "long", month: "long", day: "numeric" }) {
  return new Intl.DateTimeFormat(LOCALE, { ...options, timeZone: "UTC" }).format(isoDate(day));
}

export function fmtRange(start, end) {
  const sameYear = start.slice(0, 4) === end.slice(0, 4);
  const a = fmtDay(start, { month: "short", day: "numeric", ...(sameYear ? {} : { year: "numeric" }) });
  const b = fmtDay(end, { month: "short", day: "numeric", year: "numeric" });
  return start === end ? b : `${a} – ${b}`;
}

/** "12 s ago", "3 min ago", "2 h ago". */
export function fmtAgo(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

/** The time a change was written: Redis stream ids start with epoch milliseconds. */
export function streamIdTime(id) {
  const ms = Number(String(id || "").split("-")[0]);
  return Number.isFinite(ms) && ms > 0 ? new Date(ms) : null;
}

// Id-keyed maps ------------------------------------------------------------------------------------
// Ids, days and currencies from the server key plain objects here. An object literal inherits
// from Object.prototype, so `map["constructor"]` would find a function and `map["__proto__"]`
// the prototype every object shares (writing through it pollutes them all). These maps have no
// prototype: any key is just a key.

/** An empty map without a prototype, or a copy of `from`'s own entries. */
export function idMap(from) {
  const map = Object.create(null);
  if (from && typeof from === "object") for (const [key, value] of Object.entries(from)) map[key] = value;
  return map;
}

/**
 * A snapshot's days ({day: {cell: {s, r, e, c}}}) as id maps throughout. A cell key is
 * `user|project|task|billable|type|currency|tags` ("-" for none): the finest grain Clockify
 * cannot change later, so a page groups cells by what names say now. Fields: `s` seconds, `r`
 * seconds as reports count them when report rounding is on, `e` earned and `c` cost, both exact
 * (rate_minor x counted seconds: rounded once after summing, see minorOfExact).
 */
export function adoptDays(raw) {
  const days = idMap();
  for (const [day, cells] of Object.entries(raw || {})) {
    const dayMap = (days[day] = idMap());
    for (const [cell, fields] of Object.entries(cells || {})) dayMap[cell] = idMap(fields);
  }
  return days;
}

/** A snapshot's names ({kind: {id: record}}) as id maps, with every kind the pages read. */
export function adoptNames(raw) {
  const names = idMap();
  for (const kind of ["user", "project", "client", "tag"]) names[kind] = idMap();
  for (const [kind, records] of Object.entries(raw || {})) names[kind] = idMap(records);
  return names;
}

// The day-map reducer ----------------------------------------------------------------------------
function applyItems(dayMap, items, sign) {
  for (const [field, delta] of items || []) {
    // `<cell>|<kind>`: the kind is after the last bar (a cell key holds bars of its own).
    const cut = typeof field === "string" ? field.lastIndexOf("|") : -1;
    if (cut < 0 || !Number.isFinite(delta)) continue;
    const cell = field.slice(0, cut);
    const kind = field.slice(cut + 1);
    const fields = (dayMap[cell] ||= idMap());
    fields[kind] = (fields[kind] || 0) + sign * delta;
    // A field back at 0 goes, and a cell with none left: as Redis keeps them.
    if (!fields[kind]) delete fields[kind];
    if (!Object.keys(fields).length) delete dayMap[cell];
  }
}

/**
 * Apply one entry change to `days` ({day: {cell: {s, r, e, c}}} from adoptDays, only the days of
 * the range): subtract the old contribution (`prev`: {day, f: [["<cell>|<kind>", delta]...]})
 * from its day, add the new one (`next`) to its day. Days outside the range are not held, so
 * their part of a change is ignored.
 */
export function applyChange(days, change) {
  if (change.prev && days[change.prev.day]) applyItems(days[change.prev.day], change.prev.f, -1);
  if (change.next && days[change.next.day]) applyItems(days[change.next.day], change.next.f, +1);
}

/** Merge display names carried by an entry change (or a names event) into `names` (adoptNames). */
export function mergeNames(names, change) {
  const put = (kind, id, record) => {
    if (!id) return;
    const map = (names[kind] ||= idMap());
    map[id] = { ...(map[id] || { id }), ...record };
  };
  if (change.type === "names") {
    // A names event carries the whole record the server now holds: it replaces the old one, so
    // a field the server dropped goes here too (and `deleted: true` is never merged away).
    for (const { kind, record } of change.names || []) {
      if (record && record.id) (names[kind] ||= idMap())[record.id] = { ...record };
    }
    return;
  }
  const e = change.entry || {};
  const n = change.names || {};
  if (n.user) put("user", e.userId, { name: n.user });
  if (n.project) {
    const record = { name: n.project };
    if (n.color) record.color = n.color;
    if (n.estimateSeconds !== undefined) record.estimateSeconds = n.estimateSeconds;
    if (n.clientId) record.clientId = n.clientId;
    put("project", e.projectId, record);
  }
  if (n.client) put("client", n.clientId, { name: n.client });
}

// The SSE client ------------------------------------------------------------------------------------
/**
 * LiveStream: one EventSource with the state machine the pages show.
 *   connecting -> live (first event after open) -> reconnecting (error; EventSource retries by
 *   itself with Last-Event-ID) -> live ...
 * When the browser gives up (HTTP error status, readyState CLOSED) it opens a new EventSource
 * after a backoff, passing the last id as `lastEventId` so the server replays what was missed.
 * `failed` is set when nothing has worked for `failAfterMs` (the page shows its error state).
 * Callbacks: onSnapshot(data, id), onChange(data, id), onStatus(data), onState(state).
 */
export class LiveStream {
  constructor(url, handlers, { failAfterMs = 10000 } = {}) {
    this.baseUrl = url;
    this.handlers = handlers;
    this.failAfterMs = failAfterMs;
    this.state = "connecting";
    this.failed = false;
    this.lastId = null;
    this.lastEventAt = null;
    this.store = "ok";
    this.storeDownSince = null;
    this.source = null;
    this.retryTimer = null;
    this.backoffMs = 1000;
    this.troubleSince = Date.now();
    this.problem = null; // why the server refused the stream, when it said so
  }

  start({ fresh = false } = {}) {
    this.stop();
    if (fresh) this.lastId = null;
    const url = new URL(this.baseUrl, location.href);
    if (this.lastId) url.searchParams.set("lastEventId", this.lastId);
    const source = new EventSource(url);
    this.source = source;
    source.addEventListener("open", () => this._setState("connecting"));
    source.addEventListener("snapshot", (ev) => this._receive(ev, "onSnapshot"));
    source.addEventListener("change", (ev) => this._receive(ev, "onChange"));
    source.addEventListener("status", (ev) => this._receive(ev, "onStatus"));
    source.addEventListener("error", () => {
      if (source !== this.source) return;
      if (this.troubleSince === null) this.troubleSince = Date.now();
      if (source.readyState === EventSource.CLOSED) {
        // The server answered with an error (not a dropped connection): say why, right away.
        this._explain(url);
        this._scheduleRetry();
      }
      this._setState("reconnecting");
    });
  }

  /** Reconnect now (Retry button, date change). `fresh` drops the last id: a new snapshot. */
  restart({ fresh = false } = {}) {
    this.backoffMs = 1000;
    this.start({ fresh });
  }

  stop() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.source) {
      this.source.close();
      this.source = null;
    }
  }

  /** Checked by the page's clock: flips `failed` after a long outage. */
  tick() {
    const failed =
      this.troubleSince !== null && (this.problem || Date.now() - this.troubleSince > this.failAfterMs);
    if (failed !== this.failed) {
      this.failed = failed;
      this.handlers.onState?.(this.state);
    }
  }

  async _explain(url) {
    const abort = new AbortController();
    try {
      const response = await fetch(url, { signal: abort.signal, headers: { Accept: "application/json" } });
      if (response.ok) return;
      const body = await response.json().catch(() => ({}));
      this.problem = body.error
        ? `${body.error}${body.hint ? ` (${body.hint})` : ""}`
        : `the server answered ${response.status}`;
      this.failed = true;
      this.handlers.onState?.(this.state);
    } catch {
      // A network error: EventSource's own retries cover it.
    } finally {
      abort.abort();
    }
  }

  _scheduleRetry() {
    this.source.close();
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.start(), this.backoffMs);
    this.backoffMs = Math.min(this.backoffMs * 2, 30000);
  }

  _receive(ev, handler) {
    if (ev.target !== this.source) return;
    let data;
    try {
      data = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (ev.lastEventId) this.lastId = ev.lastEventId;
    this.lastEventAt = Date.now();
    this.troubleSince = null;
    this.backoffMs = 1000;
    if (handler === "onStatus") {
      this.status = data;
      this.store = data.store || "ok";
      if (this.store === "ok") this.storeDownSince = null;
      else if (this.storeDownSince === null) this.storeDownSince = Date.now();
    }
    this.failed = false;
    this.problem = null;
    this._setState("live");
    this.handlers[handler]?.(data, ev.lastEventId || null);
  }

  _setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.handlers.onState?.(state);
  }

  /** The store has been reported down for a while (a blip shorter than 3 s is not shown). */
  storeDown(now = Date.now()) {
    return this.state === "live" && this.storeDownSince !== null && now - this.storeDownSince > 3000;
  }

  /** What the connection indicator shows: {cls, text}. */
  describe(now = Date.now()) {
    if (this.storeDown(now)) {
      return { cls: "bad", text: "Store unreachable" };
    }
    if (this.state === "live") {
      const ago = this.lastEventAt ? ` · last update ${fmtAgo((now - this.lastEventAt) / 1000)}` : "";
      // Polled workspaces (Clockify Free): say how fresh the last poll is, and any trouble.
      const poll = this.status?.poll;
      let polled = "";
      if (poll?.last_error) polled = ` · polling: ${poll.last_error}`;
      else if (poll?.last_success_at) polled = ` · polled ${fmtAgo((now - Date.parse(poll.last_success_at)) / 1000)}`;
      return { cls: poll?.last_error ? "wait" : "ok", text: `Live${ago}${polled}` };
    }
    if (this.state === "connecting" && this.lastEventAt === null) return { cls: "wait", text: "Connecting…" };
    return { cls: this.failed ? "bad" : "wait", text: "Reconnecting…" };
  }
}

/** Call `fn` at most once per `ms`, after the last call (refetch after a burst of changes). */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
