// The report filter bar: people, projects, clients, tags and tasks (searchable multi-select
// pickers that stay usable with hundreds of names), billable, entry type and description text.
//
// API (stable; static/report.js mounts it for every report page that asks for filters):
//
//   FILTER_PARAMS: the query parameters the bar owns, as the API and the page URL spell them:
//     users, projects, clients, tags, tasks (comma-separated ids, "none" = without),
//     billable (true|false), type (REGULAR,BREAK,HOLIDAY,TIME_OFF), description (text).
//   WITHOUT: {PROJECT, CLIENT, TAG, TASK, USER}: the one label of "no project" etc. on every page
//     (the same text the API gives a group without one).
//   TYPE_LABELS: {REGULAR: "Regular", BREAK: "Break", HOLIDAY: "Holiday", TIME_OFF: "Time off"}.
//   filterBar(container, {params, onChange}) -> bar
//     Draws the bar into `container`, its state read from `params` (URLSearchParams, e.g. the
//     page URL's). `onChange(query)` runs after each change with `bar.query()`.
//     bar.query(): URLSearchParams with only the filters that are set.
//     bar.active: whether any filter is set.
//     bar.describe(): the filters in words ("Person: Ana Lima · Billable"), "" when none; the
//       pages print it, since the controls do not print.
//     bar.setNames(names): the names for the pickers, {users, projects, clients, tags, tasks}:
//       arrays of {id, name} (projects also color, clientId, archived; tasks projectId), as
//       GET /api/names answers. Until they arrive the pickers say "Loading names…".
//     bar.label(kind, id): the name of an id (kind: user, project, client, tag, task), or null.
//     bar.clear(): unset every filter (and call onChange).
//   loadNames(workspace) -> Promise<names>: GET /api/names (throws when it cannot).
//   namesFromSnapshot(raw): names from a /events snapshot's `names` ({kind: {id: record}}),
//     deleted ones left out: the fallback when /api/names is not there.
//
// Keyboard: a picker's button opens it (Enter/Space) and puts the focus in its search box;
// ArrowDown/ArrowUp (Home/End) move through the listed checkboxes, Space ticks one, Escape
// closes it and returns to the button; leaving it with Tab closes it too.

export const FILTER_PARAMS = ["users", "projects", "clients", "tags", "tasks", "billable", "type", "description"];
export const WITHOUT = {
  PROJECT: "(Without project)",
  CLIENT: "(Without client)",
  TAG: "(Without tag)",
  TASK: "(Without task)",
  USER: "(Unknown user)",
};
export const TYPE_LABELS = { REGULAR: "Regular", BREAK: "Break", HOLIDAY: "Holiday", TIME_OFF: "Time off" };
const DESCRIPTION_DEBOUNCE_MS = 400;
const MAX_IDS = 500; // a URL with more ids than any picker could hold is cut, not sent whole

// param -> what it picks. `kind` keys the names; `without` offers "none".
const PICKERS = [
  { param: "users", kind: "user", list: "users", label: "Person", plural: "people", without: null },
  { param: "projects", kind: "project", list: "projects", label: "Project", plural: "projects", without: WITHOUT.PROJECT },
  { param: "clients", kind: "client", list: "clients", label: "Client", plural: "clients", without: WITHOUT.CLIENT },
  { param: "tags", kind: "tag", list: "tags", label: "Tag", plural: "tags", without: WITHOUT.TAG },
  { param: "tasks", kind: "task", list: "tasks", label: "Task", plural: "tasks", without: WITHOUT.TASK },
];
let barCount = 0;

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function splitIds(raw) {
  const out = [];
  for (const part of String(raw || "").split(",")) {
    const id = part.trim();
    if (!id || id.length > 64) continue;
    out.push(id.toLowerCase() === "none" ? "none" : id);
    if (out.length >= MAX_IDS) break;
  }
  return [...new Set(out)];
}

/** GET /api/names for `workspace` (null: the default one). */
export async function loadNames(workspace) {
  const query = workspace ? `?${new URLSearchParams({ workspace })}` : "";
  const response = await fetch(`/api/names${query}`, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`the names are not available (HTTP ${response.status})`);
  return response.json();
}

/** A snapshot's {kind: {id: record}} as the lists GET /api/names gives (deleted left out). */
export function namesFromSnapshot(raw) {
  const list = (kind) =>
    Object.entries(raw?.[kind] || {})
      .filter(([, record]) => record && !record.deleted)
      .map(([id, record]) => ({ ...record, id, name: record.name || id }))
      .sort((a, b) => a.name.localeCompare(b.name, undefined, { sensitivity: "base" }));
  return { users: list("user"), projects: list("project"), clients: list("client"), tags: list("tag"), tasks: list("task") };
}

/** The filter bar in `container`; see the API at the top of this file. */
export function filterBar(container, { params = new URLSearchParams(), onChange = () => {} } = {}) {
  const uid = `f${++barCount}`;
  const state = {
    sets: Object.fromEntries(PICKERS.map((p) => [p.param, new Set(splitIds(params.get(p.param)))])),
    billable: ["true", "false"].includes((params.get("billable") || "").toLowerCase()) ? params.get("billable").toLowerCase() : "",
    types: new Set(
      String(params.get("type") || "")
        .split(",")
        .map((t) => t.trim().toUpperCase())
        .filter((t) => t in TYPE_LABELS),
    ),
    description: (params.get("description") || "").slice(0, 200),
  };
  let names = null; // kind -> Map(id -> record)
  const pickers = new Map(); // param -> picker
  let descTimer = null;

  function changed() {
    refreshButtons();
    onChange(bar.query());
  }

  // A picker: a button, and a panel with a search box over a checkbox list. -----------------
  function makePicker({ param, label, plural, searchable = true, items = null }) {
    const selected = param === "type" ? state.types : state.sets[param];
    const panelId = `${uid}-${param}-panel`;
    const listId = `${uid}-${param}-list`;
    const value = h("span", { class: "picker-value", text: "All" });
    const button = h(
      "button",
      { type: "button", class: "picker-button", "aria-expanded": "false", "aria-controls": panelId, "data-param": param },
      h("span", { class: "picker-label", text: label }),
      value,
    );
    const search = searchable
      ? h("input", { type: "search", class: "picker-search", placeholder: `Search ${plural}`, "aria-label": `Search ${plural}`, "aria-controls": listId, autocomplete: "off" })
      : null;
    const count = h("span", { class: "picker-count", role: "status" });
    const list = h("ul", { class: "picker-list", id: listId, "aria-label": plural });
    const none = h("button", { type: "button", class: "picker-tool", text: "Clear" });
    const all = h("button", { type: "button", class: "picker-tool", text: searchable ? "Select shown" : "Select all" });
    const panel = h(
      "div",
      { class: "picker-panel", id: panelId, role: "group", "aria-label": `Filter by ${label.toLowerCase()}`, hidden: true },
      search,
      h("div", { class: "picker-tools" }, count, all, none),
      list,
    );
    const root = h("div", { class: "picker", "data-param": param }, button, panel);
    const picker = { param, label, root, button, value, panel, list, search, count, selected, boxes: [] };

    let filled = "";
    function fill(entries) {
      // entries: [{id, label, sub?}]
      const known = new Set(entries.map((e) => e.id));
      const unknown = [...selected].filter((id) => !known.has(id)).map((id) => ({ id, label: names ? `Unknown (${id})` : id }));
      // The same names again (a reload after a names event that changed none of these): keep
      // the list as it is, so a box being used keeps the focus.
      const signature = JSON.stringify([...unknown, ...entries]);
      if (signature === filled) return;
      filled = signature;
      // A box that has the focus gets it back in the new list (a keyboard user goes on).
      const focused = list.contains(document.activeElement) ? document.activeElement.value : null;
      picker.boxes = [];
      list.replaceChildren(
        ...[...unknown, ...entries].map((entry) => {
          const box = h("input", { type: "checkbox", value: entry.id });
          box.checked = selected.has(entry.id);
          picker.boxes.push(box);
          const item = h(
            "li",
            { "data-id": entry.id, "data-search": `${entry.label} ${entry.sub || ""}`.toLowerCase() },
            h("label", {}, box, h("span", { class: "picker-name", text: entry.label }), entry.sub ? h("span", { class: "picker-sub", text: entry.sub }) : null),
          );
          return item;
        }),
      );
      if (focused !== null) picker.boxes.find((box) => box.value === focused)?.focus();
      narrow();
    }
    picker.fill = fill;

    function visibleBoxes() {
      return picker.boxes.filter((box) => !box.closest("li").hidden);
    }

    function narrow() {
      const needle = (search?.value || "").trim().toLowerCase();
      let shown = 0;
      for (const li of list.children) {
        li.hidden = Boolean(needle) && !li.dataset.search.includes(needle);
        if (!li.hidden) shown += 1;
      }
      const total = list.children.length;
      count.textContent = !names && searchable ? "Loading names…" : needle ? `${shown} of ${total} ${plural}` : `${total} ${plural}`;
    }

    function open() {
      for (const other of pickers.values()) if (other !== picker) other.close();
      // Ticked ones first, so what is chosen is seen without scrolling through 200 names.
      const items = [...list.children];
      items.sort((a, b) => Number(selected.has(b.dataset.id)) - Number(selected.has(a.dataset.id)));
      list.replaceChildren(...items);
      picker.boxes = items.map((li) => li.querySelector("input"));
      panel.hidden = false;
      button.setAttribute("aria-expanded", "true");
      root.classList.add("open");
      (search || picker.boxes[0] || button).focus();
    }
    function close({ focus = false } = {}) {
      if (panel.hidden) return;
      panel.hidden = true;
      button.setAttribute("aria-expanded", "false");
      root.classList.remove("open");
      if (focus) button.focus();
    }
    picker.close = close;

    button.addEventListener("click", () => (panel.hidden ? open() : close()));
    search?.addEventListener("input", narrow);
    list.addEventListener("change", (ev) => {
      const box = ev.target;
      if (!(box instanceof HTMLInputElement)) return;
      if (box.checked) selected.add(box.value);
      else selected.delete(box.value);
      changed();
    });
    all.addEventListener("click", () => {
      for (const box of visibleBoxes()) {
        box.checked = true;
        selected.add(box.value);
      }
      changed();
    });
    none.addEventListener("click", () => {
      for (const box of picker.boxes) box.checked = false;
      selected.clear();
      changed();
    });
    root.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape" && !panel.hidden) {
        ev.preventDefault();
        ev.stopPropagation();
        close({ focus: true });
        return;
      }
      if (panel.hidden) return;
      const boxes = visibleBoxes();
      const at = boxes.indexOf(document.activeElement);
      let next = null;
      if (ev.key === "ArrowDown") next = at < 0 ? 0 : Math.min(at + 1, boxes.length - 1);
      else if (ev.key === "ArrowUp") next = at <= 0 ? -1 : at - 1;
      else if (ev.key === "Home" && at >= 0) next = 0;
      else if (ev.key === "End" && at >= 0) next = boxes.length - 1;
      else if (ev.key === "Enter" && ev.target === search) {
        ev.preventDefault(); // Enter in the search box ticks the only match, else does nothing
        if (boxes.length === 1) boxes[0].click();
        return;
      } else return;
      ev.preventDefault();
      if (next === -1) (search || button).focus();
      else boxes[next]?.focus();
    });
    root.addEventListener("focusout", (ev) => {
      if (ev.relatedTarget && !root.contains(ev.relatedTarget)) close();
    });
    if (items) fill(items);
    else fill([]);
    pickers.set(param, picker);
    return picker;
  }

  // The bar --------------------------------------------------------------------------------------
  for (const spec of PICKERS) makePicker(spec);
  makePicker({
    param: "type",
    label: "Type",
    plural: "types",
    searchable: false,
    items: Object.entries(TYPE_LABELS).map(([id, label]) => ({ id, label })),
  });
  const billable = h(
    "select",
    { class: "filter-billable", "aria-label": "Billable" },
    h("option", { value: "", text: "Billable or not" }),
    h("option", { value: "true", text: "Billable only" }),
    h("option", { value: "false", text: "Non-billable only" }),
  );
  billable.value = state.billable;
  billable.addEventListener("change", () => {
    state.billable = billable.value;
    changed();
  });
  const description = h("input", {
    type: "search",
    class: "filter-description",
    placeholder: "Description contains…",
    "aria-label": "Description contains",
    maxlength: "200",
    autocomplete: "off",
  });
  description.value = state.description;
  const commitDescription = () => {
    clearTimeout(descTimer);
    const text = description.value.slice(0, 200);
    if (text.trim() === state.description.trim()) return;
    state.description = text;
    changed();
  };
  description.addEventListener("input", () => {
    clearTimeout(descTimer);
    descTimer = setTimeout(commitDescription, DESCRIPTION_DEBOUNCE_MS);
  });
  description.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") {
      ev.preventDefault();
      commitDescription();
    }
  });
  description.addEventListener("change", commitDescription);
  const clearButton = h("button", { type: "button", class: "clear-filters", text: "Clear filters" });
  clearButton.addEventListener("click", () => bar.clear());

  container.classList.add("filter-bar");
  container.replaceChildren(
    h("span", { class: "filter-title", id: `${uid}-title`, text: "Filter" }),
    ...PICKERS.map((p) => pickers.get(p.param).root),
    h("label", { class: "filter-field" }, h("span", { class: "visually-hidden", text: "Billable" }), billable),
    pickers.get("type").root,
    description,
    clearButton,
  );
  container.setAttribute("role", "group");
  container.setAttribute("aria-labelledby", `${uid}-title`);

  document.addEventListener("pointerdown", (ev) => {
    for (const picker of pickers.values()) if (!picker.root.contains(ev.target)) picker.close();
  });

  function label(kind, id) {
    if (id === "none") return WITHOUT[kind.toUpperCase()] || "(Without)";
    if (kind === "type") return TYPE_LABELS[id] || id;
    const record = names?.[kind]?.get(id);
    return record ? record.name : null;
  }

  function refreshButtons() {
    for (const picker of pickers.values()) {
      const kind = picker.param === "type" ? "type" : PICKERS.find((p) => p.param === picker.param).kind;
      const ids = [...picker.selected];
      const words = ids.map((id) => label(kind, id) || id);
      picker.value.textContent = ids.length === 0 ? "All" : ids.length === 1 ? words[0] : `${ids.length} selected`;
      picker.button.classList.toggle("set", ids.length > 0);
      picker.button.setAttribute("aria-label", `${picker.label}: ${ids.length ? words.join(", ") : "all"}`);
    }
    billable.classList.toggle("set", Boolean(state.billable));
    description.classList.toggle("set", Boolean(state.description.trim()));
    clearButton.hidden = !bar.active;
  }

  const bar = {
    get active() {
      return bar.query().toString() !== "";
    },
    query() {
      const out = new URLSearchParams();
      for (const spec of PICKERS) {
        const ids = [...state.sets[spec.param]];
        if (ids.length) out.set(spec.param, ids.join(","));
      }
      if (state.billable) out.set("billable", state.billable);
      if (state.types.size) out.set("type", Object.keys(TYPE_LABELS).filter((t) => state.types.has(t)).join(","));
      if (state.description.trim()) out.set("description", state.description.trim());
      return out;
    },
    describe() {
      const parts = [];
      for (const spec of PICKERS) {
        const ids = [...state.sets[spec.param]];
        if (ids.length) parts.push(`${spec.label}: ${ids.map((id) => label(spec.kind, id) || id).join(", ")}`);
      }
      if (state.billable) parts.push(state.billable === "true" ? "Billable" : "Non-billable");
      if (state.types.size) parts.push(`Type: ${[...state.types].map((t) => TYPE_LABELS[t]).join(", ")}`);
      if (state.description.trim()) parts.push(`Description contains “${state.description.trim()}”`);
      return parts.join(" · ");
    },
    label,
    get names() {
      return names;
    },
    setNames(raw) {
      names = {};
      for (const spec of PICKERS) names[spec.kind] = new Map((raw?.[spec.list] || []).map((r) => [r.id, r]));
      const projectName = (id) => names.project.get(id)?.name;
      for (const spec of PICKERS) {
        const entries = (raw?.[spec.list] || []).map((r) => ({
          id: r.id,
          label: r.name || r.id,
          sub: spec.kind === "task" ? projectName(r.projectId) || "" : r.archived ? "archived" : "",
        }));
        if (spec.without) entries.unshift({ id: "none", label: spec.without });
        pickers.get(spec.param).fill(entries);
      }
      refreshButtons();
    },
    clear() {
      for (const set of Object.values(state.sets)) set.clear();
      state.types.clear();
      state.billable = "";
      state.description = "";
      billable.value = "";
      description.value = "";
      for (const picker of pickers.values()) for (const box of picker.boxes) box.checked = false;
      changed();
    },
  };
  // Before the names arrive a picker lists what the URL chose (by id), and "Without ...".
  for (const spec of PICKERS) pickers.get(spec.param).fill(spec.without ? [{ id: "none", label: spec.without }] : []);
  refreshButtons();
  return bar;
}
