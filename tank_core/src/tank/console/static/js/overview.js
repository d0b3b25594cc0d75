// Overview: images and bytes per status, per store and (for admins) per project, as SVG
// bar charts. The v2 API has no totals, so the counts come from paging through the
// listing (1000 images a request), shown as they grow.

import { api, whoami } from "./api.js";
import { h, replace, s } from "./dom.js";
import { bytes } from "./format.js";

const PAGE = 1000;
const TOP = 15;

/** A horizontal bar chart of ``rows`` ([label, value]) as an SVG element. */
export function barChart(title, rows, show) {
  const width = 560;
  const barHeight = 20;
  const gap = 6;
  const labelWidth = 170;
  const valueWidth = 90;
  const height = Math.max(1, rows.length) * (barHeight + gap) + gap;
  const max = Math.max(1, ...rows.map(([, v]) => v));
  const svg = s("svg", {
    class: "chart",
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "aria-label": title,
  });
  svg.append(s("title", {}, title));
  rows.forEach(([label, value], i) => {
    const y = gap + i * (barHeight + gap);
    const w = Math.max(value > 0 ? 2 : 0, ((width - labelWidth - valueWidth) * value) / max);
    svg.append(
      s("text", { x: labelWidth - 8, y: y + barHeight * 0.7, "text-anchor": "end", class: "label" }, label.length > 24 ? label.slice(0, 23) + "…" : label),
      s("rect", { x: labelWidth, y, width: w, height: barHeight, rx: 3, class: `bar bar-${label.replace(/[^a-z_]/gi, "")}` }, s("title", {}, `${label}: ${show(value)}`)),
      s("text", { x: labelWidth + w + 6, y: y + barHeight * 0.7, class: "value" }, show(value)),
    );
  });
  if (!rows.length) svg.append(s("text", { x: 8, y: 18, class: "label" }, "no images"));
  return svg;
}

function tally() {
  return new Map();
}

function add(map, key, size) {
  const entry = map.get(key) || { count: 0, bytes: 0 };
  entry.count += 1;
  entry.bytes += size || 0;
  map.set(key, entry);
}

function top(map, field) {
  const rows = [...map.entries()].map(([k, v]) => [k, v[field]]).sort((a, b) => b[1] - a[1]);
  if (rows.length <= TOP) return rows;
  const rest = rows.slice(TOP - 1).reduce((sum, [, v]) => sum + v, 0);
  return [...rows.slice(0, TOP - 1), [`${rows.length - TOP + 1} others`, rest]];
}

export async function render(container) {
  const who = await whoami().catch(() => null);
  const admin = Boolean(who && who.is_admin);
  const progress = h("p", { class: "muted", "aria-live": "polite" }, "Counting images…");
  const charts = h("div", { class: "charts" });
  replace(container, h("h1", {}, "Overview"), progress, charts);
  const perStatus = tally();
  const perStore = tally();
  const perOwner = tally();
  let total = 0;
  let totalBytes = 0;
  let alive = true;
  const controller = new AbortController();

  function draw(done) {
    const groups = [
      ["status", perStatus],
      ["store", perStore],
    ];
    if (admin) groups.push(["project", perOwner]);
    replace(
      charts,
      groups.map(([what, map]) =>
        h(
          "section",
          { class: "card chart-card", "data-chart": what },
          h("h2", {}, `Per ${what}`),
          h("div", { class: "pair" },
            h("figure", {}, h("figcaption", {}, "Images"), barChart(`Images per ${what}`, top(map, "count"), String)),
            h("figure", {}, h("figcaption", {}, "Bytes"), barChart(`Bytes per ${what}`, top(map, "bytes"), bytes)),
          ),
        ),
      ),
    );
    progress.textContent = `${total} images, ${bytes(totalBytes)}${done ? "" : " so far…"}${admin ? "" : " (the images you can see)"}`;
    if (done) container.dataset.done = "true";
  }

  // Hidden images are left out of listings unless asked for: count both kinds.
  const base = admin ? { visibility: "all" } : {};
  count().catch((exc) => {
    if (exc.name === "AbortError" || !alive) return;
    progress.textContent = "";
    replace(progress, h("span", { class: "error-text", role: "alert" }, `The images could not be counted: ${exc.message}`));
  });

  async function count() {
    for (const hidden of ["false", "true"]) {
      let marker = null;
      for (;;) {
        const q = new URLSearchParams({ ...base, os_hidden: hidden, limit: String(PAGE), sort: "created_at:desc" });
        if (marker) q.set("marker", marker);
        const body = await api("GET", `/v2/images?${q}`, { signal: controller.signal });
        if (!alive) return;
        for (const image of body.images || []) {
          total += 1;
          totalBytes += image.size || 0;
          add(perStatus, image.status, image.size);
          const stores = image.stores ? image.stores.split(",") : ["(no data)"];
          for (const store of stores) add(perStore, store, image.size);
          add(perOwner, image.owner || "(no project)", image.size);
        }
        draw(false);
        if (!body.next || !(body.images || []).length) break;
        marker = body.images[body.images.length - 1].id;
      }
    }
    draw(true);
  }

  return () => {
    alive = false;
    controller.abort();
  };
}
