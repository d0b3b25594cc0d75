"""The JSON Schema documents of ``/v2/schemas/{image,images,member,members}``.

python-glanceclient builds its image model from ``/v2/schemas/image`` (warlock) and
validates every image it shows and every change it patches against it, so these are
Glance 33's documents: its base properties, its links, the properties of Glance's stock
``etc/schema-image.json`` (marked ``is_base: false``, which tells the client to *add*
rather than *replace* them when absent) and ``additionalProperties: {"type": "string"}``.
Only the format enums are Tank's (:data:`tank.model.DISK_FORMATS`, which hold Glance's
defaults). The server validates request values against the same documents
(:func:`check_value`), so the client and Tank agree on what is valid.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

from tank.errors import ValidationError
from tank.model import CONTAINER_FORMATS, DISK_FORMATS

_UUID_PATTERN = (
    "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
)

#: Glance's default orders; formats Tank has beyond them follow, sorted.
_GLANCE_DISK_FORMATS = (
    "ami",
    "ari",
    "aki",
    "vhd",
    "vhdx",
    "vmdk",
    "raw",
    "qcow2",
    "vdi",
    "iso",
    "ploop",
)
_GLANCE_CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")

STATUSES = (
    "queued",
    "saving",
    "active",
    "killed",
    "deleted",
    "uploading",
    "importing",
    "pending_delete",
    "deactivated",
)
VISIBILITIES = ("community", "public", "private", "shared")
MEMBER_STATUSES = ("pending", "accepted", "rejected")


def _ordered(glance_order: tuple[str, ...], ours: frozenset[str]) -> list[str]:
    return [f for f in glance_order if f in ours] + sorted(ours - set(glance_order))


def _base_properties() -> dict[str, Any]:
    """Glance's ``get_base_properties()``, property for property."""
    return {
        "id": {
            "type": "string",
            "description": "An identifier for the image",
            "pattern": _UUID_PATTERN,
        },
        "name": {
            "type": ["null", "string"],
            "description": "Descriptive name for the image",
            "maxLength": 255,
        },
        "status": {
            "type": "string",
            "readOnly": True,
            "description": "Status of the image",
            "enum": list(STATUSES),
        },
        "visibility": {
            "type": "string",
            "description": "Scope of image accessibility",
            "enum": list(VISIBILITIES),
        },
        "protected": {
            "type": "boolean",
            "description": "If true, image will not be deletable.",
        },
        "os_hidden": {
            "type": "boolean",
            "description": "If true, image will not appear in default image list response.",
        },
        "checksum": {
            "type": ["null", "string"],
            "readOnly": True,
            "description": "md5 hash of image contents.",
            "maxLength": 32,
        },
        "os_hash_algo": {
            "type": ["null", "string"],
            "readOnly": True,
            "description": "Algorithm to calculate the os_hash_value",
            "maxLength": 64,
        },
        "os_hash_value": {
            "type": ["null", "string"],
            "readOnly": True,
            "description": (
                "Hexdigest of the image contents using the algorithm specified by the os_hash_algo"
            ),
            "maxLength": 128,
        },
        "owner": {
            "type": ["null", "string"],
            "description": "Owner of the image",
            "maxLength": 255,
        },
        "size": {
            "type": ["null", "integer"],
            "readOnly": True,
            "description": "Size of image file in bytes",
        },
        "virtual_size": {
            "type": ["null", "integer"],
            "readOnly": True,
            "description": "Virtual size of image in bytes",
        },
        "container_format": {
            "type": ["null", "string"],
            "description": "Format of the container",
            "enum": [None, *_ordered(_GLANCE_CONTAINER_FORMATS, CONTAINER_FORMATS)],
        },
        "disk_format": {
            "type": ["null", "string"],
            "description": "Format of the disk",
            "enum": [None, *_ordered(_GLANCE_DISK_FORMATS, DISK_FORMATS)],
        },
        "created_at": {
            "type": "string",
            "readOnly": True,
            "description": "Date and time of image registration",
        },
        "updated_at": {
            "type": "string",
            "readOnly": True,
            "description": "Date and time of the last image modification",
        },
        "tags": {
            "type": "array",
            "description": "List of strings related to the image",
            "items": {"type": "string", "maxLength": 255},
        },
        "direct_url": {
            "type": "string",
            "readOnly": True,
            "description": "URL to access the image file kept in external store",
        },
        "min_ram": {
            "type": "integer",
            "description": "Amount of ram (in MB) required to boot image.",
        },
        "min_disk": {
            "type": "integer",
            "description": "Amount of disk space (in GB) required to boot image.",
        },
        "self": {"type": "string", "readOnly": True, "description": "An image self url"},
        "file": {"type": "string", "readOnly": True, "description": "An image file url"},
        "stores": {
            "type": "string",
            "readOnly": True,
            "description": (
                "Store in which image data resides.  Only present when the operator has "
                "enabled multiple stores.  May be a comma-separated list of store "
                "identifiers."
            ),
        },
        "schema": {"type": "string", "readOnly": True, "description": "An image schema url"},
        "locations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "url": {"type": "string", "maxLength": 255},
                    "metadata": {"type": "object"},
                    "validation_data": {
                        "description": (
                            "Values to be used to populate the corresponding image "
                            "properties. If the image status is not 'queued', values must "
                            "exactly match those already contained in the image properties."
                        ),
                        "type": "object",
                        "writeOnly": True,
                        "additionalProperties": False,
                        "properties": {
                            "checksum": {"type": "string", "minLength": 32, "maxLength": 32},
                            "os_hash_algo": {"type": "string", "maxLength": 64},
                            "os_hash_value": {"type": "string", "maxLength": 128},
                        },
                        "required": ["os_hash_algo", "os_hash_value"],
                    },
                },
                "required": ["url", "metadata"],
            },
            "description": "A set of URLs to access the image file kept in external store",
        },
    }


def _custom_properties() -> dict[str, Any]:
    """Glance's stock ``etc/schema-image.json`` (installed by devstack and the distros)."""
    keys_doc = "https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html"
    props: dict[str, Any] = {
        "kernel_id": {
            "type": ["null", "string"],
            "pattern": _UUID_PATTERN,
            "description": (
                "ID of image stored in Glance that should be used as the kernel when "
                "booting an AMI-style image."
            ),
        },
        "ramdisk_id": {
            "type": ["null", "string"],
            "pattern": _UUID_PATTERN,
            "description": (
                "ID of image stored in Glance that should be used as the ramdisk when "
                "booting an AMI-style image."
            ),
        },
        "instance_uuid": {
            "type": "string",
            "description": (
                "Metadata which can be used to record which instance this image is "
                "associated with. (Informational only, does not create an instance "
                "snapshot.)"
            ),
        },
        "architecture": {
            "description": f"Operating system architecture as specified in {keys_doc}",
            "type": "string",
        },
        "os_distro": {
            "description": (
                f"Common name of operating system distribution as specified in {keys_doc}"
            ),
            "type": "string",
        },
        "os_version": {
            "description": "Operating system version as specified by the distributor.",
            "type": "string",
        },
        "description": {
            "description": "A human-readable string describing this image.",
            "type": "string",
        },
        "cinder_encryption_key_id": {
            "description": (
                "Identifier in the OpenStack Key Management Service for the encryption key "
                "for the Block Storage Service to use when mounting a volume created from "
                "this image"
            ),
            "type": "string",
        },
        "cinder_encryption_key_deletion_policy": {
            "description": (
                "States the condition under which the Image Service will delete the object "
                "associated with the 'cinder_encryption_key_id' image property.  If this "
                "property is missing, the Image Service will take no action"
            ),
            "type": "string",
            "enum": ["on_image_deletion", "do_not_delete"],
        },
    }
    for prop in props.values():
        prop["is_base"] = False
    return props


#: Names of the base properties (attributes of every image, never extra properties).
BASE_PROPERTIES = frozenset(_base_properties())


def _image_schema() -> dict[str, Any]:
    # glance.schema.PermissiveSchema('image', ...).raw() with the custom properties merged
    return {
        "name": "image",
        "properties": {**_base_properties(), **_custom_properties()},
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def _images_schema() -> dict[str, Any]:
    # glance.schema.CollectionSchema('images', image_schema).raw()
    return {
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": _image_schema()},
            "first": {"type": "string"},
            "next": {"type": "string"},
            "schema": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def _member_schema() -> dict[str, Any]:
    # glance.schema.Schema('member', ...).minimal(): no additionalProperties, no links
    return {
        "name": "member",
        "properties": {
            "member_id": {
                "type": "string",
                "description": "An identifier for the image member (tenantId)",
            },
            "image_id": {
                "type": "string",
                "description": "An identifier for the image",
                "pattern": _UUID_PATTERN,
            },
            "created_at": {
                "type": "string",
                "description": "Date and time of image member creation",
            },
            "updated_at": {
                "type": "string",
                "description": "Date and time of last modification of image member",
            },
            "status": {
                "type": "string",
                "description": "The status of this image member",
                "enum": list(MEMBER_STATUSES),
            },
            "schema": {"readOnly": True, "type": "string"},
        },
    }


def _members_schema() -> dict[str, Any]:
    # glance.schema.CollectionSchema('members', member_schema).minimal()
    return {
        "name": "members",
        "properties": {
            "members": {"type": "array", "items": _member_schema()},
            "schema": {"type": "string"},
        },
        "links": [{"rel": "describedby", "href": "{schema}"}],
    }


IMAGE_SCHEMA: Mapping[str, Any] = _image_schema()
IMAGES_SCHEMA: Mapping[str, Any] = _images_schema()
MEMBER_SCHEMA: Mapping[str, Any] = _member_schema()
MEMBERS_SCHEMA: Mapping[str, Any] = _members_schema()

#: The response bodies of ``GET /v2/schemas/<name>``, rendered once.
SCHEMA_DOCUMENTS: Mapping[str, bytes] = {
    name: json.dumps(doc, ensure_ascii=False).encode("utf-8")
    for name, doc in (
        ("image", IMAGE_SCHEMA),
        ("images", IMAGES_SCHEMA),
        ("member", MEMBER_SCHEMA),
        ("members", MEMBERS_SCHEMA),
    )
}


def image_schema() -> dict[str, Any]:
    """A private copy of the image schema (callers may change it)."""
    return copy.deepcopy(dict(IMAGE_SCHEMA))


# --- validation of request values against the image schema ---------------------------

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}
_PATTERNS: dict[str, re.Pattern[str]] = {}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_type(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name != "boolean":
        return False  # JSON Schema: true is not an integer
    return isinstance(value, _TYPES[name])


def check_value(field: str, value: Any, schema: Mapping[str, Any]) -> None:
    """Raise :class:`ValidationError` unless ``value`` is valid under ``schema``.

    Covers the keywords the documents above use for writable values (type, enum,
    maxLength, minLength, pattern, items, properties, required, additionalProperties):
    the same answers jsonschema gives for them, without the dependency.
    """
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_is_type(value, name) for name in names):
            raise ValidationError(field, f"{_short(value)} is not of type {' or '.join(names)}")
    if "enum" in schema and not any(
        value == choice and type(value) is type(choice) for choice in schema["enum"]
    ):
        allowed = ", ".join("null" if c is None else str(c) for c in schema["enum"])
        raise ValidationError(field, f"{_short(value)} is not one of {allowed}")
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise ValidationError(
                field, f"{_short(value)} is longer than {schema['maxLength']} characters"
            )
        if "minLength" in schema and len(value) < schema["minLength"]:
            raise ValidationError(
                field, f"{_short(value)} is shorter than {schema['minLength']} characters"
            )
        pattern = schema.get("pattern")
        if pattern is not None:
            compiled = _PATTERNS.get(pattern) or _PATTERNS.setdefault(pattern, re.compile(pattern))
            if not compiled.search(value):
                raise ValidationError(field, f"{_short(value)} does not match {pattern!r}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            check_value(f"{field}[{index}]", item, schema["items"])
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", ()):
            if key not in value:
                raise ValidationError(field, f"{key!r} is a required property")
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                check_value(f"{field}.{key}", item, props[key])
            elif extra is False:
                raise ValidationError(field, f"additional property {_short(key)} is not allowed")
            elif isinstance(extra, Mapping):
                check_value(f"{field}.{key}", item, extra)


def check_image_value(name: str, value: Any) -> None:
    """Validate one top-level value of an image body (base, custom or extra property)."""
    props = IMAGE_SCHEMA["properties"]
    field = name if len(name) <= 80 else name[:77] + "..."
    check_value(field, value, props.get(name, IMAGE_SCHEMA["additionalProperties"]))
