"""Fixtures: a filesystem store in a temporary directory, in both of its write modes."""

from __future__ import annotations

from pathlib import Path


def _use_installed_package() -> None:
    """Make ``import tank_store_fs`` mean the installed package, not this folder.

    With ``--import-mode=importlib`` pytest imports this file as
    ``tank_store_fs.tests.conftest`` and registers the distribution folder
    ``tank_store_fs/`` as a stand-in namespace package of the same name, which hides
    ``src/tank_store_fs``. Drop the stand-in and import the real package.
    """
    import importlib
    import sys

    stand_in = sys.modules.get("tank_store_fs")
    if stand_in is not None and getattr(stand_in, "__file__", None) is None:
        del sys.modules["tank_store_fs"]
        importlib.import_module("tank_store_fs")


_use_installed_package()

import pytest  # noqa: E402

from tank_store_fs import FilesystemBackend  # noqa: E402


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
