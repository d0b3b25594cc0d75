"""Slow and silent clients against tank-api: does everyone else still get served?

    python bench/slow_clients.py [--silent 1000] [--dripping 1000] [--size 1G] [--gets 300]

Starts tank-api (embedded defaults) on a free loopback port, then measures, first with
no other clients and then while ``--silent`` connections send nothing and
``--dripping`` connections send a request head one byte a second (both kept at their
number: a connection the server closes for its deadline is opened again, as an attacker
would):

* ``GET /v1/images`` from one keep-alive client, ``--gets`` times: p50 and p99;
* a ``--size`` upload with ``curl -T``: MiB/s, and tank-api's CPU seconds for it.

Targets (reliability issue): p99 <= 50 ms and upload >= 0.9 x unloaded while loaded.
A thread-per-connection server (tank-api before its own server) stops answering once
the slow connections outnumber its threads.

On a shared machine one pair of uploads says little: ``--rounds N`` measures N pairs
on one tank-api, loaded first in every other round (ABBA, so neither phase always runs
after the other), and gives the median and range of the per-round ratio. The CPU
seconds tank-api spends on an upload are much less noisy than its wall time: their
loaded/unloaded ratio is what the slow connections cost the server itself.
"""

from __future__ import annotations

import argparse
import resource
import selectors
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import requests
from _common import TankApi, human, load_average, make_file, parse_size, verdict, warm

TARGETS = {"p99_ms": 50.0, "upload": 0.9}
HEAD = b"GET /v1/images HTTP/1.1\r\nHost: tank\r\nX-Slow: " + b"z" * 4000 + b"\r\n\r\n"


class SlowClients:
    """Keeps ``silent`` idle and ``dripping`` one-byte-a-second connections open."""

    def __init__(self, port: int, silent: int, dripping: int) -> None:
        self.port = port
        self.wanted = {"silent": silent, "dripping": dripping}
        self.selector = selectors.DefaultSelector()
        self.conns: dict[socket.socket, list] = {}  # sock -> [kind, bytes sent]
        self.reopened = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _open(self, kind: str) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.setblocking(False)
        self.conns[sock] = [kind, 0]
        self.selector.register(sock, selectors.EVENT_READ)

    def _close(self, sock: socket.socket) -> None:
        self.selector.unregister(sock)
        del self.conns[sock]
        sock.close()

    def start(self) -> None:
        for kind, count in self.wanted.items():
            for _ in range(count):
                self._open(kind)
        self.thread.start()

    def _run(self) -> None:
        next_drip = time.monotonic()
        while not self.stopping.is_set():
            for key, _ in self.selector.select(timeout=0.1):
                sock = key.fileobj
                try:
                    data = sock.recv(65536)  # type: ignore[union-attr]
                except OSError:
                    data = b""
                if not data:  # closed by the server (deadline): come back, as attackers do
                    self._close(sock)  # type: ignore[arg-type]
                    self.reopened += 1
            counts = {"silent": 0, "dripping": 0}
            for kind, _ in self.conns.values():
                counts[kind] += 1
            for kind, count in counts.items():
                for _ in range(self.wanted[kind] - count):
                    self._open(kind)
            if time.monotonic() >= next_drip:
                next_drip += 1.0
                for sock, state in list(self.conns.items()):
                    if state[0] == "dripping" and state[1] < len(HEAD) - 4:
                        try:
                            sock.send(HEAD[state[1] : state[1] + 1])
                            state[1] += 1
                        except OSError:
                            pass

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        for sock in list(self.conns):
            self._close(sock)


def percentile(times: list[float], fraction: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else 0.0


def get_latencies(url: str, count: int) -> tuple[list[float], int]:
    """Milliseconds of each ``GET /v1/images`` on one keep-alive session; failures."""
    times, failures = [], 0
    with requests.Session() as session:
        for _ in range(count):
            started = time.perf_counter()
            try:
                session.get(f"{url}/v1/images", timeout=10).raise_for_status()
            except requests.RequestException:
                failures += 1
                continue
            finally:
                times.append((time.perf_counter() - started) * 1000)
    return times, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--silent", type=int, default=1000)
    parser.add_argument("--dripping", type=int, default=1000)
    parser.add_argument("--size", type=parse_size, default=parse_size("1G"))
    parser.add_argument("--gets", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3, help="pairs of uploads (default 3)")
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory(prefix="tank-bench-slow-", dir=args.dir) as tmp:
        work = Path(tmp)
        source = work / "source.img"
        make_file(source, args.size)
        warm(source)
        print(f"{args.silent} silent + {args.dripping} dripping connections, {load_average()}")
        gets: dict[str, list[float]] = {"unloaded": [], "loaded": []}
        failed = {"unloaded": 0, "loaded": 0}
        ratios, cpu_ratios, reopened = [], [], 0
        with TankApi(work / "tank") as api:
            print(f"  {'round':6}{'phase':10}{'GET p99 ms':>12}{'upload MiB/s':>14}{'CPU s':>8}")
            for round_ in range(args.rounds):
                phases = ("unloaded", "loaded") if round_ % 2 == 0 else ("loaded", "unloaded")
                speed, cpu = {}, {}
                for phase in phases:
                    clients = None
                    if phase == "loaded":
                        clients = SlowClients(api.port, args.silent, args.dripping)
                        clients.start()
                        time.sleep(2)
                    times, fails = get_latencies(api.url, args.gets)
                    gets[phase] += times
                    failed[phase] += fails
                    cpu_before = api.cpu_seconds()
                    seconds, image = api.upload(source, f"slow-{phase}")
                    cpu[phase] = api.cpu_seconds() - cpu_before
                    api.delete(image["id"])
                    if clients:
                        clients.stop()
                        reopened += clients.reopened
                    speed[phase] = args.size / (1 << 20) / seconds
                    print(f"  {round_:<6d}{phase:10}{percentile(times, 0.99):12.1f}"
                          f"{speed[phase]:14.0f}{cpu[phase]:8.2f}")  # fmt: skip
                ratios.append(speed["loaded"] / speed["unloaded"])
                cpu_ratios.append(cpu["loaded"] / cpu["unloaded"])
        print(f"  connections the server closed at their deadline, reopened: {reopened}")
        for phase, times in gets.items():
            print(f"  {phase:10} GET p50 {percentile(times, 0.5):.1f} ms, "
                  f"p99 {percentile(times, 0.99):.1f} ms, {failed[phase]} failed")  # fmt: skip
        p99 = percentile(gets["loaded"], 0.99)
        ok_p99 = p99 <= TARGETS["p99_ms"] and failed["loaded"] == 0
        print(f"  loaded GET p99 = {p99:.1f} ms (target <= {TARGETS['p99_ms']:.0f}, "
              f"no failures: {verdict(ok_p99)})")  # fmt: skip
        ratio = statistics.median(ratios)
        ok_upload = verdict(ratio >= TARGETS["upload"])
        print(f"  loaded / unloaded upload ({human(args.size)}) = {ratio:.2f} median of "
              f"{len(ratios)}, range {min(ratios):.2f}-{max(ratios):.2f} "
              f"(target >= {TARGETS['upload']}: {ok_upload})")  # fmt: skip
        print(f"  loaded / unloaded tank-api CPU per upload = {statistics.median(cpu_ratios):.2f} "
              f"median, range {min(cpu_ratios):.2f}-{max(cpu_ratios):.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
