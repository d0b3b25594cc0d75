"""Reading stored bytes back whole, the way every store and service test checks them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tank.model import Context
    from tank.service import ImageService
    from tank.store import Backend


def read_all(
    source: Backend | ImageService,
    ref: str,
    offset: int = 0,
    length: int | None = None,
    *,
    context: Context | None = None,
) -> bytes:
    """The bytes at ``ref``, or its range ``offset``/``length``, in one ``bytes``.

    ``source`` is a store (``ref`` is a location: ``Backend.get``) or an
    :class:`~tank.service.ImageService` (``ref`` is an image id: ``download``, as
    ``context``, by default an admin). The stream is closed, and its length must be
    the ``size`` the store announced for it: a test reading through this helper also
    checks that.
    """
    from tank.service import ImageService

    if isinstance(source, ImageService):
        from tank.model import Context

        who = Context.admin() if context is None else context
        _, result = source.download(ref, context=who, offset=offset, length=length)
    else:
        result = source.get(ref, offset, length)
    with result:
        data = b"".join(result.chunks)
    assert len(data) == result.size, f"read {len(data)} bytes of {ref}, announced {result.size}"
    return data
