// What every report page shares: the range picker, the JSON fetch, and live refresh (the
// /events stream tells which days changed; the page refetches when one is in its range).

import {
  LiveStream,
  addDays,
  dayInZone,
  debounce,
  fmtRange,
  kiosk,
  monthOf,
  params,
  setupPage,
  weekOf,
} from "./common.js";

const $ = (id) => document.getElementById(id);
const PRESETS = ["this-week", "last-week", "this-month", "last-month", "custom"];
const REFETCH_DEBOUNCE_MS = 500;
const RUNNING_REFRESH_MS = 30000;
const CONTEXT_WAIT_MS = 5000;

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

/**
 * startReport({apiUrl(range, query) -> url, render(data, view), extraParams: [names kept in the
 * page URL]}). `view` = {range, ctx, params}. Returns {refetch}.
 */
export function startReport({ apiUrl, render, extraParams = [] }) {
  setupPage();
  const workspace = params.get("workspace");
  const view = {
    ctx: null,
    preset: PRESETS.includes(params.get("range")) ? params.get("range") : "this-week",
    range: null,
    params: new URLSearchParams(location.search),
    data: null,
  };
  if (params.get("start") && params.get("end") && !params.get("range")) view.preset = "custom";
  const custom = { start: params.get("start"), end: params.get("end") };

  const presetSelect = $("preset");
  const startInput = $("start");
  const endInput = $("end");
  presetSelect.value = view.preset;

  function computeRange() {
    if (!view.ctx) return null;
    if (view.preset === "custom" && custom.start && custom.end && custom.start <= custom.end) {
      return { start: custom.start, end: custom.end };
    }
    return presetRange(view.preset === "custom" ? "this-week" : view.preset, view.ctx);
  }

  function syncUrl() {
    const next = new URLSearchParams();
    if (workspace) next.set("workspace", workspace);
    if (kiosk) next.set("kiosk", "1");
    if (view.preset !== "this-week") next.set("range", view.preset);
    if (view.preset === "custom" && view.range) {
      next.set("start", view.range.start);
      next.set("end", view.range.end);
    }
    for (const name of extraParams) if (view.params.get(name)) next.set(name, view.params.get(name));
    const text = next.toString();
    history.replaceState(null, "", text ? `${location.pathname}?${text}` : location.pathname);
  }

  function showControls() {
    $("custom").hidden = view.preset !== "custom";
    if (view.range) {
      startInput.value = view.range.start;
      endInput.value = view.range.end;
      $("range-label").textContent = fmtRange(view.range.start, view.range.end);
    }
  }

  let generation = 0;
  let runningTimer = null;
  async function refetch() {
    const range = computeRange();
    if (!range) return;
    view.range = range;
    showControls();
    syncUrl();
    const mine = ++generation;
    const query = new URLSearchParams({ start: range.start, end: range.end });
    if (workspace) query.set("workspace", workspace);
    document.body.classList.add("loading");
    try {
      const response = await fetch(apiUrl(query, view), { headers: { Accept: "application/json" } });
      const data = await response.json().catch(() => ({}));
      if (mine !== generation) return;
      if (!response.ok) throw new Error(data.error ? `${data.error}. ${data.hint || ""}` : `HTTP ${response.status}`);
      view.data = data;
      showProblem(null);
      render(data, view);
      document.body.dataset.loaded = `${range.start}..${range.end}`;
      clearTimeout(runningTimer);
      if (data.includesRunning) runningTimer = setTimeout(refetch, RUNNING_REFRESH_MS);
    } catch (error) {
      if (mine !== generation) return;
      showProblem(`Could not load the report: ${error.message}`);
    } finally {
      if (mine === generation) document.body.classList.remove("loading");
    }
  }
  const refetchSoon = debounce(refetch, REFETCH_DEBOUNCE_MS);

  function showProblem(text) {
    $("problem").hidden = !text;
    if (text) $("problem-text").textContent = text;
  }

  function inRange(day) {
    return view.range && day && day >= view.range.start && day <= view.range.end;
  }

  const query = new URLSearchParams();
  if (workspace) query.set("workspace", workspace);
  const stream = new LiveStream(`/events${query.toString() ? `?${query}` : ""}`, {
    onSnapshot(data) {
      view.ctx = { timezone: data.timezone || "UTC", weekStart: data.weekStart || "MONDAY" };
      refetch(); // first load, or after a reconnect that could not resume: anything may have changed
    },
    onChange(data) {
      if (data.type === "names" || data.type === "rebuilt") refetchSoon();
      else if (inRange(data.prev?.day) || inRange(data.next?.day)) refetchSoon();
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
      if (custom.start && custom.end && custom.start <= custom.end) refetch();
    });
  }
  $("retry").addEventListener("click", () => {
    stream.restart();
    refetch();
  });

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
    setParam(name, value) {
      view.params.set(name, value);
      refetch();
    },
  };
}
