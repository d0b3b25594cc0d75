"""Downloads through the image cache against the same download from Swift and nginx.

    . /work/wt/testenv.sh   # TANK_TEST_SWIFT_AUTH, _USER, _KEY: a Swift server
    python bench/cache.py [--size 1G] [--dir /var/tmp] [--runs 3]

One tank-api with a chase store on a fresh container of the Swift server and ``[cache]``
on. One image of ``--size`` random-looking bytes is uploaded; then, with ``curl -o
/dev/null`` on ``GET /v2/images/<id>/file``:

* the first download: streamed from Swift and into the cache at once (verified with MD5
  and renamed into place at the end);
* downloads of the same bytes from a ``file`` store of the same tank-api (the path the
  cache shares: a control for what the server itself costs);
* downloads with the image's copy cached (``sendfile`` from the cache file, which is in
  the page cache after the fill), against nginx serving that same file with sendfile;
* downloads from Swift: the same tank-api with its copy removed before each run through
  ``DELETE /v2/cache/<id>`` (so each is a fill again), and with ``[cache]`` off (a second
  tank-api on the same registry and container: Swift alone).

Each figure is the best of ``--runs``. Target (issue #16): cached >= 0.9 x nginx.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _common import (
    MiB,
    TankApi,
    best,
    curl,
    human,
    load_average,
    make_file,
    nginx,
    parse_size,
    verdict,
    warm,
)

CONFIG = """\
default_store = "swift"

[registry]
connection = "sqlite:///{registry}"

[stores.swift]
type = "chase"
auth_address = "{auth}"
user = "{user}"
key = "{key}"
container = "{container}"

[stores.local]
type = "file"
datadir = "{local}"

[cache]
enabled = {enabled}
dir = "{cache}"
max_size = {max_size}
"""


def swift_env() -> tuple[str, str, str]:
    names = ("TANK_TEST_SWIFT_AUTH", "TANK_TEST_SWIFT_USER", "TANK_TEST_SWIFT_KEY")
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        sys.exit(f"set {', '.join(missing)} (. /work/wt/testenv.sh) to name a Swift server")
    return os.environ[names[0]], os.environ[names[1]], os.environ[names[2]]


def wipe(auth: str, user: str, key: str, container: str) -> None:
    from swiftclient.client import ClientException, Connection

    conn = Connection(auth, user, key, retries=1)
    try:
        _, listing = conn.get_container(container, full_listing=True)
        for obj in listing:
            conn.delete_object(container, obj["name"])
        conn.delete_container(container)
    except ClientException:
        pass


def wait_for(entry: Path) -> bool:
    """The fill's copy is in place: it is flushed (fdatasync) after the client got the
    last byte, so it may take a moment."""
    deadline = time.monotonic() + 120
    while not entry.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("1G"), help="1G")
    parser.add_argument("--dir", type=Path, default=None, help="work directory parent (TMPDIR)")
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs (3)")
    args = parser.parse_args()
    auth, user, key = swift_env()
    work = Path(tempfile.mkdtemp(prefix="tank-bench-cache-", dir=args.dir))
    work.chmod(0o755)  # nginx's worker reads the cache file from here
    container = f"tank-bench-cache-{uuid.uuid4().hex[:8]}"
    print(f"work dir {work}, {human(args.size)}, best of {args.runs}, {load_average()}")

    def config(enabled: bool) -> str:
        return CONFIG.format(
            registry=work / "registry.db",
            auth=auth,
            user=user,
            key=key,
            container=container,
            enabled=str(enabled).lower(),
            cache=work / "cache",
            local=work / "local",
            max_size=4 * args.size,
        )

    source = work / "source"
    make_file(source, args.size)
    warm(source)
    try:
        with (
            TankApi(work / "cached", config(True)) as cached,
            TankApi(work / "plain", config(False)) as plain,
        ):
            seconds, image = cached.upload_v2(source, "bench-cache")
            image_id = image["id"]
            print(f"upload to Swift: {seconds:.2f} s")
            _, local = cached.upload(source, "bench-local", store="local")
            cached.download_v2(local["id"])  # into the page cache (uploads bypass it)
            source.unlink()
            entry = work / "cache" / "entries" / image_id
            fills, swift, hits, direct, fs = [], [], [], [], []
            first = cached.download_v2(image_id)
            if not wait_for(entry):
                sys.exit(f"the first download did not cache the image:\n{cached.log.read_text()}")
            print(f"first download (Swift -> client + cache): {args.size / MiB / first:.0f} MiB/s")
            with nginx(entry.parent, work / "nginx") as nginx_url:
                for run in range(args.runs):
                    if run % 2:  # take turns going first
                        direct.append(curl("-o", "/dev/null", f"{nginx_url}/{image_id}")[0])
                    hits.append(cached.download_v2(image_id))
                    if not run % 2:
                        direct.append(curl("-o", "/dev/null", f"{nginx_url}/{image_id}")[0])
                    fs.append(cached.download_v2(local["id"]))
                    swift.append(plain.download_v2(image_id))
                    curl("-X", "DELETE", f"{cached.url}/v2/cache/{image_id}")
                    fills.append(cached.download_v2(image_id))
                    if not wait_for(entry):
                        sys.exit(f"a fill was not kept:\n{cached.log.read_text()[-3000:]}")
            state = json.loads(curl(f"{cached.url}/v2/cache")[1])
            assert [c["image_id"] for c in state["cached_images"]] == [image_id], state
    finally:
        wipe(auth, user, key, container)
        shutil.rmtree(work, ignore_errors=True)

    def rate(times: list[float]) -> float:
        return args.size / MiB / best(times)

    ratio = rate(hits) / rate(direct)
    print(f"cached (sendfile from the cache):  {rate(hits):8.0f} MiB/s")
    print(f"nginx sendfile, same file:         {rate(direct):8.0f} MiB/s")
    print(f"the same tank-api, a file store:   {rate(fs):8.0f} MiB/s (its own sendfile path)")
    print(f"Swift, cache off:                  {rate(swift):8.0f} MiB/s")
    print(f"Swift, filling the cache:          {rate(fills):8.0f} MiB/s")
    print(f"cached / nginx = {ratio:.2f} (target >= 0.90: {verdict(ratio >= 0.9)})")
    print(f"cached / Swift = {rate(hits) / rate(swift):.1f}")
    print(f"fill / Swift (cost of filling) = {rate(fills) / rate(swift):.2f}")
    print(f"{load_average()}")


if __name__ == "__main__":
    main()
