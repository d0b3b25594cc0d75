"""``PATCH /v2/images/<id>``: OpenStack's two JSON patch dialects, applied as Glance 33 does.

Two steps, as in Glance: :func:`parse_patch` checks the document without the image
(media type, operation syntax, JSON pointers, read-only and reserved attributes, value
types against the image schema); :func:`apply_patch` runs the operations in order on
a copy of the image and returns the changes for the registry, or raises and returns
nothing: a patch is applied whole or not at all.

Glance's rules: ``add`` sets a value, existing or not (v2.1; in v2.0 ``add`` of an existing
one is a 409); ``replace`` and ``remove`` of a missing property are a 409; base
attributes cannot be removed (403); ``/tags`` is replaced whole (``/tags/-`` is refused,
Glance never implemented it); only queued images change formats (Glance: or importing;
see :func:`tank.service.check_format_change`).
Where Glance is sloppy Tank answers the right 4xx instead (noted at each place).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from tank.api.v2.bodies import (
    READ_ONLY,
    check_min,
    check_property_name,
    check_visibility,
)
from tank.api.v2.schemas import IMAGE_SCHEMA, check_image_value, check_value
from tank.errors import Conflict, Forbidden, UnsupportedMediaType, ValidationError
from tank.model import RESERVED_PREFIX, Image, Status
from tank.service import FORMAT_FIELDS, format_change_refused

PATCH_V2_0 = "application/openstack-images-v2.0-json-patch"
PATCH_V2_1 = "application/openstack-images-v2.1-json-patch"
#: Value of the ``Accept-Patch`` header of a 415 answer (Glance's, sorted).
PATCH_MEDIA_TYPES = (PATCH_V2_0, PATCH_V2_1)
_DRAFTS = {PATCH_V2_0: 4, PATCH_V2_1: 10}
OPERATIONS = ("add", "remove", "replace")

#: Refused in any operation (403): Glance's read-only list, plus ``stores``, which
#: Glance lets a client add as a property that then hides the real one.
PATCH_READ_ONLY = READ_ONLY | {"id", "direct_url", "self", "file", "schema", "stores"}
PATCH_RESERVED = frozenset({"location", "deleted", "deleted_at"})
#: View attributes whose removal is ignored rather than refused: openstacksdk's Image has
#: no ``stores`` attribute, so it keeps the one the view shows as a property and asks to
#: remove it on every ``update_image`` of an image fetched before (Glance answers 403
#: to that, and the user's change fails). Removing a view attribute changes nothing.
IGNORED_REMOVALS = frozenset({"stores"})
#: Image attributes a patch may set (and never remove).
ATTRIBUTES = frozenset(
    {
        "name",
        "visibility",
        "protected",
        "os_hidden",
        "owner",
        "disk_format",
        "container_format",
        "min_ram",
        "min_disk",
        "tags",
    }
)
#: Path depth each operation takes on ``/locations`` (``/locations/0``); 1 elsewhere.
_DEPTH = {"locations": {"add": 2, "remove": 2, "replace": 1}}


@attrs.frozen
class Op:
    """One checked operation: ``path`` is the decoded JSON pointer (one token, two for
    ``/locations/<n>``); ``draft`` is 4 for the v2.0 dialect, 10 for v2.1."""

    op: str
    path: tuple[str, ...]
    value: Any = None
    draft: int = 10

    @property
    def root(self) -> str:
        return self.path[0]

    @property
    def pointer(self) -> str:
        return "/" + "/".join(t.replace("~", "~0").replace("/", "~1") for t in self.path)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def media_type_of(content_type: str | None) -> str:
    """The bare media type of a Content-Type header (parameters dropped, lower case)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_patch(body: Any, media_type: str | None) -> list[Op]:
    """Check a decoded PATCH body sent as ``media_type`` (a Content-Type value).

    Other media types raise :class:`UnsupportedMediaType` (415; answer with an
    ``Accept-Patch: <PATCH_MEDIA_TYPES>`` header); a bad document ValidationError (400);
    read-only or reserved attributes Forbidden (403).
    """
    draft = _DRAFTS.get(media_type_of(media_type))
    if draft is None:
        raise UnsupportedMediaType(
            f"image PATCH expects Content-Type one of: {', '.join(PATCH_MEDIA_TYPES)} "
            f"(got {_short(media_type or 'none')})"
        )
    if not isinstance(body, list):
        raise ValidationError("patch", "request body must be a JSON array of operation objects")
    ops = [_parse_op(f"patch[{index}]", raw, draft) for index, raw in enumerate(body)]
    return [op for op in ops if op is not None]


def _parse_op(where: str, raw: Any, draft: int) -> Op | None:
    if not isinstance(raw, Mapping):
        raise ValidationError(where, f"operations must be JSON objects, got {_short(raw)}")
    if draft == 10:
        op = raw.get("op")
        if not isinstance(op, str) or op not in OPERATIONS:
            got = "no 'op'" if op is None else f"op {_short(repr(op))}"
            raise ValidationError(where, f"{got}: 'op' must be one of {', '.join(OPERATIONS)}")
        if "path" not in raw:
            raise ValidationError(where, "operation has no 'path'")
        pointer = raw["path"]
    else:
        named = [key for key in OPERATIONS if key in raw]
        if len(named) != 1:
            raise ValidationError(
                where,
                'operation objects must contain exactly one member named "add", '
                '"remove", or "replace"',
            )
        op = named[0]
        pointer = raw[op]
    path = _decode_pointer(where, pointer)
    if len(path) != _DEPTH.get(path[0], {}).get(op, 1):
        raise ValidationError(where, f"invalid JSON pointer for this resource: {_short(pointer)}")
    root = path[0]
    if op == "remove" and root in IGNORED_REMOVALS:
        return None
    if root in PATCH_READ_ONLY:
        raise Forbidden(f"Attribute '{root}' is read-only.")
    if root in PATCH_RESERVED or root.startswith(RESERVED_PREFIX):
        raise Forbidden(f"Attribute '{_short(root)}' is reserved.")
    if op == "remove":
        return Op(op, path, draft=draft)
    if "value" not in raw:
        raise ValidationError(where, f'operation "{op}" requires a member named "value"')
    value = raw["value"]
    if len(path) == 1:
        check_image_value(root, value)
    else:  # /locations/<n>: one item of the array
        check_value(root, [value], IMAGE_SCHEMA["properties"][root])
    return Op(op, path, value, draft)


def _decode_pointer(where: str, pointer: Any) -> tuple[str, ...]:
    """Glance's restricted JSON pointers: ``/a`` or ``/a/b``, ``~0`` and ``~1`` escapes,
    tokens stripped of surrounding blanks (as Glance does)."""
    if not isinstance(pointer, str):  # Glance: 500
        raise ValidationError(where, f"'path' must be a JSON pointer string, got {_short(pointer)}")
    problem = None
    if not pointer.startswith("/"):
        problem = 'does not start with "/"'
    elif re.search(r"/\s*?/", pointer):  # Glance reads "//name" as "/name"
        problem = 'contains adjacent "/"'
    elif len(pointer) > 1 and pointer.endswith("/"):
        problem = 'ends with "/"'
    elif re.search("~[^01]", pointer) or pointer.endswith("~"):
        problem = 'contains "~" not part of a recognized escape sequence'
    tokens = tuple(
        part.replace("~1", "/").replace("~0", "~").strip() for part in pointer[1:].split("/")
    )
    if problem is None and not all(tokens):  # Glance makes a property named ""
        problem = "does not name an attribute"
    if problem is not None:
        raise ValidationError(where, f"pointer {_short(pointer)} {problem}")
    return tokens


def split_locations(ops: Iterable[Op]) -> tuple[list[Op], list[Op]]:
    """``(other ops, /locations ops)``, for a caller that handles locations itself."""
    ops = list(ops)
    return [o for o in ops if o.root != "locations"], [o for o in ops if o.root == "locations"]


def apply_patch(image: Image, ops: Sequence[Op], *, is_admin: bool) -> dict[str, Any]:
    """The changes ``ops`` make to ``image``, for ``Registry.update``/``ImageService.update``.

    Keys are the attributes the patch touched, values already converted by the model;
    ``properties`` is the whole new dict (update with ``purge_props=True`` when it is
    present, so removed properties go) and ``tags`` the whole new tuple. The first
    failing operation raises and nothing is returned. ``/locations`` operations are
    refused (403, as Glance does by default: ``show_multiple_locations`` is off); a
    caller that supports them takes them out first with :func:`split_locations`.
    """
    attrs_changed: dict[str, Any] = {}
    properties = dict(image.properties)
    props_touched = False
    status = str(image.status)
    for op in ops:
        root = op.root
        if root == "locations":
            raise Forbidden(
                "image locations cannot be changed by PATCH "
                "(services and admins use POST /v2/images/<id>/locations)"
            )
        if root in ATTRIBUTES:
            _apply_attribute(op, attrs_changed, status=status, is_admin=is_admin)
            continue
        present = root in properties
        if op.op != "add" and not present:
            raise Conflict(f"Property {_short(root)} does not exist.")
        if op.op == "add" and present and op.draft == 4:
            raise Conflict(f"Property {_short(root)} already present.")
        if not present:
            check_property_name(root)
        props_touched = True
        if op.op == "remove" or op.value is None:  # null: a nullable property unset
            properties.pop(root, None)
        else:
            properties[root] = op.value
    changes = dict(attrs_changed)
    if props_touched:
        changes["properties"] = properties
    if "tags" in changes:
        changes["tags"] = tuple(changes["tags"])
    if not changes:
        return {}
    updated = attrs.evolve(image, **changes)  # the model's own checks: ValidationError
    return {key: getattr(updated, key) for key in changes}


def _apply_attribute(op: Op, changed: dict[str, Any], *, status: str, is_admin: bool) -> None:
    root = op.root
    if op.op == "remove":
        raise Forbidden(f"Property {root} may not be removed.")
    if root == "owner" and not is_admin:  # Glance checks replace only; add changes it too
        raise Forbidden("Owner can't be updated by non admin.")
    if root == "visibility":
        check_visibility(op.value, is_admin=is_admin)
    if op.op == "add" and op.draft == 4:
        raise Conflict(f"Property {root} already present.")
    if root in FORMAT_FIELDS and status != Status.QUEUED:  # Glance: or importing (see service)
        raise Forbidden(format_change_refused(root, status))
    if root in ("min_ram", "min_disk"):
        check_min(root, op.value)
    changed[root] = op.value
