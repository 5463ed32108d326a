"""The database: every table of the design, per-connection settings, migrations."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import hydrorl
from hydrorl.db import Base, Database, head_revision
from hydrorl.db.engine import alembic_config, create_engine

DESIGN_TABLES = {
    "hydro_system",
    "reservoir",
    "power_station",
    "upload",
    "forecast",
    "series_link",
    "time_data_series",
    "time_data_value",
    "project",
    "project_run",
    "project_run_start_volume",
    "agent",
    "train_step_data",
    "train_step_value",
    "evaluation_episode",
    "report_data",
    "report_value",
    "project_run_control",
    "agent_control",
}


def test_every_design_table_is_created_by_the_migration(db_path: Path) -> None:
    Database(f"sqlite:///{db_path}")
    with sqlite3.connect(db_path) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert names >= DESIGN_TABLES
    assert "alembic_version" in names


def test_migrations_match_the_models(db_path: Path) -> None:
    db = Database(f"sqlite:///{db_path}")
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_ui_read_paths_are_indexed(db_path: Path) -> None:
    Database(f"sqlite:///{db_path}")
    with sqlite3.connect(db_path) as conn:
        plan = " ".join(
            str(r)
            for r in conn.execute(
                "EXPLAIN QUERY PLAN SELECT value FROM time_data_value "
                "WHERE series_id = 1 ORDER BY step_index"
            )
        )
        assert "USING PRIMARY KEY" in plan and "TEMP B-TREE" not in plan
        plan = " ".join(
            str(r)
            for r in conn.execute(
                "EXPLAIN QUERY PLAN SELECT id, value FROM train_step_value "
                "WHERE data_id = 1 AND id > 10 ORDER BY id"
            )
        )
        assert "ix_train_step_value_data_id_id" in plan and "TEMP B-TREE" not in plan


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(db_path: Path) -> None:
    db = Database(f"sqlite:///{db_path}")
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    with pytest.raises(sa.exc.IntegrityError), db.write() as session:
        session.execute(
            sa.text(
                "INSERT INTO reservoir (system_id, position, name, min_volume_mm3, max_volume_mm3, "
                "inflow_factor) VALUES (999, 0, 'orphan', 0, 1, 1)"
            )
        )


def test_a_failed_write_block_leaves_nothing(wb: hydrorl.Workbench) -> None:
    from hydrorl.db import models

    with pytest.raises(RuntimeError), wb.database.write() as session:
        session.add(models.HydroSystem(name="half", description=""))
        session.flush()
        raise RuntimeError("boom")
    assert wb.systems().empty


def test_default_location_and_environment_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wb = hydrorl.connect()
    assert wb.url == f"sqlite:///{tmp_path / 'home' / 'hydrorl.db'}"
    assert (tmp_path / "home" / "hydrorl.db").is_file()
    other = tmp_path / "elsewhere" / "x.db"
    monkeypatch.setenv("HYDRORL_DATABASE_URL", f"sqlite:///{other}")
    assert hydrorl.connect().url == f"sqlite:///{other}"
    assert other.is_file()
    # An argument wins over the environment; a bare path means an SQLite file.
    third = tmp_path / "third.db"
    assert hydrorl.connect(str(third)).url == f"sqlite:///{third}"


def test_opening_an_older_database_upgrades_it(db_path: Path) -> None:
    url = f"sqlite:///{db_path}"
    revisions = [s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()]
    # Every revision, including an empty file (no revision at all), upgrades to head on open.
    for older in [None, *reversed(revisions)]:
        db_path.unlink(missing_ok=True)
        engine = create_engine(url)
        if older is not None:
            with engine.begin() as conn:
                command.upgrade(alembic_config(conn), older)
        engine.dispose()
        db = Database(url, upgrade=False)
        assert db.revision() == older
        db.dispose()
        assert Database(url).revision() == head_revision()


def test_a_database_from_a_newer_hydrorl_is_refused(db_path: Path) -> None:
    url = f"sqlite:///{db_path}"
    Database(url).dispose()
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'from_the_future'")
    with pytest.raises(hydrorl.HydroRLError, match="from_the_future"):
        Database(url)


def test_processes_opening_a_new_database_at_once_all_succeed(database_url: str) -> None:
    url = database_url
    code = f"import hydrorl; hydrorl.connect({url!r}).close()"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE) for _ in range(4)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    assert Database(url).revision() == head_revision()
