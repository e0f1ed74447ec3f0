// Team report: a people x projects heatmap of hours, with row and column totals.

import { dot, fill, fmtHM, h } from "./common.js";
import { startReport } from "./report.js";

const $ = (id) => document.getElementById(id);

function shade(seconds, max) {
  // Light to strong accent: the share of the busiest cell, never fully transparent.
  const ratio = max ? seconds / max : 0;
  return { alpha: (0.15 + 0.85 * ratio).toFixed(3), strong: ratio > 0.55 };
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
        data.projects.map((p) =>
          h("th", { scope: "col", class: "project", title: p.name }, dot(p.color || ""), h("span", { text: p.name })),
        ),
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
  $("note").textContent = data.includesRunning ? "Includes running timers up to now." : "";
}

startReport({ apiUrl: (query) => `/api/team?${query}`, render });
