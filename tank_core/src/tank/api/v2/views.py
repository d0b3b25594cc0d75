"""How v2 shows images and members: the JSON bodies Glance 33 answers with.

python-glanceclient validates each image it receives against ``/v2/schemas/image``, so
every key here either is a schema property with a value of its type, or an extra
property (always a string).
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from tank.api.v2.schemas import BASE_PROPERTIES
from tank.model import Image, Member

IMAGE_SCHEMA_URL = "/v2/schemas/image"
IMAGES_SCHEMA_URL = "/v2/schemas/images"
MEMBER_SCHEMA_URL = "/v2/schemas/member"
MEMBERS_SCHEMA_URL = "/v2/schemas/members"

#: Internal properties Glance keeps out of its answers (which worker holds staged data),
#: and Tank's upload lease (:mod:`tank.upload_lease`).
HIDDEN_PROPERTIES = frozenset(
    {"os_glance_stage_host", "os_glance_hash_op_host", "os_glance_upload_heartbeat"}
)

#: Attributes in the order Glance's serializer sets them.
_ATTRIBUTES = (
    "name",
    "disk_format",
    "container_format",
    "visibility",
    "size",
    "virtual_size",
    "status",
    "checksum",
    "protected",
    "min_ram",
    "min_disk",
    "owner",
    "os_hidden",
    "os_hash_algo",
    "os_hash_value",
)


def isotime(value: dt.datetime) -> str:
    """``2024-05-01T10:00:00Z``: Glance's ``timeutils.isotime`` (UTC, whole seconds)."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def image_href(image_id: str, sub: str = "") -> str:
    return f"/v2/images/{image_id}/{sub}" if sub else f"/v2/images/{image_id}"


def image_json(
    image: Image,
    *,
    show_direct_url: str | None = None,
    locations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One image as ``GET /v2/images/<id>`` shows it.

    ``show_direct_url`` is the ``direct_url`` to show (the caller decides whether the
    deployment and the caller's role allow it, and passes a redacted url); ``locations``
    likewise (``[]`` shows an empty list, as Glance does for an image without data when
    locations are visible; None leaves the key out).

    Extra properties come first, as top-level string values, except those named like a
    base property (a v1 client could set a property ``size``): Glance lets the attribute
    overwrite most of them but shows a property named ``stores``, ``locations`` or
    ``direct_url`` when the attribute is absent, which breaks the client's schema check.
    """
    view: dict[str, Any] = {
        key: value
        for key, value in image.properties.items()
        if key not in HIDDEN_PROPERTIES and key not in BASE_PROPERTIES
    }
    for key in _ATTRIBUTES:
        view[key] = getattr(image, key)
    view["visibility"] = str(image.visibility)
    view["status"] = str(image.status)
    view["id"] = image.id
    view["created_at"] = isotime(image.created_at)
    view["updated_at"] = isotime(image.updated_at)
    if locations is not None:
        view["locations"] = [dict(loc) for loc in locations]
    if show_direct_url is not None:
        view["direct_url"] = show_direct_url
    view["tags"] = list(image.tags)
    view["self"] = image_href(image.id)
    view["file"] = image_href(image.id, "file")
    view["schema"] = IMAGE_SCHEMA_URL
    stores = [loc.store for loc in image.locations if loc.store]
    if stores:
        view["stores"] = ",".join(stores)
    return view


def locations_json(image: Image) -> list[dict[str, Any]]:
    """The image's locations as Glance lists them (``locations`` of :func:`image_json`,
    ``GET /v2/images/<id>/locations``): ``url`` and ``metadata``, the store's name in
    ``metadata.store`` as multi-store Glance puts it. Only for callers allowed to see
    them (admins, services). The image schema caps ``url`` at 255 characters, so
    glanceclient refuses an image showing a longer one (Tank allows 2048), as it would
    from Glance."""
    out = []
    for loc in image.locations:
        metadata = dict(loc.metadata)
        if loc.store is not None:
            metadata["store"] = loc.store
        out.append({"url": loc.url, "metadata": metadata})
    return out


def collection_links(
    params: Iterable[tuple[str, str]], next_marker: str | None
) -> tuple[str, str | None]:
    """``(first, next)`` of an image listing, from the request's query parameters.

    Both repeat every parameter but ``marker`` in order (Glance keeps only the last of a
    repeated ``tag`` or ``sort_key``, so its ``next`` page answers another query); ``next``
    is None on the last page.
    """
    kept = [(key, value) for key, value in params if key != "marker"]
    query = urllib.parse.urlencode(kept)
    first = f"/v2/images?{query}" if query else "/v2/images"
    if next_marker is None:
        return first, None
    return first, "/v2/images?" + urllib.parse.urlencode([*kept, ("marker", next_marker)])


def images_json(
    images: Sequence[Image],
    *,
    first_url: str = "/v2/images",
    next_url: str | None = None,
    image_view: Callable[[Image], dict[str, Any]] = image_json,
) -> dict[str, Any]:
    """``GET /v2/images``: ``images``, ``first``, ``schema`` and ``next`` when there is a
    next page (see :func:`collection_links`). ``image_view`` renders each image (pass a
    :func:`functools.partial` of :func:`image_json` to show locations)."""
    body: dict[str, Any] = {
        "images": [image_view(image) for image in images],
        "first": first_url,
        "schema": IMAGES_SCHEMA_URL,
    }
    if next_url is not None:
        body["next"] = next_url
    return body


def member_json(member: Member) -> dict[str, Any]:
    """One image member as ``/v2/images/<id>/members/<member>`` shows it."""
    return {
        "member_id": member.member,
        "image_id": member.image_id,
        "status": str(member.status),
        "created_at": isotime(member.created_at),
        "updated_at": isotime(member.updated_at),
        "schema": MEMBER_SCHEMA_URL,
    }


def members_json(members: Iterable[Member]) -> dict[str, Any]:
    return {"members": [member_json(m) for m in members], "schema": MEMBERS_SCHEMA_URL}
