"""Checksums computed while data streams, off the I/O thread.

MD5 runs at ~700 MiB/s on one core here, slower than a disk write, so hashing inline
would cap upload speed. ``hashlib`` releases the GIL on large buffers, so each algorithm
runs in its own thread fed through a queue bounded in bytes: hashing overlaps with the
socket reads and disk writes of the uploading thread, and memory stays bounded.
"""

from __future__ import annotations

import hashlib
import threading

import attrs

from tank.streams import ChunkQueue

ALGORITHMS = ("md5", "sha256")


@attrs.frozen
class Checksums:
    md5: str
    sha256: str


EMPTY = Checksums(md5=hashlib.md5(b"").hexdigest(), sha256=hashlib.sha256(b"").hexdigest())


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

    At most ``max_pending`` bytes (plus the chunk being queued and the one being
    hashed) wait per algorithm, so memory stays bounded whatever the chunk size. Always
    finish with :meth:`result` or :meth:`close`, or the threads linger until the process
    exits. With ``md5=False`` only SHA-256 is
    computed (the store reports the MD5 itself) and :meth:`result` needs it passed in.
    """

    def __init__(self, *, max_pending: int = 4 << 20, md5: bool = True) -> None:
        algorithms = ALGORITHMS if md5 else tuple(a for a in ALGORITHMS if a != "md5")
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
        return Checksums(md5=found, sha256=digests["sha256"])

    def __enter__(self) -> StreamHasher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
