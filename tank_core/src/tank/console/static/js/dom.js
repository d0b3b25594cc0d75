// Building the page with DOM calls only: text always goes in as text (textContent or
// text nodes), never as HTML, so image names, tags and properties render inert.

const SVG_NS = "http://www.w3.org/2000/svg";

/** Bidirectional controls (marks, embeddings, overrides, isolates): in a name or tag they
 * would reorder what is shown ("\u202Egnp.exe" reads "exe.png"). */
const BIDI_CONTROLS = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;

/** ``text`` with each bidirectional control shown as a marker such as ⟨U+202E⟩. */
export function visible(text) {
  return String(text).replace(BIDI_CONTROLS, (c) => `⟨U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}⟩`);
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
