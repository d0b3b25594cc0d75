"""Path parameters both Images APIs share."""

from __future__ import annotations

from tank import errors
from tank.model import parse_image_id


def image_id_of(value: str) -> str:
    """The canonical id of an image named in a path; an id that cannot exist is a 404
    (as for any missing image), not a 400."""
    try:
        return parse_image_id(value)
    except errors.ValidationError:
        raise errors.NotFound(f"no image with id {value[:80]!r}") from None
