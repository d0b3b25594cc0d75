"""The ``inject_metadata`` import step: properties the operator sets on every import.

Clouds tag imported images (``hw_qemu_guest_agent = "yes"``, an origin marker) without
trusting users to do it. The injected values win over what the user set, as in Glance;
reserved names never are injected: ``os_glance_*`` (Tank's own import state, refused
already when the config is read) and the names of image fields, which the v2 API shows
beside properties and a property must not shadow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from tank.imports.steps import ImportStep, StepResult
from tank.model import FIELDS, MAX_PROPERTY_KEY, MAX_PROPERTY_VALUE, RESERVED_PREFIX, Image

#: Image fields and what else the v2 API shows beside properties (a property of one of
#: these names would shadow it).
FIELD_NAMES = FIELDS | {"direct_url", "file", "schema", "self", "stores"}


def _injectable(instance: Any, attribute: attrs.Attribute[Any], value: dict[str, str]) -> None:
    for key, item in value.items():
        if key.startswith(RESERVED_PREFIX) or key in FIELD_NAMES:
            raise ValueError(f"{attribute.name}: {key!r} is reserved and cannot be injected")
        if not key or len(key) > MAX_PROPERTY_KEY:
            raise ValueError(f"{attribute.name}: property names are 1 to 255 characters")
        if len(item) > MAX_PROPERTY_VALUE:
            raise ValueError(f"{attribute.name}: the value of {key!r} is too long")


class InjectMetadata(ImportStep):
    """Set ``inject_properties`` on the image; the data passes through untouched."""

    name = "inject_metadata"
    import_keys = ("inject_properties",)

    @attrs.frozen(kw_only=True)
    class Config:
        #: Properties set on every imported image (over the user's values).
        inject_properties: dict[str, str] = attrs.field(factory=dict, validator=_injectable)

    def run(self, path: Path, image: Image) -> StepResult:
        injected = self.config.inject_properties
        if all(image.properties.get(k) == v for k, v in injected.items()):
            return StepResult(path)
        return StepResult(path, {"properties": {**image.properties, **injected}})
