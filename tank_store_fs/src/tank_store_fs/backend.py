"""The filesystem store: each image is one file directly inside ``datadir``.

Writes are atomic and durable: data goes to an unnamed file (``O_TMPFILE``; a hidden
``.tank-tmp-*`` file where the filesystem lacks it), is fsync'ed, then linked under its
final name, which fails rather than overwrite (→ Duplicate), and the directory is
fsync'ed. Until then no reader can see a partial image, and a failed or aborted write
leaves no file behind.

Every location is checked before it is used: it must name a regular file directly inside
``datadir`` (not a symlink, not a hidden file); anything else is
:class:`~tank.errors.BadLocation`. Files are opened relative to a descriptor of the
data directory with ``O_NOFOLLOW``, so a symlink planted under a valid name is refused
rather than followed.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import re
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

import attrs

from tank import errors
from tank.config import between
from tank.store import (
    Backend,
    Capability,
    ItemKind,
    ReadResult,
    StoredItem,
    Writer,
    image_id_named,
    utc_timestamp,
)
from tank.streams import FileChunks, all_zero
from tank_store_fs.direct import DirectWriter, write_all
from tank_store_fs.location import FileLocation, location_example
from tank_store_fs.writeback import start_writeback

log = logging.getLogger(__name__)

MiB = 1 << 20
#: Prefix of named temporary files (only used where O_TMPFILE is unavailable).
TEMP_PREFIX = ".tank-tmp-"
#: Prefix of the file :meth:`FilesystemBackend.check_writable` writes and removes.
PROBE_PREFIX = ".tank-probe-"
#: Image ids become file names; ids are UUIDs, but a name is checked, never trusted.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
#: Written data is queued for writeback every this many bytes (see writeback.py).
WRITEBACK_BYTES = 8 * MiB
#: A thin-provisioned store looks for zeros in blocks of this size, aligned on the file
#: offset whatever the chunks sent: each all-zero block it skips is a whole-block hole
#: (filesystem blocks are 4 KiB; Glance's filesystem store skips 64 KiB chunks).
HOLE_BLOCK = 64 * 1024
_FILE_MODE = 0o640
_DIR_MODE = 0o750
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}
_NO_TMPFILE = {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT}
#: Names of the temporary files Tank writes: ``.tank-tmp-<id>.<hex>``, ``.tank-probe-<hex>``.
_TEMP_NAME = re.compile(
    rf"{re.escape(TEMP_PREFIX)}(?P<id>[0-9a-f-]{{36}})\.[0-9a-f]{{12}}|{re.escape(PROBE_PREFIX)}[0-9a-f]{{12}}"
)


def _datadir(value: Any) -> Path:
    if not isinstance(value, str | os.PathLike):
        raise TypeError(f"datadir must be a path string, got {value!r}")
    path = Path(os.path.expanduser(os.fspath(value)))
    if not path.is_absolute():
        raise ValueError(f"datadir must be an absolute path, got {str(value)!r}")
    return Path(os.path.normpath(path))


class FilesystemBackend(Backend):
    """Images as files in one local directory (``file://`` locations)."""

    type_name = "file"
    schemes = ("file",)
    capabilities = Backend.capabilities | {Capability.LIST}
    location_example = location_example

    @attrs.frozen(kw_only=True)
    class Config:
        """``[stores.file]``: where the files live and how they are read."""

        #: Absolute path of the data directory; created on first start if missing.
        datadir: Path = attrs.field(converter=_datadir)
        #: Bytes per read (and per chunk yielded on download), at most 64 MiB.
        read_chunk_size: int = attrs.field(default=MiB, validator=between(1, 64 * MiB))
        #: Write uploads with O_DIRECT, past the page cache (see tank_store_fs.direct);
        #: thin-provisioned stores and filesystems without O_DIRECT write through it.
        direct_io: bool = True
        #: Leave all-zero blocks of an upload unwritten (a sparse file, Glance's
        #: ``thin_provisioning``): a raw disk image takes only the room of its data.
        #: Reads return the zeros; sizes and checksums are those of every byte.
        thin_provisioning: bool = False

    #: Use unnamed O_TMPFILE files for writes when the filesystem supports them.
    use_tmpfile: ClassVar[bool] = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")

    @classmethod
    def local_dirs(cls, config: FilesystemBackend.Config) -> tuple[Path, ...]:
        """``datadir``: every ``<image id>`` file directly in it is this store's."""
        return (config.datadir,)

    def __init__(self, config: FilesystemBackend.Config, *, name: str | None = None) -> None:
        super().__init__(config, name=name)
        self.datadir: Path = config.datadir
        self.read_chunk_size = config.read_chunk_size

    # --- writing ---------------------------------------------------------------------

    def check_writable(self) -> None:
        """Create the data directory if missing, then write, fsync and publish a probe
        file exactly as an upload does, so a filesystem that cannot (read-only, full,
        no hard links) disables writes at start-up instead of failing every upload."""
        try:
            os.makedirs(self.datadir, mode=_DIR_MODE, exist_ok=True)
        except OSError as exc:
            raise errors.BadStoreConfig(
                f"data directory {self.datadir} cannot be created: {_reason(exc)}",
                store=self.name,
            ) from exc
        probe = f"{PROBE_PREFIX}{secrets.token_hex(6)}"
        try:
            writer = self._start_write(probe)
            try:
                writer.write(b"tank")
                writer.commit()
            except BaseException:
                writer.abort()
                raise
            try:
                os.unlink(self.datadir / probe)
            except OSError as exc:
                raise translate(exc, "removing", store=self.name, location=probe) from exc
        except errors.TankError as exc:
            raise errors.BadStoreConfig(
                f"data directory {self.datadir} is not writable: {_cause(exc)}",
                store=self.name,
            ) from exc

    def open_writer(self, image_id: str, size: int | None) -> Writer:
        return self._start_write(_file_name(image_id), size)

    def _start_write(self, name: str, size: int | None = None) -> FileWriter:
        location = self._location(name)
        try:
            dir_fd = self._open_dir(create=True)
        except OSError as exc:
            raise translate(
                exc,
                "opening the data directory for",
                store=self.name,
                location=location,
                reading=False,
            ) from exc
        try:
            if _lstat(name, dir_fd) is not None:
                raise errors.Duplicate(
                    f"data for image {name} already exists", store=self.name, location=location
                )
            if size and not self.config.thin_provisioning:  # thin: room unknown until the data
                self._check_room(dir_fd, size, location)
            fd, temp = self._create_temp(dir_fd, name)
        except OSError as exc:
            os.close(dir_fd)
            raise translate(
                exc, "creating a file for", store=self.name, location=location, reading=False
            ) from exc
        except BaseException:
            os.close(dir_fd)
            raise
        thin = self.config.thin_provisioning
        direct = None
        if self.config.direct_io and not thin:
            try:
                direct = DirectWriter.open(fd)
            except OSError:
                direct = None
        return FileWriter(self.name, location, dir_fd, fd, name, temp, thin=thin, direct=direct)

    def _create_temp(self, dir_fd: int, name: str) -> tuple[int, str | None]:
        """An open file for writing in the data directory: unnamed if possible."""
        if self.use_tmpfile:
            flags = os.O_WRONLY | os.O_TMPFILE | os.O_CLOEXEC
            try:
                return os.open(".", flags, _FILE_MODE, dir_fd=dir_fd), None
            except OSError as exc:
                if exc.errno not in _NO_TMPFILE:
                    raise
        temp = f"{TEMP_PREFIX}{name}.{secrets.token_hex(6)}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        return os.open(temp, flags, _FILE_MODE, dir_fd=dir_fd), temp

    def _check_room(self, dir_fd: int, size: int, location: str) -> None:
        """Fail before any upload when the announced size cannot fit (nothing reserved)."""
        st = os.fstatvfs(dir_fd)
        free = st.f_bavail * st.f_frsize
        if size > free:
            raise errors.StorageFull(
                f"image of {size} bytes does not fit: {free} bytes free in the data directory",
                store=self.name,
                location=location,
            )

    # --- reading, sizing, deleting ---------------------------------------------------------

    def read(self, location: str, offset: int, length: int | None) -> ReadResult:
        """The range as chunks, and the open file itself (``ReadResult.fd``) for a server
        that can ``sendfile``: one open serves both, so both see the same file."""
        name = self._name_of(location)
        try:
            with self._dir() as dir_fd:
                fd = os.open(
                    name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd
                )
        except OSError as exc:
            raise self._error(exc, "opening", location) from exc
        try:
            total = self._regular(os.fstat(fd), location).st_size
            start = min(offset, total)
            end = total if length is None else min(total, offset + length)
            if end > start:
                os.posix_fadvise(fd, start, end - start, os.POSIX_FADV_SEQUENTIAL)
        except OSError as exc:
            os.close(fd)
            raise self._error(exc, "opening", location) from exc
        except BaseException:
            os.close(fd)
            raise
        on_error = functools.partial(translate, doing="reading", store=self.name, location=location)
        chunks = FileChunks(fd, start, end, error=on_error, chunk_size=self.read_chunk_size)
        return ReadResult(size=end - start, total_size=total, chunks=chunks, fd=fd, offset=start)

    def size_of(self, location: str) -> int:
        return self._stat(location).st_size

    def remove(self, location: str) -> None:
        self._unlink(self._name_of(location), location)

    def _unlink(self, name: str, location: str) -> None:
        """Delete the regular file ``name`` of the data directory (``location`` names it
        in errors); a link or anything else there is refused, not followed."""
        try:
            with self._dir() as dir_fd:
                self._regular(_lstat(name, dir_fd), location)
                os.unlink(name, dir_fd=dir_fd)
        except OSError as exc:
            raise self._error(exc, "deleting", location) from exc

    def remove_partial(self, image_id: str) -> list[str]:
        """An unnamed (``O_TMPFILE``) file vanishes with its process; a named temporary
        file (``.tank-tmp-<id>.*``) stays, and so does a file published just before the
        process died, before the registry recorded it: both are removed."""
        name = _file_name(image_id)
        removed = []
        try:
            with self._dir() as dir_fd:
                temps = [n for n in os.listdir(dir_fd) if n.startswith(f"{TEMP_PREFIX}{name}.")]
                for candidate in (*temps, name):
                    st = _lstat(candidate, dir_fd)
                    if st is None or not stat.S_ISREG(st.st_mode):
                        continue
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(candidate, dir_fd=dir_fd)
                        removed.append(candidate)
        except FileNotFoundError:
            return removed  # no data directory: nothing was written
        except OSError as exc:
            raise self._error(exc, "removing partial data of", self._location(name)) from exc
        return removed

    def list_items(self) -> Iterator[StoredItem]:
        """Regular files of the data directory named as Tank names them: an image id
        (data) or a named temporary file (``.tank-tmp-<id>.<hex>``, ``.tank-probe-<hex>``).
        Anything else in the directory, and anything that is not a regular file, is not
        Tank's and is never listed. Unnamed (``O_TMPFILE``) files vanish with their
        process and cannot be listed."""
        try:
            dir_fd = self._open_dir()
        except FileNotFoundError:
            return  # no data directory: nothing was written
        except OSError as exc:
            raise self._error(exc, "listing", self._location("")) from exc
        try:
            with os.scandir(dir_fd) as entries:
                for entry in entries:
                    item = self._item(entry.name, dir_fd)
                    if item is not None:
                        yield item
        except OSError as exc:
            raise self._error(exc, "listing", self._location("")) from exc
        finally:
            os.close(dir_fd)

    def _item(self, name: str, dir_fd: int) -> StoredItem | None:
        temp = _TEMP_NAME.fullmatch(name)
        image_id = temp["id"] if temp else image_id_named(name)
        if not temp and image_id is None:
            return None
        st = _lstat(name, dir_fd)
        if st is None or not stat.S_ISREG(st.st_mode):
            return None
        return StoredItem(
            kind=ItemKind.TEMP if temp else ItemKind.DATA,
            name=str(self.datadir / name),
            location=None if temp else self._location(name),
            image_id=image_id,
            size=st.st_size,
            modified=utc_timestamp(st.st_mtime),
            handle=name,
        )

    def remove_item(self, item: StoredItem) -> None:
        if item.kind is ItemKind.DATA and item.location is not None:
            self.remove(item.location)
            return
        name = item.handle
        if not isinstance(name, str) or not _TEMP_NAME.fullmatch(name):
            raise errors.Invalid(f"store {self.name!r} did not list {item.name}")
        self._unlink(name, self._location(name))

    def canonical_location(self, location: str) -> str:
        """``file://<datadir>/<name>``, however the file was spelled (``FILE://``,
        ``localhost``, ``//`` runs, quoting, the data directory's real path); BadLocation
        for a location outside the data directory, as reading it would."""
        self.check_location(location)
        return self._location(self._name_of(location))

    def direct_url(self, location: str) -> str | None:
        """The location itself: with a shared filesystem, trusted clients (Nova's
        ``allowed_direct_url_schemes = file``) copy the file instead of downloading.

        None unless :meth:`read` would accept the location (never a symlink or a file
        outside datadir); it never raises, as it only decorates image metadata.
        """
        try:
            self._stat(location)
        except errors.TankError:
            return None
        return FileLocation.parse(location).to_uri()

    # --- helpers ------------------------------------------------------------------------

    def _name_of(self, location: str) -> str:
        """The file name a location points to; BadLocation unless directly in datadir
        (also for a location of another scheme, which the template methods refuse first
        with UnknownScheme)."""
        loc = FileLocation.parse(location)
        parent = str(loc.path.parent)
        if parent != str(self.datadir) and parent != os.path.realpath(self.datadir):
            raise errors.BadLocation(
                f"location {loc.redacted()} is outside the data directory of store {self.name!r}",
                store=self.name,
                location=loc.redacted(),
            )
        name = loc.path.name
        if not name or name.startswith("."):
            raise errors.BadLocation(
                f"location {loc.redacted()} does not name an image file",
                store=self.name,
                location=loc.redacted(),
            )
        return name

    def _stat(self, location: str) -> os.stat_result:
        name = self._name_of(location)
        try:
            with self._dir() as dir_fd:
                return self._regular(_lstat(name, dir_fd), location)
        except OSError as exc:
            raise self._error(exc, "reading the size of", location) from exc

    def _regular(self, st: os.stat_result | None, location: str) -> os.stat_result:
        """``st`` if it is a regular file; NotFound if None, BadLocation for the rest."""
        if st is None:
            raise errors.NotFound(f"no data at {location}", store=self.name, location=location)
        if not stat.S_ISREG(st.st_mode):
            kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a regular file"
            raise errors.BadLocation(
                f"location {location} is {kind}; refused", store=self.name, location=location
            )
        return st

    @contextlib.contextmanager
    def _dir(self, create: bool = False) -> Iterator[int]:
        fd = self._open_dir(create=create)
        try:
            yield fd
        finally:
            os.close(fd)

    def _open_dir(self, create: bool = False) -> int:
        """A descriptor of the data directory; with ``create``, make it if missing."""
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
        try:
            return os.open(self.datadir, flags)
        except FileNotFoundError:
            if not create:
                raise
            os.makedirs(self.datadir, mode=_DIR_MODE, exist_ok=True)
            return os.open(self.datadir, flags)

    def _location(self, name: str) -> str:
        return FileLocation(PurePosixPath(self.datadir, name)).to_uri()

    def _error(self, exc: OSError, doing: str, location: str) -> errors.TankError:
        return translate(exc, doing, store=self.name, location=location)


class FileWriter(Writer):
    """One upload: an open temporary file and a descriptor of the data directory.

    With ``thin``, all-zero blocks are not written: the file offset moves past them
    (``lseek``), which leaves a hole, and :meth:`commit` sets the file's size
    (``ftruncate``), so that a trailing hole counts too.
    """

    def __init__(
        self,
        store: str,
        location: str,
        dir_fd: int,
        fd: int,
        name: str,
        temp: str | None,
        *,
        thin: bool = False,
        direct: DirectWriter | None = None,
    ) -> None:
        self._store = store
        self._location = location
        self._dir_fd = dir_fd
        self._fd = fd
        self._name = name
        self._temp = temp
        self._thin = thin
        self._direct = direct
        self._published = False
        self._size = 0  # bytes received
        self._hole = 0  # zero bytes skipped since the last write (the offset is behind)
        self._queued = 0  # bytes already queued for writeback

    def write(self, chunk: bytes) -> None:
        try:
            if self._direct is not None:
                self._direct.write(chunk)
            elif self._thin:
                self._write_thin(chunk)
            else:
                self._write(chunk)
        except OSError as exc:
            raise self._error(exc, "writing") from exc
        self._size += len(chunk)
        if self._direct is None and self._size - self._queued >= WRITEBACK_BYTES:
            start_writeback(self._fd, self._queued, self._size - self._queued)
            self._queued = self._size

    def _write_thin(self, chunk: bytes) -> None:
        """Write the blocks of ``chunk`` that hold data; skip the all-zero ones."""
        if all_zero(chunk):
            self._hole += len(chunk)
            return
        view = memoryview(chunk)
        data = 0  # where the run of data blocks not yet written starts, in the chunk
        pos = 0
        while pos < len(view):
            end = min(len(view), pos + HOLE_BLOCK - (self._size + pos) % HOLE_BLOCK)
            if view[pos] == 0 and all_zero(view[pos:end]):  # data rarely starts with 0
                if data < pos:
                    self._write(view[data:pos])
                self._hole += end - pos
                data = end
            pos = end
        if data < len(view):
            self._write(view[data:])

    def _write(self, data: bytes | memoryview) -> None:
        fd = self._fd
        if self._hole:
            os.lseek(fd, self._hole, os.SEEK_CUR)
            self._hole = 0
        write_all(fd, data)

    def commit(self) -> str:
        if self._fd < 0:
            raise errors.StoreError("commit after the write finished", store=self._store)
        try:
            if self._direct is not None:
                self._direct.finish()
            if self._hole:  # the data ends with a hole
                os.ftruncate(self._fd, self._size)
            os.fsync(self._fd)
            self._publish()
            os.fsync(self._dir_fd)
        except FileExistsError as exc:
            raise errors.Duplicate(
                f"data for image {self._name} already exists",
                store=self._store,
                location=self._location,
            ) from exc
        except OSError as exc:
            raise self._error(exc, "saving") from exc
        self._close()
        return self._location

    def _publish(self) -> None:
        """Give the file its final name; never replaces an existing file."""
        if self._temp is None:
            os.link(
                f"/proc/self/fd/{self._fd}",
                self._name,
                dst_dir_fd=self._dir_fd,
                follow_symlinks=True,
            )
            self._published = True
        else:
            os.link(
                self._temp,
                self._name,
                src_dir_fd=self._dir_fd,
                dst_dir_fd=self._dir_fd,
                follow_symlinks=False,
            )
            self._published = True
            os.unlink(self._temp, dir_fd=self._dir_fd)
            self._temp = None

    def abort(self) -> None:
        if self._dir_fd < 0:
            return
        for name in (self._temp, self._name if self._published else None):
            if name is None:
                continue
            try:
                os.unlink(name, dir_fd=self._dir_fd)
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.error("store %s: could not remove %s: %s", self._store, name, _reason(exc))
        self._temp = None
        self._published = False
        self._close()

    def _close(self) -> None:
        if self._direct is not None:
            self._direct.close()
            self._direct = None
        for fd in (self._fd, self._dir_fd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError as exc:
                    log.warning("store %s: close failed: %s", self._store, _reason(exc))
        self._fd = self._dir_fd = -1

    def _error(self, exc: OSError, doing: str) -> errors.TankError:
        return translate(exc, doing, store=self._store, location=self._location, reading=False)


def translate(
    exc: OSError, doing: str, *, store: str, location: str, reading: bool = True
) -> errors.TankError:
    """The :mod:`tank.errors` exception for an OSError met while ``doing`` something.

    ENOENT means "no data" when ``reading``; while writing it is a store failure.
    """
    what = f"{doing} {location} failed: {_reason(exc)}"
    if exc.errno in _FULL:
        return errors.StorageFull(what, store=store, location=location)
    if exc.errno in _DENIED:
        return errors.Forbidden(what, store=store, location=location)
    if exc.errno == errno.ENOENT and reading:
        return errors.NotFound(f"no data at {location}", store=store, location=location)
    if exc.errno in (errno.EMFILE, errno.ENFILE):  # the process is out of descriptors
        return errors.StoreUnavailable(what, store=store, location=location)
    if exc.errno == errno.ELOOP:
        return errors.BadLocation(
            f"location {location} is a symbolic link; refused", store=store, location=location
        )
    return errors.StoreError(what, store=store, location=location)


def _file_name(image_id: str) -> str:
    if not isinstance(image_id, str) or not _SAFE_NAME.fullmatch(image_id):
        raise errors.Invalid(f"image id {image_id!r} cannot name a file (expected a UUID)")
    return image_id


def _lstat(name: str, dir_fd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _cause(exc: errors.TankError) -> str:
    """The OS reason of a translated error (its message without the location)."""
    cause = exc.__cause__
    return _reason(cause) if isinstance(cause, OSError) else str(exc)


def _reason(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, "")
    return f"{exc.strerror or exc} ({name})" if name else str(exc.strerror or exc)
