"""upgrade and rollback of plain SQL files on a SQLite file run through sqlite3, without SQLAlchemy.

The lean path (``readpath.SqliteFront`` with ``driver.SqliteDriver``) must write exactly what
``SqlBackend`` writes (the version table's definition and rows), refuse and fail in the same
words, and hand everything it does not take (Python migrations, files that run outside a
transaction, backups) to ``SqlBackend`` within the same run.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from test_sql_adapter import SAME_DATABASE
from test_sqlite_read_path import backend_config, cli, project

from conftest import write_config
from migrator.backends import open_backend
from migrator.backends.sql import SqlBackend, create
from migrator.backends.sql.readpath import SqliteFront
from migrator.errors import ConfigError, LockLost, LockTimeout
from migrator.model import Direction
from migrator.runner import Runner


def sql_project(root: Path, url: str = "sqlite:///app.db") -> Path:
    """Three plain SQL migrations (no Python file)."""
    mig = project(root, url)
    (mig / "002_title.py").unlink()
    (mig / "002_title.up.sql").write_text("ALTER TABLE notes ADD COLUMN title TEXT;\n")
    (mig / "002_title.down.sql").write_text("ALTER TABLE notes DROP COLUMN title;\n")
    (mig / "003_more.down.sql").write_text("DROP TABLE more;\n")
    return mig


def schema(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        query = "SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
        return conn.execute(query).fetchall()


def version_rows(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT id, version, name, checksum, typeof(applied_at), length(applied_at), "
                            "typeof(duration_ms) FROM migrations ORDER BY id").fetchall()


@pytest.mark.parametrize("command", [["upgrade"], ["upgrade", "--to", "2"], ["rollback", "1"], ["rollback", "0"]])
def test_upgrade_and_rollback_of_sql_files_import_neither_sqlalchemy_nor_alembic(tmp_path: Path,
                                                                                 command: list[str]) -> None:
    sql_project(tmp_path)
    if command[0] == "rollback":
        assert cli(tmp_path, "upgrade")[0] == 0
    code, output, loaded = cli(tmp_path, *command)
    assert code == 0, output
    assert loaded == []


def test_the_lean_path_writes_the_version_table_sqlalchemy_writes(tmp_path: Path) -> None:
    lean, full = tmp_path / "lean", tmp_path / "full"
    for root in (lean, full):
        root.mkdir()
        sql_project(root)
    assert cli(lean, "upgrade")[2] == []
    config = backend_config(full)
    backend = create(config)        # SqlBackend, as any URL the lean path cannot take gets it
    try:
        Runner(backend).upgrade()
    finally:
        backend.close()
    assert schema(lean / "app.db") == schema(full / "app.db")
    assert version_rows(lean / "app.db") == version_rows(full / "app.db")
    assert len(version_rows(lean / "app.db")) == 3


def test_a_plan_with_a_python_migration_runs_through_sqlalchemy_from_its_start(tmp_path: Path) -> None:
    mig = project(tmp_path)  # 001 SQL, 002 Python (db.op), 003 SQL
    (mig / "003_more.down.sql").write_text("DROP TABLE more;\n")
    code, output, loaded = cli(tmp_path, "upgrade")
    assert code == 0, output
    assert "sqlalchemy" in loaded      # the Python migration's db is SQLAlchemy's
    assert [row[1] for row in version_rows(tmp_path / "app.db")] == [1, 2, 3]
    assert "title" in dict(schema(tmp_path / "app.db"))["notes"]
    code, output, _ = cli(tmp_path, "rollback", "0")
    assert code == 0, output
    assert version_rows(tmp_path / "app.db") == []
    assert [name for name, _ in schema(tmp_path / "app.db")] == ["migrations"]


def test_a_failing_statement_is_worded_as_sqlalchemys_path_words_it_and_nothing_of_the_file_stays(
        tmp_path: Path) -> None:
    messages = []
    for name in ("lean", "full"):
        root = tmp_path / name
        root.mkdir()
        mig = sql_project(root)
        (mig / "003_more.up.sql").write_text("CREATE TABLE more (id INTEGER);\nINSERT INTO nowhere VALUES (1);\n")
        if name == "lean":
            code, output, loaded = cli(root, "upgrade")
            assert loaded == []
        else:
            backend = create(backend_config(root))
            try:
                result = Runner(backend).upgrade()
            finally:
                backend.close()
            code, output = 1, result.failures[0][1]
        assert code == 1
        messages.append(next(line for line in output.splitlines() if "nowhere" in line))
        assert [row[1] for row in version_rows(root / "app.db")] == [1, 2]
        assert "more" not in dict(schema(root / "app.db"))
    assert "statement 2 of 2 (line 2) failed: no such table: nowhere" in messages[0]
    assert messages[1] in messages[0]


def test_a_plan_with_a_file_that_runs_outside_a_transaction_runs_through_sqlalchemy(tmp_path: Path) -> None:
    mig = sql_project(tmp_path)
    (mig / "004_vacuum.up.sql").write_text("-- migrator: no-transaction\nVACUUM;\n")
    code, output, loaded = cli(tmp_path, "upgrade")
    assert code == 0, output
    assert "runs outside a transaction" in output
    assert "sqlalchemy" in loaded
    assert [row[1] for row in version_rows(tmp_path / "app.db")] == [1, 2, 3, 4]


def test_a_table_of_the_version_tables_name_that_is_not_migrators_is_refused_before_anything_runs(
        tmp_path: Path) -> None:
    sql_project(tmp_path)
    with sqlite3.connect(tmp_path / "app.db") as conn:
        conn.execute("CREATE TABLE migrations (id INTEGER, what TEXT)")
    backend = open_backend(backend_config(tmp_path))
    try:
        assert isinstance(backend, SqliteFront)
        with pytest.raises(ConfigError, match=r"'migrations' in .* is not a migrator version table"):
            backend.prepare()
    finally:
        backend.close()
    assert "notes" not in dict(schema(tmp_path / "app.db"))


def test_an_older_version_table_gets_the_columns_it_lacks(tmp_path: Path) -> None:
    sql_project(tmp_path)
    with sqlite3.connect(tmp_path / "app.db") as conn:
        conn.execute("CREATE TABLE migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, version INTEGER UNIQUE NOT NULL,"
                     " name TEXT NOT NULL, applied_at DATETIME DEFAULT CURRENT_TIMESTAMP)")
    code, output, loaded = cli(tmp_path, "upgrade")
    assert code == 0 and loaded == [], output
    with sqlite3.connect(tmp_path / "app.db") as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(migrations)")]
    assert columns[-2:] == ["checksum", "duration_ms"]
    assert [row[1] for row in version_rows(tmp_path / "app.db")] == [1, 2, 3]


def test_a_file_that_is_not_a_database_is_refused_in_sqlalchemys_words_and_left_as_it_was(tmp_path: Path) -> None:
    sql_project(tmp_path)
    junk = b"this is not a database" * 100
    (tmp_path / "app.db").write_bytes(junk)
    backend = create(backend_config(tmp_path))
    with pytest.raises(Exception) as full_error:
        backend.prepare()
    backend.close()
    code, output, _ = cli(tmp_path, "upgrade")
    assert code == 2
    assert str(full_error.value) in output
    assert (tmp_path / "app.db").read_bytes() == junk


def test_the_lean_lock_times_out_in_the_words_of_sqlalchemys_lock(tmp_path: Path) -> None:
    sql_project(tmp_path)
    config = backend_config(tmp_path)
    holder, lean, full = create(config), open_backend(config), create(config)
    try:
        assert isinstance(lean, SqliteFront)
        with holder.lock(5):
            with pytest.raises(LockTimeout) as lean_error, lean.lock(0.2):
                pass
            with pytest.raises(LockTimeout) as full_error, full.lock(0.2):
                pass
    finally:
        for backend in (holder, lean, full):
            backend.close()
    assert str(lean_error.value).replace("0.2 s", "") == str(full_error.value).replace("0.2 s", "")
    assert "being migrated by another process" in str(lean_error.value)


def test_a_step_another_process_applied_meanwhile_stops_the_run_without_running_it_again(tmp_path: Path) -> None:
    sql_project(tmp_path)
    backend = open_backend(backend_config(tmp_path))
    try:
        assert isinstance(backend, SqliteFront)
        migrations = backend.load(backend.discover())
        backend.prepare()
        with sqlite3.connect(tmp_path / "app.db") as conn:   # another process, the lock notwithstanding
            conn.execute("INSERT INTO migrations (version, name) VALUES (1, 'notes')")
        with pytest.raises(LockLost, match=r"version 1 is already recorded .* it was not run again"):
            backend.apply(migrations[0], Direction.UP, lambda message: None)
    finally:
        backend.close()
    assert "notes" not in dict(schema(tmp_path / "app.db"))


def test_a_backup_goes_to_sqlalchemy_and_the_run_goes_on_there(tmp_path: Path) -> None:
    sql_project(tmp_path)
    assert cli(tmp_path, "upgrade", "--to", "1")[0] == 0
    code, output, loaded = cli(tmp_path, "upgrade", "--backup")
    assert code == 0, output
    assert "sqlalchemy" in loaded
    assert len(list(tmp_path.glob("app.db.backup-*"))) == 1
    assert [row[1] for row in version_rows(tmp_path / "app.db")] == [1, 2, 3]


def test_a_python_step_applied_without_a_plan_check_is_handed_on_and_the_line_stays_one(tmp_path: Path) -> None:
    mig = sql_project(tmp_path)
    (mig / "004_py.py").write_text("def up(db):\n    db.execute('CREATE TABLE py (id INTEGER)')\n")
    backend = open_backend(backend_config(tmp_path))
    try:
        assert isinstance(backend, SqliteFront)
        migrations = backend.load(backend.discover())
        backend.prepare()
        for migration in migrations:          # the runner checks the plan first; a library caller may not
            backend.apply(migration, Direction.UP, lambda message: None)
        assert isinstance(backend._full, SqlBackend)
        assert [r.version for r in backend.applied()] == [1, 2, 3, 4]
    finally:
        backend.close()
    assert "py" in dict(schema(tmp_path / "app.db"))


def test_the_front_answers_as_sqlalchemy_once_it_handed_a_call_on(tmp_path: Path) -> None:
    sql_project(tmp_path)
    backend = open_backend(backend_config(tmp_path))
    try:
        assert isinstance(backend, SqliteFront)
        Runner(backend).upgrade(to=1)
        assert backend._full is None
        backend.record_checksums([])        # SqlBackend's: the front hands it on, and everything after it
        assert isinstance(backend._full, SqlBackend)
        assert [r.version for r in backend.applied()] == [1]
        Runner(backend).upgrade()
        assert [r.version for r in backend.applied()] == [1, 2, 3]
    finally:
        backend.close()


@pytest.mark.parametrize("name", ["migrations", "Migrations", "order", "schema_versions", "_v2", "v$"])
def test_the_version_table_name_is_quoted_as_sqlalchemy_quotes_it(name: str) -> None:
    import sqlalchemy as sa

    from migrator.backends.sql.driver import _RESERVED, quote_name

    preparer = sa.create_engine("sqlite://").dialect.identifier_preparer
    assert quote_name(name) == preparer.quote(name)
    assert preparer.reserved_words == _RESERVED


def test_a_sql_file_with_a_trigger_and_quoted_semicolons_runs_as_written(tmp_path: Path) -> None:
    mig = sql_project(tmp_path)
    (mig / "004_audit.up.sql").write_text(textwrap.dedent("""\
        CREATE TABLE audit (note TEXT);
        CREATE TRIGGER notes_audit AFTER INSERT ON notes BEGIN
          INSERT INTO audit VALUES ('a note; with a semicolon');
        END;
        INSERT INTO notes (body) VALUES ('x');
        """))
    code, output, loaded = cli(tmp_path, "upgrade")
    assert code == 0 and loaded == [], output
    with sqlite3.connect(tmp_path / "app.db") as conn:
        assert conn.execute("SELECT note FROM audit").fetchall() == [("a note; with a semicolon",)]


APP_WRITER = """
import pathlib, sqlite3, sys, time
db, stop, out = sys.argv[1:4]
conn = sqlite3.connect(db, timeout=60, isolation_level=None)   # every INSERT commits by itself
done = 0
while not pathlib.Path(stop).exists():
    conn.execute("INSERT INTO events (source) VALUES ('app')")
    done += 1
    pathlib.Path(out).write_text(str(done))   # written only once the row is committed
    time.sleep(0.002)
print(done)
"""


def test_an_application_writing_throughout_keeps_every_row_while_sql_files_apply_fail_and_roll_back(
        tmp_path: Path) -> None:
    mig = tmp_path / "migrations" / "db"
    mig.mkdir(parents=True)
    write_config(tmp_path, "sqlite:///app.db")
    (mig / "001_events.up.sql").write_text("CREATE TABLE events (id INTEGER PRIMARY KEY, source TEXT NOT NULL);\n")
    for n in range(2, 11):
        (mig / f"{n:03d}_t{n}.up.sql").write_text(f"CREATE TABLE t{n} (x INTEGER);\n"
                                                 f"INSERT INTO events (source) VALUES ('m{n}');\n")
        (mig / f"{n:03d}_t{n}.down.sql").write_text(f"DROP TABLE t{n};\nDELETE FROM events WHERE source = 'm{n}';\n")
    (mig / "011_broken.up.sql").write_text("CREATE TABLE t11 (x INTEGER);\nINSERT INTO nowhere VALUES (1);\n")
    assert cli(tmp_path, "upgrade", "--to", "1")[0] == 0
    stop, count = tmp_path / "stop", tmp_path / "count"
    app = subprocess.Popen([sys.executable, "-c", APP_WRITER, str(tmp_path / "app.db"), str(stop), str(count)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while not count.exists():          # the application is writing before migrator starts
            time.sleep(0.01)
        upgraded = cli(tmp_path, "upgrade")
        rolled_back = cli(tmp_path, "rollback", "1")
    finally:
        stop.touch()
        out, err = app.communicate(timeout=120)
    assert app.returncode == 0, err
    assert upgraded[0] == 1 and "011_broken.up.sql: statement 2 of 2 (line 2) failed" in upgraded[1]
    assert upgraded[2] == [] and rolled_back[2] == []          # the lean path, throughout
    assert rolled_back[0] == 0, rolled_back[1]
    with sqlite3.connect(tmp_path / "app.db") as conn:
        app_rows = conn.execute("SELECT count(*) FROM events WHERE source = 'app'").fetchone()[0]
        other_rows = conn.execute("SELECT count(*) FROM events WHERE source != 'app'").fetchone()[0]
    assert app_rows == int(out) > 0            # every row the application committed is there, none twice
    assert other_rows == 0                     # the migrations' own rows went with their rollback
    assert [row[1] for row in version_rows(tmp_path / "app.db")] == [1]
    assert [name for name, _ in schema(tmp_path / "app.db")] == ["events", "migrations"]


@pytest.mark.parametrize("holder_path, waiter_path", list(SAME_DATABASE.values()), ids=list(SAME_DATABASE))
def test_the_lean_lock_is_sqlalchemys_lock_however_the_path_to_the_database_is_written(
        tmp_path: Path, holder_path: str, waiter_path: str) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "x").mkdir()
    sqlite3.connect(tmp_path / "data" / "app.db").close()
    (tmp_path / "link.db").symlink_to(tmp_path / "data" / "app.db")
    (tmp_path / "linked").symlink_to(tmp_path / "data", target_is_directory=True)
    (tmp_path / "migrations" / "db").mkdir(parents=True)

    write_config(tmp_path, f"sqlite:///{tmp_path}/{holder_path}")
    holder = create(backend_config(tmp_path))             # SqlBackend ...
    write_config(tmp_path, f"sqlite:///{tmp_path}/{waiter_path}")
    waiter = open_backend(backend_config(tmp_path))       # ... and the lean front, on another spelling of the file
    try:
        assert isinstance(waiter, SqliteFront)
        with holder.lock(5), pytest.raises(LockTimeout, match="being migrated by another process"), \
                waiter.lock(0.3):
            pass
    finally:
        holder.close()
        waiter.close()
