// One image: every attribute and property, edits as JSON patch, tags, members,
// deactivate/reactivate, protect, delete (confirmed), download.

import { api, formats, imagePath, imageSchema, patchImage, pointer, whoami } from "./api.js";
import { clip, guarded, h, replace } from "./dom.js";
import { bytes, when } from "./format.js";
import { statusBadge } from "./images.js";
import { navigate, notify } from "./main.js";

const VISIBILITIES = ["public", "private", "shared", "community"];
/** Attributes set by the service, shown but never edited. */
const READ_ONLY = [
  "id", "status", "owner", "size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value",
  "protected", "created_at", "updated_at", "stores", "direct_url", "self", "file", "schema",
];
const EDITABLE = ["name", "visibility", "disk_format", "container_format", "min_disk", "min_ram", "os_hidden"];
const NUMBERS = new Set(["min_disk", "min_ram"]);

function section(title, ...children) {
  return h("section", { class: "card", "data-section": title.toLowerCase() }, h("h2", {}, title), ...children);
}

function shown(key, value) {
  if (value === null || value === undefined) return h("span", { class: "muted" }, "—");
  if (key === "size" || key === "virtual_size") return `${bytes(value)} (${value} bytes)`;
  if (key === "created_at" || key === "updated_at") return `${when(value)} (${value})`;
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** What ``action`` came to: ``{ value }``, or ``{ error }`` if it threw. */
async function outcome(action) {
  try {
    return { value: await action() };
  } catch (error) {
    return { error };
  }
}

export async function render(container, [id]) {
  const [schema, who, formatList] = await Promise.all([
    imageSchema().catch(() => ({ properties: {} })),
    whoami().catch(() => null),
    formats().catch(() => ({ disk: [], container: [] })),
  ]);
  const base = new Set(Object.keys(schema.properties || {}));
  let alive = true;
  /** Whether the caller may change ``image`` (owner or admin): others are not offered
   * what the API would refuse. Unknown identity: everything is offered, the API decides. */
  const mayChange = (image) => !who || !who.auth || who.is_admin || (Boolean(who.tenant) && who.tenant === image.owner);

  async function refresh() {
    let image;
    try {
      image = await api("GET", imagePath(id));
    } catch (exc) {
      replace(
        container,
        h("h1", {}, "Image"),
        h("p", { class: "error-page", role: "alert" }, `Image ${id} could not be shown: ${exc.message}`),
        h("a", { href: "#/images" }, "Back to the images"),
      );
      return;
    }
    if (!alive) return;
    let members = null;
    let membersError = null;
    if (image.visibility === "shared") {
      try {
        members = (await api("GET", imagePath(id, "members"))).members || [];
      } catch (exc) {
        membersError = exc.message;
      }
    }
    // where the data lives: for admins only (GET .../locations answers 403 to others)
    let stored = null;
    if (who && who.is_admin) {
      try {
        stored = await api("GET", imagePath(id, "locations"));
      } catch (exc) {
        stored = exc;
      }
    }
    if (!alive) return;
    replace(
      container,
      head(image),
      attributes(image),
      properties(image),
      tags(image),
      locations(image, stored),
      membersSection(image, members, membersError),
    );
    container.dataset.status = image.status;
  }

  function head(image) {
    const actions = h("div", { class: "actions" });
    // a deactivated image's data is for admins only; other images have none to download
    if (image.status === "active" || (image.status === "deactivated" && who && who.is_admin)) {
      actions.append(h("a", { class: "button", href: imagePath(id, "file"), download: image.name || id }, "Download"));
    } else {
      const why = image.status === "deactivated" ? "only an admin may download a deactivated image" : `no data to download: the image is ${image.status}`;
      actions.append(h("button", { type: "button", "data-action": "download", disabled: true, title: why }, "Download"));
    }
    if (!mayChange(image)) {
      return headWith(image, actions);
    }
    if (image.status === "active") {
      actions.append(h("button", { type: "button", "data-action": "deactivate", onclick: () => act("Deactivating", "deactivate") }, "Deactivate"));
    }
    if (image.status === "deactivated") {
      actions.append(h("button", { type: "button", "data-action": "reactivate", onclick: () => act("Reactivating", "reactivate") }, "Reactivate"));
    }
    actions.append(
      h(
        "button",
        {
          type: "button",
          "data-action": "protect",
          onclick: () => change("Changing protection", [{ op: "replace", path: "/protected", value: !image.protected }]),
        },
        image.protected ? "Unprotect" : "Protect",
      ),
      h(
        "button",
        {
          type: "button",
          class: "danger",
          "data-action": "delete",
          disabled: image.protected,
          title: image.protected ? "Protected images cannot be deleted" : "",
          onclick: () => confirmDelete(image),
        },
        "Delete",
      ),
    );
    return headWith(image, actions);
  }

  function headWith(image, actions) {
    return h(
      "div",
      { class: "page-head" },
      h(
        "div",
        {},
        h("h1", { class: "image-name" }, image.name || h("span", { class: "muted" }, "(no name)")),
        h("p", { class: "muted" }, h("code", {}, image.id), " ", statusBadge(image.status), image.protected ? h("span", { class: "badge" }, "protected") : null),
      ),
      actions,
    );
  }

  /** Run ``action``, show the page again (the image may have changed either way), and
   * only then tell how it went (``ok``: the message if it worked). A message that came
   * first, failures' too, would invite typing into forms the refresh is about to replace.
   * Whether it worked. */
  async function perform(what, action, ok) {
    const { error } = await outcome(action);
    await refresh();
    if (error) notify(`${what} failed: ${error.message}`);
    else if (ok) notify(ok, "ok");
    return !error;
  }

  async function act(what, action) {
    await perform(what, () => api("POST", imagePath(id, "actions", action)), `${what} done.`);
  }

  async function change(what, ops) {
    return perform(what, () => patchImage(id, ops), `${what}: saved.`);
  }

  function confirmDelete(image) {
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-labelledby": "confirm-title" },
      h("h2", { id: "confirm-title" }, "Delete this image?"),
      h("p", {}, "Image ", h("strong", {}, image.name || image.id), " and its data will be deleted. This cannot be undone."),
    );
    const close = () => {
      dialog.close();
      dialog.remove();
    };
    dialog.append(
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", "data-action": "cancel-delete", onclick: close }, "Cancel"),
        h(
          "button",
          {
            type: "button",
            class: "danger",
            "data-action": "confirm-delete",
            onclick: async () => {
              close();
              const { error } = await outcome(() => api("DELETE", imagePath(id)));
              if (!error) {
                navigate("#/images", `Image ${clip(image.name || image.id)} deleted.`);
              } else {
                await refresh();
                notify(`Deleting the image failed: ${error.message}`);
              }
            },
          },
          "Delete",
        ),
      ),
    );
    document.body.append(dialog);
    dialog.showModal();
  }

  function attributes(image) {
    const form = h("form", { class: "attributes" });
    const inputs = {};
    const rows = [];
    for (const key of EDITABLE) {
      let input;
      if (key === "visibility" || key === "disk_format" || key === "container_format") {
        const values = key === "visibility" ? VISIBILITIES : key === "disk_format" ? formatList.disk : formatList.container;
        input = h(
          "select",
          { name: key },
          image[key] === null ? h("option", { value: "" }, "—") : null,
          values.map((v) => h("option", { value: v, selected: v === image[key] }, v)),
        );
      } else if (key === "os_hidden") {
        input = h("input", { type: "checkbox", name: key, checked: Boolean(image[key]) });
      } else {
        input = h("input", { type: NUMBERS.has(key) ? "number" : "text", min: NUMBERS.has(key) ? 0 : null, name: key, value: image[key] ?? "" });
      }
      input.disabled = !mayChange(image);
      inputs[key] = input;
      rows.push(h("tr", {}, h("th", { scope: "row" }, key), h("td", {}, key === "name" ? guarded(input) : input)));
    }
    for (const key of READ_ONLY) {
      if (!(key in image)) continue;
      rows.push(h("tr", { "data-key": key }, h("th", { scope: "row" }, key), h("td", { class: key.includes("hash") || key === "checksum" ? "mono" : "" }, shown(key, image[key]))));
    }
    for (const key of Object.keys(image).sort()) {
      if (!base.has(key) || EDITABLE.includes(key) || READ_ONLY.includes(key) || key === "tags" || key === "locations") continue;
      rows.push(h("tr", { "data-key": key }, h("th", { scope: "row" }, key), h("td", {}, shown(key, image[key]))));
    }
    form.append(h("table", { class: "kv" }, h("tbody", {}, rows)), mayChange(image) ? h("button", { type: "submit" }, "Save attributes") : null);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const ops = [];
      for (const key of EDITABLE) {
        const input = inputs[key];
        let value = input.type === "checkbox" ? input.checked : input.value;
        if (NUMBERS.has(key)) value = value === "" ? 0 : Number(value);
        if (key === "name" && value === "" && image.name === null) continue;
        if ((key === "disk_format" || key === "container_format") && value === "") continue;
        if (value !== image[key]) ops.push({ op: "replace", path: pointer(key), value });
      }
      if (!ops.length) {
        notify("Nothing changed.", "ok");
        return;
      }
      await change("Saving the attributes", ops);
    });
    return section("Attributes", form);
  }

  function properties(image) {
    const extra = Object.keys(image).filter((k) => !base.has(k)).sort();
    const body = h("tbody", {});
    if (!mayChange(image)) {
      for (const key of extra) body.append(h("tr", { "data-property-row": key }, h("th", { scope: "row" }, key), h("td", {}, shown(key, image[key]))));
      return section("Properties", extra.length ? h("table", { class: "kv properties" }, body) : h("p", { class: "muted" }, "No properties."));
    }
    for (const key of extra) {
      const value = h("input", { type: "text", value: image[key], "aria-label": `Value of ${key}`, "data-property": key });
      body.append(
        h(
          "tr",
          { "data-property-row": key },
          h("th", { scope: "row" }, key),
          h("td", {}, guarded(value)),
          h(
            "td",
            { class: "row-actions" },
            h("button", {
              type: "button", "data-action": "save-property",
              onclick: () => change(`Saving property ${clip(key)}`, [{ op: "replace", path: pointer(key), value: value.value }]),
            }, "Save"),
            h("button", {
              type: "button", class: "danger", "data-action": "remove-property",
              onclick: () => change(`Removing property ${clip(key)}`, [{ op: "remove", path: pointer(key) }]),
            }, "Remove"),
          ),
        ),
      );
    }
    const newKey = h("input", { type: "text", name: "key", placeholder: "name", "aria-label": "New property name", required: true });
    const newValue = h("input", { type: "text", name: "value", placeholder: "value", "aria-label": "New property value" });
    const add = h(
      "form",
      { class: "inline", "data-form": "add-property" },
      newKey,
      newValue,
      h("button", { type: "submit" }, "Add property"),
    );
    add.addEventListener("submit", async (e) => {
      e.preventDefault();
      const key = newKey.value.trim();
      if (!key) return;
      await change(`Adding property ${clip(key)}`, [{ op: "add", path: pointer(key), value: newValue.value }]);
    });
    return section(
      "Properties",
      extra.length ? h("table", { class: "kv properties" }, body) : h("p", { class: "muted" }, "No properties."),
      add,
    );
  }

  function tags(image) {
    const list = h(
      "ul",
      { class: "tag-list" },
      (image.tags || []).map((tag) =>
        h(
          "li",
          { class: "tag", "data-tag": tag },
          h("span", {}, tag),
          mayChange(image) && h("button", {
            type: "button", class: "remove", "aria-label": `Remove tag ${tag}`,
            onclick: async () => {
              await perform(`Removing tag ${clip(tag)}`, () => api("DELETE", imagePath(id, "tags", tag)));
            },
          }, "×"),
        ),
      ),
    );
    const none = (image.tags || []).length ? list : h("p", { class: "muted" }, "No tags.");
    if (!mayChange(image)) return section("Tags", none);
    const input = h("input", { type: "text", name: "tag", placeholder: "new tag", "aria-label": "New tag", required: true });
    const form = h("form", { class: "inline", "data-form": "add-tag" }, input, h("button", { type: "submit" }, "Add tag"));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const tag = input.value.trim();
      if (!tag) return;
      await perform(`Adding tag ${clip(tag)}`, () => api("PUT", imagePath(id, "tags", tag)), `Tag ${clip(tag)} added.`);
    });
    return section("Tags", none, form);
  }

  function locations(image, stored) {
    if (stored === null && !image.direct_url) return null;
    const parts = [];
    if (stored instanceof Error) {
      parts.push(h("p", { class: "error-text", role: "alert" }, `The locations could not be listed: ${stored.message}`));
    } else if (stored) {
      parts.push(
        stored.length
          ? h(
              "ul",
              { class: "locations" },
              stored.map((loc) => {
                const meta = { ...(loc.metadata || {}) };
                const store = meta.store;
                delete meta.store;
                return h(
                  "li",
                  {},
                  store ? h("span", { class: "badge" }, store) : null,
                  " ",
                  h("code", {}, loc.url),
                  Object.keys(meta).length ? ` ${JSON.stringify(meta)}` : "",
                );
              }),
            )
          : h("p", { class: "muted" }, "No data stored."),
      );
    }
    if (image.direct_url) parts.push(h("p", {}, "Direct URL: ", h("code", {}, image.direct_url)));
    return section("Locations", parts);
  }

  function membersSection(image, members, error) {
    if (image.visibility !== "shared") {
      return section("Members", h("p", { class: "muted" }, `Only images with visibility "shared" have members; this one is ${image.visibility}.`));
    }
    const mine = who && who.tenant;
    const isOwner = mayChange(image);
    const parts = [];
    if (error) parts.push(h("p", { class: "error-text", role: "alert" }, `The members could not be listed: ${error}`));
    if (members && members.length) {
      parts.push(
        h(
          "table",
          { class: "members" },
          h("thead", {}, h("tr", {}, h("th", {}, "Project"), h("th", {}, "Status"), h("th", {}, "Since"), h("th", {}, ""))),
          h(
            "tbody",
            {},
            members.map((m) => {
              const buttons = [];
              if (mine && m.member_id === mine) {
                for (const [label, value] of [["Accept", "accepted"], ["Reject", "rejected"]]) {
                  buttons.push(h("button", {
                    type: "button", "data-action": value, disabled: m.status === value,
                    onclick: async () => {
                      await perform(`${label}ing the image`, () => api("PUT", imagePath(id, "members", m.member_id), { json: { status: value } }));
                    },
                  }, label));
                }
              }
              if (isOwner) {
                buttons.push(h("button", {
                  type: "button", class: "danger", "data-action": "remove-member",
                  onclick: async () => {
                    await perform(`Removing member ${clip(m.member_id)}`, () => api("DELETE", imagePath(id, "members", m.member_id)));
                  },
                }, "Remove"));
              }
              return h(
                "tr",
                { "data-member": m.member_id },
                h("td", {}, h("code", {}, m.member_id)),
                h("td", {}, h("span", { class: ["member-status", `member-${m.status}`] }, m.status)),
                h("td", { title: m.updated_at }, when(m.updated_at)),
                h("td", { class: "row-actions" }, buttons),
              );
            }),
          ),
        ),
      );
    } else if (members) {
      parts.push(h("p", { class: "muted" }, "Not shared with any project yet."));
    }
    if (isOwner) {
      const input = h("input", { type: "text", name: "member", placeholder: "project id", "aria-label": "Project to share with", required: true });
      const form = h("form", { class: "inline", "data-form": "add-member" }, input, h("button", { type: "submit" }, "Share"));
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        const member = input.value.trim();
        if (!member) return;
        await perform(
          `Sharing with ${clip(member)}`,
          () => api("POST", imagePath(id, "members"), { json: { member } }),
          `Shared with ${clip(member)}; they must accept it to see it in their list.`,
        );
      });
      parts.push(form);
    }
    return section("Members", parts);
  }

  await refresh();
  return () => {
    alive = false;
    for (const dialog of document.querySelectorAll("dialog.confirm")) dialog.remove();
  };
}
