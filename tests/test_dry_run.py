"""`--dry-run` refuses what the real command refuses, and changes nothing.

The dry run walks the real run's path (lock, bookkeeping, plan, loading, refusals) and stops before the first
change. Each check is run both ways: the dry run must exit with the real run's code. SQL cases run on SQLite and
PostgreSQL (the ``project`` fixture); LanceDB cases on a local folder.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lancedb
import pytest
from snapshots import assert_clean_error, snapshot

from conftest import Project, lance_project, write_config
from migrator.backends import open_backend
from migrator.config import load_config

CREATE_A = "CREATE TABLE a (id INTEGER);\n"


def base(project: Project) -> None:
    project.write("001_a.up.sql", CREATE_A)
    project.write("001_a.down.sql", "DROP TABLE a;\n")
    project.write("002_b.up.sql", "CREATE TABLE b (id INTEGER);\n")  # no down: irreversible
    assert project.cli("upgrade").code == 0


def both(project: Project, *command: str) -> tuple[str, str]:
    """The dry run and then the real run of ``command``: same exit code, one error line each, nothing changed."""
    before = snapshot(project.url) if project.url else None
    dry = project.cli(*command, "--dry-run")
    if before is not None:
        assert snapshot(project.url) == before
    real = project.cli(*command)
    assert dry.code == real.code != 0, (dry, real)
    assert "would" not in dry.out
    return assert_clean_error(dry, dry.code), assert_clean_error(real, real.code)


# --------------------------------------------------------------------------- SQL


def test_dry_run_rollback_over_a_migration_without_down_is_refused(project: Project) -> None:
    base(project)
    dry, real = both(project, "rollback", "0")
    assert "002_b.up.sql" in dry and "no down migration" in dry and dry == real


def test_dry_run_upgrade_over_an_edited_applied_file_is_refused(project: Project) -> None:
    base(project)
    (project.migrations / "001_a.up.sql").write_text(CREATE_A + "-- edited\n")
    project.write("003_c.up.sql", "CREATE TABLE c (id INTEGER);\n")
    dry, real = both(project, "upgrade")
    assert "001_a.up.sql" in dry and "--allow-changed" in dry and dry == real


def test_dry_run_upgrade_with_a_missing_applied_file_is_refused(project: Project) -> None:
    base(project)
    (project.migrations / "002_b.up.sql").unlink()
    project.write("003_c.up.sql", "CREATE TABLE c (id INTEGER);\n")
    dry, real = both(project, "upgrade")
    assert "file is missing" in dry and dry == real


def test_dry_run_upgrade_out_of_order_is_refused(project: Project) -> None:
    project.write("002_b.up.sql", "CREATE TABLE b (id INTEGER);\n")
    project.cli("upgrade")
    project.write("001_a.up.sql", CREATE_A)
    dry, real = both(project, "upgrade")
    assert "--allow-out-of-order" in dry and dry == real


def test_dry_run_rollback_with_a_missing_file_is_refused(project: Project) -> None:
    base(project)
    (project.migrations / "002_b.up.sql").unlink()
    dry, real = both(project, "rollback", "1")
    assert "file is missing" in dry and dry == real


def test_dry_run_upgrade_of_a_file_that_does_not_import_is_refused(project: Project) -> None:
    base(project)
    project.write("003_c.py", "def up(db):\n    return (\n")
    dry, real = both(project, "upgrade")
    assert "003_c.py" in dry and "syntax error" in dry and dry == real


def test_dry_run_upgrade_of_a_file_that_commits_itself_is_refused(project: Project) -> None:
    base(project)
    project.write("003_c.up.sql", "CREATE TABLE c (id INTEGER);\nCOMMIT;\n")
    dry, real = both(project, "upgrade")
    assert "003_c.up.sql" in dry and "COMMIT" in dry and dry == real


@contextmanager
def holding_the_lock(config: Path, backend: str) -> Iterator[None]:
    """Hold the backend's migration lock from another thread (another file description / session)."""
    cfg = load_config(config).backends[backend]
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        opened = open_backend(cfg)
        try:
            with opened.lock(10):
                held.set()
                release.wait(30)
        finally:
            opened.close()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(30)
        yield
    finally:
        release.set()
        thread.join()


def test_dry_run_waits_for_the_lock_like_the_real_run(project: Project) -> None:
    base(project)
    write_config(project.root, project.url, "lock_timeout = 0.3\n")
    project.write("003_c.up.sql", "CREATE TABLE c (id INTEGER);\n")
    with holding_the_lock(project.root / "migrator.toml", "db"):
        dry, real = both(project, "upgrade")
    assert "being migrated by another process" in dry and dry == real
    assert "would apply 003_c" in project.cli("upgrade", "--dry-run").out  # free again


@pytest.mark.postgres
def test_dry_run_upgrade_with_backup_on_postgresql_is_refused(tmp_path: Path, postgres_url: str,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "proj"
    (root / "migrations" / "db").mkdir(parents=True)
    write_config(root, postgres_url)
    project = Project(root, postgres_url, capsys)
    project.write("001_a.up.sql", CREATE_A)
    dry, real = both(project, "upgrade", "--backup")
    assert "--backup is available for SQLite only" in dry and dry == real


def test_dry_run_of_a_fresh_database_creates_nothing(sqlite_project: Project) -> None:
    sqlite_project.write("001_a.up.sql", CREATE_A)
    result = sqlite_project.cli("upgrade", "--dry-run")
    assert result.code == 0 and "would apply 001_a" in result.out
    assert sorted(p.name for p in sqlite_project.root.iterdir()) == ["migrations", "migrator.toml"]


# --------------------------------------------------------------------------- LanceDB

NOTES = '''\
import pyarrow as pa
from migrator.lancedb import migration, add_columns

@migration(table="notes", version=1, description="create notes")
def create_notes(db):
    db.create_table("notes", data=[{"id": i, "text": "n"} for i in range(5)])

@migration(table="notes", version=2, description="add summary")
def add_summary(db):
    add_columns(db, "notes", pa.field("summary", pa.string()))

@migration(table="notes", version=3, description="add tag")
def add_tag(db):
    add_columns(db, "notes", pa.field("tag", pa.string()))
'''


def lance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Project:
    return lance_project(tmp_path, capsys, {"001_notes.py": NOTES})


def notes(p: Project) -> lancedb.table.Table:
    return lancedb.connect(p.root / "data" / "lance").open_table("notes")


def lance_state(p: Project) -> tuple[int, int, int]:
    (status,) = json.loads(p.cli("status", "--json", "--backend", "vec").out)["backends"]
    table = notes(p)
    return status["lines"][0]["current"], int(table.version), table.count_rows()


@pytest.mark.lancedb
def test_lancedb_dry_run_rollback_over_rows_written_since_is_refused(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    p = lance(tmp_path, capsys)
    p.cli("upgrade")
    notes(p).add([{"id": 99, "text": "from the app", "summary": None, "tag": None}])
    before = lance_state(p)
    dry, real = both(p, "rollback", "1", "--table", "notes")
    assert "that restoring would discard" in dry and dry == real
    assert lance_state(p) == before


@pytest.mark.lancedb
def test_lancedb_rollback_over_rows_written_between_two_migrations_is_refused_before_the_first_step(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = lance(tmp_path, capsys)
    p.cli("upgrade", "--backend", "vec", "--to", "2")
    notes(p).add([{"id": 99, "text": "from the app", "summary": None}])
    p.cli("upgrade")
    before = lance_state(p)
    dry, real = both(p, "rollback", "1", "--table", "notes")
    assert "notes v2 (add summary)" in dry and "that restoring would discard" in dry and dry == real
    assert lance_state(p) == before  # v3 was not undone first


@pytest.mark.lancedb
def test_lancedb_dry_run_rollback_of_a_stamped_version_is_refused(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    p = lance(tmp_path, capsys)
    p.cli("upgrade", "--backend", "vec", "--to", "1")
    assert p.cli("stamp", "2", "--table", "notes").code == 0
    dry, real = both(p, "rollback", "1", "--table", "notes")
    assert "stamped" in dry and dry == real


@pytest.mark.lancedb
def test_lancedb_dry_run_rollback_of_a_dropped_table_is_refused(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    p = lance(tmp_path, capsys)
    p.cli("upgrade")
    lancedb.connect(p.root / "data" / "lance").drop_table("notes")
    dry, real = both(p, "rollback", "2", "--table", "notes")
    assert "notes no longer exists" in dry and dry == real


@pytest.mark.lancedb
def test_lancedb_dry_run_waits_for_the_lock_like_the_real_run(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    p = lance(tmp_path, capsys)
    p.cli("upgrade", "--backend", "vec", "--to", "1")
    config = p.root / "migrator.toml"
    config.write_text("lock_timeout = 0.3\n" + config.read_text())
    with holding_the_lock(config, "vec"):
        dry, real = both(p, "upgrade", "--backend", "vec")
    assert "holds the migration lock" in dry and dry == real


@pytest.mark.lancedb
def test_lancedb_dry_run_rollback_that_is_allowed_lists_the_steps_and_changes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = lance(tmp_path, capsys)
    p.cli("upgrade")
    before = lance_state(p)
    result = p.cli("rollback", "1", "--table", "notes", "--dry-run")
    assert result.code == 0, result.err
    assert "would roll back notes v3" in result.out and "would roll back notes v2" in result.out
    assert lance_state(p) == before
