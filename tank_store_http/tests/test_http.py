"""What the http store does beyond the contract: redirects, errors, TLS, secrets, config."""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
import urllib.parse
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import entry_points

import pytest

from tank import errors
from tank.config import build
from tank.errors import ConfigError
from tank.plugins import make_plugin_manager
from tank.testing import pattern
from tank_store_http import HttpBackend
from tank_store_http.location import HttpLocation

MiB = 1 << 20


def make(**config: object) -> HttpBackend:
    return HttpBackend(HttpBackend.Config(**config), name="web")


@pytest.fixture
def store() -> Iterator[HttpBackend]:
    backend = make(allow_private_networks=True, read_timeout=0.5, connect_timeout=2.0)
    yield backend
    backend.close()


@pytest.fixture
def image(server) -> tuple[str, bytes]:
    """The name of a 1 MiB + 3 file in the served directory, and its bytes."""
    data = pattern(MiB + 3, seed=42)
    name = f"{uuid.uuid4()}.img"
    (server.root / name).write_bytes(data)
    return name, data


def read(store: HttpBackend, url: str, offset: int = 0, length: int | None = None) -> bytes:
    with store.get(url, offset, length) as result:
        data = b"".join(result)
    assert len(data) == result.size
    return data


# --- reading ----------------------------------------------------------------------------


def test_redirects_are_followed(store, server, image) -> None:
    name, data = image
    url = server.url(f"redirect/3/files/{name}")
    assert hashlib.sha256(read(store, url)).digest() == hashlib.sha256(data).digest()
    assert read(store, url, 10, 5) == data[10:15]
    assert store.get_size(url) == len(data)


def test_redirect_limit(server, image) -> None:
    name, _ = image
    store = make(allow_private_networks=True, max_redirects=2)
    assert store.get_size(server.url(f"redirect/2/files/{name}")) == MiB + 3
    with pytest.raises(errors.StoreError, match="more than 2"):
        store.get_size(server.url(f"redirect/3/files/{name}"))
    with pytest.raises(errors.StoreError, match="redirected more than"):
        store.get(server.url("loop"))


def test_size_without_head_or_length_uses_a_one_byte_range(store, server, image) -> None:
    name, data = image
    for route in ("nohead", "nolength"):
        server.hits.clear()
        assert store.get_size(server.url(f"{route}/{name}")) == len(data)
        gets = [h for h in server.hits if h.method == "GET"]
        assert [h.headers.get("Range") for h in gets] == ["bytes=0-0"]


def test_server_ignoring_range_is_skipped_and_trimmed(store, server, image) -> None:
    name, data = image
    url = server.url(f"norange/{name}")
    with store.get(url, MiB, 2) as result:
        assert (result.size, result.total_size) == (2, len(data))
        assert b"".join(result) == data[MiB : MiB + 2]
    assert read(store, url, len(data) + 10) == b""


def test_truncated_body_is_an_error_not_short_data(store, server, image) -> None:
    name, _ = image
    with pytest.raises(errors.StoreUnavailable, match="of 1048579 bytes"):
        read(store, server.url(f"short/{name}"))


def test_closing_unread_result_releases_it(store, server, image) -> None:
    name, data = image
    for _ in range(15):  # more than the connection pool holds
        store.get(server.url(f"files/{name}")).close()
    assert read(store, server.url(f"files/{name}"), 0, 4) == data[:4]


def test_concurrent_reads_share_one_store(store, server, image) -> None:
    name, data = image
    url = server.url(f"files/{name}")
    ranges = [(i * 100_000, 150_000) for i in range(8)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda r: read(store, url, *r), ranges))
    assert got == [data[o : o + n] for o, n in ranges]


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code,error",
    [
        (404, errors.NotFound),
        (410, errors.NotFound),
        (401, errors.Forbidden),
        (403, errors.Forbidden),
        (500, errors.StoreUnavailable),
        (503, errors.StoreUnavailable),
        (418, errors.StoreError),
    ],
)
def test_status_codes(store, server, code: int, error: type[Exception]) -> None:
    url = server.url(f"status/{code}")
    with pytest.raises(error, match=f"HTTP {code}"):
        store.get(url)
    if code not in (403,):  # a refused HEAD falls back to GET, which fails the same way
        with pytest.raises(error):
            store.get_size(url)


def test_unreachable_server_is_unavailable(store) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(errors.StoreUnavailable, match="refused"):
            store.get_size(f"http://127.0.0.1:{port}/x.img")


def test_slow_server_times_out(store, server, image) -> None:
    name, _ = image
    with pytest.raises(errors.StoreUnavailable, match=r"sent nothing for 0\.5s"):
        store.get(server.url(f"slow/{name}"))


def test_store_is_read_only(store, server, image) -> None:
    with pytest.raises(errors.ReadOnlyStore, match="x-image-meta-location"):
        store.open_writer("id", None)
    with pytest.raises(errors.ReadOnlyStore, match="read-only"):
        store.delete(server.url(f"files/{image[0]}"))
    assert (server.root / image[0]).exists()


# --- credentials in locations ---------------------------------------------------------------


def test_credentials_are_used_but_never_shown(store, server, image, caplog) -> None:
    name, data = image
    caplog.set_level(logging.DEBUG)
    good = f"http://tank:s3cret@127.0.0.1:{server.port}/auth/{name}"
    assert read(store, good, 0, 8) == data[:8]
    with pytest.raises(errors.Forbidden) as refused:
        store.get(good.replace("s3cret", "wrong-s3cret"))
    with pytest.raises(errors.NotFound) as missing:
        store.get(f"http://tank:s3cret@127.0.0.1:{server.port}/redirect/1/files/nope")
    for exc in (refused.value, missing.value):
        assert "s3cret" not in str(exc) and "s3cret" not in (exc.location or "")
        assert "tank:***@127.0.0.1" in str(exc)
    assert "s3cret" not in caplog.text


def test_credentials_stay_with_their_origin(store, server, image) -> None:
    name, _ = image
    target = server.url(f"files/{name}", host="localhost")
    url = f"http://tank:s3cret@127.0.0.1:{server.port}/to?url={target}"
    server.hits.clear()
    store.get_size(url)
    assert [("Authorization" in h.headers) for h in server.hits] == [True, False]


def test_no_credentials_from_the_operators_netrc(
    store, server, image, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """A user's location, or where it redirects, never gets the credentials Tank's own
    user keeps in ~/.netrc for that host."""
    name, data = image
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login op password op-secret\n"
                     "machine localhost login op password op-secret\n")  # fmt: skip
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    target = server.url(f"files/{name}", host="localhost")
    server.hits.clear()
    assert read(store, f"http://127.0.0.1:{server.port}/to?url={target}", 0, 4) == data[:4]
    assert server.hits and not any("Authorization" in h.headers for h in server.hits)


def test_a_partial_answer_must_cover_the_range_asked_for(store, server, image) -> None:  # type: ignore[no-untyped-def]
    name, data = image
    url = f"http://127.0.0.1:{server.port}/firstten/{name}"
    assert read(store, url, 0, 10) == data[:10]  # what it sends is what was asked
    for offset, length in ((500, 100), (5, 100), (5, None)):
        with pytest.raises(errors.StoreError, match=r"partial answer|short of"):
            read(store, url, offset, length)


def test_a_content_length_that_is_not_a_number_is_no_size(store, server) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(errors.TankError):
        store.get_size(f"http://127.0.0.1:{server.port}/oddlength")


def test_a_trickling_server_cannot_hold_a_size_lookup(server) -> None:  # type: ignore[no-untyped-def]
    """Each byte comes within read_timeout, but the whole answer takes 5 s: the lookup
    gives up at size_timeout."""
    store = make(allow_private_networks=True, read_timeout=0.5, size_timeout=1.0)
    server.trickled.clear()
    with pytest.raises(errors.StoreUnavailable, match="size_timeout"):
        store.get_size(f"http://127.0.0.1:{server.port}/trickle")
    assert server.paths()[-1] == "/trickle"
    assert not server.trickled.is_set()  # it gave up while the answer was still coming
    store.close()


# --- TLS ----------------------------------------------------------------------------------


def test_tls_with_ca_bundle(tls_server, tls_files, image) -> None:
    name, data = image
    store = make(allow_private_networks=True, ca_bundle=str(tls_files[0]))
    assert read(store, tls_server.url(f"files/{name}"), 5, 5) == data[5:10]


def test_tls_is_verified_by_default(tls_server, image) -> None:
    store = make(allow_private_networks=True)
    with pytest.raises(errors.StoreUnavailable, match="self-signed certificate"):
        store.get_size(tls_server.url(f"files/{image[0]}"))


def test_https_never_redirects_to_http(tls_server, tls_files, server, image) -> None:
    store = make(allow_private_networks=True, ca_bundle=str(tls_files[0]))
    server.hits.clear()
    plain = server.url(f"files/{image[0]}")
    with pytest.raises(errors.Forbidden, match="downgrade"):
        store.get(tls_server.url(f"to?url={plain}"))
    assert server.hits == []


# --- configuration and plugin ----------------------------------------------------------------


def test_config_from_a_section() -> None:
    config = build(
        HttpBackend.Config,
        {"allowed_hosts": ["images.example.com", "*.cdn.example.net", "192.0.2.0/24"]},
        where="tank.toml [stores.http]",
    )
    assert config.verify_tls and not config.allow_private_networks
    assert config.allowed_hosts == ("images.example.com", "*.cdn.example.net", "192.0.2.0/24")


@pytest.mark.parametrize(
    "uri",
    ["https://alice:Tr0ub4dor#3@images.example.com/x.img", "http://u:a?b@h/x", "http://u:p/w@h/x"],
)
def test_unencoded_passwords_are_refused_without_showing_them(uri: str) -> None:
    with pytest.raises(errors.BadLocation, match="percent-encoded") as info:
        HttpLocation.parse(uri)
    secret = uri.split(":", 2)[2].rsplit("@", 1)[0]
    assert secret not in str(info.value)


@pytest.mark.parametrize(
    "uri,host,port,path",
    [
        ("https://h:8443/images/v1@2.img", "h", 8443, "/images/v1@2.img"),
        ("http://h/search?q=a:b@c", "h", 80, "/search"),
        ("https://a%23b:c%3Fd@h/x", "h", 443, "/x"),
    ],
)
def test_urls_with_at_signs_elsewhere_still_parse(
    uri: str, host: str, port: int, path: str
) -> None:
    loc = HttpLocation.parse(uri)
    assert (loc.host, loc.port, urllib.parse.urlsplit(loc.url).path) == (host, port, path)


@pytest.mark.parametrize(
    "section,message",
    [
        ({"allowed_hosts": "example.com"}, " allowed_hosts: expected an array, got a string"),
        (
            {"allowed_hosts": ["a.example", 1]},
            " allowed_hosts[1]: expected a string, got an integer",
        ),
        (
            {"denied_hosts": ["not a host!"]},
            " denied_hosts: 'not a host!' is not a host name, *.domain, IP address or network",
        ),
        ({"max_redirects": -1}, " max_redirects: must be >= 0"),
        ({"connect_timeout": 5, "read_timeout": 0}, " read_timeout: must be > 0"),
        ({"verify_tls": "no"}, " verify_tls: expected a boolean, got a string"),
        (
            {"verify_tls": False, "ca_bundle": "/etc/ssl/ca.pem"},
            ": ca_bundle is set but verify_tls is false: choose one",
        ),
    ],
)
def test_bad_config_names_the_key(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build(HttpBackend.Config, section, where="tank.toml [stores.http]")
    assert str(info.value) == "tank.toml [stores.http]" + message


def test_missing_ca_bundle_file(tmp_path) -> None:
    with pytest.raises(errors.BadStoreConfig, match="ca_bundle"):
        make(ca_bundle=str(tmp_path / "nope.pem"))


def test_registered_through_entry_point_without_importing_requests() -> None:
    (entry_point,) = [ep for ep in entry_points(group="tank") if ep.name == "http"]
    plugins = make_plugin_manager(autoload=False, plugins=[("http", entry_point.load())])
    assert plugins.store_types()["http"] is HttpBackend
    code = (
        "import sys, tank_store_http.plugin\n"
        "assert 'requests' not in sys.modules and 'urllib3' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
