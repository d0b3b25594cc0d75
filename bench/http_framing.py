"""Receiving a request body: Tank's server framing against h11, CPU per GiB.

    pip install h11 && python bench/http_framing.py [--size 1G] [--runs 3]

The engineering issue asked whether h11 (sans-IO HTTP/1.1, used by httpcore and uvicorn)
could replace Tank's own framing under the same threads. One thread sends a
``Content-Length`` body over a socket pair; the receiving thread reads it either with
``tank.web.server``'s body reader (``recv_into`` a reused buffer, as tank-api reads
uploads) or with ``h11.Connection`` (``recv`` into bytes, ``receive_data``, ``Data``
events). Printed: the receiver's CPU seconds (``time.thread_time``) and wall time per
GiB, best of ``--runs``, and h11 / Tank.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time

from _common import GiB, parse_size

from tank.web.server.bodies import KnownLengthBody
from tank.web.server.channel import Channel

MiB = 1 << 20


def _send(sock: socket.socket, size: int) -> None:
    sock.sendall(b"PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
    block = bytes(MiB)
    for _ in range(size // MiB):
        sock.sendall(block)
    sock.close()


def _tank(sock: socket.socket, size: int) -> int:
    data = bytearray()
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    end = data.index(b"\r\n\r\n") + 4
    body = KnownLengthBody(Channel(sock, ("peer", 0), bytes(data[end:])), size, None)
    buffer, total = bytearray(MiB), 0
    while got := body.readinto(buffer):
        total += got
    return total


def _h11(sock: socket.socket, size: int) -> int:
    import h11

    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 << 10)
    total = 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(sock.recv(MiB))
        elif isinstance(event, h11.Data):
            total += len(event.data)
        elif isinstance(event, h11.EndOfMessage):
            return total


def measure(receive, size: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    ours, theirs = socket.socketpair()
    sender = threading.Thread(target=_send, args=(theirs, size))
    sender.start()
    cpu, wall = time.thread_time(), time.perf_counter()
    got = receive(ours, size)
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    sender.join()
    ours.close()
    if got != size:
        raise SystemExit(f"{receive.__name__} received {got} of {size} bytes")
    return cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("1G"))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = args.size - args.size % MiB
    best: dict[str, tuple[float, float]] = {}
    for _ in range(args.runs):
        for name, receive in (("tank", _tank), ("h11", _h11)):
            cpu, wall = measure(receive, size)
            old = best.get(name, (float("inf"), float("inf")))
            best[name] = (min(old[0], cpu), min(old[1], wall))
    gib = size / GiB
    for name, (cpu, wall) in best.items():
        print(f"  {name:5} receiver CPU {cpu / gib:.2f} s/GiB, wall {wall / gib:.2f} s/GiB")
    print(f"  h11 / tank: CPU {best['h11'][0] / best['tank'][0]:.2f}, "
          f"wall {best['h11'][1] / best['tank'][1]:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
