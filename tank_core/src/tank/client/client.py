"""``tank.client.Client``: a remote tank-api, used as one would use the service in-process.

One client speaks one Images API version (``api="v2"``, the default, or ``"v1"``); its
calls have the same names and take and return the same core model
(:class:`~tank.model.Image`, :class:`~tank.model.Member`) on both, and raise the same
core error tree (see :mod:`tank.client.errors`). The wire calls live apart, one module
per version (:mod:`tank.client.v1`, :mod:`tank.client.v2`); this class documents the
calls and hands them over. Calls only one version has raise
:class:`~tank.client.errors.Unsupported` on the other, before anything is sent.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import os
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import requests

from tank.client import errors
from tank.client.http import Http
from tank.client.transfer import Download, Progress
from tank.client.v1 import ImagesV1
from tank.client.v2 import ImagesV2
from tank.client.wire import BriefImage
from tank.client.wire_v2 import StoreInfo
from tank.errors import ValidationError
from tank.model import MAX_LIMIT, Image, Member
from tank.streams import DEFAULT_CHUNK_SIZE, DataSource

DEFAULT_URL = "http://127.0.0.1:9292"
#: (connect, read) seconds. The read timeout is the longest silence tolerated, e.g. while
#: the server syncs a large upload to disk before answering.
DEFAULT_TIMEOUT = (10.0, 300.0)
DEFAULT_PAGE_SIZE = MAX_LIMIT
API_VERSIONS = ("v2", "v1")
DEFAULT_API = "v2"


def parse_api(value: str) -> str:
    """``"v2"``/``"2"``/``"2.16"`` → ``"v2"`` (as ``--os-image-api-version`` takes it)."""
    text = str(value).strip().lower().removeprefix("v")
    major = text.split(".", 1)[0]
    if major not in ("1", "2"):
        raise ValidationError("api", f"expected v1 or v2, got {value!r}")
    return "v" + major


class Client:
    """A tank-api (or any Glance API) at ``url``.

    :param url: base URL, with or without a ``/v1`` or ``/v2`` suffix.
    :param api: ``"v2"`` (default) or ``"v1"``: the Images API version to speak.
    :param timeout: seconds, or ``(connect, read)``.
    :param headers: sent with every request, e.g. ``{"X-Auth-Token": ...}`` or the
        identity headers a trusted front proxy would set (``X-Tenant-Id``, ``X-Roles``).
    :param session: a :class:`requests.Session` to use (TLS settings, adapters...).

    Thread use: calls keep no state on the client besides the connection pool, so one
    client may serve several threads.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        api: str = DEFAULT_API,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        session: requests.Session | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self.api = parse_api(api)
        self._http = Http(
            url, timeout=timeout, headers=headers, session=session, chunk_size=chunk_size
        )
        self._images: ImagesV1 | ImagesV2 = (
            ImagesV2(self._http) if self.api == "v2" else ImagesV1(self._http)
        )

    @property
    def url(self) -> str:
        """The base URL, without credentials."""
        return self._http.url

    @property
    def timeout(self) -> float | tuple[float, float]:
        return self._http.timeout

    @property
    def chunk_size(self) -> int:
        return self._http.chunk_size

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r}, api={self.api!r})"

    # --- images: reading metadata ------------------------------------------------------

    def get(self, image_id: str) -> Image:
        """The image's metadata (v1 ``HEAD /v1/images/<id>``, v2 ``GET /v2/images/<id>``)."""
        return self._images.get(image_id)

    def list(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        sort_key: str | None = None,
        sort_dir: str | None = None,
        sort: Sequence[tuple[str, str]] | None = None,
        limit: int | None = None,
        marker: str | None = None,
    ) -> builtins.list[Image]:
        """One page of images with all their metadata.

        ``filters``: name, disk_format, container_format, status, size_min, size_max,
        ``property-KEY`` or ``properties={KEY: VALUE}``, and v1's is_public (None:
        every image you may see). v2 adds visibility, member_status (v2 lists only
        accepted shared images unless given), tags (all must match), os_hidden,
        protected, owner, ``in:`` lists as tuples (``{"name": ("a", "b")}``) and
        created_at/updated_at comparisons (``"gte:2026-01-01T00:00:00Z"``).
        ``sort``: ``[(key, "asc"|"desc"), ...]`` (several keys on v2), or one
        ``sort_key``/``sort_dir``. ``marker`` is the id of the last image of the
        previous page. The server caps ``limit`` (1000).
        """
        return self._images.list(
            filters=filters,
            sort_key=sort_key,
            sort_dir=sort_dir,
            sort=sort,
            limit=limit,
            marker=marker,
        )

    def index(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        sort_key: str | None = None,
        sort_dir: str | None = None,
        sort: Sequence[tuple[str, str]] | None = None,
        limit: int | None = None,
        marker: str | None = None,
    ) -> builtins.list[BriefImage]:
        """One page of the brief listing (v1 ``GET /v1/images``; on v2 the full listing
        cut down to the same fields); arguments as :meth:`list`."""
        return self._images.index(
            filters=filters,
            sort_key=sort_key,
            sort_dir=sort_dir,
            sort=sort,
            limit=limit,
            marker=marker,
        )

    def iter_images(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        sort_key: str | None = None,
        sort_dir: str | None = None,
        sort: Sequence[tuple[str, str]] | None = None,
        limit: int | None = None,
        marker: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[Image]:
        """Every matching image (at most ``limit``), fetching pages as it goes (v2
        follows the server's ``next`` links)."""
        return self._images.iter_images(
            filters=filters,
            sort_key=sort_key,
            sort_dir=sort_dir,
            sort=sort,
            limit=limit,
            marker=marker,
            page_size=page_size,
        )

    def iter_index(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        sort_key: str | None = None,
        sort_dir: str | None = None,
        sort: Sequence[tuple[str, str]] | None = None,
        limit: int | None = None,
        marker: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[BriefImage]:
        """:meth:`iter_images` over the brief listing."""
        return self._images.iter_index(
            filters=filters,
            sort_key=sort_key,
            sort_dir=sort_dir,
            sort=sort,
            limit=limit,
            marker=marker,
            page_size=page_size,
        )

    # --- images: writing ---------------------------------------------------------------

    def create(
        self,
        data: DataSource | None = None,
        *,
        size: int | None = None,
        checksum: str | None = None,
        store: str | None = None,
        location: str | None = None,
        progress: Progress | None = None,
        **fields: Any,
    ) -> Image:
        """Register an image and upload ``data`` if given.

        ``fields``: id, name, disk_format, container_format, visibility (or v1's
        is_public), owner, min_ram, min_disk, protected, properties; v2 adds tags and
        os_hidden. ``data`` is a binary file or an iterable of bytes; its size is taken
        from the file when it can be, else it is sent chunked. ``size``/``checksum``
        are verified against the data (by the server on v1; on v2 the client checks
        the MD5 before sending the last chunk). ``location`` registers data already in
        a store instead of uploading (v2: services and admins only). Without either,
        the image is queued; upload later with :meth:`upload`. On v2 (two requests) an
        image whose upload fails is deleted again.
        """
        return self._images.create(
            data,
            size=size,
            checksum=checksum,
            store=store,
            location=location,
            progress=progress,
            **fields,
        )

    def upload(
        self,
        image_id: str,
        data: DataSource,
        *,
        size: int | None = None,
        checksum: str | None = None,
        store: str | None = None,
        progress: Progress | None = None,
        **fields: Any,
    ) -> Image:
        """Upload data to a queued image (Conflict otherwise).

        ``fields`` change metadata too (v1 in the same request, v2 by a PATCH first);
        properties are merged, never purged."""
        return self._images.upload(
            image_id, data, size=size, checksum=checksum, store=store, progress=progress, **fields
        )

    def update(self, image_id: str, *, purge_props: bool = False, **fields: Any) -> Image:
        """Change metadata (v1 ``PUT``, v2 JSON-patch ``PATCH``). ``properties`` are
        merged into the existing ones, unless ``purge_props``: then they replace them
        all. On v2 ``tags`` replace the image's tags."""
        return self._images.update(image_id, purge_props=purge_props, **fields)

    def delete(self, image_id: str) -> None:
        """Delete the image and its data (Forbidden if protected)."""
        self._images.delete(image_id)

    # --- v2: tags, actions, import, discovery ---------------------------------------------

    def add_tag(self, image_id: str, tag: str) -> None:
        """Tag the image (v2; adding a tag it has changes nothing)."""
        self._v2("tags").add_tag(image_id, tag)

    def remove_tag(self, image_id: str, tag: str) -> None:
        """Remove a tag (v2; NotFound if the image does not have it)."""
        self._v2("tags").remove_tag(image_id, tag)

    def deactivate(self, image_id: str) -> None:
        """Keep the data but refuse it to non-admins (v2, admins)."""
        self._v2("deactivate").deactivate(image_id)

    def reactivate(self, image_id: str) -> None:
        """Make a deactivated image downloadable again (v2, admins)."""
        self._v2("reactivate").reactivate(image_id)

    def stage(
        self,
        image_id: str,
        data: DataSource,
        *,
        size: int | None = None,
        checksum: str | None = None,
        progress: Progress | None = None,
    ) -> Image:
        """Put data in the staging area for a ``glance-direct`` import (v2)."""
        return self._v2("stage").stage(
            image_id, data, size=size, checksum=checksum, progress=progress
        )

    def import_image(
        self,
        image_id: str,
        method: str = "glance-direct",
        *,
        uri: str | None = None,
        stores: Sequence[str] | None = None,
        all_stores: bool = False,
        all_stores_must_succeed: bool | None = None,
    ) -> Image:
        """Start an import (v2): ``glance-direct`` (staged data), ``web-download``
        (``uri``) or ``copy-image`` (an active image's data into more ``stores``).
        It runs in the server's background: :meth:`wait_for_import` waits for it."""
        return self._v2("import").import_image(
            image_id,
            method,
            uri=uri,
            stores=stores,
            all_stores=all_stores,
            all_stores_must_succeed=all_stores_must_succeed,
        )

    def copy_image(
        self,
        image_id: str,
        stores: Sequence[str] | None = None,
        *,
        all_stores: bool = False,
        all_stores_must_succeed: bool | None = None,
    ) -> Image:
        """Copy an active image's data into more stores (v2 ``copy-image`` import)."""
        return self.import_image(
            image_id,
            "copy-image",
            stores=stores,
            all_stores=all_stores,
            all_stores_must_succeed=all_stores_must_succeed,
        )

    def wait_for_import(
        self,
        image_id: str,
        *,
        stores: Sequence[str] = (),
        timeout: float = 600.0,
        interval: float = 0.5,
    ) -> Image:
        """Wait for an import to end; raise :class:`~tank.client.errors.ImportFailed`
        unless the image is active and in every one of ``stores``."""
        return self._v2("wait_for_import").wait_for_import(
            image_id, stores=stores, timeout=timeout, interval=interval
        )

    def add_location(
        self, image_id: str, url: str, *, checksum: str | None = None, **validation: str
    ) -> Image:
        """Attach data already in a store to a queued image (v2; services and admins)."""
        return self._v2("add_location").add_location(image_id, url, checksum=checksum, **validation)

    def image_stores(self, image_id: str) -> tuple[str, ...]:
        """The stores holding the image's data (v2 shows them to every reader;
        :attr:`Image.stores` needs the locations, which only admins may see)."""
        return self._v2("image_stores").image_stores(image_id)

    def remove_from_store(self, image_id: str, store: str) -> None:
        """Delete the image's data from one store only (v2, admins)."""
        self._v2("remove_from_store").remove_from_store(image_id, store)

    def stores_info(self) -> builtins.list[StoreInfo]:
        """The stores the server writes to, the default flagged (v2 discovery)."""
        return self._v2("stores_info").stores_info()

    def import_methods(self) -> builtins.list[str]:
        """The import methods the server has enabled (v2 discovery)."""
        return self._v2("import_methods").import_methods()

    # --- images: data --------------------------------------------------------------------

    def download(
        self, image_id: str, *, offset: int = 0, length: int | None = None, verify: bool = True
    ) -> Download:
        """Stream the image's data, or the byte range ``offset``..``offset+length``.
        Iterate the result; close it if you stop early. A full download is checked
        against the image's size, MD5 checksum and multihash (``os_hash_algo``/
        ``os_hash_value``). An image without data raises NotFound."""
        return self._images.download(image_id, offset=offset, length=length, verify=verify)

    def download_to(
        self,
        image_id: str,
        dest: str | os.PathLike[str] | IO[bytes],
        *,
        verify: bool = True,
        progress: Progress | None = None,
    ) -> Image:
        """Write the image's data to a path or a binary file; returns its metadata.

        A path is written to a temporary file beside it and renamed at the end, so a
        failed download never leaves a partial image under the final name.
        """
        with self.download(image_id, verify=verify) as download:
            if not isinstance(dest, str | os.PathLike):
                _copy(download, dest, progress)
                return download.image
            target = Path(dest)
            try:
                fd, tmp = _create_beside(target)
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror, str(target)) from None
            try:
                with os.fdopen(fd, "wb") as out:
                    _copy(download, out, progress)
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            return download.image

    # --- members ---------------------------------------------------------------------

    def members(self, image_id: str) -> builtins.list[Member]:
        """Who the image is shared with (v2: with each member's status)."""
        return self._images.members(image_id)

    def member(self, image_id: str, member: str) -> Member:
        """One membership, with its status (v2)."""
        return self._v2("member").member(image_id, member)

    def add_member(
        self, image_id: str, member: str, *, can_share: bool | None = None
    ) -> Member | None:
        """Share the image with ``member`` (a tenant). v1 may set ``can_share`` (also
        on an existing member) and answers nothing (None); v2 returns the new,
        ``pending`` membership and has no ``can_share``."""
        return self._images.add_member(image_id, member, can_share=can_share)

    def remove_member(self, image_id: str, member: str) -> None:
        self._images.remove_member(image_id, member)

    def set_member_status(self, image_id: str, member: str, status: str) -> Member:
        """The member's answer to an image shared with it: accepted, rejected or
        pending (v2; only the member itself, or an admin)."""
        return self._v2("member status").set_member_status(image_id, member, status)

    def replace_members(
        self, image_id: str, members: Iterable[str | tuple[str, bool] | Member]
    ) -> None:
        """Make ``members`` the whole member list (names, ``(name, can_share)`` or
        Member). v1 does it in one request; v2, which has no such call, removes and
        adds members one by one (members kept keep their status)."""
        self._images.replace_members(image_id, list(_member_pairs(members)))

    def shared_images(self, member: str) -> builtins.list[Member]:
        """The images shared with ``member`` (v1 ``GET /v1/shared-images/<member>``)."""
        if not isinstance(self._images, ImagesV1):
            raise errors.Unsupported(
                "listing the images shared with a member",
                api=self.api,
                hint="as that member, list with filters visibility=shared, member_status=all",
            )
        return self._images.shared_images(member)

    # --- plumbing --------------------------------------------------------------------

    def _v2(self, what: str) -> ImagesV2:
        if not isinstance(self._images, ImagesV2):
            raise errors.Unsupported(what, api=self.api)
        return self._images


def _member_pairs(members: Iterable[str | tuple[str, bool] | Member]) -> Iterator[tuple[str, bool]]:
    """``(name, can_share)`` of members given as names, pairs or Member objects."""
    for entry in members:
        if isinstance(entry, Member):
            yield entry.member, entry.can_share
        elif isinstance(entry, str):
            yield entry, False
        else:
            name, can_share = entry
            yield name, bool(can_share)


def _copy(download: Download, out: IO[bytes], progress: Progress | None) -> None:
    for chunk in download:
        out.write(chunk)
        if progress is not None:
            progress(len(chunk))


def _create_beside(target: Path) -> tuple[int, str]:
    """A new, uniquely named file beside ``target``: ``(fd, path)``. Unlike mkstemp's 0600
    it gets the mode any new file gets (0666 less the umask, applied by the kernel)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        path = str(target.parent / f".{target.name}.{secrets.token_hex(6)}")
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(target.parent))
