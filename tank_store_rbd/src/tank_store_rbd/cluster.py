"""The Ceph side of the store: the bindings, one shared connection, the handles an
operation holds, error translation.

``rados`` and ``rbd`` ship with Ceph, not with pip, so they are imported here on first use
and a missing binding becomes a :class:`~tank.errors.BadStoreConfig` saying how to
install it. Connecting to a cluster costs monitor round trips and a thread pool inside
librados, so a backend keeps one connected ``rados.Rados`` for its lifetime, shared by
every thread; operations open their own I/O context on it. Every timeout librados knows
is set, so an unreachable cluster fails within the configured time instead of hanging.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import threading
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from tank import errors

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "the Ceph Python bindings `rados` and `rbd` are not importable ({cause}). They are not "
    "on PyPI: install your distribution's packages (Debian/Ubuntu: apt install python3-rados "
    "python3-rbd; they are built for the system python3, whose version Tank's Python must "
    "match). In a virtualenv, create it with --system-site-packages, or link the two modules "
    "into it (Tank's test helper does that: `ceph.sh python-link VENV`)."
)


def load_bindings() -> tuple[ModuleType, ModuleType]:
    """``(rados, rbd)``, or BadStoreConfig explaining how to install them."""
    try:
        import rados
        import rbd
    except ImportError as exc:
        raise errors.BadStoreConfig(INSTALL_HINT.format(cause=exc)) from None
    return rados, rbd


# --- errors ----------------------------------------------------------------------------

_BY_ERRNO: dict[int, type[errors.TankError]] = {
    errno.ENOENT: errors.NotFound,  # ImageNotFound, ObjectNotFound
    errno.EEXIST: errors.Duplicate,  # ImageExists
    errno.EBUSY: errors.InUse,  # ImageBusy: clones, or open elsewhere
    errno.ENOTEMPTY: errors.InUse,  # ImageHasSnapshots
    errno.ENOSPC: errors.StorageFull,
    errno.EDQUOT: errors.StorageFull,
    errno.EPERM: errors.Forbidden,
    errno.EACCES: errors.Forbidden,
    errno.ETIMEDOUT: errors.StoreUnavailable,
    errno.ESHUTDOWN: errors.StoreUnavailable,  # ConnectionShutdown
    errno.ENOTCONN: errors.StoreUnavailable,
    errno.ECONNREFUSED: errors.StoreUnavailable,
    errno.EINTR: errors.StoreUnavailable,  # InterruptedOrTimeoutError
}


def error_for(
    code: int | None, message: str, *, store: str, location: str | None = None
) -> errors.TankError:
    """The tank error for an errno (positive or negative, as aio completions return it)."""
    cls = _BY_ERRNO.get(abs(code), errors.StoreError) if code is not None else errors.StoreError
    return cls(message, store=store, location=location)


def translate(
    exc: BaseException, what: str, *, store: str, location: str | None = None
) -> errors.TankError:
    """A tank error for a rados/rbd exception; ``what`` says which operation failed."""
    code = getattr(exc, "errno", None)
    return error_for(
        code if isinstance(code, int) else None, f"{what}: {exc}", store=store, location=location
    )


# --- the connection --------------------------------------------------------------------


class Cluster:
    """One connected ``rados.Rados`` per backend, made on first use and shared by threads.

    Callers lease it (:meth:`acquire` / :meth:`release`, or :meth:`lease`) so that
    :meth:`close` never shuts the connection down under a read still streaming: the last
    release does. A failed connect is not cached, so the next operation tries again; but
    threads that queued up behind a connect that failed get its error at once instead of
    each waiting out the timeout in turn.
    """

    def __init__(
        self,
        rados: ModuleType,
        *,
        ceph_conf: str,
        user: str | None,
        keyring: str | None,
        connect_timeout: int,
        op_timeout: int,
        store: str,
    ) -> None:
        self._rados = rados
        self._ceph_conf = ceph_conf
        self._user = user
        self._keyring = keyring
        self._connect_timeout = connect_timeout
        self._op_timeout = op_timeout
        self._store = store
        self._lock = threading.Lock()
        self._handle: Any = None
        self._fsid = ""
        self._users = 0
        self._closed = False
        self._failure: tuple[float, errors.TankError] | None = None

    @property
    def fsid(self) -> str:
        """The cluster's fsid; valid while a lease is held."""
        return self._fsid

    @property
    def leases(self) -> int:
        """Leases held now: uploads, downloads and calls in progress."""
        return self._users

    def acquire(self) -> Any:
        """The connected ``rados.Rados``; pair with :meth:`release`."""
        asked = time.monotonic()
        with self._lock:
            if self._closed:
                raise errors.StoreUnavailable(f"store {self._store!r} is closed", store=self._store)
            if self._handle is None:
                if self._failure is not None and self._failure[0] >= asked:
                    failed = self._failure[1]
                    raise type(failed)(failed.message, store=self._store)
                try:
                    self._handle, self._fsid = self._connect()
                except errors.TankError as exc:
                    self._failure = (time.monotonic(), exc)
                    raise
                self._failure = None
            self._users += 1
            return self._handle

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._closed and self._users == 0:
                self._shutdown()

    @contextlib.contextmanager
    def lease(self) -> Iterator[Any]:
        handle = self.acquire()
        try:
            yield handle
        finally:
            self.release()

    def close(self) -> None:
        """Disconnect now, or when the last lease ends; later operations fail."""
        with self._lock:
            self._closed = True
            if self._users == 0:
                self._shutdown()

    def _shutdown(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            try:
                handle.shutdown()
            except Exception:
                log.exception("store %s: disconnecting from Ceph failed", self._store)

    def _connect(self) -> tuple[Any, str]:
        rados = self._rados
        where = f"ceph_conf {self._ceph_conf!r}" if self._ceph_conf else "the default ceph.conf"
        try:
            # conffile "" makes librados search $CEPH_CONF, /etc/ceph/ceph.conf, ...
            handle = rados.Rados(rados_id=self._user, conffile=self._ceph_conf)
            # client_mount_timeout bounds connect(); the op timeouts bound every later call.
            handle.conf_set("client_mount_timeout", str(self._connect_timeout))
            handle.conf_set("rados_mon_op_timeout", str(self._op_timeout))
            handle.conf_set("rados_osd_op_timeout", str(self._op_timeout))
            if self._keyring:
                handle.conf_set("keyring", self._keyring)
            # Tank writes whole objects once and reads them in order: librbd's cache would
            # only copy every byte once more and hold up to rbd_cache_size of it.
            handle.conf_set("rbd_cache", "false")
            # librbd sends each aio write from the caller's buffer instead of a copy: the
            # writer holds every chunk (immutable bytes) until its write completes, and
            # librbd completes a write only once it let go of the buffer. One copy and
            # queue_depth x io_size bytes less per upload.
            handle.conf_set("rbd_disable_zero_copy_writes", "false")
        except rados.Error as exc:
            raise errors.BadStoreConfig(
                f"store {self._store!r}: cannot set up a Ceph client from {where}: {exc}",
                store=self._store,
            ) from None
        started = time.monotonic()
        try:
            handle.connect()
            fsid = handle.get_fsid()
        except rados.Error as exc:
            handle.shutdown()
            error = translate(
                exc,
                f"store {self._store!r}: cannot connect to the Ceph cluster of {where} "
                f"as {self._user or 'the default user'} "
                f"(after {time.monotonic() - started:.1f}s, timeout {self._connect_timeout}s)",
                store=self._store,
            )
            if isinstance(error, errors.NotFound | errors.StoreError):
                # e.g. a missing keyring: configuration, not data, is missing
                error = errors.BadStoreConfig(error.message, store=self._store)
            elif not isinstance(error, errors.Forbidden):
                error = errors.StoreUnavailable(error.message, store=self._store)
            raise error from None
        log.info("store %s: connected to Ceph cluster %s", self._store, fsid)
        return handle, fsid


class Handles(contextlib.ExitStack):
    """The Ceph handles one operation holds (lease, I/O context, image), closed in
    reverse order. Never swallows an exception, which type checkers can see."""

    def __exit__(self, *exc: Any) -> None:
        super().__exit__(*exc)
