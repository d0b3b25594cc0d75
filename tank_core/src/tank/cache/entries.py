"""The cache directory: verified entries, fills in progress, hits and the prefetch queue.

Layout under ``dir`` (every name is an image id, checked to be a UUID)::

    entries/<id>      verified copies, served as they are
    incomplete/<id>   a fill in progress; created with O_EXCL, so one fill per image
                      across threads and processes; renamed into entries/ once verified
    hits/<id>         one byte appended per hit (its size is the hit count, its mtime
                      the last access: LRU order)
    queue/<id>        images queued for prefetching

Nothing here trusts an entry beyond what it checked: a copy becomes visible only after
its size and checksum matched the image record, and a hit whose file does not have the
image's size (truncated behind Tank's back) is removed instead of served.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs

from tank import errors
from tank.checksums import DEFAULT_HASH_ALGO
from tank.model import Image, parse_image_id
from tank.store import ReadResult
from tank.streams import FileChunks, FileTruncated

log = logging.getLogger(__name__)

_SUBDIRS = ("entries", "incomplete", "hits", "queue")


@attrs.frozen
class CachedImage:
    """One cached image, as Glance's cache API shows it."""

    image_id: str
    size: int
    hits: int
    #: Epoch seconds of the last hit (the fill if never hit).
    last_accessed: float
    #: Epoch seconds the copy was made.
    last_modified: float

    def as_json(self) -> dict[str, object]:
        return attrs.asdict(self)


def _name(image_id: str) -> str:
    """The file name of an image id: only a canonical UUID, never a path."""
    try:
        return parse_image_id(image_id)
    except errors.ValidationError:
        raise errors.NotFound(f"no image with id {image_id[:80]!r}") from None


class ImageCache:
    """One cache directory, shared by every thread and process that opens it."""

    def __init__(self, directory: Path, *, max_size: int, stall_time: float) -> None:
        self.dir = Path(directory)
        self.max_size = max_size
        self.stall_time = stall_time
        for sub in _SUBDIRS:
            (self.dir / sub).mkdir(parents=True, exist_ok=True)

    def _path(self, sub: str, image_id: str) -> Path:
        return self.dir / sub / _name(image_id)

    # --- serving -----------------------------------------------------------------------

    def open(self, image: Image, offset: int = 0, length: int | None = None) -> ReadResult | None:
        """The cached data of ``image`` (whole or the range), or None if it is not
        cached. An entry whose size is not the image's is removed, never served."""
        path = self._path("entries", image.id)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("image cache: cannot open the entry of image %s: %s", image.id, exc)
            return None
        try:
            total = os.fstat(fd).st_size
            if image.size is None or total != image.size:
                log.warning(
                    "image cache: entry of image %s has %d bytes, not %s: removed, not served",
                    image.id,
                    total,
                    image.size,
                )
                self._unlink(path)
                os.close(fd)
                return None
            start = min(offset, total)
            end = total if length is None else min(total, offset + length)
        except BaseException:
            os.close(fd)
            raise
        self._hit(image.id)
        chunks = FileChunks(fd, start, end, error=_read_error)
        return ReadResult(size=end - start, total_size=total, chunks=chunks, fd=fd, offset=start)

    def _hit(self, image_id: str) -> None:
        try:
            hits = os.open(
                self._path("hits", image_id), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
            )
        except OSError:
            return
        try:
            os.write(hits, b".")
        except OSError:
            pass
        finally:
            os.close(hits)

    # --- filling -----------------------------------------------------------------------

    def fill(
        self, image: Image, result: ReadResult, still_wanted: Callable[[], bool]
    ) -> ReadResult:
        """``result`` (a whole image read from its store) teeing its chunks into the
        cache; the copy is kept if the stream ends with the image's size and checksum
        and ``still_wanted()`` (the image is still active). When another fill of the
        image is running (here or in another process), ``result`` as it is."""
        if image.size is None or image.size > self.max_size:
            return result
        temp = self._claim(image.id)
        if temp is None:
            return result
        fill = _Fill(self, image, result, temp, still_wanted)
        return ReadResult(size=result.size, total_size=result.total_size, chunks=fill)

    def _claim(self, image_id: str) -> int | None:
        """An exclusive descriptor of ``incomplete/<id>``, or None if another fill holds
        it. A fill that wrote nothing for ``stall_time`` is abandoned: taken over."""
        path = self._path("incomplete", image_id)
        for _ in range(2):
            try:
                return os.open(
                    path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600
                )
            except FileExistsError:
                if not self._stalled(path):
                    return None
                log.warning("image cache: removing a stalled fill of image %s", image_id)
                self._unlink(path)
            except OSError as exc:
                log.warning("image cache: cannot start a fill of image %s: %s", image_id, exc)
                return None
        return None

    def _stalled(self, path: Path) -> bool:
        try:
            return time.time() - path.stat().st_mtime > self.stall_time
        except FileNotFoundError:
            return True

    def _commit(self, image: Image) -> bool:
        """Make the verified fill of ``image`` visible, then prune to ``max_size``."""
        source = self._path("incomplete", image.id)
        try:
            os.replace(source, self._path("entries", image.id))
        except OSError as exc:
            log.warning("image cache: cannot keep the copy of image %s: %s", image.id, exc)
            self._unlink(source)
            return False
        self._unlink(self._path("hits", image.id))
        self._unlink(self._path("queue", image.id))
        log.info("image cache: cached image %s (%d bytes)", image.id, image.size or 0)
        self.prune(keep=image.id)
        return True

    # --- managing ----------------------------------------------------------------------

    def is_cached(self, image_id: str) -> bool:
        return self._path("entries", image_id).exists()

    def cached(self) -> list[CachedImage]:
        """Every verified entry, least recently used first."""
        found = []
        for entry in self._names("entries"):
            try:
                st = (self.dir / "entries" / entry).stat()
            except FileNotFoundError:
                continue
            hits, last = 0, st.st_mtime
            try:
                hst = (self.dir / "hits" / entry).stat()
                hits, last = hst.st_size, hst.st_mtime
            except FileNotFoundError:
                pass
            found.append(CachedImage(entry, st.st_size, hits, last, st.st_mtime))
        found.sort(key=lambda c: (c.last_accessed, c.image_id))
        return found

    def size(self) -> int:
        return sum(c.size for c in self.cached())

    def evict(self, image_id: str) -> bool:
        """Remove the copy of an image (and its hit count); True if there was one."""
        self._unlink(self._path("hits", image_id))
        return self._unlink(self._path("entries", image_id))

    def clear(self) -> int:
        """Remove every copy; how many there were."""
        return sum(self.evict(name) for name in self._names("entries"))

    def prune(self, keep: str | None = None) -> tuple[int, int]:
        """Remove the least recently used copies until they fit ``max_size``; the
        number of files and bytes removed."""
        entries = self.cached()
        total = sum(c.size for c in entries)
        files = removed = 0
        for entry in entries:
            if total <= self.max_size:
                break
            if entry.image_id == keep:
                continue
            if self.evict(entry.image_id):
                files += 1
                removed += entry.size
                log.info("image cache: pruned image %s (%d bytes)", entry.image_id, entry.size)
            total -= entry.size
        return files, removed

    def clean(self, is_valid: Callable[[str, int], bool] | None = None) -> tuple[int, int]:
        """Remove stalled fills, and copies ``is_valid(image_id, size)`` rejects (an image
        no longer active, or whose data differs); the counts of both."""
        stalled = 0
        for name in self._names("incomplete"):
            path = self.dir / "incomplete" / name
            if self._stalled(path) and self._unlink(path):
                stalled += 1
        invalid = 0
        if is_valid is not None:
            for entry in self.cached():
                if not is_valid(entry.image_id, entry.size) and self.evict(entry.image_id):
                    invalid += 1
        for name in self._names("hits"):
            if not (self.dir / "entries" / name).exists():
                self._unlink(self.dir / "hits" / name)
        return stalled, invalid

    def queue(self, image_id: str) -> None:
        """Queue an image for prefetching (idempotent)."""
        self._path("queue", image_id).touch()

    def queued(self) -> list[str]:
        """Queued image ids, oldest first."""
        names = []
        for name in self._names("queue"):
            try:
                names.append(((self.dir / "queue" / name).stat().st_mtime, name))
            except FileNotFoundError:
                continue
        return [name for _, name in sorted(names)]

    def dequeue(self, image_id: str) -> bool:
        return self._unlink(self._path("queue", image_id))

    def clear_queue(self) -> int:
        return sum(self.dequeue(name) for name in self._names("queue"))

    def entry_path(self, image_id: str) -> Path:
        """Where the copy of an image is (whether or not there is one)."""
        return self._path("entries", image_id)

    def _names(self, sub: str) -> list[str]:
        try:
            names = os.listdir(self.dir / sub)
        except FileNotFoundError:
            return []
        valid = []
        for name in names:
            try:
                if parse_image_id(name) == name:
                    valid.append(name)
            except errors.ValidationError:
                continue
        return sorted(valid)

    @staticmethod
    def _unlink(path: Path) -> bool:
        try:
            os.unlink(path)
            return True
        except FileNotFoundError:
            return False
        except OSError as exc:
            log.warning("image cache: cannot remove %s: %s", path, exc)
            return False


class _Fill(Iterator[bytes]):
    """The chunks of a store read, each also written to the fill's file and hashed.

    The client's download never fails because of the cache: a write error ends only the
    fill. At the end of the stream the copy is checked (size, MD5, else the multihash)
    and kept or discarded; ``close`` before the end discards it."""

    def __init__(
        self,
        cache: ImageCache,
        image: Image,
        result: ReadResult,
        fd: int,
        still_wanted: Callable[[], bool],
    ) -> None:
        self.cache = cache
        self.image = image
        self.result = result
        self.chunks = iter(result.chunks)
        self.fd: int | None = fd
        self.still_wanted = still_wanted
        self.count = 0
        self.md5 = hashlib.md5(usedforsecurity=False) if image.checksum else None
        self.multihash = None
        if self.md5 is None and image.os_hash_value:
            try:
                self.multihash = hashlib.new(image.os_hash_algo or DEFAULT_HASH_ALGO)
            except ValueError:
                pass

    def __iter__(self) -> _Fill:
        return self

    def __next__(self) -> bytes:
        try:
            chunk = next(self.chunks)
        except StopIteration:
            self._finish()
            raise
        except BaseException:
            self._discard("the store read failed")
            raise
        if self.fd is not None:
            self.count += len(chunk)
            if self.md5 is not None:
                self.md5.update(chunk)
            elif self.multihash is not None:
                self.multihash.update(chunk)
            try:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(self.fd, view) :]
            except OSError as exc:
                level = logging.WARNING if exc.errno == errno.ENOSPC else logging.ERROR
                log.log(level, "image cache: writing image %s failed: %s", self.image.id, exc)
                self._discard(None)
        return chunk

    def _finish(self) -> None:
        if self.fd is None:
            return
        image = self.image
        why = None
        if self.count != image.size:
            why = f"{self.count} bytes, not {image.size}"
        elif self.md5 is not None and self.md5.hexdigest() != image.checksum:
            why = f"MD5 {self.md5.hexdigest()}, not the image's {image.checksum}"
        elif self.multihash is not None and self.multihash.hexdigest() != image.os_hash_value:
            why = f"{image.os_hash_algo} differs from the image's"
        if why is not None:
            log.error(
                "image cache: the data of image %s read from its store has %s: not cached",
                image.id,
                why,
            )
            self._discard(None)
            return
        fd, self.fd = self.fd, None
        try:
            os.fdatasync(fd)  # on disk before its name says it is whole
        except OSError as exc:
            os.close(fd)
            log.warning("image cache: writing the copy of image %s failed: %s", image.id, exc)
            self.cache._unlink(self.cache._path("incomplete", image.id))
            return
        os.close(fd)
        try:
            wanted = self.still_wanted()
        except Exception:
            log.exception("image cache: cannot check image %s is still active", image.id)
            wanted = False
        if not wanted:
            log.info("image cache: image %s changed while it was cached: discarded", image.id)
            self.cache._unlink(self.cache._path("incomplete", image.id))
            return
        self.cache._commit(image)

    def _discard(self, why: str | None) -> None:
        fd, self.fd = self.fd, None
        if fd is None:
            return
        if why:
            log.info("image cache: fill of image %s abandoned: %s", self.image.id, why)
        try:
            os.close(fd)
        except OSError:
            pass
        self.cache._unlink(self.cache._path("incomplete", self.image.id))

    def close(self) -> None:
        try:
            self.result.close()
        finally:
            self._discard("the download ended early")


def _read_error(exc: OSError) -> errors.StoreError:
    if isinstance(exc, FileTruncated):
        return errors.StoreError("the cached copy was truncated while being read")
    return errors.StoreError(f"reading the cached copy failed: {exc.strerror}")
