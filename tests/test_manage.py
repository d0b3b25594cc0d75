"""``tank-manage db upgrade`` against the real SQL registry."""

from __future__ import annotations

import uuid
from pathlib import Path

from click.testing import CliRunner

from tank.cli.manage import main
from tank.testing import require_env


def test_upgrade_embedded_sqlite(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["db", "upgrade", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    where = f"registry (sql sqlite:///{tmp_path}/registry.sqlite)"
    assert result.output.startswith(f"{where}: created the schema (revision ")
    assert (tmp_path / "registry.sqlite").exists()
    again = CliRunner().invoke(main, ["db", "upgrade", "--data-dir", str(tmp_path)])
    assert again.exit_code == 0, again.output
    assert again.output.startswith(f"{where}: nothing to do: the schema is at the newest")


def test_upgrade_remote_registry_has_nothing_to_do(tmp_path: Path) -> None:
    config = tmp_path / "tank.toml"
    config.write_text('[registry]\nurl = "http://127.0.0.1:9"\n')
    result = CliRunner().invoke(main, ["db", "upgrade", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert result.output == (
        "registry (http http://127.0.0.1:9): nothing to do here (this registry keeps no "
        "schema of its own)\n"
    )


def test_upgrade_postgresql(tmp_path: Path) -> None:
    import sqlalchemy as sa

    url = require_env("TANK_TEST_PG_URL")["TANK_TEST_PG_URL"]
    schema = f"manage_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        dsn = f"{url}?options=-csearch_path%3D{schema}"
        config = tmp_path / "tank.toml"
        config.write_text(f'[registry]\nconnection = "{dsn}"\n')
        args = ["db", "upgrade", "--config", str(config), "--data-dir", str(tmp_path)]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names(schema=schema))
        assert {"images", "image_properties", "image_members"} <= tables
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def test_bad_config_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "tank.toml"
    config.write_text('[registry]\ncolour = "red"\n')
    result = CliRunner().invoke(main, ["db", "upgrade", "--config", str(config)])
    assert result.exit_code == 1
    assert "colour" in result.output and "Traceback" not in result.output


def test_upgrade_says_from_which_revision(tmp_path: Path) -> None:
    import sqlalchemy as sa
    from alembic import command

    from tank_registry_sql import migrate

    engine = sa.create_engine(f"sqlite:///{tmp_path}/registry.sqlite", poolclass=sa.NullPool)
    with engine.begin() as conn:
        command.upgrade(migrate._alembic_config(conn), "0001")
    engine.dispose()
    result = CliRunner().invoke(main, ["db", "upgrade", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output.endswith(
        f": migrated the schema from revision 0001 to {migrate.head()}\n"
    ), result.output
