"""Glance's notification events: the message oslo.messaging sends, and the payloads
``glance/notifier.py`` builds (``format_image_notification`` and friends)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import attrs

from tank.model import Context, Image, Member, Visibility

INFO = "INFO"
ERROR = "ERROR"
#: Glance's ``default_publisher_id``.
DEFAULT_PUBLISHER_ID = "image.localhost"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def isotime(value: dt.datetime) -> str:
    """Glance's ``timeutils.isotime``: ``2024-05-01T10:00:00Z`` (the v2 API's too)."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _hidden() -> frozenset[str]:
    # the v2 API's list, imported when the first event is built: loading the sinks (every
    # plugin manager does) should not import the whole API
    from tank.api.v2.views import HIDDEN_PROPERTIES

    return HIDDEN_PROPERTIES


@attrs.frozen(kw_only=True)
class Event:
    """One notification, as oslo.messaging's ``Notifier`` builds its message."""

    event_type: str
    payload: Any
    priority: str = INFO
    publisher_id: str = DEFAULT_PUBLISHER_ID
    message_id: str = attrs.field(factory=lambda: str(uuid.uuid4()))
    #: ``str(timeutils.utcnow())``: ``2026-05-01 10:00:00.123456`` (naive UTC).
    timestamp: str = attrs.field(factory=lambda: str(_now().replace(tzinfo=None)))

    def message(self) -> dict[str, Any]:
        """The message dict (what a listener's endpoint receives, field by field)."""
        return {
            "message_id": self.message_id,
            "publisher_id": self.publisher_id,
            "event_type": self.event_type,
            "priority": self.priority,
            "payload": self.payload,
            "timestamp": self.timestamp,
        }


def image_payload(image: Image) -> dict[str, Any]:
    """Glance's ``format_image_notification``: never the locations (they may hold
    credentials); Tank's internal properties left out as the v2 API leaves them out."""
    return {
        "id": image.id,
        "name": image.name,
        "status": str(image.status),
        "created_at": isotime(image.created_at),
        "updated_at": isotime(image.updated_at),
        "min_disk": image.min_disk,
        "min_ram": image.min_ram,
        "protected": image.protected,
        "checksum": image.checksum,
        "owner": image.owner,
        "disk_format": image.disk_format,
        "container_format": image.container_format,
        "size": image.size,
        "virtual_size": image.virtual_size,
        "is_public": image.visibility is Visibility.PUBLIC,
        "visibility": str(image.visibility),
        "properties": {k: v for k, v in image.properties.items() if k not in _hidden()},
        "tags": list(image.tags),
        "deleted": False,
        "deleted_at": None,
    }


def import_state(image: Image) -> dict[str, list[str]]:
    """Glance's ``_format_import_properties`` (``image.prepare``, ``image.upload``)."""
    out = {}
    for key in ("os_glance_importing_to_stores", "os_glance_failed_import"):
        value = image.properties.get(key)
        out[key] = value.split(",") if value else []
    return out


def deleted_payload(image: Image) -> dict[str, Any]:
    """``image.delete``: the image with ``deleted`` and ``deleted_at`` set."""
    return {
        **image_payload(image),
        "deleted": True,
        "deleted_at": isotime(image.deleted_at or _now()),
    }


def member_payload(member: Member, *, deleted: bool = False) -> dict[str, Any]:
    """Glance's ``format_image_member_notification``."""
    return {
        "image_id": member.image_id,
        "member_id": member.member,
        "status": str(member.status),
        "created_at": isotime(member.created_at),
        "updated_at": isotime(member.updated_at),
        "deleted": deleted,
        "deleted_at": isotime(_now()) if deleted else None,
    }


def send_payload(image: Image, bytes_sent: int, context: Context) -> dict[str, Any]:
    """``image.send``: what a download delivered, and to whom."""
    return {
        "bytes_sent": bytes_sent,
        "image_id": image.id,
        "owner_id": image.owner,
        "receiver_tenant_id": context.tenant,
        "receiver_user_id": context.user,
    }


def upload_error(image: Image, reason: str) -> str:
    """The ``image.upload`` ERROR payload: a message, as Glance sends it."""
    return f"Failed to upload image data for image {image.id}: {reason}"
