// The console's shell: hash routes to pages, the identity line, messages.

import { whoami } from "./api.js";
import { clip, h, replace, visible } from "./dom.js";
import { prefetch as prefetchImages } from "./images.js";

// Each page's module is loaded when first shown; the images page's, the one most visits
// start on, is part of this module's graph (its listing is asked for at once, below).
const ROUTES = [
  [/^images$/, () => import("./images.js"), "images"],
  [/^images\/([^/]+)$/, () => import("./detail.js"), "images"],
  [/^upload$/, () => import("./upload.js"), "upload"],
  [/^import$/, () => import("./import.js"), "import"],
  [/^overview$/, () => import("./overview.js"), "overview"],
];

let cleanup = null;
let generation = 0;

/** How much of a message is shown: a value quoted in it (a tag, an API's answer) may be
 * of any length, and the bar above the page must stay small. */
const MESSAGE_CHARS = 300;

/** Show a message above the page (``kind``: error or ok); errors stay until closed. A long
 * one shows its start and end, all of it in its title. */
export function notify(text, kind = "error") {
  const box = document.getElementById("messages");
  const full = String(text);
  const shown = clip(full, MESSAGE_CHARS);
  const item = h(
    "div",
    { class: ["message", kind], role: kind === "error" ? "alert" : "status" },
    h("span", { title: shown === full ? null : full }, shown),
    h("button", { type: "button", class: "close", "aria-label": "Dismiss", onclick: () => item.remove() }, "×"),
  );
  box.append(item);
  if (kind !== "error") setTimeout(() => item.remove(), 5000);
  return item;
}

export function clearMessages() {
  document.getElementById("messages").replaceChildren();
}

let pending = null;
/** Go to ``hash`` and show ``message`` (ok) on the page shown there. */
export function navigate(hash, message) {
  pending = message;
  location.hash = hash;
}

/** ``#/path?query`` → [path, URLSearchParams]. */
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query] = raw.split("?", 2);
  return [path || "images", new URLSearchParams(query || "")];
}

async function show() {
  const mine = ++generation;
  if (cleanup) {
    try {
      cleanup();
    } catch (exc) {
      console.error(exc);
    }
    cleanup = null;
  }
  clearMessages();
  showIdentity(); // asked again on every route: a proxy may have changed who this is
  if (pending) {
    notify(pending, "ok");
    pending = null;
  }
  const [path, query] = parseHash();
  const page = document.getElementById("page");
  for (const link of document.querySelectorAll("nav a")) link.classList.remove("current");
  for (const [pattern, load, nav] of ROUTES) {
    const found = pattern.exec(path);
    if (!found) continue;
    document.querySelector(`nav a[data-nav="${nav}"]`)?.classList.add("current");
    const params = found.slice(1).map(decodeURIComponent);
    const container = h("div", { class: "page", "data-page": nav });
    replace(page, container);
    try {
      const module = await load();
      if (mine !== generation) return;
      const done = await module.render(container, params, query);
      if (mine === generation) cleanup = done || null;
      else if (done) done();
    } catch (exc) {
      if (mine === generation) {
        replace(container, h("p", { class: "error-page" }, `This page could not be shown: ${exc.message}`));
      }
    }
    return;
  }
  replace(page, h("p", { class: "error-page" }, "No such page. "), h("a", { href: "#/images" }, "Go to the images."));
}

let asking = 0;
async function showIdentity() {
  const el = document.getElementById("identity");
  const mine = ++asking;
  try {
    const who = await whoami({ fresh: true });
    if (mine !== asking) return; // a later route asked again
    if (!who.auth) {
      el.textContent = "admin (tank-api runs without --auth)";
    } else {
      const roles = who.roles.length ? who.roles.join(", ") : "no roles";
      el.textContent = visible(`project ${who.tenant || "—"} · ${roles}`);
    }
  } catch (exc) {
    if (mine !== asking) return;
    el.textContent = exc.status === 401 ? "not signed in" : "identity unknown";
    notify(`Who you are could not be determined: ${exc.message}`);
  }
}

window.addEventListener("hashchange", show);
window.addEventListener("unhandledrejection", (event) => {
  notify(`Unexpected error: ${event.reason && event.reason.message ? event.reason.message : event.reason}`);
});
prefetchImages(...parseHash()); // before anything else: the images page's data
show();
