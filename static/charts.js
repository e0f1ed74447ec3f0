// Plain SVG charts for the report pages: hours per day (stacked) and the share of a grouping.
//
// API (stable; static/summary.js and static/team.js use it):
//
//   dailyChart(el, {days, series, title, fmt})
//     One stacked bar per day, as <g class="bar" data-day="YYYY-MM-DD"> (empty days too, so
//     the bar count is the day count). `days`: ["2026-03-01", ...]; `series`: [{key, label,
//     color?, values: [seconds per day]}] stacked bottom-up in that order; `fmt(seconds)`: the
//     page's duration text (tooltips and the summary). Returns the <svg>.
//   shareChart(el, {items, title, fmt, top = 8, otherLabel = "Other"})
//     A horizontal 100% bar of `items` ([{key, label, color?, seconds}], largest first) with a
//     numbered legend: the `top` largest and one "Other" for the rest. Returns the <svg>.
//   chartPalette(i): the fill colour of series i when an item has no colour of its own.
//
// Both charts draw into `el` (its children are replaced), size themselves to its width and
// redraw when it changes. Colour never carries meaning alone: every series has its own pattern
// (solid, hatched, dotted...) that survives a black-and-white printer, bars and segments have a
// <title>, and the <svg> has role="img", an aria-label summary and a <title>. Presentation
// attributes only (no style attributes): the pages run under a strict Content-Security-Policy.

const NS = "http://www.w3.org/2000/svg";
const PALETTE = ["#5cc8ff", "#ffb347", "#b39ddb", "#7ee0a1", "#ff8a80", "#ffe066", "#80cbc4", "#f48fb1"];
const OTHER_COLOR = "#9aa5b4";
const DAILY_HEIGHT = 230;
const SHARE_BAR_HEIGHT = 34;
let chartIds = 0;

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") el.textContent = value;
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) if (child) el.append(child);
  return el;
}

function html(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) if (child) el.append(child instanceof Node ? child : document.createTextNode(child));
  return el;
}

function safeColor(color) {
  return typeof color === "string" && /^#[0-9a-fA-F]{3,8}$/.test(color) ? color : null;
}

export function chartPalette(i) {
  return PALETTE[i % PALETTE.length];
}

/**
 * The pattern of series `i`: a fill of its colour with dark marks on top, so two series differ
 * in grey as well as in colour. Pattern 0 is plain; the rest hatch, dot or cross it.
 */
function pattern(id, i, color) {
  const p = svg("pattern", { id, width: 8, height: 8, patternUnits: "userSpaceOnUse" });
  p.append(svg("rect", { width: 8, height: 8, fill: color }));
  const ink = { stroke: "#0b1017", "stroke-width": 1.6, "stroke-opacity": 0.75, fill: "none" };
  const dots = { fill: "#0b1017", "fill-opacity": 0.75 };
  switch (i % 8) {
    case 1:
      p.append(svg("path", { d: "M-2,2 l4,-4 M0,8 l8,-8 M6,10 l4,-4", ...ink }));
      break;
    case 2:
      p.append(svg("circle", { cx: 2, cy: 2, r: 1.4, ...dots }), svg("circle", { cx: 6, cy: 6, r: 1.4, ...dots }));
      break;
    case 3:
      p.append(svg("path", { d: "M0,4 h8 M4,0 v8", ...ink }));
      break;
    case 4:
      p.append(svg("path", { d: "M0,2 h8 M0,6 h8", ...ink }));
      break;
    case 5:
      p.append(svg("path", { d: "M2,0 v8 M6,0 v8", ...ink }));
      break;
    case 6:
      p.append(svg("path", { d: "M-2,6 l4,4 M0,0 l8,8 M6,-2 l4,4", ...ink }));
      break;
    case 7:
      p.append(svg("path", { d: "M-2,2 l4,-4 M0,8 l8,-8 M6,10 l4,-4 M-2,6 l4,4 M0,0 l8,8 M6,-2 l4,4", ...ink }));
      break;
    default:
      break;
  }
  return p;
}

/** A small legend swatch (its own <svg>, with its own copy of the pattern). */
function swatch(i, color) {
  const id = `cw-swatch-${++chartIds}`;
  return svg(
    "svg",
    { class: "swatch", width: 14, height: 14, viewBox: "0 0 14 14", "aria-hidden": "true", focusable: "false" },
    svg("defs", {}, pattern(id, i, color)),
    svg("rect", { x: 0.5, y: 0.5, width: 13, height: 13, rx: 2, fill: `url(#${id})`, stroke: "currentColor", "stroke-opacity": 0.5 }),
  );
}

function chartSvg(width, height, title, label) {
  const titleId = `cw-chart-title-${++chartIds}`;
  return svg(
    "svg",
    {
      class: "chart-svg",
      role: "img",
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      "aria-label": label,
      focusable: "false",
    },
    svg("title", { id: titleId, text: title }),
  );
}

/** Redraw `draw` when `el` changes width (one observer per element, replaced on each call). */
function sizeToContainer(el, draw) {
  el._chartObserver?.disconnect();
  let lastWidth = el.clientWidth;
  draw(lastWidth);
  if (typeof ResizeObserver !== "function") return;
  let frame = null;
  const observer = new ResizeObserver(() => {
    const width = el.clientWidth;
    if (Math.abs(width - lastWidth) < 2 || frame !== null) return;
    frame = requestAnimationFrame(() => {
      frame = null;
      lastWidth = el.clientWidth;
      draw(lastWidth);
    });
  });
  observer.observe(el);
  el._chartObserver = observer;
}

const dayFormat = (options) => new Intl.DateTimeFormat(navigator.language || "en-US", { ...options, timeZone: "UTC" });
const isoDate = (day) => new Date(`${day}T00:00:00Z`);

/** A "nice" step for the hour axis: about four gridlines. */
function hourStep(maxHours) {
  for (const step of [0.25, 0.5, 1, 2, 4, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000]) {
    if (maxHours / step <= 4) return step;
  }
  return Math.ceil(maxHours / 4 / 1000) * 1000;
}

function fmtHoursAxis(hours) {
  return `${Number.isInteger(hours) ? hours : hours.toFixed(2).replace(/0+$/, "")} h`;
}

/** Hours per day, stacked by series. */
export function dailyChart(el, { days, series, title = "Hours per day", fmt = (s) => `${(s / 3600).toFixed(2)} h` }) {
  let result = null;
  const totals = days.map((_, d) => series.reduce((sum, s) => sum + (s.values[d] || 0), 0));
  const withTime = totals.filter((t) => t > 0).length;
  const busiest = totals.reduce((best, t, d) => (t > totals[best] ? d : best), 0);
  const all = totals.reduce((a, b) => a + b, 0);
  const short = dayFormat({ month: "short", day: "numeric" });
  const label =
    `${title}: ${days.length} day${days.length === 1 ? "" : "s"}, ${withTime} with time tracked` +
    (all ? `, most on ${short.format(isoDate(days[busiest]))} (${fmt(totals[busiest])})` : "") +
    `. ${series.map((s) => `${s.label} ${fmt(s.values.reduce((a, b) => a + (b || 0), 0))}`).join(", ")}.`;

  sizeToContainer(el, (width) => {
    const w = Math.max(280, Math.floor(width || 600));
    const h = DAILY_HEIGHT;
    const m = { top: 10, right: 8, bottom: 34, left: 46 };
    const plotW = w - m.left - m.right;
    const plotH = h - m.top - m.bottom;
    const maxHours = Math.max(...totals, 0) / 3600;
    const step = hourStep(Math.max(maxHours, 1));
    const top = Math.max(step, Math.ceil(maxHours / step) * step);
    const y = (seconds) => m.top + plotH - (seconds / 3600 / top) * plotH;
    const slot = plotW / Math.max(days.length, 1);
    const barW = Math.max(1, Math.min(48, slot * 0.72));

    const root = chartSvg(w, h, title, label);
    const prefix = `cw-daily-${++chartIds}`;
    const defs = svg("defs");
    series.forEach((s, i) => defs.append(pattern(`${prefix}-${i}`, s.pattern ?? i, safeColor(s.color) || chartPalette(i))));
    root.append(defs);

    const grid = svg("g", { class: "grid", "aria-hidden": "true" });
    for (let v = 0; v <= top + 1e-9; v += step) {
      const yy = Math.round(y(v * 3600)) + 0.5;
      grid.append(svg("line", { x1: m.left, x2: w - m.right, y1: yy, y2: yy, class: v === 0 ? "axis" : "gridline" }));
      grid.append(svg("text", { x: m.left - 6, y: yy + 4, "text-anchor": "end", class: "tick", text: fmtHoursAxis(v) }));
    }
    root.append(grid);

    // Day labels: every day when they fit, else every k-th day (and each month's first).
    const fits = Math.max(1, Math.ceil(44 / slot));
    const long = days.length <= 14 && slot >= 56;
    const weekday = dayFormat({ weekday: "short", day: "numeric" });
    const monthDay = dayFormat({ month: "short", day: "numeric" });
    const labels = svg("g", { class: "labels", "aria-hidden": "true" });
    const bars = svg("g", { class: "bars" });
    days.forEach((day, d) => {
      const x = m.left + slot * d + (slot - barW) / 2;
      const group = svg("g", { class: "bar", "data-day": day, "data-seconds": totals[d] });
      const parts = series
        .map((s) => `${s.label} ${fmt(s.values[d] || 0)}`)
        .join(", ");
      group.append(svg("title", { text: `${monthDay.format(isoDate(day))}: ${fmt(totals[d])}${series.length > 1 ? ` (${parts})` : ""}` }));
      let acc = 0;
      series.forEach((s, i) => {
        const value = s.values[d] || 0;
        if (value <= 0) return;
        const y0 = y(acc);
        acc += value;
        const y1 = y(acc);
        group.append(
          svg("rect", {
            x: x.toFixed(2),
            y: y1.toFixed(2),
            width: barW.toFixed(2),
            height: Math.max(0.5, y0 - y1).toFixed(2),
            fill: `url(#${prefix}-${i})`,
            class: "segment",
            "data-series": s.key,
          }),
        );
      });
      // A transparent hit area the height of the plot, so a short bar still shows its title.
      group.prepend(svg("rect", { x: (m.left + slot * d).toFixed(2), y: m.top, width: slot.toFixed(2), height: plotH, class: "hit", fill: "transparent" }));
      bars.append(group);
      const first = day.endsWith("-01");
      if (d % fits === 0 || (first && fits > 1 && d % fits >= Math.ceil(fits / 2))) {
        const text = long ? weekday.format(isoDate(day)) : first || d === 0 ? monthDay.format(isoDate(day)) : String(Number(day.slice(8)));
        labels.append(svg("text", { x: (m.left + slot * d + slot / 2).toFixed(2), y: h - m.bottom + 16, "text-anchor": "middle", class: "tick", text }));
      }
    });
    root.append(bars, labels);
    el.replaceChildren(root, legend(series.map((s, i) => ({ label: s.label, color: safeColor(s.color) || chartPalette(i), pattern: s.pattern ?? i, value: fmt(s.values.reduce((a, b) => a + (b || 0), 0)) }))));
    result = root;
  });
  return result;
}

function legend(items, { numbered = false } = {}) {
  return html(
    numbered ? "ol" : "ul",
    { class: "chart-legend" },
    items.map((item, i) =>
      html(
        "li",
        {},
        swatch(item.pattern ?? i, item.color),
        numbered ? html("span", { class: "legend-index", text: `${i + 1}` }) : null,
        html("span", { class: "legend-label", text: item.label }),
        item.value ? html("span", { class: "legend-value", text: item.value }) : null,
      ),
    ),
  );
}

/** The share of each item in a 100% bar: the `top` largest, then "Other". */
export function shareChart(el, { items, title = "Share", fmt = (s) => `${(s / 3600).toFixed(2)} h`, top = 8, otherLabel = "Other" }) {
  let result = null;
  const sorted = [...items].filter((it) => it.seconds > 0).sort((a, b) => b.seconds - a.seconds);
  const shown = sorted.slice(0, top).map((it, i) => ({ ...it, pattern: i, color: safeColor(it.color) || chartPalette(i) }));
  const rest = sorted.slice(top);
  if (rest.length) {
    shown.push({
      key: "__other",
      label: `${otherLabel} (${rest.length})`,
      seconds: rest.reduce((a, it) => a + it.seconds, 0),
      color: OTHER_COLOR,
      pattern: 0,
    });
  }
  const whole = shown.reduce((a, it) => a + it.seconds, 0);
  const pct = (s) => (whole ? (100 * s) / whole : 0);
  const pctText = (s) => {
    const p = pct(s);
    return p >= 10 || p === 0 ? `${Math.round(p)}%` : `${p.toFixed(1)}%`;
  };
  const label = whole
    ? `${title}: ${shown.map((it) => `${it.label} ${pctText(it.seconds)}`).join(", ")}.`
    : `${title}: no time tracked.`;

  sizeToContainer(el, (width) => {
    const w = Math.max(280, Math.floor(width || 600));
    const h = SHARE_BAR_HEIGHT + 4;
    const root = chartSvg(w, h, title, label);
    const prefix = `cw-share-${++chartIds}`;
    const defs = svg("defs");
    shown.forEach((it, i) => defs.append(pattern(`${prefix}-${i}`, it.pattern, it.color)));
    root.append(defs);
    let x = 0;
    const bar = svg("g", { class: "share-bar" });
    shown.forEach((it, i) => {
      const segW = whole ? (it.seconds / whole) * w : 0;
      const g = svg(
        "g",
        { class: "segment", "data-key": it.key },
        svg("title", { text: `${i + 1}. ${it.label}: ${fmt(it.seconds)} (${pctText(it.seconds)})` }),
        svg("rect", { x: x.toFixed(2), y: 2, width: Math.max(0, segW).toFixed(2), height: SHARE_BAR_HEIGHT, fill: `url(#${prefix}-${i})`, class: "share-rect" }),
      );
      // The legend number inside the segment when it fits, on a plate so it reads on any fill.
      if (segW >= 22) {
        const text = segW >= 64 ? `${i + 1} · ${pctText(it.seconds)}` : `${i + 1}`;
        const plateW = text.length * 7 + 8;
        if (segW >= plateW + 4) {
          const cx = x + segW / 2;
          g.append(
            svg("rect", { x: (cx - plateW / 2).toFixed(2), y: 2 + SHARE_BAR_HEIGHT / 2 - 9, width: plateW, height: 18, rx: 3, class: "plate" }),
            svg("text", { x: cx.toFixed(2), y: 2 + SHARE_BAR_HEIGHT / 2 + 4, "text-anchor": "middle", class: "plate-text", text }),
          );
        }
      }
      bar.append(g);
      x += segW;
    });
    root.append(bar);
    el.replaceChildren(
      root,
      legend(
        shown.map((it) => ({ label: it.label, color: it.color, pattern: it.pattern, value: `${fmt(it.seconds)} · ${pctText(it.seconds)}` })),
        { numbered: true },
      ),
    );
    result = root;
  });
  return result;
}
