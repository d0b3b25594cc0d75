// The images table: filters, sorting and paging by marker, all done by the API (so a
// registry of 100,000 images costs one page per view, never the whole list).

import { api, formats } from "./api.js";
import { blank, h, replace, routeHref } from "./dom.js";
import { bytes, when } from "./format.js";

export const STATUSES = [
  "queued", "saving", "uploading", "importing", "active", "deactivated", "killed", "pending_delete",
];
const VISIBILITIES = ["public", "private", "shared", "community", "all"];
const PAGE_SIZES = [25, 50, 100, 200];
/** ``member_status``: which images shared with the caller (v2 lists only accepted ones
 * unless asked); any of them lists ``visibility=shared``. */
const MEMBER_STATUSES = ["pending", "rejected", "all"];
const FILTERS = ["name", "status", "visibility", "member_status", "tag", "disk_format", "container_format"];
const COLUMNS = [
  { key: "name", label: "Name", sort: "name", dir: "asc" },
  { key: "status", label: "Status", sort: "status", dir: "asc" },
  { key: "visibility", label: "Visibility", sort: "visibility", dir: "asc" },
  { key: "disk_format", label: "Disk format", sort: "disk_format", dir: "asc" },
  { key: "container_format", label: "Container", sort: "container_format", dir: "asc" },
  { key: "size", label: "Size", sort: "size", dir: "desc", numeric: true },
  { key: "owner", label: "Owner", sort: "owner", dir: "asc" },
  { key: "tags", label: "Tags" },
  { key: "created_at", label: "Created", sort: "created_at", dir: "desc" },
];

/** Markers of the pages before this one (Back through pages; reset by any filter). */
let previousMarkers = [];

/** The listing of the first view, asked for before the page is built: ``{url, answer}``. */
let early = null;

/**
 * At start-up, whatever the route: take the listing index.html preloads (the default
 * view's, ``<link rel=preload>``, asked for while the scripts load), and keep it if the
 * images page at ``query`` shows that view, or ask for the view's own listing at once.
 * The preload is taken either way: an untaken one would answer the first request for
 * its URL, however much later and however stale.
 */
export function prefetch(path, query) {
  const preloaded = api("GET", listUrl(currentState(new URLSearchParams())), { cache: "default" });
  preloaded.catch(() => {}); // seen (and shown) by the view that takes it
  if (path !== "images") return;
  const url = listUrl(currentState(query));
  const answer = url === listUrl(currentState(new URLSearchParams())) ? preloaded : api("GET", url);
  answer.catch(() => {});
  early = { url, answer };
}

function takePrefetched(url) {
  const found = early && early.url === url ? early.answer : null;
  early = null;
  return found;
}

export function statusBadge(status) {
  return h("span", { class: ["status", `status-${status}`] }, status);
}

/** Tags shown in a row of the table, and the characters shown of each: an image may have
 * a hundred tags of 255 characters, and its row must stay a row. */
const ROW_TAGS = 5;
const TAG_CHARS = 40;

/** The first tags, each shortened (all of it in its title), then "+N more". */
export function tagChips(tags) {
  const all = tags || [];
  const chips = all.slice(0, ROW_TAGS).map((t) => {
    const shown = [...t].length > TAG_CHARS ? [...t].slice(0, TAG_CHARS - 1).join("") + "…" : t;
    return h("span", { class: "tag", title: shown === t ? null : t }, shown);
  });
  const more = all.length - chips.length;
  if (more > 0) chips.push(h("span", { class: "tag more", title: `${more} more tags: see the image` }, `+${more} more`));
  return h("span", { class: "tags" }, chips);
}

/** A name as the table's link: "(no name)" if it has none, "(blank name)" if nothing in
 * it can be seen (spaces, zero-width characters), which would leave nothing to click. */
function nameLink(image) {
  if (!image.name) return h("a", { href: routeHref("images", image.id), title: image.id }, h("span", { class: "muted" }, "(no name)"));
  if (blank(image.name)) {
    return h("a", { href: routeHref("images", image.id), title: `"${image.name}" (${image.id})` }, h("span", { class: "muted" }, "(blank name)"));
  }
  return h("a", { href: routeHref("images", image.id), title: image.id }, image.name);
}

/** Mark ``el`` for the Element Timing API: when the browser paints render ``n`` of the
 * table (bench/console.py reads it). */
function timed(el, n) {
  el.setAttribute("elementtiming", `console-images-${n}`);
  return el;
}

function currentState(query) {
  const state = {};
  for (const key of FILTERS) state[key] = query.get(key) || "";
  state.sort = query.get("sort") || "created_at:desc";
  state.limit = PAGE_SIZES.includes(Number(query.get("limit"))) ? Number(query.get("limit")) : 25;
  state.marker = query.get("marker") || "";
  return state;
}

function stateQuery(state) {
  const q = new URLSearchParams();
  for (const key of FILTERS) if (state[key]) q.set(key, state[key]);
  if (state.sort !== "created_at:desc") q.set("sort", state.sort);
  if (state.limit !== 25) q.set("limit", String(state.limit));
  if (state.marker) q.set("marker", state.marker);
  return q;
}

/** The API query of a view: filters as Glance's listing takes them. */
export function listUrl(state) {
  const q = new URLSearchParams();
  if (state.name) q.set("name", state.name);
  for (const key of ["status", "visibility", "tag", "disk_format", "container_format"]) {
    if (state[key]) q.set(key, state[key]);
  }
  if (MEMBER_STATUSES.includes(state.member_status)) {
    q.set("visibility", "shared");
    q.set("member_status", state.member_status);
  }
  q.set("sort", state.sort);
  q.set("limit", String(state.limit));
  if (state.marker) q.set("marker", state.marker);
  return `/v2/images?${q}`;
}

function select(name, label, values, current, blank) {
  return h(
    "label",
    {},
    h("span", {}, label),
    h(
      "select",
      { name, "data-filter": name },
      h("option", { value: "" }, blank),
      values.map((v) => h("option", { value: v, selected: v === current }, v)),
    ),
  );
}

export async function render(container, params, query) {
  const state = currentState(query);
  if (!state.marker) previousMarkers = [];
  else if (previousMarkers.includes(state.marker)) {
    // back in the browser's history to an earlier page
    previousMarkers = previousMarkers.slice(0, previousMarkers.indexOf(state.marker));
  }
  let controller = null;

  const form = h("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() });
  const nameInput = h("input", {
    type: "search", name: "name", value: state.name, placeholder: "exact name", "aria-label": "Name",
  });
  const tagInput = h("input", { type: "text", name: "tag", value: state.tag, placeholder: "tag", "aria-label": "Tag" });
  replace(
    form,
    h("label", {}, h("span", {}, "Name"), nameInput),
    select("status", "Status", STATUSES, state.status, "any"),
    select("visibility", "Visibility", VISIBILITIES, state.visibility, "default"),
    select("member_status", "Shared with me", MEMBER_STATUSES, state.member_status, "accepted"),
    h("label", {}, h("span", {}, "Tag"), tagInput),
    select("disk_format", "Disk format", state.disk_format ? [state.disk_format] : [], state.disk_format, "any"),
    select("container_format", "Container", state.container_format ? [state.container_format] : [], state.container_format, "any"),
    h(
      "label",
      {},
      h("span", {}, "Per page"),
      h("select", { name: "limit" }, PAGE_SIZES.map((n) => h("option", { value: n, selected: n === state.limit }, String(n)))),
    ),
  );

  const table = h("table", { class: "images" });
  const status = h("p", { class: "list-status muted", "aria-live": "polite" });
  const pager = h("div", { class: "pager" });
  replace(
    container,
    h("div", { class: "page-head" }, h("h1", {}, "Images"), h("a", { class: "button", href: "#/upload" }, "Upload an image")),
    form,
    status,
    h("div", { class: "table-wrap" }, table),
    pager,
  );

  function go(next, { push = true } = {}) {
    Object.assign(state, next);
    const hash = "#/images" + (stateQuery(state).toString() ? "?" + stateQuery(state) : "");
    if (push) history.pushState(null, "", hash);
    else history.replaceState(null, "", hash);
    load();
  }

  function filterChanged() {
    performance.clearMarks("console:filter-start");
    performance.mark("console:filter-start");
    previousMarkers = [];
    const data = new FormData(form);
    const next = { marker: "" };
    for (const key of FILTERS) next[key] = (data.get(key) || "").trim();
    next.limit = Number(data.get("limit")) || 25;
    go(next, { push: false });
  }

  // images shared with the caller are those of visibility shared: that select follows
  const visibilitySelect = form.querySelector("select[name=visibility]");
  const memberSelect = form.querySelector("select[name=member_status]");
  function sharedOnly() {
    visibilitySelect.disabled = Boolean(memberSelect.value);
    if (memberSelect.value) visibilitySelect.value = "shared";
    visibilitySelect.title = memberSelect.value ? "Shared with me lists shared images" : "";
  }
  sharedOnly();

  let typing = null;
  form.addEventListener("change", (e) => {
    if (e.target === nameInput || e.target === tagInput) return;
    if (e.target === memberSelect) sharedOnly();
    filterChanged();
  });
  for (const input of [nameInput, tagInput]) {
    input.addEventListener("input", () => {
      clearTimeout(typing);
      typing = setTimeout(filterChanged, 300);
    });
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        clearTimeout(typing);
        filterChanged();
      }
    });
  }

  function header() {
    const [sortKey, sortDir] = state.sort.split(":");
    return h(
      "thead",
      {},
      h(
        "tr",
        {},
        COLUMNS.map((col) => {
          if (!col.sort) return h("th", { scope: "col" }, col.label);
          const active = sortKey === col.sort;
          const dir = active ? (sortDir === "asc" ? "desc" : "asc") : col.dir;
          return h(
            "th",
            { scope: "col", "aria-sort": active ? (sortDir === "asc" ? "ascending" : "descending") : "none", class: col.numeric ? "num" : "" },
            h(
              "button",
              {
                type: "button",
                class: "sort",
                "data-sort": col.sort,
                onclick: () => {
                  performance.clearMarks("console:filter-start");
                  performance.mark("console:filter-start");
                  previousMarkers = [];
                  go({ sort: `${col.sort}:${dir}`, marker: "" }, { push: false });
                },
              },
              col.label,
              active ? (sortDir === "asc" ? " ▲" : " ▼") : "",
            ),
          );
        }),
      ),
    );
  }

  let renders = 0;
  function row(image, index) {
    return h(
      "tr",
      { "data-id": image.id },
      h("td", { class: "name" }, nameLink(image)),
      h("td", {}, index === 0 ? timed(statusBadge(image.status), renders) : statusBadge(image.status)),
      h("td", {}, image.visibility),
      h("td", {}, image.disk_format || "—"),
      h("td", {}, image.container_format || "—"),
      h("td", { class: "num", title: image.size === null ? "" : `${image.size} bytes` }, bytes(image.size)),
      h("td", { class: "owner" }, image.owner || "—"),
      h("td", {}, tagChips(image.tags)),
      h("td", { title: image.created_at }, when(image.created_at)),
    );
  }

  async function load() {
    if (controller) controller.abort();
    controller = new AbortController();
    const mine = controller;
    table.classList.add("loading");
    status.textContent = "Loading…";
    let body;
    try {
      const url = listUrl(state);
      body = await (takePrefetched(url) || api("GET", url, { signal: mine.signal }));
    } catch (exc) {
      if (exc.name === "AbortError") return;
      table.classList.remove("loading");
      replace(table, header());
      status.textContent = "";
      replace(status, h("span", { class: "error-text", role: "alert" }, `The images could not be listed: ${exc.message}`));
      replace(pager);
      return;
    }
    if (mine !== controller) return;
    const images = body.images || [];
    renders += 1;
    const rows = h("tbody", {}, images.map(row));
    replace(table, header(), rows);
    table.classList.remove("loading");
    const page = previousMarkers.length + 1;
    const first = previousMarkers.length * state.limit + 1;
    status.textContent = images.length
      ? `Page ${page}: images ${first}–${first + images.length - 1}${body.next ? "" : " (last page)"}`
      : state.marker ? "No more images." : "No images match.";
    const nextMarker = body.next ? new URLSearchParams(body.next.split("?")[1]).get("marker") : null;
    replace(
      pager,
      h("button", {
        type: "button", class: "prev", disabled: !state.marker,
        onclick: () => go({ marker: previousMarkers.pop() || "" }),
      }, "← Previous"),
      h("button", {
        type: "button", class: "next", disabled: !nextMarker,
        onclick: () => {
          previousMarkers.push(state.marker);
          go({ marker: nextMarker });
        },
      }, "Next →"),
    );
    requestAnimationFrame(() => {
      performance.mark("console:images-rendered");
      if (performance.getEntriesByName("console:filter-start").length) {
        performance.measure("console:filter", "console:filter-start", "console:images-rendered");
        performance.clearMarks("console:filter-start");
      }
      container.dataset.loaded = String(Number(container.dataset.loaded || 0) + 1);
    });
  }

  // the formats come from the image schema, fetched alongside the first page
  formats()
    .then((known) => {
      for (const [key, values] of [["disk_format", known.disk], ["container_format", known.container]]) {
        const el = form.querySelector(`select[name=${key}]`);
        replace(el, h("option", { value: "" }, "any"), values.map((v) => h("option", { value: v, selected: v === state[key] }, v)));
      }
    })
    .catch(() => {}); // the selects keep what the URL asked for; the table shows any API error
  replace(table, header()); // the headings paint while the rows are on their way
  await load();
  return () => {
    clearTimeout(typing);
    if (controller) controller.abort();
  };
}
