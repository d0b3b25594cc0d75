"""Image references on the command line: an id, or a name that names exactly one image.

As python-glanceclient's ``find_resource``: what looks like an id is used as is (no extra
request); anything else is looked up by name among the images the caller sees. Several
images of that name is an error listing them, so a command never picks one at random.
"""

from __future__ import annotations

import uuid
from typing import Any

import click

from tank.errors import NotFound, ValidationError

#: How many same-named images an ambiguity error lists.
SHOWN = 10


def looks_like_id(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class ImageRef(click.ParamType):
    """IMAGE: an image id or the name of one image; converts to the id."""

    name = "IMAGE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if not isinstance(value, str) or looks_like_id(value) or ctx is None:
            return value  # type: ignore[no-any-return]
        state = ctx.find_object(_state_class())
        if state is None:  # pragma: no cover - every command runs under ``cli``
            return value
        return resolve(state, value)


def resolve(state: Any, value: str) -> str:
    """The id of the one image called ``value`` (v1: or ``value`` itself, which may be
    a custom id, when no image has that name)."""
    if not value.strip():
        raise ValidationError("image", "expected an image id or name, got an empty string")
    matches = list(state.client.iter_images(filters={"name": value}, limit=SHOWN + 1))
    if len(matches) == 1:
        return str(matches[0].id)
    if not matches:
        if state.api == "v1":
            return value  # v1 images may have any id; the command's 404 says so
        raise NotFound(f"no image has the id or name {value!r}")
    listed = ", ".join(f"{m.id} ({m.status.value})" for m in matches[:SHOWN])
    more = " and more" if len(matches) > SHOWN else ""
    raise ValidationError(
        "image", f"{len(matches)} images are named {value!r}: {listed}{more}; give an id"
    )


def _state_class() -> type:
    from tank.cli.main import State  # main imports this module

    return State


IMAGE = ImageRef()
