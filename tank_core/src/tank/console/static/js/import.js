// Import from a URL: create the image, ask for a web-download import (refused: the image is
// deleted again), then follow its status until it is active (or the import failed: the image
// is queued again and os_glance_failed_import names the stores it failed for).

import { api, formats, imagePath } from "./api.js";
import { guarded, h, replace, routeHref, visible } from "./dom.js";
import { bytes, duration } from "./format.js";
import { notify } from "./main.js";

const POLL_MS = 1000;

function field(label, input) {
  return h("label", { class: "field" }, h("span", {}, label), input);
}

export async function render(container) {
  let info = null;
  let infoError = null;
  try {
    info = await api("GET", "/v2/info/import");
  } catch (exc) {
    infoError = exc.message;
  }
  const methods = (info && info["import-methods"] && info["import-methods"].value) || [];
  const formatList = await formats().catch(() => ({ disk: [], container: [] }));
  if (!methods.includes("web-download")) {
    replace(
      container,
      h("h1", {}, "Import from a URL"),
      h("p", { class: "error-text", role: "alert" }, infoError
        ? `Which import methods this server offers could not be read: ${infoError}`
        : "This server does not offer web-download imports ([import] methods)."),
    );
    return undefined;
  }
  const url = h("input", { type: "url", name: "uri", required: true, placeholder: "https://example.com/image.qcow2" });
  const name = h("input", { type: "text", name: "name", required: true });
  const disk = h("select", { name: "disk_format", required: true }, h("option", { value: "" }, "choose…"), formatList.disk.map((f) => h("option", { value: f }, f)));
  const cont = h("select", { name: "container_format" }, formatList.container.map((f) => h("option", { value: f, selected: f === "bare" }, f)));
  const visibility = h("select", { name: "visibility" }, ["private", "shared", "community", "public"].map((v) => h("option", { value: v }, v)));
  const form = h(
    "form",
    { class: "import-form", "data-form": "import" },
    h("div", { class: "grid" }, field("URL", url), field("Name", guarded(name)), field("Disk format", disk), field("Container format", cont), field("Visibility", visibility)),
    h("button", { type: "submit", class: "primary" }, "Import"),
  );
  const panel = h("div", { class: "import-panel" });
  replace(container, h("h1", {}, "Import from a URL"), form, panel);
  url.addEventListener("change", () => {
    if (!name.value) {
      name.value = url.value.split("/").pop().replace(/\.[^.]+$/, "");
      name.dispatchEvent(new Event("input")); // its direction controls warned about
    }
  });

  let timer = null;
  let alive = true;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    let image;
    try {
      image = await api("POST", "/v2/images", {
        json: { name: name.value.trim(), disk_format: disk.value, container_format: cont.value, visibility: visibility.value },
      });
    } catch (exc) {
      notify(`The image could not be created: ${exc.message}`);
      return;
    }
    try {
      await api("POST", imagePath(image.id, "import"), { json: { method: { name: "web-download", uri: url.value.trim() } } });
    } catch (exc) {
      // the import was refused: the image just created would stay queued and empty
      try {
        await api("DELETE", imagePath(image.id));
        notify(`The import could not start: ${exc.message}. The image created for it was deleted.`);
      } catch (gone) {
        notify(`The import could not start: ${exc.message}. The image created for it is left without data (deleting it failed: ${gone.message}).`);
        panel.replaceChildren(h("p", {}, "Delete it from its page: ", h("a", { href: routeHref("images", image.id) }, image.name || image.id)));
      }
      return;
    }
    const state = h("p", { class: "state", "aria-live": "polite" }, "Import started…");
    const view = h("div", { class: "card import-progress", "data-image": image.id }, h("h2", {}, "Importing ", h("a", { href: routeHref("images", image.id) }, image.name || image.id)), h("progress", {}), state);
    panel.replaceChildren(view);
    const started = performance.now();
    const poll = async () => {
      if (!alive) return;
      let now;
      try {
        now = await api("GET", imagePath(image.id));
      } catch (exc) {
        state.textContent = visible(`The image could not be read: ${exc.message}`);
        view.dataset.outcome = "failed";
        return;
      }
      const elapsed = duration((performance.now() - started) / 1000);
      const failed = now.os_glance_failed_import;
      if (now.status === "active") {
        view.querySelector("progress").remove();
        replace(state, `Imported in ${elapsed}: ${bytes(now.size)}, MD5 `, h("code", {}, now.checksum || "—"), ". ", h("a", { href: routeHref("images", image.id) }, "Open the image"));
        view.dataset.outcome = "done";
        return;
      }
      if (failed || (now.status === "queued" && !now.os_glance_importing_to_stores && performance.now() - started > 3000)) {
        view.querySelector("progress")?.remove();
        const reason = now.os_glance_failed_import_reason || (failed ? `failed for store(s) ${failed}` : "the import stopped");
        replace(state, h("span", { class: "error-text", role: "alert" }, `The import failed after ${elapsed}: ${reason}. The image is queued without data.`));
        view.dataset.outcome = "failed";
        return;
      }
      state.textContent = visible(`${now.status}${now.os_glance_importing_to_stores ? ` to ${now.os_glance_importing_to_stores}` : ""} · ${elapsed}`);
      timer = setTimeout(poll, POLL_MS);
    };
    timer = setTimeout(poll, 300);
  });
  return () => {
    alive = false;
    clearTimeout(timer);
  };
}
