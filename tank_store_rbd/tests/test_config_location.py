"""Locations, configuration and missing bindings: no Ceph cluster needed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from types import SimpleNamespace
from typing import Any

import pytest

from tank import errors
from tank.config import build, load
from tank.plugins import make_plugin_manager
from tank.stores import StoreSet
from tank_store_rbd import RBDBackend, plugin
from tank_store_rbd.location import RBDLocation

FSID = "e7f613a4-4442-4ee2-8cec-25feb691d200"


# --- locations ---------------------------------------------------------------------


def test_full_location_round_trip() -> None:
    uri = f"rbd://{FSID}/images/0b8c5b5e-1b8e-4a8e-9f5e-6d3c2a1b0c9d/snap"
    loc = RBDLocation.parse(uri)
    assert (loc.fsid, loc.pool, loc.image, loc.snapshot) == (
        FSID,
        "images",
        "0b8c5b5e-1b8e-4a8e-9f5e-6d3c2a1b0c9d",
        "snap",
    )
    assert not loc.legacy
    assert loc.to_uri() == uri
    assert loc.redacted() == uri


def test_legacy_short_location() -> None:
    loc = RBDLocation.parse("rbd://some-image")
    assert loc.legacy
    assert (loc.image, loc.pool, loc.snapshot) == ("some-image", None, None)
    assert loc.to_uri() == "rbd://some-image"


def test_components_are_quoted() -> None:
    loc = RBDLocation(image="a b/c", pool="my pool", fsid=FSID, snapshot="snap")
    assert loc.to_uri() == f"rbd://{FSID}/my%20pool/a%20b%2Fc/snap"
    assert RBDLocation.parse(loc.to_uri()) == loc


@pytest.mark.parametrize(
    "uri",
    ["rbd://", "rbd://a/b", "rbd://a//c/d", "rbd://a/b/c/d/e", "s3://bucket/key", "rbd:/x"],
)
def test_bad_locations(uri: str) -> None:
    with pytest.raises(errors.BadLocation):
        RBDLocation.parse(uri)


# --- configuration -----------------------------------------------------------------


def test_defaults_follow_glance() -> None:
    config = build(RBDBackend.Config, {}, where="tank.toml [stores.rbd]")
    assert config.pool == "images"
    assert config.chunk_size == 8 << 20
    assert config.features == ("layering",)


@pytest.mark.parametrize(
    "section, message",
    [
        ({"chunk_size": 3 << 20}, "chunk_size: must be a power of two"),
        ({"chunk_size": 64 << 20}, "chunk_size: must be from 4096 to 33554432"),
        ({"io_size": 1024}, "io_size: must be from 4096 to 33554432"),
        ({"io_size": 64 << 20}, "io_size: must be from 4096 to 33554432"),
        ({"queue_depth": 0}, "queue_depth: must be > 0"),
        ({"read_ahead": 1024}, "read_ahead: must be from 4096 to 268435456"),
        ({"op_timeout": 5, "connect_timeout": 0}, "connect_timeout: must be > 0"),
        ({"connect_timeout": "10"}, "connect_timeout: expected an integer, got a string"),
        ({"connect_timeout": True}, "connect_timeout: expected an integer, got a boolean"),
        ({"thin_provisioning": 1}, "thin_provisioning: expected a boolean, got an integer"),
        ({"features": ["layering", 1]}, "features[1]: expected a string, got an integer"),
        ({"features": ["layering", "object-map"]}, "features: object-map needs exclusive-lock"),
        (
            {"features": ["exclusive-lock"]},
            "features: must include layering, or compute hosts cannot clone images",
        ),
        (
            {"features": ["layering", "journaling"]},
            "features: unknown RBD feature 'journaling' (known: layering, exclusive-lock, "
            "object-map, fast-diff, deep-flatten)",
        ),
        (
            {"monitors": "x"},
            "monitors: unknown key (known keys: ceph_conf, chunk_size, connect_timeout, "
            "features, io_size, keyring, op_timeout, pool, queue_depth, read_ahead, "
            "thin_provisioning, user)",
        ),
    ],
)
def test_bad_config_names_the_key(section: dict[str, object], message: str) -> None:
    with pytest.raises(errors.ConfigError) as info:
        build(RBDBackend.Config, section, where="tank.toml [stores.rbd]")
    assert str(info.value) == f"tank.toml [stores.rbd] {message}"


def test_features_may_be_one_name() -> None:
    config = build(RBDBackend.Config, {"features": "layering"}, where="tank.toml [stores.rbd]")
    assert config.features == ("layering",)


# --- the bindings are not a pip dependency -------------------------------------------


def hide_bindings(monkeypatch: pytest.MonkeyPatch) -> None:
    # a None entry in sys.modules makes `import rados` raise ImportError
    monkeypatch.setitem(sys.modules, "rados", None)
    monkeypatch.setitem(sys.modules, "rbd", None)


def test_missing_bindings_say_how_to_install_them(monkeypatch: pytest.MonkeyPatch) -> None:
    hide_bindings(monkeypatch)
    with pytest.raises(errors.BadStoreConfig) as info:
        RBDBackend(RBDBackend.Config(pool="tank"))
    message = str(info.value)
    assert "rados" in message and "rbd" in message
    assert "python3-rados python3-rbd" in message
    assert "--system-site-packages" in message
    assert "ceph.sh python-link VENV" in message


def test_missing_bindings_stop_start_up_naming_the_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    hide_bindings(monkeypatch)
    path = f"{tmp_path}/tank.toml"
    with open(path, "w") as f:
        f.write('default_store = "ceph"\n[stores.ceph]\ntype = "rbd"\npool = "images"\n')
    plugins = make_plugin_manager(plugins=[("rbd", plugin)], autoload=False)
    with pytest.raises(errors.ConfigError) as info:
        StoreSet.from_config(load(path, environ={}), plugins)
    assert "[stores.ceph]" in str(info.value)
    assert "python3-rados" in str(info.value)


def test_plugin_registers_without_the_bindings() -> None:
    """`tank stores` must work on a host without Ceph's Python packages."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["rados"] = None
        sys.modules["rbd"] = None
        from tank.plugins import make_plugin_manager
        types = make_plugin_manager(autoload=True, environ={}).store_types()
        assert types["rbd"].__module__ == "tank_store_rbd.backend", types
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- read-ahead --------------------------------------------------------------------


class _Completion:
    def __init__(self, image: _Image, data: bytes, callback: Any) -> None:
        self._image, self._data, self._callback = image, data, callback

    def wait_for_complete_and_cb(self) -> None:
        if self._callback is not None:
            self._image.in_flight -= 1
            self._callback(self, self._data)
            self._callback = None

    def get_return_value(self) -> int:
        return len(self._data)


class _Image:
    """Answers aio reads from ``data``, counting the reads in flight."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.in_flight = self.most_in_flight = 0

    def aio_read(self, offset: int, length: int, callback: Any) -> _Completion:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        return _Completion(self, self.data[offset : offset + length], callback)


@pytest.mark.parametrize(
    "io_size, read_ahead, reads_in_flight",
    [(4096, 3 * 4096, 3), (4096, 3 * 4096 + 100, 3), (8192, 4096, 1)],
)
def test_reads_in_flight_are_bounded_by_read_ahead_bytes(
    io_size: int, read_ahead: int, reads_in_flight: int
) -> None:
    """A download holds about twice read_ahead (librbd's buffers and Tank's), whatever
    the image size: reads are submitted only as earlier ones are consumed."""
    from tank_store_rbd.reader import SnapshotReader

    data = bytes(range(256)) * 200  # 51,200 bytes: many reads
    image = _Image(data)
    backend = SimpleNamespace(
        name="rbd",
        config=SimpleNamespace(io_size=io_size, read_ahead=read_ahead),
        rbd=SimpleNamespace(Error=RuntimeError),
    )
    resources = SimpleNamespace(close=lambda: None)
    reader = SnapshotReader(backend, "rbd://x", image, 100, len(data), resources)  # type: ignore[arg-type]
    assert b"".join(reader) == data[100:]
    assert image.most_in_flight == reads_in_flight
