// Building the page with DOM calls only: text always goes in as text (textContent or
// text nodes), never as HTML, so image names, tags and properties render inert.

const SVG_NS = "http://www.w3.org/2000/svg";

/** Bidirectional controls (marks, embeddings, overrides, isolates): in a name or tag they
 * would reorder what is shown ("\u202Egnp.exe" reads "exe.png"). */
const BIDI_CONTROLS = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;
const BIDI_CONTROL = new RegExp(BIDI_CONTROLS.source);

const marker = (c) => `⟨U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}⟩`;

/** ``text`` with each bidirectional control shown as a marker such as ⟨U+202E⟩. */
export function visible(text) {
  return String(text).replace(BIDI_CONTROLS, marker);
}

/** The bidirectional controls in ``text``, each as "⟨U+202E⟩ at 3" (its position in
 * characters, from 1). */
export function directionControls(text) {
  const found = [];
  [...String(text)].forEach((c, i) => {
    if (BIDI_CONTROL.test(c)) found.push(`${marker(c)} at ${i + 1}`);
  });
  return found;
}

/** Nothing a reader could see or click: spaces, zero-width and other format characters,
 * and marks with no base letter to sit on (combining accents, variation selectors)
 * (bidirectional controls are shown as markers, so they count as visible). */
const INVISIBLE = /[\s\p{Cf}\p{M}\u115F\u1160\u3164\uFFA0\u2800]/gu;

/** Whether ``text``, as shown, has nothing visible in it. */
export function blank(text) {
  return visible(text).replace(INVISIBLE, "") === "";
}

/** At most ``max`` characters of ``text``: longer, its start and end around "…". */
export function clip(text, max = 60) {
  const chars = [...String(text)];
  if (chars.length <= max) return String(text);
  const tail = Math.floor(max / 3);
  return chars.slice(0, max - tail - 1).join("") + "…" + chars.slice(chars.length - tail).join("");
}

/** An editable text field keeps its raw value (it is what gets saved), so the markers of
 * ``visible`` cannot be shown in it: it is laid out left to right, and a warning beside it
 * names each bidirectional control in it, kept up to date as it is typed into (a script
 * that sets ``value`` dispatches an "input" event). Returns the field and its warning. */
export function guarded(input) {
  input.setAttribute("dir", "ltr");
  input.classList.add("guarded");
  const warning = h("small", { class: "bidi-warning", role: "status" });
  const check = () => {
    const found = directionControls(input.value);
    warning.hidden = !found.length;
    warning.textContent = found.length ? `contains Unicode direction controls: ${found.join(", ")}` : "";
  };
  input.addEventListener("input", check);
  check();
  return h("span", { class: "guarded-field" }, input, warning);
}

function build(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "value" || key === "checked" || key === "disabled" || key === "selected") {
      el[key] = value;
    } else if (key === "title" || key === "aria-label") {
      el.setAttribute(key, visible(value)); // read by people, as the text is
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

/** Append children: nodes as they are, strings and numbers as text (bidirectional
 * controls made visible), arrays flattened. */
export function append(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(visible(child)));
  }
  return el;
}

/** h("a", {href: "#/x", class: "btn"}, "text", otherNode) */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** The same for SVG elements. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Replace everything inside ``el``. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A link to a hash route built from parts (each part URI-encoded). */
export function routeHref(...parts) {
  return "#/" + parts.map((p) => encodeURIComponent(p)).join("/");
}
