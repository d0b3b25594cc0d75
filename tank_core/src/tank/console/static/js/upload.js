// Uploading an image: create it (POST /v2/images), then send the file with
// PUT /v2/images/{id}/file. XMLHttpRequest rather than fetch: it reports upload progress,
// and like fetch it streams a File from disk (a file of many GiB is never read into
// memory). Cancel aborts the transfer and deletes the image, so nothing is left behind.
// A failed upload is reported with what the API then says of the image.

import { api, formats, imagePath, patchImage } from "./api.js";
import { errorMessage } from "./api.js";
import { clip, guarded, h, replace, routeHref, visible } from "./dom.js";
import { bytes, duration, rate } from "./format.js";
import { notify } from "./main.js";

const VISIBILITIES = ["private", "shared", "community", "public"];
const GUESSES = [
  [/\.qcow2?$/i, "qcow2"], [/\.iso$/i, "iso"], [/\.(img|raw)$/i, "raw"], [/\.vmdk$/i, "vmdk"],
  [/\.vdi$/i, "vdi"], [/\.vhdx$/i, "vhdx"], [/\.vhd$/i, "vhd"], [/\.ploop$/i, "ploop"],
];

/** The upload in flight (it keeps going while other pages are shown). */
let current = null;

function warnOnLeave(event) {
  event.preventDefault();
  event.returnValue = "";
}

/** ``key=value`` lines → an object; an error names the first bad line. */
export function parseProperties(text) {
  const props = {};
  text.split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    const at = line.indexOf("=");
    if (at <= 0) throw new Error(`properties, line ${i + 1}: write name=value`);
    props[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  });
  return props;
}

function field(label, input, hint) {
  return h("label", { class: "field" }, h("span", {}, label), input, hint ? h("small", { class: "muted" }, hint) : null);
}

export async function render(container) {
  const [formatList, stores] = await Promise.all([
    formats().catch(() => ({ disk: [], container: [] })),
    api("GET", "/v2/info/stores").then((b) => b.stores || []).catch(() => []),
  ]);
  const fileInput = h("input", { type: "file", name: "file", id: "upload-file" });
  const chosen = h("span", { class: "chosen muted" }, "No file chosen.");
  const drop = h(
    "div",
    { class: "dropzone", tabindex: 0, "data-drop": "" },
    h("p", {}, "Drop a file here, or "),
    h("label", { class: "button", for: "upload-file" }, "choose a file"),
    fileInput,
    chosen,
  );
  const name = h("input", { type: "text", name: "name", required: true, maxlength: 255 });
  const disk = h("select", { name: "disk_format", required: true }, h("option", { value: "" }, "choose…"), formatList.disk.map((f) => h("option", { value: f }, f)));
  const containerFormat = h("select", { name: "container_format", required: true }, formatList.container.map((f) => h("option", { value: f, selected: f === "bare" }, f)));
  const visibility = h("select", { name: "visibility" }, VISIBILITIES.map((v) => h("option", { value: v }, v)));
  const minDisk = h("input", { type: "number", name: "min_disk", min: 0, value: 0 });
  const minRam = h("input", { type: "number", name: "min_ram", min: 0, value: 0 });
  const protectedBox = h("input", { type: "checkbox", name: "protected" });
  const tags = h("input", { type: "text", name: "tags", placeholder: "ubuntu, lts" });
  const props = h("textarea", { name: "properties", rows: 3, placeholder: "os_distro=ubuntu\nos_version=24.04" });
  const store = stores.length > 1
    ? h("select", { name: "store" }, stores.map((s) => h("option", { value: s.id, selected: Boolean(s.default) }, s.id + (s.description ? ` — ${s.description}` : ""))))
    : null;
  const submit = h("button", { type: "submit", class: "primary" }, "Upload");
  const form = h(
    "form",
    { class: "upload-form", "data-form": "upload" },
    drop,
    h(
      "div",
      { class: "grid" },
      field("Name", guarded(name)),
      field("Disk format", disk),
      field("Container format", containerFormat),
      field("Visibility", visibility),
      field("Min disk (GiB)", minDisk),
      field("Min RAM (MiB)", minRam),
      field("Tags", guarded(tags), "comma separated"),
      store ? field("Store", store) : null,
      h("label", { class: "field check" }, protectedBox, h("span", {}, "Protected (cannot be deleted)")),
    ),
    field("Properties", props, "one name=value per line"),
    submit,
  );
  const panel = h("div", { class: "upload-panel" });
  replace(container, h("h1", {}, "Upload an image"), form, panel);
  if (current) panel.append(current.view);

  let file = null;
  function choose(f) {
    file = f || null;
    chosen.textContent = file ? visible(`${file.name} (${bytes(file.size)})`) : "No file chosen.";
    if (!file) return;
    if (!name.value) {
      name.value = file.name.replace(/\.[^.]+$/, "") || file.name;
      name.dispatchEvent(new Event("input")); // its direction controls warned about
    }
    if (!disk.value) {
      const guess = GUESSES.find(([re]) => re.test(file.name));
      if (guess && formatList.disk.includes(guess[1])) disk.value = guess[1];
    }
  }
  fileInput.addEventListener("change", () => choose(fileInput.files[0]));
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) choose(e.dataTransfer.files[0]);
  });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (current) {
      notify("An upload is already running; wait for it or cancel it.");
      return;
    }
    if (!file) {
      notify("Choose a file to upload.");
      return;
    }
    let meta;
    try {
      meta = {
        ...parseProperties(props.value),
        name: name.value.trim(),
        disk_format: disk.value,
        container_format: containerFormat.value,
        visibility: visibility.value,
        min_disk: Number(minDisk.value || 0),
        min_ram: Number(minRam.value || 0),
        tags: tags.value.split(",").map((t) => t.trim()).filter(Boolean),
      };
    } catch (exc) {
      notify(exc.message);
      return;
    }
    submit.disabled = true;
    try {
      await start(file, meta, protectedBox.checked, store ? store.value : null, panel);
    } finally {
      submit.disabled = false;
    }
  });
}

/**
 * After a failed upload, say what is true of the image: the API is asked again, as it may
 * be queued (the server refused the data), still ``saving`` (the server did not see the
 * connection break; it kills the image when the upload's lease expires), or deleted by
 * someone else meanwhile (the server's 409). ``view.dataset.imageStatus``: what was found.
 */
async function explainFailure(image, why, state, view) {
  const failed = h("span", { class: "error-text", role: "alert" }, `The upload failed: ${why}. `);
  const remove = h("button", {
    type: "button",
    "data-action": "delete-failed",
    onclick: async () => {
      try {
        await api("DELETE", imagePath(image.id));
        state.textContent = "The image was deleted.";
      } catch (exc) {
        notify(`The image could not be deleted: ${exc.message}`);
      }
    },
  }, "Delete the empty image");
  let now;
  try {
    now = await api("GET", imagePath(image.id));
  } catch (exc) {
    view.dataset.imageStatus = exc.status === 404 ? "gone" : "unknown";
    if (exc.status === 404) {
      replace(state, failed, "The image no longer exists (it was deleted meanwhile); nothing is left to clean up.");
    } else {
      replace(state, failed, `What became of the image could not be read (${exc.message}). `, remove);
    }
    return;
  }
  view.dataset.imageStatus = now.status;
  const link = h("a", { href: routeHref("images", image.id) }, "Open the image");
  const says = {
    queued: "The image is queued and holds no data: delete it, or upload its data again. ",
    saving: "The server still counts the upload as running (status saving); when its lease expires the image is killed. It holds no data: delete it. ",
    killed: "The image is killed and holds no data: delete it. ",
    active: "Yet the image is active: its data arrived. ",
  };
  const text = says[now.status] || `The image is ${now.status}. `;
  replace(state, failed, text, now.status === "active" ? link : remove);
}

async function start(file, meta, protect, store, panel) {
  let image;
  try {
    image = await api("POST", "/v2/images", { json: meta });
  } catch (exc) {
    notify(`The image could not be created: ${exc.message}`);
    return;
  }
  const bar = h("progress", { max: file.size || 1, value: 0 });
  const numbers = h("p", { class: "numbers" }, "Starting…");
  const state = h("p", { class: "state", "aria-live": "polite" });
  const cancel = h("button", { type: "button", class: "danger", "data-action": "cancel-upload" }, "Cancel upload");
  const view = h(
    "div",
    { class: "card upload-progress", "data-image": image.id },
    h("h2", {}, "Uploading ", h("a", { href: routeHref("images", image.id) }, image.name || image.id)),
    bar,
    numbers,
    state,
    cancel,
  );
  panel.replaceChildren(view);
  const xhr = new XMLHttpRequest();
  current = { xhr, view, image };
  window.addEventListener("beforeunload", warnOnLeave);
  const started = performance.now();
  const samples = [[started, 0]];
  let cancelled = false;

  let shown = 0;
  xhr.upload.addEventListener("progress", (e) => {
    const now = performance.now();
    if (now - shown < 250 && e.loaded < e.total) return; // 4 updates a second are plenty
    shown = now;
    samples.push([now, e.loaded]);
    while (samples.length > 2 && now - samples[0][0] > 3000) samples.shift();
    const [t0, b0] = samples[0];
    const speed = now > t0 ? ((e.loaded - b0) * 1000) / (now - t0) : 0;
    const total = e.lengthComputable ? e.total : file.size;
    bar.max = total || 1;
    bar.value = e.loaded;
    const pct = total ? ((100 * e.loaded) / total).toFixed(1) : "?";
    numbers.textContent = `${bytes(e.loaded)} of ${bytes(total)} (${pct}%) · ${rate(speed)} · ${speed > 0 ? duration((total - e.loaded) / speed) : "—"} left`;
  });

  const finished = new Promise((resolve) => {
    xhr.addEventListener("loadend", resolve);
  });
  xhr.open("PUT", imagePath(image.id, "file"));
  xhr.setRequestHeader("Content-Type", "application/octet-stream");
  if (store) xhr.setRequestHeader("X-Image-Meta-Store", store);
  cancel.addEventListener("click", () => {
    cancelled = true;
    cancel.disabled = true;
    state.textContent = "Cancelling…";
    xhr.abort();
  });
  xhr.send(file);
  await finished;
  window.removeEventListener("beforeunload", warnOnLeave);
  current = null;
  cancel.remove();
  const seconds = (performance.now() - started) / 1000;
  view.dataset.seconds = String(seconds);

  if (cancelled) {
    try {
      await api("DELETE", imagePath(image.id));
      state.textContent = "Upload cancelled: the image was deleted, nothing is stored.";
      view.dataset.outcome = "cancelled";
    } catch (exc) {
      state.textContent = visible(`Upload cancelled, but the image could not be deleted: ${exc.message}`);
      view.dataset.outcome = "cancel-failed";
    }
    return;
  }
  if (xhr.status < 200 || xhr.status >= 300) {
    const why = xhr.status === 0 ? "the connection to the server broke" : errorMessage(xhr.status, xhr.statusText, xhr.responseText);
    view.dataset.outcome = "failed";
    notify(`The upload of ${clip(image.name || image.id)} failed: ${why}`);
    await explainFailure(image, why, state, view);
    return;
  }
  bar.value = bar.max;
  let done = image;
  try {
    if (protect) await patchImage(image.id, [{ op: "replace", path: "/protected", value: true }]);
    done = await api("GET", imagePath(image.id));
  } catch (exc) {
    notify(`Uploaded, but the image could not be read back: ${exc.message}`);
  }
  numbers.textContent = `${bytes(file.size)} in ${duration(seconds)} (${rate(file.size / Math.max(seconds, 0.001))})`;
  replace(
    state,
    `Uploaded: the image is ${done.status}. `,
    done.checksum ? h("span", {}, "MD5 ", h("code", { class: "checksum" }, done.checksum), ". ") : null,
    h("a", { href: routeHref("images", image.id) }, "Open the image"),
  );
  view.dataset.outcome = "done";
  notify(`Upload of ${clip(image.name || image.id)} finished.`, "ok");
}
