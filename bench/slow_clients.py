"""Slow and silent clients against tank-api: does everyone else still get served?

    python bench/slow_clients.py [--silent 1000] [--dripping 1000] [--size 1G] [--gets 300]

Starts tank-api (embedded defaults) on a free loopback port, then measures, first with
no other clients and then while ``--silent`` connections send nothing and
``--dripping`` connections send a request head one byte a second (both kept at their
number: a connection the server closes for its deadline is opened again, as an attacker
would):

* ``GET /v1/images`` from one keep-alive client, ``--gets`` times: p50 and p99;
* a ``--size`` upload with ``curl -T``: MiB/s.

Targets (reliability issue): p99 <= 50 ms and upload >= 0.9 x unloaded while loaded.
A thread-per-connection server (tank-api before its own server) stops answering once
the slow connections outnumber its threads.
"""

from __future__ import annotations

import argparse
import resource
import selectors
import socket
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


def get_latencies(url: str, count: int) -> tuple[float, float, int]:
    """p50 and p99 in ms of ``GET /v1/images`` on one keep-alive session; failures."""
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
    times.sort()
    return times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))], failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--silent", type=int, default=1000)
    parser.add_argument("--dripping", type=int, default=1000)
    parser.add_argument("--size", type=parse_size, default=parse_size("1G"))
    parser.add_argument("--gets", type=int, default=300)
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
        with TankApi(work / "tank") as api:
            results = {}
            for phase in ("unloaded", "loaded"):
                clients = None
                if phase == "loaded":
                    clients = SlowClients(api.port, args.silent, args.dripping)
                    clients.start()
                    time.sleep(2)
                p50, p99, failed = get_latencies(api.url, args.gets)
                seconds, image = api.upload(source, f"slow-{phase}")
                api.delete(image["id"])
                reopened = clients.reopened if clients else 0
                if clients:
                    clients.stop()
                results[phase] = (p50, p99, failed, args.size / (1 << 20) / seconds, reopened)
        print(f"  {'':10}{'GET p50 ms':>12}{'GET p99 ms':>12}{'failed':>8}{'upload MiB/s':>14}")
        for phase, (p50, p99, failed, mibs, _) in results.items():
            print(f"  {phase:10}{p50:12.1f}{p99:12.1f}{failed:8d}{mibs:14.0f}")
        loaded = results["loaded"]
        ratio = loaded[3] / results["unloaded"][3]
        print(f"  connections the server closed at their deadline, reopened: {loaded[4]}")
        ok_p99 = loaded[1] <= TARGETS["p99_ms"] and loaded[2] == 0
        print(f"  loaded GET p99 = {loaded[1]:.1f} ms (target <= {TARGETS['p99_ms']:.0f}, "
              f"no failures: {verdict(ok_p99)})")  # fmt: skip
        ok_upload = verdict(ratio >= TARGETS["upload"])
        print(f"  loaded / unloaded upload ({human(args.size)}) = {ratio:.2f} "
              f"(target >= {TARGETS['upload']}: {ok_upload})")  # fmt: skip


if __name__ == "__main__":
    main()
