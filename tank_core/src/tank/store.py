"""The store contract: ``tank.store.Backend``.

A store implements four small primitives:

* :meth:`Backend.open_writer` returns a :class:`Writer` (``write`` / ``commit`` /
  ``abort``): data becomes visible only at ``commit``, and ``abort`` removes every byte.
* :meth:`Backend.read` streams stored data, from an offset, for a length.
* :meth:`Backend.remove` and :meth:`Backend.size_of`.

Optionally, a store that can tell what it holds offers :attr:`Capability.LIST`:
:meth:`Backend.list_items` and :meth:`Backend.remove_item`, which the orphan scrubber
(:mod:`tank.scrubber.orphans`) uses to find data no image references.

Callers use the template methods :meth:`Backend.add`, :meth:`Backend.get`,
:meth:`Backend.delete` and :meth:`Backend.get_size`, never the primitives: they check,
once for every store, that the store may do it (a read-only store, or one whose writes
were disabled at start-up, neither writes nor deletes) and that the location has one of
the store's schemes. ``add`` also does what every upload needs: chunking, MD5 and the
multihash (``hash_algo``, SHA-256 by default) while streaming, size caps, size and
checksum verification *before* commit, and cleanup on any failure (including a client
that goes away mid-upload). A writer whose server reports the MD5 of what it stored
(``Writer.reports_md5``) spares Tank its own MD5 pass. A store must translate its
library's exceptions into :mod:`tank.errors` and must not keep per-request state on
``self``: one backend object serves concurrent uploads.
"""

from __future__ import annotations

import abc
import datetime as dt
import enum
import logging
import string
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Protocol

import attrs

from tank import errors
from tank.checksums import DEFAULT_HASH_ALGO, Checksums, StreamHasher, check_hash_algo
from tank.locations import redact, scheme_of
from tank.streams import DEFAULT_CHUNK_SIZE, DataSource, iter_chunks, rechunk

log = logging.getLogger(__name__)


class Capability(enum.Enum):
    READ = "read"
    WRITE = "write"
    DELETE = "delete"
    #: The store lists what Tank wrote to it (:meth:`Backend.list_items`); not in the
    #: defaults, a store that implements the listing adds it.
    LIST = "list"


class ItemKind(enum.StrEnum):
    """What a :class:`StoredItem` is."""

    #: An image's data, as a location names it (a file, an object, an RBD image).
    DATA = "data"
    #: A temporary file an upload writes before it publishes the data.
    TEMP = "temp"
    #: An S3 multipart upload never completed nor aborted (S3 keeps and bills its parts).
    MULTIPART_UPLOAD = "multipart-upload"
    #: Segments of one upload of a Swift large object that no manifest of it uses.
    SEGMENTS = "segments"
    #: An RBD image without its ``snap`` snapshot: an upload that never finished.
    PARTIAL = "partial"


@attrs.frozen
class StoredData:
    """What :meth:`Backend.add` returns. Frozen; new fields may be added later."""

    location: str
    size: int
    checksums: Checksums
    metadata: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class StoredItem:
    """One thing a store holds, as :meth:`Backend.list_items` finds it.

    ``location`` is set for data an image could record: exactly the form the store
    writes (the form :meth:`Backend.canonical_location` gives), so it compares with the
    registry's locations. Pieces no image ever records (a temporary file, an unfinished
    upload, segments of an upload no manifest uses) have None: only an upload in
    progress of ``image_id`` still needs them.
    """

    kind: ItemKind
    #: What and where it is, for a report: a path, a key, ``pool/image``; no credentials.
    name: str
    location: str | None = None
    #: The image whose upload wrote it, when the naming tells (Tank names data by id).
    image_id: str | None = None
    #: Bytes it takes, when the listing tells.
    size: int | None = None
    #: When it was last written (UTC), when the listing tells.
    modified: dt.datetime | None = None
    #: Anything else worth a report (e.g. ``protected snapshot snap``).
    detail: str = ""
    #: The store's own handle for :meth:`Backend.remove_item` (an upload id, ...).
    handle: Any = attrs.field(default=None, eq=False, repr=False)


@attrs.define
class ReadResult:
    """A stream of stored bytes.

    ``size`` is the number of bytes ``chunks`` yields (the requested range, clipped to
    the data); ``total_size`` is the size of the whole stored object. Iterate ``chunks``
    to the end or call :meth:`close`; it owns its connection or file handle.

    A store that holds the data in a local file may also offer that file's descriptor
    (``fd``), so that a server sends the range with ``sendfile`` instead of copying
    ``chunks`` through Python: the ``size`` bytes of ``fd`` from ``offset`` are exactly
    the bytes ``chunks`` yields.
    """

    size: int
    total_size: int
    chunks: Iterator[bytes]
    #: Releases what the store holds for this read (a connection, a file). Needed when
    #: resources are taken before the first chunk: closing a generator that never
    #: started does not run its ``finally``.
    on_close: Callable[[], None] | None = None
    #: An open, readable descriptor of a regular file holding the data, or None. It
    #: belongs to this result and is valid until :meth:`close`, or until ``chunks`` has
    #: been iterated to its end (which may close it). A consumer never closes it; to
    #: keep it longer, it takes an ``os.dup``. Stores read it only with positional I/O
    #: (``pread``), so its file position is the consumer's to move.
    fd: int | None = None
    #: Where in ``fd`` the range starts.
    offset: int = 0

    def __iter__(self) -> Iterator[bytes]:
        return self.chunks

    def close(self) -> None:
        close = getattr(self.chunks, "close", None)
        try:
            if close is not None:
                close()
        finally:
            self.fd = None
            if self.on_close is not None:
                on_close, self.on_close = self.on_close, None
                on_close()

    def __enter__(self) -> ReadResult:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DataCheck(Protocol):
    """Something :meth:`Backend.add` shows every chunk of an upload to."""

    def update(self, chunk: bytes) -> None:
        """Look at the next chunk (in the uploading thread: keep it cheap)."""

    def verify(self) -> None:
        """All data seen: raise a :mod:`tank.errors` error to refuse it (the store's
        write is then aborted, nothing is kept)."""


def image_id_named(name: str) -> str | None:
    """``name`` if it is an image id as Tank makes them (a lower-case UUID), else None.

    Stores name data by image id, so this is how a listing tells Tank's data from
    anything else sharing its directory, bucket, containers or pool.
    """
    try:
        return name if str(uuid.UUID(name)) == name else None
    except (ValueError, TypeError, AttributeError):
        return None


def utc_timestamp(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


class Writer(abc.ABC):
    """One write in progress. Used by a single upload, from a single thread."""

    #: True if the store's server computes the MD5 of exactly the bytes it stored and
    #: the writer sets :attr:`stored_md5` from it at :meth:`commit` (a Swift object's
    #: ETag). :meth:`Backend.add` then does not compute MD5 itself, which is the most
    #: expensive step of an upload (~700 MiB/s on one core), unless the client announced
    #: a checksum that must be verified before commit. Decide it in ``open_writer``.
    reports_md5: bool = False
    #: Lower-case hex MD5 of the stored data, set by commit when ``reports_md5``.
    stored_md5: str | None = None

    @abc.abstractmethod
    def write(self, chunk: bytes) -> None:
        """Store the next chunk (raise :mod:`tank.errors`, e.g. StorageFull)."""

    @abc.abstractmethod
    def commit(self) -> str:
        """Make the data visible atomically and return its location URI."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Remove everything written so far. Called at most once, instead of commit.

        Best effort and idempotent: log rather than raise if cleanup itself fails.
        """


class Backend(abc.ABC):
    """Base class of every store. Subclasses set the class attributes and primitives.

    Construction takes the store's typed config (its ``Config`` attrs class built from
    the ``[stores.<name>]`` section) and the instance name. Constructors must not do
    network I/O; :meth:`check_writable` is where a store probes its target.
    """

    #: Store type, as users name it in ``type = ...`` and as the plugin registers it.
    type_name: ClassVar[str]
    #: URI schemes whose locations this store reads (lower case).
    schemes: ClassVar[tuple[str, ...]]
    #: What the store can do; a read-only store leaves out WRITE and DELETE.
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.READ, Capability.WRITE, Capability.DELETE}
    )
    #: An example location for error messages, e.g. ``file:///var/lib/tank/images/<id>``.
    location_example: ClassVar[str] = ""
    #: attrs class of this store's config section.
    Config: ClassVar[type[Any]]
    #: Writes are regrouped into chunks of exactly this size; None passes chunks through.
    #: A store may set it per instance from its config.
    write_chunk_size: int | None = None
    #: Seconds between probes of a store whose writes were disabled (see disable_writes).
    RECHECK_SECONDS: ClassVar[float] = 10.0
    #: Size of chunks the store yields on read.
    read_chunk_size: int = DEFAULT_CHUNK_SIZE

    def __init__(self, config: Any, *, name: str | None = None) -> None:
        self.config = config
        self.name = name or self.type_name
        #: Why writes are disabled, or None. Set when :meth:`check_writable` fails.
        self.write_disabled: str | None = None
        self._disabled_by_full = False
        self._recheck_at = float("inf")

    # --- primitives a store implements ---------------------------------------------

    def open_writer(self, image_id: str, size: int | None) -> Writer:
        """Start writing the data of ``image_id``; ``size`` is None when unknown.

        Raise :class:`~tank.errors.Duplicate` if data for this image already exists.
        Read-only stores keep this default.
        """
        raise errors.ReadOnlyStore(f"store {self.name!r} is read-only", store=self.name)

    @abc.abstractmethod
    def read(self, location: str, offset: int, length: int | None) -> ReadResult:
        """Stream ``length`` bytes (None: to the end) from ``offset``.

        ``offset`` is already checked to be >= 0 and ``location`` to have one of
        :attr:`schemes`. Clip the range at the end of the data.
        Raise :class:`~tank.errors.NotFound` when there is no data at ``location``.
        """

    def remove(self, location: str) -> None:
        """Remove the data; :class:`~tank.errors.NotFound` if there is none.

        ``location`` is already checked to have one of :attr:`schemes`. Read-only
        stores keep this default (:meth:`delete` refuses before calling it anyway).
        """
        raise errors.ReadOnlyStore(f"store {self.name!r} is read-only", store=self.name)

    @abc.abstractmethod
    def size_of(self, location: str) -> int:
        """Size in bytes of the data; :class:`~tank.errors.NotFound` if there is none.

        ``location`` is already checked to have one of :attr:`schemes`.
        """

    def remove_partial(self, image_id: str) -> list[str]:
        """Remove what an upload of ``image_id`` left when its tank-api died before the
        registry recorded the data (a temporary file or object, an uncommitted upload,
        data committed but never recorded); what was removed, for the log (an entry
        starting ``not removed:`` names what had to stay, e.g. an RBD image with clones).

        Called only once the upload's lease expired (:mod:`tank.upload_lease`), so no
        upload of ``image_id`` is writing here any more. The default finds nothing: a
        store whose writer leaves nothing behind when its process dies keeps it.
        """
        return []

    def list_items(self) -> Iterator[StoredItem]:
        """Everything this store instance holds that Tank's naming says Tank wrote (its
        ``<image id>`` names under its own directory, bucket, containers or pool), as the
        listing comes: never anything else sharing the place (each store documents its
        rule). Stores with :attr:`Capability.LIST` implement it; call :meth:`stored`."""
        raise NotImplementedError

    def remove_item(self, item: StoredItem) -> None:
        """Remove ``item`` as listed (with everything it holds, e.g. a manifest's
        segments); NotFound if it is gone, InUse if it must stay (an RBD snapshot with
        clones). Call :meth:`remove_stored`."""
        raise NotImplementedError

    def canonical_location(self, location: str) -> str:
        """``location`` as this store spells it, so that two spellings of the same data
        compare equal (registered locations are stored this way, and store listings are
        compared with them). The default only lower-cases the scheme; a store whose
        locations have other spellings (fs: ``file://localhost/``, ``//``; legacy Glance
        forms with credentials) overrides it. Raises what parsing raises."""
        self.check_location(location)
        scheme, rest = location.split(":", 1)
        return scheme.lower() + ":" + rest

    def direct_url(self, location: str) -> str | None:
        """A URL trusted clients may use to reach the data directly (e.g. to clone an
        RBD snapshot instead of downloading), or None. Shown only to admins, only
        when ``[api] show_image_direct_url`` is on (as Glance). Never with secrets."""
        return None

    @classmethod
    def local_dirs(cls, config: Any) -> tuple[Path, ...]:
        """Local directories a store with ``config`` keeps its data in and takes as its
        own (its :meth:`list_items` looks there, so the orphan scan would remove what
        another store left there): start-up refuses two stores whose directories are
        the same or nested (:mod:`tank.store_dirs`). Stores with no local directory
        keep the default, none."""
        return ()

    def check_writable(self) -> None:
        """Probe the target once at start-up; raise BadStoreConfig to disable writes."""

    def close(self) -> None:
        """Release connections and pools."""

    # --- template methods (do not override) -------------------------------------------

    def add(
        self,
        image_id: str,
        data: DataSource,
        *,
        size: int | None = None,
        checksum: str | None = None,
        max_size: int | None = None,
        hash_algo: str = DEFAULT_HASH_ALGO,
        check: DataCheck | None = None,
    ) -> StoredData:
        """Store ``data`` for ``image_id`` and return where it went and what it was.

        ``size`` and ``checksum`` (MD5 hex) are what the client announced: they are
        verified before commit, and on a mismatch nothing is left in the store. Data
        beyond ``max_size`` raises ImageTooLarge; so does an announced size above it.
        ``hash_algo`` names the multihash computed beside the MD5 (one of
        :data:`tank.checksums.HASH_ALGORITHMS`; ConfigError before anything is written
        otherwise). Stores never see it: it is computed here, for every store.
        ``check`` sees every chunk in the same pass and may refuse the data before
        commit (:class:`DataCheck`; the image format inspection).
        """
        check_hash_algo(hash_algo)
        self.require(Capability.WRITE)
        if size is not None and max_size is not None and size > max_size:
            raise errors.ImageTooLarge(
                f"image size {size} exceeds the limit of {max_size} bytes", store=self.name
            )
        writer = self.open_writer(image_id, size)
        store_md5 = writer.reports_md5 and checksum is None
        hasher = StreamHasher(algorithm=hash_algo, md5=not store_md5)
        written = 0
        limit = max_size if size is None else size if max_size is None else min(size, max_size)
        try:
            chunks = iter_chunks(data)
            if self.write_chunk_size:
                chunks = rechunk(chunks, self.write_chunk_size)
            for chunk in chunks:
                written += len(chunk)
                if limit is not None and written > limit:
                    raise self._too_much(written, size, max_size)
                hasher.update(chunk)
                if check is not None:
                    check.update(chunk)
                writer.write(chunk)
            sums = None if store_md5 else hasher.result()
            if size is not None and written != size:
                raise errors.SizeMismatch(
                    f"received {written} bytes but the image size was given as {size}",
                    store=self.name,
                )
            if checksum is not None and sums is not None and checksum.lower() != sums.md5:
                raise errors.ChecksumMismatch(
                    f"data has MD5 {sums.md5} but the checksum was given as {checksum}",
                    store=self.name,
                )
            if check is not None:
                check.verify()
            location = writer.commit()
            if sums is None:  # no checksum was announced, and the store reports MD5
                sums = hasher.result(md5=self._reported_md5(writer))
        except BaseException as exc:
            hasher.close()
            self._abort(writer, image_id, exc)
            raise
        return StoredData(location=location, size=written, checksums=sums)

    def get(self, location: str, offset: int = 0, length: int | None = None) -> ReadResult:
        """Stream stored data. ``offset``/``length`` select a range (end exclusive).

        An ``offset`` beyond the end yields nothing; a ``length`` past the end is
        clipped. Negative values raise :class:`~tank.errors.Invalid`.
        """
        self.require(Capability.READ)
        if offset < 0 or (length is not None and length < 0):
            raise errors.Invalid(f"bad range: offset={offset} length={length}")
        self.check_location(location)
        return self.read(location, offset, length)

    def delete(self, location: str) -> None:
        """Remove the data at ``location``; :class:`~tank.errors.NotFound` if there is none.

        ReadOnlyStore from a store that cannot delete or whose writes were disabled at
        start-up (its data stays), UnknownScheme for another store's location.
        """
        self.require(Capability.DELETE)
        self.check_location(location)
        self.remove(location)

    def stored(self) -> Iterator[StoredItem]:
        """What the store holds (:meth:`list_items`). ReadOnlyStore saying the store
        cannot list unless it has :attr:`Capability.LIST`."""
        self.require(Capability.LIST)
        return self.list_items()

    def remove_stored(self, item: StoredItem) -> None:
        """Remove a listed item (:meth:`remove_item`); refused like :meth:`delete` by a
        store that cannot delete or whose writes are disabled."""
        self.require(Capability.DELETE)
        self.remove_item(item)

    def get_size(self, location: str) -> int:
        """Size in bytes of the data at ``location``; NotFound if there is none."""
        self.require(Capability.READ)
        self.check_location(location)
        return self.size_of(location)

    # --- helpers for subclasses ----------------------------------------------------

    def require(self, capability: Capability) -> None:
        if capability not in self.capabilities:
            what = (
                "cannot"
                if capability in (Capability.READ, Capability.LIST)
                else "is read-only: it cannot"
            )
            raise errors.ReadOnlyStore(
                f"store {self.name!r} ({self.type_name}) {what} {capability.value}",
                store=self.name,
            )
        writes = capability not in (Capability.READ, Capability.LIST)
        if writes and self.write_disabled and not self._recheck():
            if self._disabled_by_full:
                raise errors.StorageFull(
                    f"store {self.name!r} is full: {self.write_disabled}", store=self.name
                )
            raise errors.ReadOnlyStore(
                f"store {self.name!r} is read-only: {self.write_disabled}", store=self.name
            )

    def disable_writes(self, exc: errors.TankError) -> None:
        """Writes fail until :meth:`check_writable` passes again: it is tried on a write
        at most every :attr:`RECHECK_SECONDS` (a disk full at start-up comes back once
        space is freed, without a restart)."""
        self.write_disabled = str(exc)
        self._disabled_by_full = any(
            isinstance(e, errors.StorageFull) for e in (exc, exc.__cause__, exc.__context__)
        )
        self._recheck_at = time.monotonic() + self.RECHECK_SECONDS

    @property
    def disabled_by_full(self) -> bool:
        """Writes are disabled because the store was full (space may come back)."""
        return self.write_disabled is not None and self._disabled_by_full

    def _recheck(self) -> bool:
        """Probe again if it is time; True if writes work again."""
        if time.monotonic() < self._recheck_at:
            return False
        try:
            self.check_writable()
        except errors.TankError as exc:
            self.disable_writes(exc)
            return False
        log.warning("store %s is writable again", self.name)
        self.write_disabled = None
        return True

    def handles(self, location: str) -> bool:
        """Whether this store instance reads ``location``. By scheme; a store with
        several instances of one scheme (S3 endpoints) also compares the host."""
        return scheme_of(location) in self.schemes

    def check_location(self, location: str) -> None:
        """Raise UnknownScheme unless ``location`` has one of this store's schemes."""
        scheme = scheme_of(location)
        if scheme not in self.schemes:
            raise errors.UnknownScheme(
                f"store {self.name!r} does not handle {scheme}:// locations "
                f"(e.g. {self.location_example or ', '.join(self.schemes)})",
                store=self.name,
                location=redact(location),
            )

    def _reported_md5(self, writer: Writer) -> str:
        md5 = (writer.stored_md5 or "").lower()
        if len(md5) != 32 or md5.strip(string.hexdigits):
            raise errors.StoreError(
                f"store {self.name!r} reported {writer.stored_md5!r} as the MD5 of the data "
                "it stored, which is not an MD5; the upload is undone",
                store=self.name,
            )
        return md5

    def _too_much(self, written: int, size: int | None, max_size: int | None) -> errors.TankError:
        if size is not None and (max_size is None or size <= max_size):
            return errors.SizeMismatch(
                f"received more than the {size} bytes announced", store=self.name
            )
        return errors.ImageTooLarge(f"image exceeds the limit of {max_size} bytes", store=self.name)

    def _abort(self, writer: Writer, image_id: str, cause: BaseException) -> None:
        try:
            writer.abort()
        except Exception:
            log.exception(
                "store %s: cleanup of image %s failed after %r", self.name, image_id, cause
            )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
