"""The library logs through the standard ``logging`` module: one record per step and failure, no handler of its own,
and Alembic's own context announcements stay quiet."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from conftest import Project
from migrator import MigrationFailed, Migrator

UP = """\
def up(db):
    db.execute("CREATE TABLE t{n} (id INTEGER)")

def down(db):
    db.execute("DROP TABLE t{n}")
"""


def runner_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "migrator.runner"]


def test_each_step_logs_one_start_and_one_end_record_with_its_duration(
        project: Project, caplog: pytest.LogCaptureFixture) -> None:
    for n in (1, 2):
        project.write(f"00{n}_t{n}.py", UP.format(n=n))
    caplog.set_level(logging.INFO, logger="migrator")
    Migrator.from_config(project.root / "migrator.toml").upgrade()
    steps = [(r.migrator_event, r.migrator_version) for r in runner_records(caplog)  # type: ignore[attr-defined]
             if r.migrator_event in {"started", "done"}]  # type: ignore[attr-defined]
    assert steps == [("started", 1), ("done", 1), ("started", 2), ("done", 2)]
    done = [r for r in runner_records(caplog) if r.migrator_event == "done"]  # type: ignore[attr-defined]
    assert all(isinstance(r.migrator_duration_ms, int) for r in done)  # type: ignore[attr-defined]
    assert done[0].getMessage().startswith("db: applied 001_t1 in ")


def test_a_rollback_logs_reverting_and_reverted(project: Project, caplog: pytest.LogCaptureFixture) -> None:
    project.write("001_t1.py", UP.format(n=1))
    m = Migrator.from_config(project.root / "migrator.toml")
    m.upgrade()
    caplog.set_level(logging.INFO, logger="migrator")
    m.rollback(0, backend="db")
    messages = [r.getMessage() for r in runner_records(caplog)]
    assert "db: reverting 001_t1" in messages
    assert any(m.startswith("db: reverted 001_t1 in ") for m in messages)


def test_a_failed_step_logs_one_error_record_naming_the_migration(
        project: Project, caplog: pytest.LogCaptureFixture) -> None:
    project.write("001_bad.py", "def up(db):\n    db.execute('SELECT * FROM nowhere')\n")
    caplog.set_level(logging.INFO, logger="migrator")
    with pytest.raises(MigrationFailed):
        Migrator.from_config(project.root / "migrator.toml").upgrade()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].name == "migrator.runner" and errors[0].migrator_version == 1  # type: ignore[attr-defined]
    assert errors[0].getMessage().startswith("db: applying 001_bad failed: 001_bad.py")


def test_log_records_never_hold_the_password(project: Project, caplog: pytest.LogCaptureFixture) -> None:
    password = make_url(project.url).password
    if not password:
        pytest.skip("this database URL has no password")
    project.write("001_bad.py", "def up(db):\n    db.execute('SELECT * FROM nowhere')\n")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(MigrationFailed):
        Migrator.from_config(project.root / "migrator.toml").upgrade()
    assert caplog.records
    assert not [r.getMessage() for r in caplog.records if str(password) in r.getMessage()]


def test_the_library_installs_only_a_null_handler() -> None:
    handlers = logging.getLogger("migrator").handlers
    assert handlers and all(isinstance(h, logging.NullHandler) for h in handlers)


def test_an_app_without_logging_configured_prints_nothing_when_a_migration_fails(sqlite_project: Project) -> None:
    """Python's last-resort handler would print migrator's ERROR record on stderr; the NullHandler keeps it quiet."""
    sqlite_project.write("001_bad.py", "def up(db):\n    db.execute('SELECT * FROM nowhere')\n")
    script = textwrap.dedent(f"""\
        from migrator import MigrationFailed, Migrator
        try:
            Migrator.from_config({str(sqlite_project.root / "migrator.toml")!r}).upgrade()
        except MigrationFailed:
            print("failed as expected")
        """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout == "failed as expected\n"
    assert done.stderr == ""


def test_a_logging_filter_that_raises_does_not_stop_the_run(
        sqlite_project: Project, caplog: pytest.LogCaptureFixture) -> None:
    sqlite_project.write("001_t1.py", UP.format(n=1))

    def broken(record: logging.LogRecord) -> bool:
        raise RuntimeError("a broken filter")

    logger = logging.getLogger("migrator.runner")
    logger.addFilter(broken)
    try:
        results = Migrator.from_config(sqlite_project.root / "migrator.toml").upgrade()
    finally:
        logger.removeFilter(broken)
    assert [s.migration.version for s in results[0].steps] == [1]


ALEMBIC_OP = """\
import sqlalchemy as sa

def up(db):
    db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY)")
    db.op.add_column("notes", sa.Column("title", sa.Text()))

def down(db):
    db.op.drop_column("notes", "title")
    db.execute("DROP TABLE notes")
"""


def test_alembic_logs_nothing_when_a_library_run_uses_db_op(
        project: Project, caplog: pytest.LogCaptureFixture) -> None:
    project.write("001_notes.py", ALEMBIC_OP)
    caplog.set_level(logging.DEBUG)  # as an app with logging.basicConfig(level=DEBUG) would
    m = Migrator.from_config(project.root / "migrator.toml")
    m.upgrade()
    m.rollback(0, backend="db")
    assert [r.getMessage() for r in caplog.records if r.name.startswith("alembic")] == []
    assert any(r.name == "migrator.runner" for r in caplog.records)


def test_alembic_logs_nothing_in_a_cli_run(sqlite_project: Project, caplog: pytest.LogCaptureFixture) -> None:
    sqlite_project.write("001_notes.py", ALEMBIC_OP)
    caplog.set_level(logging.DEBUG)
    result = sqlite_project.cli("upgrade")
    assert result.code == 0, result.err
    assert "Will assume" not in result.out + result.err
    assert [r.getMessage() for r in caplog.records if r.name.startswith("alembic")] == []


def test_an_apps_own_alembic_context_still_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Only migrator's own context is quieted: Alembic used by the application keeps its records."""
    import sqlalchemy as sa
    from alembic.runtime.migration import MigrationContext

    from migrator.backends.sql.database import operations_for

    caplog.set_level(logging.INFO)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with engine.connect() as conn:
            operations_for(conn, "sqlite")
            MigrationContext.configure(connection=conn)
    finally:
        engine.dispose()
    assert len([r for r in caplog.records if "Will assume" in r.getMessage()]) == 1
