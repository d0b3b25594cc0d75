"""Image data in the Images API v2: ``PUT`` and ``GET /v2/images/<id>/file``.

Uploads take the same path as v1's (streamed to the store, size cap, ``Expect:
100-continue``, chunked); a failed upload returns the image to ``queued``, as Glance v2
does, with nothing left in the store. Data that is not its ``disk_format`` (or fails its
safety checks, :mod:`tank.image_format`) is 415, as in Glance. Downloads answer 204
while an image has no data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tank import errors
from tank.api.paths import image_id_of
from tank.api.transfer import data_response
from tank.api.v2.images import live_image
from tank.model import Context, Image, Status, parse_int
from tank.web import Request, Response

if TYPE_CHECKING:
    from tank.api.app import Api

OCTET_STREAM = "application/octet-stream"
#: Glance's multi-store header: which store takes the data (unknown store: 400).
STORE_HEADER = "x-image-meta-store"
SIZE_HEADER = "x-openstack-image-size"


def check_octet_stream(req: Request) -> None:
    ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != OCTET_STREAM:
        raise errors.UnsupportedMediaType(
            f"image data must be sent as {OCTET_STREAM}, not {ctype[:80] or 'no Content-Type'!r}"
        )


def check_formats(image: Image) -> None:
    """Glance asks for both formats before data arrives: what the data is must be known."""
    missing = [f for f in ("disk_format", "container_format") if getattr(image, f) is None]
    if missing:
        raise errors.Invalid(
            f"set {' and '.join(missing)} of image {image.id} before uploading its data"
        )


def upload(api: Api, req: Request, ctx: Context, image_id: str) -> Response:
    image_id = image_id_of(image_id)
    check_octet_stream(req)
    image = live_image(api, ctx, image_id)
    if not ctx.can_modify(image):
        raise errors.Forbidden(f"image {image.id} belongs to another tenant")
    if image.status is not Status.QUEUED:
        raise errors.Conflict(
            f"image {image.id} is {image.status}: data can only be uploaded to a queued image"
        )
    check_formats(image)
    body_size = None if req.chunked else req.content_length
    try:
        api.service.upload(
            image_id,
            req.body(),
            context=ctx,
            size=_announced_size(req),
            store=req.headers.get(STORE_HEADER),
            body_size=body_size,
            requeue_on_failure=True,
        )
    except errors.InvalidImageData as exc:  # Glance v2 answers 415 (image_data.py)
        raise errors.UnsupportedMediaType(str(exc)) from None
    return Response.empty(204)


def _announced_size(req: Request) -> int | None:
    """``x-openstack-image-size``: the size the client says it sends, verified (400)."""
    text = req.headers.get(SIZE_HEADER)
    return None if text is None else parse_int(SIZE_HEADER, text)


def download(api: Api, req: Request, ctx: Context, image_id: str) -> Response:
    image = live_image(api, ctx, image_id)
    if image.status not in (Status.ACTIVE, Status.DEACTIVATED):
        return Response.empty(204)
    image = api.service.check_data(image, ctx)  # one registry read per download
    headers = [("Content-MD5", image.checksum)] if image.checksum else []
    return data_response(api, req, ctx, image, headers)
