"""Image endpoints of the Glance v1 API: list, show (HEAD), download, create, update, delete."""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING

from tank import errors
from tank.api.meta import (
    brief_json,
    hidden_from_v1,
    image_headers,
    image_json,
    model_fields,
    parse_headers,
)
from tank.api.paths import image_id_of
from tank.api.transfer import data_response
from tank.model import (
    ADMIN_FILTER_KEYS,
    FILTER_KEYS,
    Context,
    ListQuery,
    parse_bool,
    parse_int,
)
from tank.web import Request, Response

if TYPE_CHECKING:
    from tank.api.app import Api

_PAGING = ("sort_key", "sort_dir", "limit", "marker")
PURGE_PROPS = "x-glance-registry-purge-props"
COPY_FROM = "x-glance-api-copy-from"


def _list_query(req: Request, ctx: Context) -> ListQuery:
    """Filters and paging from the query string; unknown parameters are a 400.

    Without ``is_public`` the listing is every image the caller may see: public, its
    own and those shared with it (all of them for an admin). Glance v1 defaulted
    ``is_public`` to true for admins, so under its default no-auth setup, where every
    caller is an admin, a user's freshly created private image did not show up in
    ``glance image-list``. ``is_public=true|false`` filters; ``none`` is the default.
    """
    filters = {}
    for key, value in req.query.items():
        if key in _PAGING:
            continue
        admin_only = key in ADMIN_FILTER_KEYS and not ctx.is_admin
        if (key in FILTER_KEYS and not admin_only) or key.startswith("property-"):
            if key.startswith("property-"):
                key = "property-" + key[len("property-") :]
            filters[key] = value
        else:
            raise errors.ValidationError(key, "unknown query parameter")
    paging = {k: req.query[k] for k in _PAGING if k in req.query}
    return ListQuery.of(filters=filters, **paging)


def _list(api: Api, req: Request, ctx: Context) -> list:  # type: ignore[type-arg]
    query = _list_query(req, ctx)
    try:
        return api.service.list(query, context=ctx)
    except errors.NotFound:
        raise errors.Invalid(f"invalid marker: no image {query.marker}") from None


def index(api: Api, req: Request, ctx: Context) -> Response:
    return Response.json({"images": [brief_json(i) for i in _list(api, req, ctx)]})


def detail(api: Api, req: Request, ctx: Context) -> Response:
    shown = api.direct_url(ctx)
    images = _list(api, req, ctx)
    return Response.json({"images": [image_json(i, location=shown(i)) for i in images]})


def head(api: Api, req: Request, ctx: Context, image_id: str) -> Response:
    """The image's metadata headers. Content-Length is what a GET would send (RFC 9110
    §9.3.2): the image's size when it has data, else 0."""
    image = api.service.get(image_id_of(image_id), context=ctx)
    length = str(image.size or 0) if image.has_data else "0"
    return Response(200, [*image_headers(image), ("Content-Length", length)], [])


def download(api: Api, req: Request, ctx: Context, image_id: str) -> Response:
    image = api.service.with_data(image_id_of(image_id), context=ctx)
    return data_response(api, req, ctx, image, image_headers(image))


def _data_args(req: Request, data: dict[str, str]) -> dict[str, object]:
    args: dict[str, object] = {}
    if "size" in data:
        args["size"] = parse_int("size", data["size"])
    if "checksum" in data:
        args["checksum"] = data["checksum"]
    if "store" in data:
        args["store"] = data["store"]
    return args


def _with_body_size(req: Request, args: dict[str, object]) -> dict[str, object]:
    """Upload arguments with the body's Content-Length, which the service tells the store
    as the size when none was announced (``curl -T`` announces none). The store then
    knows the size before the first byte: one S3 PUT or Swift object below their
    large-object thresholds instead of a multipart upload or segments, an RBD image
    created at its full size, and an image over the size cap refused before its data is
    sent. (Glance v1 ignored it.) An announced size still wins and is verified."""
    if not req.chunked and req.content_length:
        return {**args, "body_size": req.content_length}
    return args


def _check_request(req: Request, data: dict[str, str]) -> None:
    """Refuse what Tank would otherwise misread: a body of another media type (``curl -d
    @file`` sends form data with its newlines stripped; Glance refused it too), the
    copy-from header Tank does not implement, an unparseable location."""
    if req.headers.get(COPY_FROM) is not None:
        raise errors.Invalid(
            f"{COPY_FROM} is not supported: download the data and upload it, "
            "or register it with x-image-meta-location"
        )
    ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
    if req.has_body() and ctype not in ("", "application/octet-stream"):
        raise errors.Invalid(
            f"image data must be sent as application/octet-stream, not {ctype[:100]!r}"
        )
    if "location" in data:
        try:
            urllib.parse.urlsplit(data["location"])
        except ValueError as exc:
            raise errors.BadLocation(f"x-image-meta-location is not a valid URI: {exc}") from None


def _wants_upload(req: Request, data: dict[str, str]) -> bool:
    """A body means data. An empty body (``Content-Length: 0``) is no data, as in Glance
    v1 (python-glanceclient sends one with every create and update, with
    ``Content-Type: application/octet-stream``), unless the client announces a size of 0:
    that is how a zero-byte image is uploaded."""
    if req.has_body():
        return True
    return req.content_length == 0 and data.get("size") == "0"


def create(api: Api, req: Request, ctx: Context) -> Response:
    meta = parse_headers(req.headers, allow_id=True)
    _check_request(req, meta.data)
    args = _data_args(req, meta.data)
    fields = model_fields(meta.fields)
    location = meta.data.get("location")
    if location is not None:
        if _wants_upload(req, meta.data):
            raise errors.Invalid("give either image data or x-image-meta-location, not both")
        image = api.service.create(fields, context=ctx, location=location, **args)  # type: ignore[arg-type]
    elif _wants_upload(req, meta.data):
        args = _with_body_size(req, args)
        image = api.service.create(fields, req.body(), context=ctx, **args)  # type: ignore[arg-type]
    else:
        if "checksum" in args:
            raise errors.Invalid("x-image-meta-checksum needs image data in the request body")
        image = api.service.create(fields, context=ctx, **args)  # type: ignore[arg-type]
    location_url = f"{req.base_url}/v1/images/{image.id}"
    return Response.json(
        {"image": image_json(image, location=api.direct_url(ctx)(image))},
        201,
        [("Location", location_url)],
    )


def update(api: Api, req: Request, ctx: Context, image_id: str) -> Response:
    image_id = image_id_of(image_id)
    meta = parse_headers(req.headers, allow_id=False)
    _check_request(req, meta.data)
    args = _data_args(req, meta.data)
    if "location" in meta.data:
        raise errors.Invalid("x-image-meta-location can only be given when creating an image")
    upload = _wants_upload(req, meta.data)
    current = api.service.get(image_id, context=ctx)
    if upload and current.status.value != "queued":
        raise errors.Conflict(
            f"image {image_id} is {current.status}: data can only be uploaded to a queued image"
        )
    if not upload:
        # Clients echo size and checksum back from a HEAD: the same values are fine.
        for field in ("size", "checksum"):
            value = args.get(field)
            if isinstance(value, str):
                value = value.lower()
            if field in args and value != getattr(current, field):
                raise errors.Forbidden(
                    f"x-image-meta-{field} describes the image data: it is set by an upload "
                    "and cannot be changed"
                )
    # Glance v1 purges unless told not to; a value that is not a boolean is an error
    # here (Glance read it as false, so a typo kept or lost properties silently).
    purge = parse_bool(PURGE_PROPS, req.headers.get(PURGE_PROPS, "true"))
    image = None
    fields = model_fields(meta.fields, current)
    if purge and not upload and (hidden := hidden_from_v1(current.properties)):
        # v1 never showed these, so a client replacing the properties did not drop them
        fields["properties"] = {**hidden, **fields.get("properties", {})}
    if fields or (purge and not upload):
        image = api.service.update(image_id, fields, context=ctx, purge_props=purge and not upload)
    if upload:
        args = _with_body_size(req, args)
        image = api.service.upload(image_id, req.body(), context=ctx, **args)  # type: ignore[arg-type]
    elif image is None:
        image = api.service.get(image_id, context=ctx)
    return Response.json({"image": image_json(image, location=api.direct_url(ctx)(image))})


def delete(api: Api, req: Request, ctx: Context, image_id: str) -> Response:
    deleted = api.service.delete(image_id_of(image_id), context=ctx)
    api.cancel_import(deleted.id)
    return Response.empty(200)
