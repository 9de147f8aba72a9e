"""The SQL apply path made lean (issue 14 item 3), without weakening what it guarantees.

No timings here: each test pins a property the fast path relies on or keeps (the bytes that
run are the bytes checksummed, a SQL file's step does not go through SQLAlchemy's transaction
machinery yet stays atomic, the version row's text format), against real SQLite files and the
embedded PostgreSQL.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from migrator import loader
from migrator.backends.sql import SqlBackend
from migrator.errors import LoaderError, MigrationFailed
from migrator.model import Direction, Migration


def noop(message: str) -> None:
    pass


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir()
    return folder


@pytest.fixture
def engine(sql_url: str) -> Iterator[sa.Engine]:
    made = sa.create_engine(sql_url)
    yield made
    made.dispose()


@pytest.fixture
def backend(engine: sa.Engine, migrations_dir: Path) -> Iterator[SqlBackend]:
    made = SqlBackend("main", engine, migrations_dir)
    yield made
    made.close()


@pytest.fixture
def sqlite_backend(tmp_path: Path, migrations_dir: Path) -> Iterator[tuple[SqlBackend, sa.Engine]]:
    made = sa.create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    with SqlBackend("main", made, migrations_dir) as backend:
        yield backend, made
    made.dispose()


def tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def apply_all(backend: SqlBackend, migrations: list[Migration], direction: Direction = Direction.UP) -> None:
    with backend.lock(10):
        backend.prepare()
        for migration in backend.load(migrations):
            backend.apply(migration, direction, noop)


def test_a_sql_file_edited_after_discovery_runs_the_bytes_that_were_checksummed(
        backend: SqlBackend, engine: sa.Engine, migrations_dir: Path) -> None:
    up = migrations_dir / "001_first.up.sql"
    up.write_text("CREATE TABLE discovered (id INTEGER PRIMARY KEY);\n")
    (migrations_dir / "001_first.down.sql").write_text("DROP TABLE discovered;\n")
    (migration,) = backend.discover()
    up.write_text("CREATE TABLE edited_meanwhile (id INTEGER PRIMARY KEY);\n")  # between discovery and loading

    apply_all(backend, [migration])

    found = tables(engine)
    assert "discovered" in found and "edited_meanwhile" not in found
    (record,) = backend.applied()
    assert record.checksum == migration.checksum  # the recorded checksum is that of what ran


def test_a_large_sql_file_is_read_again_when_loaded(backend: SqlBackend, engine: sa.Engine,
                                                     migrations_dir: Path) -> None:
    """Only small files keep their bytes in memory between discovery and loading; a large one is read again."""
    padding = "-- " + "x" * 1000 + "\n"
    up = migrations_dir / "001_big.up.sql"
    up.write_text(padding * 300 + "CREATE TABLE big (id INTEGER PRIMARY KEY);\n")
    (migration,) = backend.discover()
    up.write_text(padding * 300 + "CREATE TABLE big_edited (id INTEGER PRIMARY KEY);\n")

    apply_all(backend, [migration])

    assert "big_edited" in tables(engine)


def test_a_sql_file_step_does_not_go_through_sqlalchemys_transaction_events(
        sqlite_backend: tuple[SqlBackend, sa.Engine], migrations_dir: Path) -> None:
    """SQLite (on PostgreSQL the lock's check before each step is a SQLAlchemy transaction of its own)."""
    backend, engine = sqlite_backend
    (migrations_dir / "001_docs.up.sql").write_text(
        "CREATE TABLE docs (id INTEGER PRIMARY KEY);\nINSERT INTO docs (id) VALUES (1);\n")
    (migrations_dir / "001_docs.down.sql").write_text("DROP TABLE docs;\n")
    (migration,) = backend.load(backend.discover())
    seen: list[str] = []
    with backend.lock(10):
        backend.prepare()
        event.listen(engine, "begin", lambda conn: seen.append("begin"))
        event.listen(engine, "commit", lambda conn: seen.append("commit"))
        backend.apply(migration, Direction.UP, noop)
        during = list(seen)  # not what releasing the lock does

    assert during == []
    assert [r.version for r in backend.applied()] == [1]


def test_a_python_step_still_runs_in_sqlalchemys_transaction(sqlite_backend: tuple[SqlBackend, sa.Engine],
                                                              migrations_dir: Path) -> None:
    backend, engine = sqlite_backend
    (migrations_dir / "001_docs.py").write_text(
        "def up(db):\n    assert db.connection.in_transaction()\n    db.execute('CREATE TABLE docs (id INTEGER)')\n")
    (migration,) = backend.load(backend.discover())
    seen: list[str] = []
    with backend.lock(10):
        backend.prepare()
        event.listen(engine, "begin", lambda conn: seen.append("begin"))
        backend.apply(migration, Direction.UP, noop)
        during = list(seen)

    assert during == ["begin"]
    assert "docs" in tables(engine)


def test_a_sql_file_whose_version_row_fails_leaves_nothing_behind(backend: SqlBackend, engine: sa.Engine,
                                                                   migrations_dir: Path) -> None:
    """The driver-level transaction is still one transaction: body and version row commit together or not at all."""
    (migrations_dir / "001_docs.up.sql").write_text("CREATE TABLE docs (id INTEGER PRIMARY KEY);\n")
    with backend.lock(10):
        backend.prepare()
    with engine.begin() as conn:  # the version row's INSERT fails, after the body ran
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("CREATE TRIGGER refuse BEFORE INSERT ON migrations "
                                 "BEGIN SELECT RAISE(ABORT, 'no rows today'); END")
        else:
            conn.exec_driver_sql("CREATE FUNCTION refuse() RETURNS trigger AS "
                                 "$$ BEGIN RAISE EXCEPTION 'no rows today'; END $$ LANGUAGE plpgsql")
            conn.exec_driver_sql("CREATE TRIGGER refuse BEFORE INSERT ON migrations "
                                 "FOR EACH ROW EXECUTE FUNCTION refuse()")
    (migration,) = backend.load(backend.discover())

    with pytest.raises(MigrationFailed, match=r"recording version 1 in migrations failed: .*no rows today"), \
            backend.lock(10):
        backend.apply(migration, Direction.UP, noop)

    assert "docs" not in tables(engine)
    assert backend.applied() == []


def test_a_sql_file_step_works_again_after_a_failed_one(backend: SqlBackend, engine: sa.Engine,
                                                         migrations_dir: Path) -> None:
    (migrations_dir / "001_bad.up.sql").write_text("CREATE TABLE one (id INTEGER);\nSELECT * FROM missing_table;\n")
    (migrations_dir / "002_good.up.sql").write_text("CREATE TABLE two (id INTEGER);\n")
    bad, good = backend.load(backend.discover())
    with backend.lock(10):
        backend.prepare()
        with pytest.raises(MigrationFailed, match=r"001_bad\.up\.sql: statement 2 of 2 \(line 2\) failed"):
            backend.apply(bad, Direction.UP, noop)
        backend.apply(good, Direction.UP, noop)

    assert tables(engine) >= {"two"} and "one" not in tables(engine)
    assert [r.version for r in backend.applied()] == [2]


def test_a_sql_file_with_crlf_line_ends_runs_and_names_the_failing_line(backend: SqlBackend, engine: sa.Engine,
                                                                        migrations_dir: Path) -> None:
    (migrations_dir / "001_crlf.up.sql").write_bytes(
        b"CREATE TABLE a (id INTEGER);\r\n\r\nCREATE TABLE b (id INTEGER);\r\nSELECT * FROM nowhere;\r\n")
    (migration,) = backend.discover()

    with pytest.raises(MigrationFailed, match=r"statement 3 of 3 \(line 4\) failed"):
        apply_all(backend, [migration])

    assert not {"a", "b"} & tables(engine)


def test_a_sql_file_that_is_not_utf8_is_refused_naming_the_file_and_byte(backend: SqlBackend,
                                                                         migrations_dir: Path) -> None:
    path = migrations_dir / "001_latin1.up.sql"
    path.write_bytes(b"INSERT INTO t VALUES ('caf\xe9');\n")
    (migration,) = backend.discover()

    with pytest.raises(LoaderError) as caught:
        backend.load([migration])

    assert caught.value.message == f"{path}: is not UTF-8 text (invalid continuation byte at byte 26)"


def test_the_version_row_keeps_six_fraction_digits_when_the_microseconds_are_zero(
        tmp_path: Path, migrations_dir: Path) -> None:
    db = tmp_path / "app.db"
    (migrations_dir / "001_a.up.sql").write_text("CREATE TABLE a (id INTEGER);\n")
    with SqlBackend("main", f"sqlite:///{db}", migrations_dir) as backend:
        (migration,) = backend.load(backend.discover())
        with backend.lock(10):
            backend.prepare()
            with backend._handle.transaction(write=True) as conn:
                backend._books.record(conn, backend._handle.cursor, migration, 3,
                                      now=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    with sqlite3.connect(db) as conn:
        (stored,) = conn.execute("SELECT applied_at FROM migrations").fetchone()
    assert stored == "2026-01-02 03:04:05.000000"


def test_checksums_of_kept_bytes_match_the_files(backend: SqlBackend, migrations_dir: Path) -> None:
    up = migrations_dir / "001_a.up.sql"
    down = migrations_dir / "001_a.down.sql"
    up.write_bytes(b"\xef\xbb\xbfCREATE TABLE a (id INTEGER);\r\n")
    down.write_bytes(b"DROP TABLE a;\n")
    (migration,) = backend.discover()
    assert migration.checksum == loader.checksum(up, down)
    loaded: Any = backend.load([migration])[0].payload
    assert [s.text for s in loaded.up] == ["CREATE TABLE a (id INTEGER)"]


def test_a_sql_file_step_on_sqlite_sends_its_statements_plus_four(sqlite_backend: tuple[SqlBackend, sa.Engine],
                                                                  migrations_dir: Path) -> None:
    """Per step, beyond the floor's work (BEGIN, the file, the version row, COMMIT): one re-read of its own version
    under the lock. Counted with the driver's trace callback: nothing else reaches SQLite per step."""
    backend, _ = sqlite_backend
    for version in (1, 2, 3):
        (migrations_dir / f"00{version}_t{version}.up.sql").write_text(
            f"CREATE TABLE t{version} (id INTEGER PRIMARY KEY);\nCREATE INDEX ix{version} ON t{version} (id);\n")
    loaded = backend.load(backend.discover())
    sent: list[str] = []
    with backend.lock(10):
        backend.prepare()
        driver: Any = backend._handle.connection().connection.dbapi_connection
        driver.set_trace_callback(sent.append)
        for migration in loaded:
            backend.apply(migration, Direction.UP, noop)
        driver.set_trace_callback(None)

    kinds = [statement.split()[0].upper() for statement in sent]
    assert kinds == ["BEGIN", "SELECT", "CREATE", "CREATE", "INSERT", "COMMIT"] * 3
    assert [r.version for r in backend.applied()] == [1, 2, 3]


def test_discovery_opens_each_migration_file_once(backend: SqlBackend, migrations_dir: Path) -> None:
    """The readability check, the checksum and the kept bytes come from one open (audit events count every open)."""
    for version in range(1, 6):
        (migrations_dir / f"00{version}_m.up.sql").write_text(f"CREATE TABLE m{version} (id INTEGER);\n")
        (migrations_dir / f"00{version}_m.down.sql").write_text(f"DROP TABLE m{version};\n")
    (migrations_dir / "006_py.py").write_text("def up(db):\n    db.execute('CREATE TABLE p (id INTEGER)')\n")
    opened: list[str] = []
    counting = [True]

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if counting[0] and event == "open" and str(args[0]).startswith(str(migrations_dir)):
            opened.append(os.path.basename(args[0]))

    sys.addaudithook(hook)  # cannot be removed: it stops counting at the end of the test
    try:
        migrations = backend.discover()
    finally:
        counting[0] = False

    assert len(migrations) == 6
    assert sorted(opened) == sorted(p.name for p in migrations_dir.iterdir())


@pytest.mark.parametrize("app_froze", [False, True])
def test_importing_the_sql_adapter_runs_no_collection_and_leaves_the_collector_as_it_was(
        tmp_path: Path, app_froze: bool) -> None:
    """SQLAlchemy's import makes ~30,000 long-lived objects: collecting during it frees nothing. In a fresh process
    (the adapter is imported here already): no collection of any generation during the import (there were ~60, and a
    full one in a `migrator upgrade` of W(1000)), the collector enabled again
    afterwards, nothing left frozen by migrator, and objects an application froze stay frozen."""
    script = (
        "import gc, json, sys\n"
        "from migrator.backends import open_backend\n"
        "from migrator.config import load_dict\n"
        f"if {app_froze}:\n"
        "    gc.freeze()\n"
        "before = [s['collections'] for s in gc.get_stats()]\n"
        f"cfg = load_dict({{'backends': {{'db': {{'type': 'sql', 'url': 'sqlite:///{tmp_path}/app.db', "
        "'migrations': '.'}}})\n"
        "open_backend(cfg.backends['db']).full()\n"
        "assert 'sqlalchemy' in sys.modules\n"
        "after = [s['collections'] for s in gc.get_stats()]\n"
        "print(json.dumps([gc.isenabled(), after == before, gc.get_freeze_count() > 0]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    enabled, no_collection, frozen = json.loads(done.stdout)
    assert enabled and frozen == app_froze
    assert no_collection or app_froze  # an application's frozen objects stay put: the import's are collected as usual


def test_a_run_with_migrators_logger_disabled_makes_no_log_records(tmp_path: Path, migrations_dir: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """One record per event when an application shows them; none built when the logger is off (the default)."""
    import logging

    from migrator import Migrator, logsink

    for version in (1, 2, 3):
        (migrations_dir / f"00{version}_t.up.sql").write_text(f"CREATE TABLE t{version} (id INTEGER);\n")
        (migrations_dir / f"00{version}_t.down.sql").write_text(f"DROP TABLE t{version};\n")
    made: list[logging.LogRecord] = []
    original = logsink.log.makeRecord

    def counting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = original(*args, **kwargs)
        made.append(record)
        return record

    monkeypatch.setattr(logsink.log, "makeRecord", counting)
    config = {"backends": {"db": {"type": "sql", "url": f"sqlite:///{tmp_path / 'app.db'}",
                                  "migrations": str(migrations_dir)}}}
    monkeypatch.setattr(logsink.log, "level", logging.WARNING)
    logsink.log.manager._clear_cache()
    Migrator.from_dict(config).upgrade()
    off = len(made)
    monkeypatch.setattr(logsink.log, "level", logging.INFO)
    logsink.log.manager._clear_cache()
    Migrator.from_dict(config).rollback(0)

    assert off == 0
    assert [r.migrator_event for r in made] == ["plan"] + ["started", "done"] * 3  # type: ignore[attr-defined]
