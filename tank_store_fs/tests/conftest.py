"""Fixtures: a filesystem store in a temporary directory, in both of its write modes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tank_store_fs import FilesystemBackend


class NamedTempBackend(FilesystemBackend):
    """The store as it runs where O_TMPFILE is unavailable: named ``.tank-tmp-*`` files."""

    use_tmpfile = False


MODES = {"tmpfile": FilesystemBackend, "named": NamedTempBackend}


def make_backend(
    datadir: Path, mode: str = "tmpfile", *, check: bool = True, **config: object
) -> FilesystemBackend:
    """A store on ``datadir``, started as Tank starts it (``check_writable``)."""
    cls = MODES[mode]
    backend = cls(cls.Config(datadir=str(datadir), **config), name="file")
    if check:
        backend.check_writable()
    return backend


def stored(datadir: Path) -> set[str]:
    """Every entry of the data directory, hidden temporary files included."""
    return set(p.name for p in datadir.iterdir()) if datadir.exists() else set()


@pytest.fixture(params=list(MODES) if FilesystemBackend.use_tmpfile else ["named"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def datadir(tmp_path: Path) -> Path:
    return tmp_path / "images"


@pytest.fixture
def backend(datadir: Path, mode: str) -> FilesystemBackend:
    return make_backend(datadir, mode)
