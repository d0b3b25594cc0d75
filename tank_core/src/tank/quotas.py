"""Per-project quotas, named as Glance's unified limits name them.

=========================  ==========================================================
``image_count_total``      images of the project that are not deleted or killed
``image_count_uploading``  images being uploaded, staged or imported (``saving``,
                           ``uploading``, ``importing``, and active images a copy-image
                           import is copying)
``image_size_total``       bytes of image data in the stores: each image's size once per
                           location, and what uploads and imports in flight reserved
``image_stage_total``      bytes in the staging area: staged images, and what stages and
                           web-downloads in flight reserved
=========================  ==========================================================

Limits come from ``[quotas]`` (:class:`tank.config.QuotasConfig`); the sizes are in MiB
there, as in Keystone's unified limits for Glance, and in bytes everywhere else.

Enforcement is the registry's, in the same transaction as the write it guards
(:class:`QuotaCheck`): the registry locks the project, computes its usage, writes,
computes it again, and refuses (:class:`~tank.errors.QuotaExceeded`, nothing written)
if a limit the write raised usage for is exceeded. Two tank-api processes on one
database therefore cannot both take the last slot.

Data whose size is not known before it arrives is covered by *reservations*: bytes an
image in flight holds against ``image_size_total`` or ``image_stage_total`` until its
status changes (the upload ended either way) or it releases them. An upload reserves
its announced size up front, or grows its reservation as data comes
(:meth:`tank.registry.Registry.reserve`), so a stream is stopped at the byte that would
overshoot, not after it was stored.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from tank import errors
from tank.model import Status
from tank.streams import DataSource, iter_chunks

if TYPE_CHECKING:
    from tank.registry import Registry

COUNT_TOTAL = "image_count_total"
COUNT_UPLOADING = "image_count_uploading"
SIZE_TOTAL = "image_size_total"
STAGE_TOTAL = "image_stage_total"
#: Every quota, in Glance's order of ``GET /v2/info/usage``.
RESOURCES = (SIZE_TOTAL, STAGE_TOTAL, COUNT_TOTAL, COUNT_UPLOADING)
#: Quotas in bytes (MiB in the configuration and in the usage document).
SIZES = frozenset({SIZE_TOTAL, STAGE_TOTAL})
MIB = 1 << 20

#: Statuses of images that no longer count for anything.
GONE = frozenset({Status.KILLED, Status.DELETED, Status.PENDING_DELETE})
#: Statuses of images whose data is on its way in.
IN_FLIGHT = frozenset({Status.SAVING, Status.UPLOADING, Status.IMPORTING})
#: Statuses whose image's size is staged data (Glance's staging usage).
STAGED = frozenset({Status.UPLOADING, Status.IMPORTING})
#: The import property that marks a copy-image in flight (:mod:`tank.imports.state`).
COPYING_PROPERTY = "os_glance_importing_to_stores"
#: Bytes a stream of unknown length reserves at a time (one registry write each).
STEP = 64 * MIB


def check_resource(name: str) -> str:
    if name not in RESOURCES:
        raise errors.ValidationError(
            "resource", f"{name[:80]!r} is not one of {', '.join(RESOURCES)}"
        )
    return name


def _limits(value: Any) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise errors.ValidationError("quota.limits", "expected a mapping of resource to limit")
    out = {}
    for name, limit in value.items():
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise errors.ValidationError("quota.limits", f"{name}: expected an integer >= 0")
        out[check_resource(name)] = limit
    return out


def _reserve(value: Any) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise errors.ValidationError("quota.reserve", "expected a mapping of resource to bytes")
    out = {}
    for name, amount in value.items():
        if check_resource(name) not in SIZES:
            raise errors.ValidationError("quota.reserve", f"{name}: only sizes are reserved")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise errors.ValidationError("quota.reserve", f"{name}: expected bytes >= 0")
        out[name] = amount
    return out


@attrs.frozen(kw_only=True)
class QuotaCheck:
    """A quota check that goes with one registry write (create or update).

    ``limits``: the limits of the image's owner, by resource (sizes in bytes); a
    resource not named is not limited. ``reserve``: bytes the image holds after the
    write against ``image_size_total``/``image_stage_total`` (0 releases them).
    The write is refused if afterwards a limited resource is above its limit and
    higher than before the write.
    """

    limits: dict[str, int] = attrs.field(factory=dict, converter=_limits)
    reserve: dict[str, int] = attrs.field(factory=dict, converter=_reserve)

    def to_dict(self) -> dict[str, Any]:
        return {"limits": dict(self.limits), "reserve": dict(self.reserve)}

    @classmethod
    def from_dict(cls, data: Any) -> QuotaCheck:
        if not isinstance(data, Mapping):
            raise errors.ValidationError("quota", "expected an object")
        return cls(limits=data.get("limits", {}), reserve=data.get("reserve", {}))


def image_usage(
    *,
    status: Status,
    size: int | None,
    locations: int,
    copying: bool,
    reserved: Mapping[str, int],
) -> dict[str, int]:
    """What one image (not deleted) counts for each quota.

    As Glance counts: an image's size once per location for ``image_size_total`` and
    its size while staged (or being copied) for ``image_stage_total``; a reservation
    counts instead when it is larger (the data in flight may reach it).
    """
    if status in GONE:
        return dict.fromkeys(RESOURCES, 0)
    size = size or 0
    staged = size if status in STAGED or copying else 0
    return {
        COUNT_TOTAL: 1,
        COUNT_UPLOADING: int(status in IN_FLIGHT or copying),
        SIZE_TOTAL: max(size * locations, reserved.get(SIZE_TOTAL, 0)),
        STAGE_TOTAL: max(staged, reserved.get(STAGE_TOTAL, 0)),
    }


def shown(resource: str, amount: int) -> str:
    """``amount`` of ``resource`` for a person: sizes in MiB (with the bytes)."""
    if resource in SIZES:
        mib = amount / MIB
        text = f"{mib:.0f}" if mib == int(mib) else f"{mib:.2f}"
        return f"{text} MiB ({amount} bytes)"
    return f"{amount} image{'s' if amount != 1 else ''}"


def exceeded(
    resource: str, owner: str | None, limit: int, usage: int, requested: int | None = None
) -> errors.QuotaExceeded:
    """The 413 of a refused write: the limit, its value, the project and its usage."""
    more = "" if requested is None else f"; {shown(resource, requested)} more requested"
    return errors.QuotaExceeded(
        f"quota exceeded: {resource} is {shown(resource, limit)} for project {owner}, "
        f"{shown(resource, usage)} in use{more}"
    )


def check(
    limits: Mapping[str, int],
    before: Mapping[str, int],
    after: Mapping[str, int],
    owner: str | None,
) -> None:
    """Raise :func:`exceeded` for the first limited resource the write took above its
    limit (usage that was already above it and did not grow is left alone)."""
    for resource in RESOURCES:
        limit = limits.get(resource)
        if limit is None:
            continue
        if after[resource] > limit and after[resource] > before[resource]:
            raise exceeded(
                resource, owner, limit, before[resource], after[resource] - before[resource]
            )


def check_for(limits: Mapping[str, int], **reserve: int) -> QuotaCheck | None:
    """The check of a write under ``limits`` ({}: not limited, None), reserving the
    size resources of ``reserve`` that are limited."""
    if not limits:
        return None
    return QuotaCheck(
        limits=dict(limits),
        reserve={name: amount for name, amount in reserve.items() if name in limits},
    )


def quota_kwargs(check: QuotaCheck | None) -> dict[str, Any]:
    """``quota=check`` for :meth:`Registry.update`, or nothing when nothing is limited
    (a registry without quota support is then never handed the argument)."""
    return {} if check is None else {"quota": check}


def metered(
    data: DataSource,
    registry: Registry,
    image_id: str,
    resource: str,
    limit: int | None,
    reserved: int,
) -> Iterator[bytes]:
    """The chunks of ``data``, holding a reservation of ``resource`` for image ``image_id`` ahead
    of them: before a chunk passes the bytes reserved, the reservation grows by up to
    :data:`STEP` (at least to that chunk's end). QuotaExceeded stops the stream at the
    chunk that would have taken the project over ``limit``: nothing of it is passed on.
    """
    if limit is None:
        yield from iter_chunks(data)
        return
    received = 0
    for chunk in iter_chunks(data):
        received += len(chunk)
        if received > reserved:
            reserved = registry.reserve(
                image_id, resource, received + STEP, minimum=received, limit=limit
            )
        yield chunk
