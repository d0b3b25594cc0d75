"""Checksums computed while data streams, off the I/O thread.

Every image gets its MD5 (the ``checksum`` Glance v1 clients verify) and a multihash
(``os_hash_algo`` / ``os_hash_value``): a second digest whose algorithm the operator
chooses (``[api] hashing_algorithm``, SHA-256 by default), both computed in the one pass
over the data.

MD5 runs at ~700 MiB/s on one core here, slower than a disk write, so hashing inline
would cap upload speed. ``hashlib`` releases the GIL on large buffers, so each algorithm
runs in its own thread fed through a queue bounded in bytes: hashing overlaps with the
socket reads and disk writes of the uploading thread, and memory stays bounded.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import attrs

from tank.errors import ConfigError
from tank.streams import ChunkQueue

#: The multihash when none is configured. With SHA-NI it is about twice as fast as
#: Glance's default (sha512) here, and clients verify whichever algorithm an image names.
DEFAULT_HASH_ALGO = "sha256"
#: Algorithms the multihash may use: those every Python build has, but MD5 (the
#: ``checksum`` already) and SHAKE (whose digest needs a length, which Glance's
#: multihash has no room for).
HASH_ALGORITHMS: frozenset[str] = frozenset(
    hashlib.algorithms_guaranteed - {"md5", "shake_128", "shake_256"}
)


def check_hash_algo(name: object) -> str:
    """``name`` if the multihash may use it, else :class:`~tank.errors.ConfigError`.

    Called where the algorithm is configured, so that a bad name stops Tank at start-up
    instead of failing uploads. The message does not show the value (it may come from
    the environment); :func:`tank.config.build` puts the file and key in front of it.
    """
    if isinstance(name, str) and name in HASH_ALGORITHMS:
        return name
    raise ConfigError(
        "hashing_algorithm: must be one of: "
        + ", ".join(sorted(HASH_ALGORITHMS))
        + " (md5 is always computed as the checksum; shake_* need a digest length)"
    )


def hash_algo_validator(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """:func:`check_hash_algo` as an attrs validator, for config classes."""
    check_hash_algo(value)


@attrs.frozen
class Checksums:
    """The digests of one image's data, lower-case hex."""

    md5: str
    #: The multihash algorithm (a :data:`HASH_ALGORITHMS` name) and its digest.
    hash_algo: str
    hash_value: str


class _HashThread:
    """One algorithm's thread, fed through a queue bounded in bytes (not chunks, whose
    size the caller decides)."""

    def __init__(self, algorithm: str, budget: int) -> None:
        self.hash = hashlib.new(algorithm)
        self.queue: ChunkQueue[bytes] = ChunkQueue(budget)
        self.thread = threading.Thread(target=self._run, name=f"tank-{algorithm}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        update, get = self.hash.update, self.queue.get
        while (chunk := get()) is not None:
            update(chunk)


class StreamHasher:
    """Feed chunks with :meth:`update`; :meth:`result` waits for the hashes.

    Computes MD5 and the multihash ``algorithm`` (ConfigError, before any thread
    starts, for one not in :data:`HASH_ALGORITHMS`). At most ``max_pending`` bytes (plus
    the chunk being queued and the one being hashed) wait per algorithm, so memory stays
    bounded whatever the chunk size. Always finish with :meth:`result` or :meth:`close`,
    or the threads linger until the process exits. With ``md5=False`` only the multihash
    is computed (the store reports the MD5 itself) and :meth:`result` needs it passed in.
    """

    def __init__(
        self,
        *,
        algorithm: str = DEFAULT_HASH_ALGO,
        max_pending: int = 4 << 20,
        md5: bool = True,
    ) -> None:
        self.algorithm = check_hash_algo(algorithm)
        algorithms = ("md5", algorithm) if md5 else (algorithm,)
        self._workers = {alg: _HashThread(alg, max_pending) for alg in algorithms}
        self._closed = False

    def update(self, chunk: bytes) -> None:
        for worker in self._workers.values():
            worker.queue.put(chunk)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for worker in self._workers.values():
            worker.queue.finish()
        for worker in self._workers.values():
            worker.thread.join()

    def result(self, md5: str | None = None) -> Checksums:
        """The checksums; ``md5`` is the store's when this hasher computes none."""
        self.close()
        digests = {alg: w.hash.hexdigest() for alg, w in self._workers.items()}
        found = digests.get("md5", md5)
        if found is None:
            raise ValueError("this hasher computes no MD5: pass the store's")
        return Checksums(md5=found, hash_algo=self.algorithm, hash_value=digests[self.algorithm])

    def __enter__(self) -> StreamHasher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
