// Team report: a people x projects heatmap of hours, with row and column totals.

import { dot, fill, fmtDay, fmtDuration, fmtHM, fmtMoney, h } from "./common.js";
import { startReport } from "./report.js";

const $ = (id) => document.getElementById(id);

function shade(seconds, max) {
  // Light to strong accent: the share of the busiest cell, never fully transparent.
  const ratio = max ? seconds / max : 0;
  return { alpha: (0.15 + 0.85 * ratio).toFixed(3), strong: ratio > 0.55 };
}

const RESET_WORD = { WEEKLY: "weekly ", MONTHLY: "monthly ", YEARLY: "yearly " };

/** "312% of 160 h estimate": the project's progress as Clockify shows it, for the header's title. */
function progressText(p) {
  const word = RESET_WORD[p.reset] || "";
  const estimate =
    p.kind === "budget"
      ? `${p.currency ? fmtMoney(p.estimate / 100, p.currency) : (p.estimate / 100).toFixed(2)} ${word}budget`
      : `${fmtDuration(p.estimate)} ${word}estimate`;
  return `${p.percent}% of ${estimate}`;
}

function projectHeader(p) {
  const progress = p.progress;
  const over = Boolean(progress?.over);
  const title = progress ? `${p.name}: ${progressText(progress)}` : p.name;
  return h(
    "th",
    { scope: "col", class: `project${over ? " over" : ""}`, title },
    dot(p.color || ""),
    h("span", { text: p.name }),
    over ? h("span", { class: "over-mark", text: ` ${progress.percent}%`, "aria-label": `over estimate: ${progressText(progress)}` }) : null,
  );
}

/** What a progress figure is based on, when it is not Clockify's own. */
function basisNote(data) {
  const seen = data.projects.filter((p) => p.progress?.basis === "seen");
  if (!seen.length) return "";
  const since = data.progressSince ? ` since ${fmtDay(data.progressSince, { month: "short", day: "numeric", year: "numeric" })}` : "";
  return `Project progress is based on what clockwall has seen${since}.`;
}

function render(data) {
  const table = $("heatmap");
  if (!data.users.length) {
    fill(table, h("tbody", {}, h("tr", {}, h("td", { class: "empty", text: "No time tracked in this range." }))));
    $("note").textContent = "";
    return;
  }
  const max = Math.max(0, ...data.cells.flat());
  fill(
    table,
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col", class: "corner", text: "Person" }),
        data.projects.map(projectHeader),
        h("th", { scope: "col", class: "num", text: "Total" }),
      ),
    ),
    h(
      "tbody",
      {},
      data.users.map((u, i) =>
        h(
          "tr",
          {},
          h("th", { scope: "row", class: "name", text: u.name }),
          data.cells[i].map((seconds) => {
            if (!seconds) return h("td", { class: "cell zero", text: "–" });
            const { alpha, strong } = shade(seconds, max);
            return h("td", { class: `cell${strong ? " strong" : ""}`, style: { "--alpha": alpha }, text: fmtHM(seconds) });
          }),
          h("td", { class: "num total", text: fmtHM(u.totalSeconds) }),
        ),
      ),
    ),
    h(
      "tfoot",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "row", text: "Total" }),
        data.projects.map((p) => h("td", { class: "num total", text: fmtHM(p.totalSeconds) })),
        h("td", { class: "num total grand", text: fmtHM(data.totalSeconds) }),
      ),
    ),
  );
  $("note").textContent = [data.includesRunning ? "Includes running timers up to now." : "", basisNote(data)]
    .filter(Boolean)
    .join(" ");
}

startReport({ apiUrl: (query) => `/api/team?${query}`, render });
