// What every report page shares: the range picker (validated inline), the JSON fetch with its
// loading, empty-safe and error states, live refresh (the /events stream tells which days
// changed; the page refetches when one is in its range), and, for the pages that ask, the filter
// bar, the coverage banner, the duration format toggle, Download CSV and Print.
//
// startReport(options) -> {refetch, setParam(name, value), rerender(), view}
//   apiUrl(query, view) -> url       the report's JSON (query: start, end, workspace, filters)
//   render(data, view)               draws an answer; `view` = {range, ctx, params, data, also,
//                                    durationFormat, fmt(seconds), filters, names}
//   extraParams: [names]             page parameters kept in the page URL (e.g. groupBy)
//   Optional (each an element of the page; leave out what the page does not have):
//   filters: el                      mount the filter bar (static/filters.js) there; its query
//                                    goes into every fetch and the page URL
//   also: {name: (query, view) -> url}   more JSON fetched with the same query, answered
//                                    together with the main one into view.also[name]
//   coverage: el                     the "hours before ... are not imported" banner
//   durations: el                    the h:mm:ss / h:mm / decimal toggle (URL `duration`),
//                                    default the workspace's format from the answer
//   csv: el                          a button that downloads the same query with format=csv
//   print: el                        a button that prints (the print stylesheet does the rest)
//   filterSummary: el                the filters in words (the controls do not print)
// A page gets, whatever it passes: the range label changed only when the new range's data is
// there (old rows are dimmed meanwhile, never shown under the new label), a skeleton until the
// first answer (body.first-load), a loading status, an error box whose Retry button shows only
// when a retry can help, and custom dates checked before any fetch.
//
// Also exported, for every page to show numbers alike: WITHOUT and TYPE_LABELS (the labels of
// "no project" etc. and of entry types), DURATION_FORMATS, unitsOf / fmtUnits / fmtDurationAs
// (seconds in FULL h:mm:ss, COMPACT h:mm or DECIMAL hours), apportion (rows that add up to
// their total), presetRange, rangeProblem and coverageText.

import {
  LiveStream,
  addDays,
  dayInZone,
  debounce,
  fmtDay,
  fmtRange,
  kiosk,
  monthOf,
  params,
  setupPage,
  weekOf,
} from "./common.js";
import { filterBar, loadNames, namesFromSnapshot } from "./filters.js";

export { TYPE_LABELS, WITHOUT } from "./filters.js";

const $ = (id) => document.getElementById(id);
const PRESETS = ["this-week", "last-week", "this-month", "last-month", "custom"];
const REFETCH_DEBOUNCE_MS = 500;
const RUNNING_REFRESH_MS = 30000;
const CONTEXT_WAIT_MS = 5000;
export const MAX_RANGE_DAYS = 366; // the API's limit (app/api.py)

// Durations --------------------------------------------------------------------------------------
/** The workspace's duration formats (Clockify's names) and the seconds in one shown unit. */
export const DURATION_FORMATS = { FULL: "h:mm:ss", COMPACT: "h:mm", DECIMAL: "decimal" };
const UNIT_S = { FULL: 1, COMPACT: 60, DECIMAL: 36 };
export const DEFAULT_DURATION_FORMAT = "COMPACT";

function formatOf(format) {
  return Object.hasOwn(UNIT_S, format) ? format : DEFAULT_DURATION_FORMAT;
}

/** Shown units (whole seconds, minutes or hundredths of an hour) as text in `format`. */
export function fmtUnits(units, format) {
  const f = formatOf(format);
  const u = Math.max(0, Math.round(units || 0));
  if (f === "DECIMAL") return (u / 100).toFixed(2);
  const seconds = u * UNIT_S[f];
  const hours = Math.floor(seconds / 3600);
  const mm = String(Math.floor((seconds % 3600) / 60)).padStart(2, "0");
  return f === "FULL" ? `${hours}:${mm}:${String(seconds % 60).padStart(2, "0")}` : `${hours}:${mm}`;
}

/**
 * Seconds as whole shown units, to the nearest (half up): h:mm to the minute, decimal to the
 * 0.01 h, as the CSV export (app/export.py) and the API's totalHours round them.
 */
export function unitsOf(seconds, format) {
  return Math.round(Math.max(0, seconds || 0) / UNIT_S[formatOf(format)]);
}

/** Seconds as text in `format` (see unitsOf). */
export function fmtDurationAs(seconds, format) {
  return fmtUnits(unitsOf(seconds, format), format);
}

/**
 * Shown units of a whole and its parts, so that the parts shown add up to the whole shown:
 * the whole as unitsOf shows it, each part rounded down, and the units still missing go to the
 * parts with the largest remainders (each part stays within one unit of its exact value).
 * Parts that do not add up to the whole exactly (tags: an entry counts under each of its tags)
 * are each shown as unitsOf shows them instead. Returns {whole, parts} in units (fmtUnits).
 */
export function apportion(wholeSeconds, partSeconds, format, wholeUnits = null) {
  const unit = UNIT_S[formatOf(format)];
  // `wholeUnits`: what the whole already shows (a subtotal row), within one unit of its value.
  const whole = wholeUnits ?? unitsOf(wholeSeconds, format);
  const sum = partSeconds.reduce((a, s) => a + s, 0);
  if (sum !== wholeSeconds || partSeconds.some((s) => s < 0)) {
    return { whole, parts: partSeconds.map((s) => unitsOf(s, format)) };
  }
  const parts = partSeconds.map((s) => Math.floor(s / unit));
  let missing = whole - parts.reduce((a, u) => a + u, 0);
  const order = partSeconds
    .map((s, i) => ({ i, rest: s % unit, s }))
    .sort((a, b) => b.rest - a.rest || b.s - a.s || a.i - b.i);
  for (const { i, rest } of order) {
    if (missing <= 0 || rest === 0) break;
    parts[i] += 1;
    missing -= 1;
  }
  return { whole, parts };
}

// Ranges -------------------------------------------------------------------------------------------
/** The date range of a preset, from today and the week start in the reporting time zone. */
export function presetRange(preset, ctx) {
  const today = dayInZone(new Date(), ctx.timezone);
  switch (preset) {
    case "last-week":
      return weekOf(addDays(weekOf(today, ctx.weekStart).start, -1), ctx.weekStart);
    case "this-month":
      return monthOf(today);
    case "last-month":
      return monthOf(addDays(monthOf(today).start, -1));
    default:
      return weekOf(today, ctx.weekStart);
  }
}

const longDay = (day) => fmtDay(day, { month: "short", day: "numeric", year: "numeric" });
const ISO_DAY = /^\d{4}-\d{2}-\d{2}$/;

/** What is wrong with a custom range, in words, or null when it can be asked for. */
export function rangeProblem(start, end) {
  if (!start || !end || !ISO_DAY.test(start) || !ISO_DAY.test(end)) {
    return "Pick both a start and an end date.";
  }
  if (end < start) {
    return `The end (${longDay(end)}) is before the start (${longDay(start)}): pick an end on or after the start.`;
  }
  const days = Math.round((Date.parse(`${end}T00:00:00Z`) - Date.parse(`${start}T00:00:00Z`)) / 86400000) + 1;
  if (days > MAX_RANGE_DAYS) {
    return `That is ${days} days; a report covers at most ${MAX_RANGE_DAYS} days. Pick a later start or an earlier end.`;
  }
  return null;
}

// Coverage ------------------------------------------------------------------------------------------
/** The banner's text for an answer's `coverage` over `range`, or null when nothing is missing. */
export function coverageText(coverage, range) {
  if (!coverage || !range) return null;
  const since = `${range.start.slice(0, 7)}-01`; // the start of the range's first month
  const from = coverage.from ? longDay(coverage.from) : null;
  const importing = coverage.importing;
  if (importing && (importing.state === "running" || importing.state === "paused")) {
    const progress = [
      importing.next ? `now at ${longDay(importing.next)}` : "",
      Number.isFinite(importing.rows) ? `${importing.rows.toLocaleString()} entries so far` : "",
    ].filter(Boolean);
    const head = importing.state === "paused" ? "History import paused; it goes on by itself" : "Importing history…";
    const tail = coverage.complete ? "" : from ? ` Hours before ${from} are not all here yet.` : " Totals fill in as it goes.";
    return { importing: true, text: `${head}${progress.length ? ` (${progress.join(", ")})` : ""}.${tail}` };
  }
  if (coverage.complete) return null;
  if (from) {
    return { importing: false, text: `Hours before ${from} are not imported, so totals that reach before it are short: run`, command: `clockwall import --since ${since}` };
  }
  return { importing: false, text: "clockwall has not imported Clockify's history, so hours in this range may be missing: run", command: `clockwall import --since ${since}` };
}

function showCoverage(el, coverage, range) {
  const found = coverageText(coverage, range);
  el.hidden = !found;
  if (!found) return el.replaceChildren();
  el.classList.toggle("importing", found.importing);
  const text = document.createElement("span");
  text.textContent = found.text;
  const parts = [text];
  if (found.command) {
    const code = document.createElement("code");
    code.textContent = found.command;
    parts.push(" ", code, ".");
  }
  el.replaceChildren(...parts);
}

// The page ------------------------------------------------------------------------------------------
export function startReport({
  apiUrl,
  render,
  extraParams = [],
  filters = null,
  also = {},
  coverage = null,
  durations = null,
  csv = null,
  print = null,
  filterSummary = null,
}) {
  setupPage();
  const workspace = params.get("workspace");
  const view = {
    ctx: null,
    preset: PRESETS.includes(params.get("range")) ? params.get("range") : "this-week",
    range: null, // the range asked for; the label shows the one whose data is on the page
    params: new URLSearchParams(location.search),
    data: null,
    also: {},
    durationFormat: DEFAULT_DURATION_FORMAT,
    fmt: (seconds) => fmtDurationAs(seconds, view.durationFormat),
    filters: null,
    get names() {
      return view.filters?.names || null;
    },
  };
  if (params.get("start") && params.get("end") && !params.get("range")) view.preset = "custom";
  const custom = { start: params.get("start"), end: params.get("end") };

  const presetSelect = $("preset");
  const startInput = $("start");
  const endInput = $("end");
  const rangeError = $("range-error");
  presetSelect.value = view.preset;
  document.body.classList.add("first-load");
  const status = $("range-status") || makeStatus();

  function makeStatus() {
    const el = document.createElement("p");
    el.id = "range-status";
    el.className = "range-status";
    el.setAttribute("role", "status");
    ($("range-label")?.parentElement || document.body).append(el);
    return el;
  }

  // Filters -------------------------------------------------------------------------------------
  let snapshotNames = null;
  let namesFromApi = false;
  if (filters) {
    view.filters = filterBar(filters, {
      params: view.params,
      onChange() {
        syncUrl();
        refetch();
      },
    });
    reloadNames();
  }
  async function reloadNames() {
    if (!view.filters) return;
    try {
      view.filters.setNames(await loadNames(workspace));
      namesFromApi = true;
    } catch {
      namesFromApi = false;
      if (snapshotNames) view.filters.setNames(namesFromSnapshot(snapshotNames));
    }
    if (view.data) rerender();
  }
  const reloadNamesSoon = debounce(reloadNames, REFETCH_DEBOUNCE_MS);

  // Duration format ---------------------------------------------------------------------------------
  const chosenFormat = () => {
    const asked = (view.params.get("duration") || "").toUpperCase();
    return Object.hasOwn(UNIT_S, asked) ? asked : null;
  };
  const durationInputs = [];
  if (durations) {
    // A labelled group of radio buttons drawn as one segmented control.
    const caption = document.createElement("span");
    caption.className = "toggle-caption";
    caption.id = "duration-format-caption";
    caption.textContent = "Hours as";
    const segments = document.createElement("span");
    segments.className = "segments";
    durations.setAttribute("role", "radiogroup");
    durations.setAttribute("aria-labelledby", caption.id);
    durations.replaceChildren(caption, segments);
    for (const [format, label] of Object.entries(DURATION_FORMATS)) {
      const input = document.createElement("input");
      input.type = "radio";
      input.name = "duration-format";
      input.value = format;
      const text = document.createElement("span");
      text.textContent = label;
      const wrap = document.createElement("label");
      wrap.append(input, text);
      segments.append(wrap);
      input.addEventListener("change", () => {
        if (!input.checked) return;
        const workspaceFormat = view.data?.durationFormat;
        if (format === workspaceFormat) view.params.delete("duration");
        else view.params.set("duration", format);
        syncUrl();
        rerender();
      });
      durationInputs.push(input);
    }
  }
  function settleFormat() {
    view.durationFormat = chosenFormat() || formatOf(view.data?.durationFormat);
    for (const input of durationInputs) input.checked = input.value === view.durationFormat;
  }

  // URL and controls ----------------------------------------------------------------------------------
  function computeRange() {
    if (!view.ctx) return { range: null };
    if (view.preset === "custom") {
      const problem = rangeProblem(custom.start, custom.end);
      return problem ? { range: null, problem } : { range: { start: custom.start, end: custom.end } };
    }
    return { range: presetRange(view.preset, view.ctx) };
  }

  function syncUrl() {
    const next = new URLSearchParams();
    if (workspace) next.set("workspace", workspace);
    if (kiosk) next.set("kiosk", "1");
    if (view.preset !== "this-week") next.set("range", view.preset);
    if (view.preset === "custom" && custom.start && custom.end) {
      next.set("start", custom.start);
      next.set("end", custom.end);
    }
    for (const name of extraParams) if (view.params.get(name)) next.set(name, view.params.get(name));
    // Filters stay in the URL only where a filter bar applies them (and can clear them).
    if (view.filters) for (const [name, value] of view.filters.query()) next.set(name, value);
    if (chosenFormat()) next.set("duration", chosenFormat());
    const text = next.toString();
    history.replaceState(null, "", text ? `${location.pathname}?${text}` : location.pathname);
  }

  function showRangeProblem(text) {
    if (rangeError) {
      rangeError.hidden = !text;
      rangeError.textContent = text || "";
    }
    for (const input of [startInput, endInput]) {
      if (text) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    }
  }

  function showControls(range) {
    $("custom").hidden = view.preset !== "custom";
    if (range && document.activeElement !== startInput && document.activeElement !== endInput) {
      startInput.value = range.start;
      endInput.value = range.end;
    }
  }

  function fetchQuery(range) {
    const query = new URLSearchParams({ start: range.start, end: range.end });
    if (workspace) query.set("workspace", workspace);
    if (view.filters) for (const [name, value] of view.filters.query()) query.set(name, value);
    return query;
  }

  function urls(range) {
    const main = apiUrl(fetchQuery(range), view);
    const extra = {};
    for (const [name, make] of Object.entries(also)) {
      const url = make(fetchQuery(range), view);
      if (url) extra[name] = url;
    }
    return { main, extra };
  }

  // Fetching --------------------------------------------------------------------------------------
  let generation = 0;
  let runningTimer = null;
  let shownKey = null; // what the page shows: a refetch of the same is quiet (no dimming)
  async function refetch() {
    const { range, problem } = computeRange();
    showControls(range);
    showRangeProblem(problem || null);
    if (!range) {
      if (problem && !view.data) document.body.classList.remove("first-load");
      return;
    }
    view.range = range;
    syncUrl();
    const mine = ++generation;
    const { main, extra } = urls(range);
    const key = JSON.stringify([main, extra]);
    const quiet = key === shownKey;
    if (!quiet) {
      document.body.classList.add("loading");
      $("report")?.setAttribute("aria-busy", "true");
      status.textContent = `Loading ${fmtRange(range.start, range.end)}…`;
    }
    try {
      const names = Object.keys(extra);
      const answers = await Promise.all([main, ...names.map((n) => extra[n])].map(getJson));
      if (mine !== generation) return;
      const [data, ...rest] = answers;
      view.data = data;
      view.also = Object.fromEntries(names.map((n, i) => [n, rest[i]]));
      shownKey = key;
      showProblem(null);
      settleFormat();
      $("range-label").textContent = fmtRange(range.start, range.end);
      if (coverage) showCoverage(coverage, data.coverage, range);
      if (filterSummary) {
        const words = view.filters?.describe() || "";
        filterSummary.hidden = !words;
        filterSummary.textContent = words ? `Filtered: ${words}` : "";
      }
      if (csv) csv.disabled = false;
      render(data, view);
      document.body.classList.remove("first-load", "stale");
      document.body.dataset.loaded = `${range.start}..${range.end}`;
      clearTimeout(runningTimer);
      if (data.includesRunning) runningTimer = setTimeout(refetch, RUNNING_REFRESH_MS);
    } catch (error) {
      if (mine !== generation) return;
      document.body.classList.remove("first-load");
      document.body.classList.add("stale");
      showProblem(error.message, { retry: error.retry !== false });
    } finally {
      if (mine === generation) {
        document.body.classList.remove("loading");
        $("report")?.removeAttribute("aria-busy");
        status.textContent = "";
      }
    }
  }
  const refetchSoon = debounce(refetch, REFETCH_DEBOUNCE_MS);

  function rerender() {
    if (!view.data) return;
    settleFormat();
    render(view.data, view);
  }

  /** GET json; an error says what went wrong and whether a retry can help (not for a 400). */
  async function getJson(url) {
    let response;
    try {
      response = await fetch(url, { headers: { Accept: "application/json" } });
    } catch {
      throw Object.assign(new Error("Could not reach clockwall. Check the connection, then retry."), { retry: true });
    }
    const data = await response.json().catch(() => ({}));
    if (response.ok) return data;
    if (response.status === 400 || response.status === 404 || response.status === 403) {
      const what = data.error || `the server refused the request (HTTP ${response.status})`;
      const hint = data.hint && !/retry/i.test(data.hint) ? ` ${capital(data.hint)}.` : "";
      throw Object.assign(
        new Error(`This report cannot be shown: ${what}.${hint} Change the range or the filters (or Clear filters) to see it.`),
        { retry: false },
      );
    }
    const what = data.error ? `${data.error}${data.hint ? ` (${data.hint})` : ""}` : `the server answered ${response.status}`;
    throw Object.assign(new Error(`Could not load the report: ${what}.`), { retry: true });
  }

  function showProblem(text, { retry = true } = {}) {
    $("problem").hidden = !text;
    if (text) $("problem-text").textContent = text;
    $("retry").hidden = !retry;
  }

  function inRange(day) {
    return view.range && day && day >= view.range.start && day <= view.range.end;
  }

  const query = new URLSearchParams();
  if (workspace) query.set("workspace", workspace);
  const stream = new LiveStream(`/events${query.toString() ? `?${query}` : ""}`, {
    onSnapshot(data) {
      view.ctx = { timezone: data.timezone || "UTC", weekStart: data.weekStart || "MONDAY" };
      snapshotNames = data.names || null;
      if (view.filters && !namesFromApi && snapshotNames) {
        view.filters.setNames(namesFromSnapshot(snapshotNames));
        reloadNamesSoon();
      }
      refetch(); // first load, or after a reconnect that could not resume: anything may have changed
    },
    onChange(data) {
      if (data.type === "names" || data.type === "rebuilt") {
        refetchSoon();
        if (data.type === "names") reloadNamesSoon();
      } else if (inRange(data.prev?.day) || inRange(data.next?.day)) refetchSoon();
    },
    onState: indicate,
    onStatus: indicate,
  });

  function indicate() {
    stream.tick();
    const { cls, text } = stream.describe();
    $("conn").className = `conn ${cls}`;
    $("conn-text").textContent = text;
    if (stream.failed && !view.data) {
      showProblem(stream.problem ? `clockwall refused the live stream: ${stream.problem}` : "Can't reach clockwall. Retrying by itself…");
    }
  }

  presetSelect.addEventListener("change", () => {
    view.preset = presetSelect.value;
    if (view.preset === "custom" && view.range) Object.assign(custom, view.range);
    refetch();
  });
  for (const input of [startInput, endInput]) {
    input.addEventListener("change", () => {
      custom.start = startInput.value;
      custom.end = endInput.value;
      refetch();
    });
  }
  $("retry").addEventListener("click", () => {
    stream.restart();
    refetch();
  });
  $("range").addEventListener("submit", (ev) => ev.preventDefault()); // Enter in a field: no reload
  csv?.addEventListener("click", () => download());
  print?.addEventListener("click", () => window.print());

  async function download() {
    if (!view.range) return;
    const url = new URL(urls(view.range).main, location.href);
    url.searchParams.set("format", "csv");
    const label = csv.textContent;
    csv.disabled = true;
    csv.textContent = "Preparing CSV…";
    try {
      let response;
      try {
        response = await fetch(url, { headers: { Accept: "text/csv" } });
      } catch {
        throw Object.assign(new Error("Could not reach clockwall for the CSV. Check the connection, then retry."), { retry: true });
      }
      if (!response.ok) {
        const data = await response.json().catch(() => ({}));
        const what = data.error || `the server answered ${response.status}`;
        throw Object.assign(new Error(`The CSV could not be made: ${what}.`), { retry: response.status >= 500 });
      }
      const blob = await response.blob();
      const named = /filename="?([^";]+)"?/.exec(response.headers.get("Content-Disposition") || "");
      const page = location.pathname.replace(/\W+/g, "") || "report";
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = named ? named[1] : `clockwall-${page}-${view.range.start}-${view.range.end}.csv`;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    } catch (error) {
      showProblem(error.message, { retry: false });
    } finally {
      csv.disabled = false;
      csv.textContent = label;
    }
  }

  stream.start();
  setInterval(indicate, 1000);
  // Without a snapshot (an SSE-hostile proxy) still show numbers, in the browser's zone.
  setTimeout(() => {
    if (view.ctx) return;
    view.ctx = { timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC", weekStart: "MONDAY" };
    refetch();
  }, CONTEXT_WAIT_MS);
  return {
    refetch,
    rerender,
    view,
    setParam(name, value) {
      if (value === null || value === undefined || value === "") view.params.delete(name);
      else view.params.set(name, value);
      refetch();
    },
  };
}

function capital(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : text;
}
