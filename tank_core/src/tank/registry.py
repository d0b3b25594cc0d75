"""The registry contract: where image metadata and memberships live.

A registry stores :class:`tank.model.Image` records and enforces visibility from the
request :class:`~tank.model.Context` (admins see everything; others see public and
community images, their own, and shared images their tenant is a member of; listings
follow :class:`~tank.model.ListQuery`). Invisible images behave exactly like
missing ones (:class:`~tank.errors.NotFound`), so a caller cannot probe other tenants'
ids. Validation of values is the model's (:mod:`tank.model`); status changes go through
:meth:`tank.model.Image.update`, which enforces the lifecycle.

Registries also enforce per-project quotas (:mod:`tank.quotas`): a create or update may
carry a :class:`~tank.quotas.QuotaCheck`, checked in the same transaction as the write,
and uploads in flight hold reservations (:meth:`Registry.reserve`).

Implementations register through the ``tank_register_registries`` hook and are
picked by ``[registry] kind`` (default ``sql``; ``http`` when ``url`` is set).
"""

from __future__ import annotations

import abc
import builtins
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from tank import errors
from tank.model import Context, Image, ListQuery, Member, MemberStatus, Status
from tank.quotas import QuotaCheck


class Registry(abc.ABC):
    """Base class of registries. All methods are safe to call from several threads."""

    #: Registry kind as chosen by ``[registry] kind``.
    kind: ClassVar[str]
    #: attrs class built from the ``[registry]`` section (minus ``kind``).
    Config: ClassVar[type[Any]]
    #: Where it keeps its data, for people (a database URL or a registry server's), never
    #: with a password.
    where: str = ""

    def __init__(self, config: Any, *, data_dir: Path) -> None:
        self.config = config
        self.data_dir = data_dir

    @abc.abstractmethod
    def create(self, image: Image, *, quota: QuotaCheck | None = None) -> Image:
        """Record a new image as given; :class:`~tank.errors.Duplicate` if the id exists
        (including ids of deleted images: ids are never reused).

        ``quota``: check the owner's limits in the same transaction (see
        :class:`~tank.quotas.QuotaCheck`); :class:`~tank.errors.QuotaExceeded` and
        nothing recorded if the new image takes a limited usage above its limit.
        """

    @abc.abstractmethod
    def get(self, image_id: str, *, context: Context) -> Image:
        """The image, or NotFound if it does not exist or ``context`` cannot see it.

        Deleted images are returned to admins only.
        """

    @abc.abstractmethod
    def update(
        self,
        image_id: str,
        changes: Mapping[str, Any],
        *,
        context: Context,
        purge_props: bool = False,
        expected_status: Status | None = None,
        quota: QuotaCheck | None = None,
    ) -> Image:
        """Apply ``changes`` atomically through :meth:`Image.update` and return the result.

        ``expected_status`` makes the update conditional: if the image's status is not
        that, raise :class:`~tank.errors.Conflict` and change nothing (the service uses
        it so two uploads to one queued image cannot both win). Invisible → NotFound;
        visible but not the caller's (:meth:`Context.can_modify`) → Forbidden. ``id``
        cannot change (ValidationError).

        Reservations (:mod:`tank.quotas`) end when the status changes. ``quota`` checks
        the owner's limits and sets the image's reservations in the same transaction:
        QuotaExceeded, and nothing changed, if that takes a limited usage above its
        limit.
        """

    @abc.abstractmethod
    def delete(self, image_id: str, *, context: Context) -> Image:
        """Mark the image deleted (status ``deleted``, ``deleted=True``, ``deleted_at``).

        Its members are removed. The record stays, so its id is not reused.
        """

    @abc.abstractmethod
    def list(self, query: ListQuery, *, context: Context) -> builtins.list[Image]:
        """Images visible to ``context`` that match ``query``, in order, one page.

        Deleted images are left out unless ``filters["deleted"]`` is true, which adds
        them (admins only; ignored for others). NULLs sort first ascending and last
        descending. An unknown or invisible ``marker`` raises NotFound.
        """

    # --- members -------------------------------------------------------------------

    @abc.abstractmethod
    def list_members(self, image_id: str, *, context: Context) -> builtins.list[Member]:
        """Members of a visible image, ordered by member name.

        The owner and admins see all members; a member sees only its own entry; others
        get ``[]``. A deleted image raises NotFound (as for every member operation).
        """

    @abc.abstractmethod
    def add_member(
        self, image_id: str, member: str, *, can_share: bool = False, context: Context
    ) -> Member:
        """Share the image with ``member`` (or update ``can_share`` if already shared).

        Allowed to the owner, admins, and members with ``can_share`` (Glance v1);
        others get Forbidden.
        """

    @abc.abstractmethod
    def remove_member(self, image_id: str, member: str, *, context: Context) -> None:
        """Stop sharing; NotFound if ``member`` is not a member. Owner and admins only."""

    @abc.abstractmethod
    def replace_members(
        self, image_id: str, members: Iterable[tuple[str, bool]], *, context: Context
    ) -> builtins.list[Member]:
        """Make ``(member, can_share)`` pairs the whole member list, atomically.

        Owner and admins only.
        """

    @abc.abstractmethod
    def set_member_status(
        self, image_id: str, member: str, status: MemberStatus | str, *, context: Context
    ) -> Member:
        """Record the member's answer (v2: pending, accepted or rejected).

        Only the member itself or an admin may give it (Forbidden otherwise); NotFound
        if ``member`` is not a member of the visible image.
        """

    @abc.abstractmethod
    def shared_with(self, member: str, *, context: Context) -> builtins.list[Member]:
        """Memberships of ``member`` on images that are not deleted.

        Admins and the member itself see all of them; an image owner sees those on its
        own images; anyone else gets ``[]``.
        """

    # --- leases ------------------------------------------------------------------

    def hold_lease(self, name: str, holder: str, seconds: float) -> bool:
        """Take or renew the lease ``name`` for ``holder`` until ``seconds`` from now,
        atomically for every process sharing the registry: True if ``holder`` holds it
        now (it was free, had expired, or was already its own), False if another
        holder's is still running. Times are wall-clock times of the process running
        the registry (hosts sharing a database must agree on the time, as for upload
        leases).

        One tank-api at a time runs a periodic job this way (the scrubber's ``in_api``).
        """
        raise errors.StoreUnavailable(f"the {self.kind} registry does not keep leases")

    def release_lease(self, name: str, holder: str) -> None:
        """End ``holder``'s lease ``name`` now; nothing if someone else holds it."""
        raise errors.StoreUnavailable(f"the {self.kind} registry does not keep leases")

    # --- quotas --------------------------------------------------------------------

    def usage(self, owner: str) -> dict[str, int]:
        """The usage of project ``owner`` of every quota (:data:`tank.quotas.RESOURCES`;
        sizes in bytes), counted as :func:`tank.quotas.image_usage` says."""
        raise errors.StoreError(f"the {self.kind} registry does not keep quotas")

    def reserve(
        self,
        image_id: str,
        resource: str,
        wanted: int,
        *,
        minimum: int | None = None,
        limit: int | None = None,
    ) -> int:
        """Set the bytes image ``image_id`` reserves against ``resource`` (a size quota)
        while data for it is in flight, checked against its owner's ``limit`` (bytes,
        None: unlimited) atomically with every other write of that owner.

        Grants ``wanted`` if it fits, else ``minimum`` (default ``wanted``) and half
        the room left above it (so that streams racing for the last room all get
        some); :class:`~tank.errors.QuotaExceeded` if not even ``minimum`` fits.
        Returns what was granted; 0 releases the reservation. Growing past the limit
        is refused only when the reservation grows (never for releasing).
        """
        raise errors.StoreError(f"the {self.kind} registry does not keep quotas")

    def upgrade(self) -> str:
        """Bring the registry's schema up to date (``tank-manage db upgrade``) and say
        what was done, in a few words (created, migrated from → to, nothing to do).

        Registries without a schema of their own (remote ones) do nothing.
        """
        return "nothing to do here (this registry keeps no schema of its own)"

    def close(self) -> None:
        """Release connections."""
