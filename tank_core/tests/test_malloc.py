"""glibc tuning of the servers: the arena cap comes before any store starts threads."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tank import errors
from tank.cli import api as api_cli


def test_tank_api_caps_arenas_before_building_the_stores(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A thread keeps the arena of its first malloc: librados' threads, started when the
    rbd store connects, escaped a cap set later and held their own free memory."""
    calls: list[str] = []
    monkeypatch.setattr(api_cli.malloc, "limit_arenas", lambda: calls.append("limit_arenas"))

    def from_config(config: object) -> None:
        calls.append("stores")
        raise errors.BadStoreConfig("stop here")

    monkeypatch.setattr(api_cli.ImageService, "from_config", from_config)
    # one process (--workers 0): pre-forked workers inherit the cap their supervisor set
    # first thing, before it forked them (mallopt settings survive fork)
    result = CliRunner().invoke(api_cli.main, ["--data-dir", str(tmp_path), "--workers", "0"])
    assert "stop here" in result.output
    assert calls == ["limit_arenas", "stores"]
