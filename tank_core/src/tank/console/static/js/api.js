// The Images API v2, as this page's origin serves it. Nothing is added to a request
// that identifies the user: a front proxy that authenticates adds its own headers, and
// the browser's own credentials (if the proxy uses any) go with same-origin requests.

export const PATCH_TYPE = "application/openstack-images-v2.1-json-patch";

export class ApiError extends Error {
  constructor(status, message, method, path) {
    super(message);
    this.status = status;
    this.method = method;
    this.path = path;
  }
}

/** A readable message from an error response body (Tank's, Glance's or a proxy's). */
export function errorMessage(status, statusText, text) {
  let detail = "";
  try {
    const body = JSON.parse(text);
    const err = body.error || body;
    detail = err.message || err.title || body.message || "";
    if (typeof detail !== "string") detail = JSON.stringify(detail);
  } catch {
    detail = (text || "").replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim().slice(0, 300);
  }
  const head = `${status}${statusText ? " " + statusText : ""}`;
  return detail ? `${detail} (${head})` : `the server answered ${head}`;
}

/**
 * One API call. ``json``: a body sent as JSON (``contentType`` overrides the type);
 * answers the parsed JSON, or null for an empty answer. Throws ApiError with a readable
 * message for any answer that is not 2xx, and for a network failure.
 */
export async function api(method, path, { json, contentType, signal, headers, cache } = {}) {
  const init = { method, headers: { Accept: "application/json", ...(headers || {}) }, signal };
  init.cache = cache || "no-store";
  init.credentials = "same-origin";
  if (json !== undefined) {
    init.headers["Content-Type"] = contentType || "application/json";
    init.body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (exc) {
    if (exc.name === "AbortError") throw exc;
    throw new ApiError(0, `cannot reach the server (${exc.message})`, method, path);
  }
  const text = await response.text();
  if (!response.ok) {
    throw new ApiError(
      response.status,
      errorMessage(response.status, response.statusText, text),
      method,
      path,
    );
  }
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(response.status, "the server answered something that is not JSON", method, path);
  }
}

/** A dot segment (``.`` or ``..``, encoded or not) is one the browser resolves away:
 * ``/v2/images/.`` would ask for the listing, ``.../tags/..`` for the image itself. */
function isDotSegment(part) {
  return part === "." || part === "..";
}

/** ``/v2/images/{id}/...``; throws ApiError, asking nothing, for a dot segment (the id's:
 * 404, no image has that id; another part's: 400, it cannot be sent in a URL). */
export function imagePath(id, ...rest) {
  if (isDotSegment(String(id))) throw new ApiError(404, `there is no image "${id}"`, "GET", "/v2/images");
  const bad = rest.find((part) => isDotSegment(String(part)));
  if (bad !== undefined) {
    throw new ApiError(400, `"${bad}" cannot be sent as part of a URL (browsers resolve it as a path step)`, "", "");
  }
  return ["/v2/images", encodeURIComponent(id), ...rest.map(encodeURIComponent)].join("/");
}

/** A JSON pointer to a top-level key (RFC 6901 escaping). */
export function pointer(key) {
  return "/" + String(key).replace(/~/g, "~0").replace(/\//g, "~1");
}

export function patchImage(id, ops) {
  return api("PATCH", imagePath(id), { json: ops, contentType: PATCH_TYPE });
}

let schemaCache = null;
/** ``/v2/schemas/image``, fetched once (formats and which keys are base attributes). */
export async function imageSchema() {
  if (!schemaCache) {
    schemaCache = api("GET", "/v2/schemas/image").catch((exc) => {
      schemaCache = null;
      throw exc;
    });
  }
  return schemaCache;
}

export async function formats() {
  const schema = await imageSchema();
  const props = schema.properties || {};
  const values = (p) => ((p && p.enum) || []).filter((v) => v !== null);
  return { disk: values(props.disk_format), container: values(props.container_format) };
}

let identity = null;
/**
 * Who the API takes this caller for (``/console/whoami``); never guessed by the page.
 * ``fresh``: ask again (behind an authenticating proxy the identity may change between
 * pages); else the latest answer, or the request in flight.
 */
export function whoami({ fresh = false } = {}) {
  if (!identity || fresh) {
    const asked = api("GET", "/console/whoami").catch((exc) => {
      if (identity === asked) identity = null;
      throw exc;
    });
    identity = asked;
  }
  return identity;
}
