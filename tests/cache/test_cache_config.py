"""``[cache]``: defaults, mistakes, and which stores are cached."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tank import config
from tank.errors import ConfigError
from tank.service import ImageService


def load(tmp_path: Path, text: str) -> config.TankConfig:
    path = tmp_path / "tank.toml"
    path.write_text(text)
    return config.load(path, data_dir=tmp_path / "data", environ={})


def test_defaults(tmp_path: Path) -> None:
    cfg = load(tmp_path, "")
    assert cfg.cache.enabled is False
    assert cfg.cache.dir == tmp_path / "data" / "cache"
    assert cfg.cache.max_size == 10 << 30 and cfg.cache.stall_time == 86400
    with ImageService.from_config(cfg) as service:
        assert service.cache is None and service.prefetcher is None


def test_file_stores_are_not_cached_by_default(tmp_path: Path) -> None:
    cfg = load(tmp_path, f'[cache]\nenabled = true\ndir = "{tmp_path}/c"\n')
    with ImageService.from_config(cfg) as service:
        assert service.cache is not None and service.cache.dir == tmp_path / "c"
        assert service.cached_stores == frozenset()
        assert (tmp_path / "c" / "entries").is_dir()


def test_stores_named_explicitly(tmp_path: Path) -> None:
    cfg = load(tmp_path, '[cache]\nenabled = true\nstores = ["file"]\n')
    with ImageService.from_config(cfg) as service:
        assert service.cached_stores == {"file"}


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("[cache]\nmax_size = 0\n", "[cache] max_size"),
        ("[cache]\nstall_time = -1\n", "[cache] stall_time"),
        ("[cache]\nsize = 1\n", "[cache] size: unknown key"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, said: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    assert said in str(info.value)


def test_unknown_store_is_named(tmp_path: Path) -> None:
    cfg = load(tmp_path, '[cache]\nenabled = true\nstores = ["swift"]\n')
    with pytest.raises(ConfigError) as info:
        ImageService.from_config(cfg)
    said = str(info.value)
    assert "[cache] stores" in said and "'swift'" not in said and "swift" in said
    assert "configured stores: file" in said


@pytest.mark.parametrize("delayed", [False, True])
def test_delete_evicts_also_with_delayed_delete(tmp_path: Path, delayed: bool) -> None:
    """In-process, caching the file store on purpose: a delete (pending_delete with
    ``delayed_delete``) removes the copy, and the restored image is not served stale."""
    from tank.model import Context

    cfg = load(
        tmp_path,
        f'[cache]\nenabled = true\nstores = ["file"]\n'
        f"[scrubber]\ndelayed_delete = {str(delayed).lower()}\n",
    )
    ctx = Context.admin()
    data = os.urandom(100_000)
    with ImageService.from_config(cfg) as service:
        assert service.cache is not None
        image = service.create(
            {"name": "c", "disk_format": "raw", "container_format": "bare"}, [data], context=ctx
        )
        with service.download(image.id, context=ctx)[1] as result:
            assert b"".join(result.chunks) == data
        assert service.cache.entry_path(image.id).read_bytes() == data
        service.delete(image.id, context=ctx)
        assert not service.cache.is_cached(image.id)
