"""Pre-forked workers on one listening socket, supervised as Glance's wsgi ``Server`` did.

The supervisor (tank-api's own process) binds the socket, then forks ``workers``
processes that each serve it with their own :class:`~tank.web.server.HttpServer`
(its threads, its registry connections, its stores: nothing opened before the fork is
used after it). The kernel hands each new connection to whichever worker accepts it.

* SIGTERM or SIGINT: every worker stops accepting, finishes its in-flight requests
  within the grace period (then ends them: an upload still running gets a 503), and
  exits 0; then the supervisor exits 0.
* A worker that dies (killed, crashed) is replaced in its slot; one that keeps dying
  at start-up is replaced with a growing delay (1 s doubling up to 30 s).
* SIGHUP: the supervisor reopens its log file and reloads the configuration (a bad new
  one is logged and the running one kept), then starts a new generation of workers
  with it and, once they are ready, tells the old ones to finish their requests and
  exit (SIGHUP to them), as Glance's ``reload``: no moment without a worker accepting.
* A worker dies with the supervisor (``PR_SET_PDEATHSIG``): killing tank-api with
  SIGKILL leaves no worker serving behind.

A worker says it is ready (or why it cannot start) through a pipe. The first worker
starts alone: if it cannot open the registry or the stores, tank-api exits with its
one-line reason instead of forking more. With ``$NOTIFY_SOCKET`` set (systemd
``Type=notify``), the supervisor sends ``READY=1`` once every worker is ready,
``RELOADING=1`` and ``READY=1`` around a reload, and ``STOPPING=1``.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import select
import signal
import socket
import time
from collections.abc import Callable
from types import FrameType

import attrs

log = logging.getLogger(__name__)

#: Seconds the first worker may take to open the registry and stores.
START_TIMEOUT = 120.0
_PR_SET_PDEATHSIG = 1
#: A worker's entry point: ``(slot, generation, ready)``; it calls ``ready(None)`` once
#: serving, or ``ready(reason)`` if it cannot start; returns its exit status.
WorkerMain = Callable[[int, int, Callable[[str | None], None]], int]


class StartError(Exception):
    """The first worker could not start; the message is its reason."""


@attrs.define
class _Worker:
    pid: int
    slot: int
    generation: int
    pipe: int  # read end of its readiness pipe; -1 once read
    started: float
    ready: bool = False


class Supervisor:
    """Fork and keep ``workers`` processes running ``worker_main`` until SIGTERM/SIGINT."""

    def __init__(
        self,
        workers: int,
        worker_main: WorkerMain,
        *,
        grace: float,
        listener: socket.socket | None = None,
        name: str = "tank-api",
        reload: Callable[[], int | None] | None = None,
        on_worker_exit: Callable[[int], None] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.worker_main = worker_main
        self.grace = grace
        #: The listening socket: closed here at stop, so that new connections are
        #: refused at once instead of waiting in the backlog for a worker that left.
        self.listener = listener
        self.name = name
        #: Called on SIGHUP: reload the configuration; the new worker count (None: same).
        self.reload = reload
        #: Called with the pid of every worker that exited (e.g. prometheus cleanup).
        self.on_worker_exit = on_worker_exit
        self.generation = 0
        self._live: dict[int, _Worker] = {}
        self._stale: dict[int, _Worker] = {}
        self._delay: dict[int, float] = {}
        self._due: dict[int, float] = {}
        self._signals: list[int] = []
        self._announced = False
        self._retiring: list[int] = []

    # --- running -------------------------------------------------------------------

    def run(self) -> int:
        """Start the workers and supervise them; the exit status (0 after SIGTERM).
        :class:`StartError` if the first worker cannot start."""
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._note)
        try:
            self._start_first()
            for slot in range(1, self.workers):
                if signal.SIGTERM in self._signals or signal.SIGINT in self._signals:
                    break
                self._spawn(slot)
            while True:
                self._reap()
                self._read_pipes()
                signalled = self._take_signals()
                if signal.SIGTERM in signalled or signal.SIGINT in signalled:
                    break
                if signal.SIGHUP in signalled:
                    self._reload()
                self._respawn()
                self._announce()
                time.sleep(0.05)
        except BaseException:
            self._stop()
            raise
        return self._stop()

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self._signals.append(signum)

    def _take_signals(self) -> set[int]:
        taken = set(self._signals)
        self._signals.clear()
        return taken

    def _start_first(self) -> None:
        worker = self._spawn(0)
        deadline = time.monotonic() + START_TIMEOUT
        while not worker.ready:
            if signal.SIGTERM in self._signals or signal.SIGINT in self._signals:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise StartError(f"the first worker did not start within {START_TIMEOUT:g} s")
            ready, _, _ = _select([worker.pipe], min(left, 0.2))
            if ready:
                message = _read_message(worker.pipe)
                worker.pipe = _close(worker.pipe)
                if message == "":
                    worker.ready = True
                    continue
                self._wait_exit(worker, 10.0)
                raise StartError(message or "the first worker exited before it was ready")
            done = self._try_wait(worker.pid)
            if done is not None:
                self._live.pop(worker.pid, None)
                raise StartError(f"the first worker exited before it was ready ({_describe(done)})")

    def _spawn(self, slot: int) -> _Worker:
        r, w = os.pipe()
        generation = self.generation
        pid = os.fork()
        if pid == 0:  # the worker
            status = 1
            try:
                os.close(r)
                status = self._worker(slot, generation, w)
            except BaseException:
                log.exception("%s worker %d failed", self.name, os.getpid())
            finally:
                logging.shutdown()
                os._exit(status)
        os.close(w)
        worker = _Worker(pid, slot, generation, r, time.monotonic())
        self._live[pid] = worker
        log.info("%s worker %d started (slot %d)", self.name, pid, slot)
        return worker

    def _worker(self, slot: int, generation: int, pipe: int) -> int:
        parent = os.getppid()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor sends SIGTERM
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        _die_with_parent()
        if os.getppid() != parent:  # the supervisor died before we asked
            return 1

        said: list[bool] = []

        def ready(reason: str | None) -> None:
            if said:  # once: the descriptor may be another file's by now
                return
            said.append(True)
            with contextlib.suppress(OSError):
                os.write(pipe, (reason or "").encode("utf-8", "replace")[:4000] + b"\n")
            with contextlib.suppress(OSError):
                os.close(pipe)

        return self.worker_main(slot, generation, ready)

    # --- supervising ---------------------------------------------------------------

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self._live.pop(pid, None) or self._stale.pop(pid, None)
            if worker is None:
                continue
            if worker.pipe >= 0 and not worker.ready and _select([worker.pipe], 0)[0]:
                message = _read_message(worker.pipe)  # why it could not start, if it said
                if message:
                    log.error("%s worker %d cannot start: %s", self.name, pid, message)
            _close(worker.pipe)
            if self.on_worker_exit is not None:
                self.on_worker_exit(pid)
            if worker.generation != self.generation or worker.slot >= self.workers:
                log.info("%s worker %d (previous generation) exited", self.name, pid)
                continue
            lived = time.monotonic() - worker.started
            delay = 0.0
            if lived < 5.0 or not worker.ready:  # dying at start-up: back off
                delay = min(max(self._delay.get(worker.slot, 0.5) * 2, 1.0), 30.0)
            self._delay[worker.slot] = delay
            self._due[worker.slot] = time.monotonic() + delay
            log.error(
                "%s worker %d %s; replacing it%s",
                self.name,
                pid,
                _describe(status),
                f" in {delay:g} s" if delay else "",
            )

    def _respawn(self) -> None:
        now = time.monotonic()
        for slot, due in list(self._due.items()):
            if now >= due and not self._signals:
                del self._due[slot]
                self._spawn(slot)

    def _read_pipes(self) -> None:
        pipes = {w.pipe: w for w in self._live.values() if w.pipe >= 0}
        if not pipes:
            return
        ready, _, _ = _select(list(pipes), 0)
        for fd in ready:
            worker = pipes[fd]
            message = _read_message(fd)
            worker.pipe = _close(fd)
            if message:
                log.error("%s worker %d cannot start: %s", self.name, worker.pid, message)
            else:
                worker.ready = True
                self._delay.pop(worker.slot, None)

    def _announce(self) -> None:
        if not self._announced and all(w.ready for w in self._live.values()):
            if len(self._live) >= self.workers:
                self._announced = True
                for pid in self._retiring:  # the old generation finishes and exits
                    if pid in self._stale:
                        _kill(pid, signal.SIGHUP)
                self._retiring.clear()
                log.info("%s: %d workers ready", self.name, len(self._live))
                sd_notify("READY=1")

    def _reload(self) -> None:
        log.info("%s: SIGHUP: reloading the configuration", self.name)
        sd_notify("RELOADING=1")
        if self.reload is not None:
            try:
                workers = self.reload()
            except Exception as exc:  # noqa: BLE001  (a bad reload must not stop tank-api)
                log.error("%s: reload failed, the running configuration stays: %s", self.name, exc)
                sd_notify("READY=1")
                return
            if workers is not None:
                self.workers = max(1, workers)
        self.generation += 1
        old = dict(self._live)
        self._stale.update(old)
        self._live.clear()
        self._due.clear()
        self._delay.clear()
        for slot in range(self.workers):
            self._spawn(slot)
        self._retiring.extend(old)  # told to go once the new generation is ready
        self._announced = False

    # --- stopping ------------------------------------------------------------------

    def _stop(self) -> int:
        """SIGTERM every worker, wait for them (grace period, then SIGKILL); 0 if all
        exited 0."""
        sd_notify("STOPPING=1")
        if self.listener is not None:
            self.listener.close()
        workers = {**self._stale, **self._live}
        log.info("%s stopping %d workers", self.name, len(workers))
        for pid in workers:
            _kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace + 15.0
        status_ok = True
        for pid in workers:
            status = self._wait_pid(pid, deadline)
            if status is None:
                log.error("%s worker %d did not stop in time: killed", self.name, pid)
                _kill(pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
                status_ok = False
            elif not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
                log.error("%s worker %d %s", self.name, pid, _describe(status))
                status_ok = False
            if self.on_worker_exit is not None:
                self.on_worker_exit(pid)
            _close(workers[pid].pipe)
        self._live.clear()
        self._stale.clear()
        return 0 if status_ok else 1

    def _wait_pid(self, pid: int, deadline: float) -> int | None:
        while True:
            done = self._try_wait(pid)
            if done is not None:
                return done
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    def _wait_exit(self, worker: _Worker, timeout: float) -> None:
        if self._wait_pid(worker.pid, time.monotonic() + timeout) is None:
            _kill(worker.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(worker.pid, 0)
        self._live.pop(worker.pid, None)

    @staticmethod
    def _try_wait(pid: int) -> int | None:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return 0
        return status if done else None


def _select(fds: list[int], timeout: float) -> tuple[list[int], list[int], list[int]]:
    try:
        return select.select(fds, [], [], timeout)
    except InterruptedError:
        return [], [], []


def _read_message(fd: int) -> str:
    """The worker's word: "" for ready, else its reason (EOF without a word: "?")."""
    try:
        data = os.read(fd, 8192)
    except OSError:
        data = b""
    if not data:
        return "the worker exited before it was ready"
    return data.decode("utf-8", "replace").strip()


def _close(fd: int) -> int:
    if fd >= 0:
        with contextlib.suppress(OSError):
            os.close(fd)
    return -1


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        try:
            name = signal.Signals(os.WTERMSIG(status)).name
        except ValueError:
            name = str(os.WTERMSIG(status))
        return f"was killed by {name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (elsewhere: nothing)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def sd_notify(state: str) -> bool:
    """Tell systemd ``state`` through ``$NOTIFY_SOCKET`` (``Type=notify``), if set;
    whether it was sent. No dependency: one datagram on a Unix socket."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(state.encode(), address)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            log.warning("sd_notify %s failed: %s", state, exc)
        return False
    return True
