// Summary report: hours, billable hours and amounts per project (or client, person, tag, date).

import { dot, fill, fmtApiAmounts, fmtDay, fmtHM, h, params } from "./common.js";
import { startReport } from "./report.js";

// A Map, not an object: the page URL picks the key, and no key may reach Object.prototype.
const GROUPS = new Map([
  ["PROJECT", "Project"],
  ["CLIENT", "Client"],
  ["USER", "Person"],
  ["TAG", "Tag"],
  ["DATE", "Date"],
]);
const $ = (id) => document.getElementById(id);
const groupSelect = $("group");
const initial = (params.get("groupBy") || "PROJECT").toUpperCase();
groupSelect.value = GROUPS.has(initial) ? initial : "PROJECT";

function row(label, bucket, { color = null, header = "td" } = {}) {
  return h(
    "tr",
    {},
    h(header, { class: "name", ...(header === "th" ? { scope: "row" } : {}) }, color !== null ? dot(color) : null, label),
    h("td", { class: "num hours", text: fmtHM(bucket.totalSeconds) }),
    h("td", { class: "num billable", text: fmtHM(bucket.billableSeconds) }),
    h("td", { class: "num amount", text: fmtApiAmounts(bucket.amounts) || "–" }),
  );
}

function render(data) {
  const group = groupSelect.value;
  $("group-label").textContent = GROUPS.get(group);
  fill(
    $("rows"),
    data.groups.length
      ? data.groups.map((g) =>
          row(group === "DATE" ? fmtDay(g.id, { weekday: "short", month: "short", day: "numeric" }) : g.name, g, {
            color: group === "PROJECT" ? g.color || "" : null,
          }),
        )
      : h("tr", {}, h("td", { class: "empty", colspan: "4", text: "No time tracked in this range." })),
  );
  fill($("total"), row("Total", data, { header: "th" }));
  $("note").textContent = data.includesRunning ? "Includes running timers up to now." : "";
}

const report = startReport({
  apiUrl: (query, view) => {
    query.set("groupBy", view.params.get("groupBy") || groupSelect.value);
    return `/api/summary?${query}`;
  },
  render,
  extraParams: ["groupBy"],
});
groupSelect.addEventListener("change", () => report.setParam("groupBy", groupSelect.value));
