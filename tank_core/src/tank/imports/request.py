"""What ``POST /v2/images/{id}/import`` asks for, checked before anything is claimed.

The checks follow Glance 33's ``ImagesController.import_image`` in its order, so a
client sees the error Glance would give: the method must be enabled (400), the image
in the status the method needs (409), its formats set (409), the caller allowed (403),
no other import in flight (409), the stores known (409) and writable (409).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from tank import errors
from tank.model import Context, Image, Status
from tank.store import Capability
from tank.stores import StoreSet

GLANCE_DIRECT = "glance-direct"
WEB_DOWNLOAD = "web-download"
COPY_IMAGE = "copy-image"

#: The status each method needs the image in.
NEEDED_STATUS = {
    GLANCE_DIRECT: Status.UPLOADING,
    WEB_DOWNLOAD: Status.QUEUED,
    COPY_IMAGE: Status.ACTIVE,
}


@attrs.frozen(kw_only=True)
class ImportRequest:
    """The parsed body of an import call (:mod:`tank.api.v2.imports` parses it)."""

    method: str
    uri: str | None = None
    #: None: the default store (or ``all_stores``).
    stores: tuple[str, ...] | None = None
    all_stores: bool = False
    all_stores_must_succeed: bool = True


def check_method(request: ImportRequest, enabled: Sequence[str]) -> None:
    if request.method not in enabled:
        raise errors.Invalid(
            f"unknown import method {request.method[:80]!r}: this server offers "
            f"{', '.join(enabled) or 'no import methods'}"
        )
    if request.method == WEB_DOWNLOAD and not request.uri:
        raise errors.Invalid("web-download needs the URL to fetch as method.uri")
    if request.all_stores and request.stores is not None:
        raise errors.Invalid("all_stores cannot be given together with stores")
    if request.stores is not None and not request.stores:
        raise errors.Invalid("stores must name at least one store")


def check_image(request: ImportRequest, image: Image, context: Context) -> None:
    """Status, formats and permission (Glance's order)."""
    method = request.method
    if image.status is Status.ACTIVE and method != COPY_IMAGE:
        raise errors.Conflict(f"image {image.id} is active: it cannot be the target of an import")
    needed = NEEDED_STATUS[method]
    if image.status is not needed:
        hint = " (stage its data first)" if method == GLANCE_DIRECT else ""
        raise errors.Conflict(
            f"image {image.id} is {image.status}: {method} needs an image that is {needed}{hint}"
        )
    for field in ("container_format", "disk_format"):
        if not getattr(image, field):
            raise errors.Conflict(f"{field} of image {image.id} must be set before import")
    if method == COPY_IMAGE:
        # Glance 33's default policy: copy_image is "rule:context_is_admin".
        if not context.is_admin:
            raise errors.Forbidden("only an admin may copy an image into other stores")
    elif not context.can_modify(image):
        raise errors.Forbidden(f"image {image.id} belongs to another tenant")


def target_stores(request: ImportRequest, image: Image, stores: StoreSet) -> list[str]:
    """The stores to write, in order. Empty for a copy-image with ``all_stores`` of an
    image that is in every store already (nothing to do, as in Glance).

    :raises errors.Conflict: an unknown or read-only store (Glance answers 409 for an
        unknown store identifier).
    :raises errors.Invalid: copy-image to a store the image is in already.
    """
    if request.all_stores:
        names = [b.name for b in stores if Capability.WRITE in b.capabilities]
    else:
        names = list(dict.fromkeys(request.stores or (stores.default,)))
    for name in names:
        try:
            backend = stores.get(name)
        except errors.UnknownStore as exc:
            raise errors.Conflict(str(exc)) from None
        if Capability.WRITE not in backend.capabilities:
            raise errors.Conflict(f"store {name!r} is read-only: images cannot be imported into it")
    if request.method == COPY_IMAGE:
        present = set(image.stores)
        if request.all_stores:
            names = [n for n in names if n not in present]
        else:
            for name in names:
                if name in present:
                    raise errors.Invalid(f"image {image.id} is already in store {name!r}")
    return names
