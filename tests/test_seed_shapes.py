"""The seed documents' shapes: ``MigrationRunner`` with a list of migrations or a ``sqlite3.Connection``;
``MigrationManager``'s ``get_migrations_for_table`` / ``get_latest_version`` / ``get_all_table_names``; wrong
argument types refused with one line naming the argument."""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import Project
from migrator import ConfigError, LoaderError, MigrationFailed, MigrationManager, MigrationRunner, MigratorError
from migrator.errors import UsageError

REPO = Path(__file__).resolve().parents[1]

SEED_LIST = [
    {"version": 1, "name": "create users", "up": "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT);",
     "down": "DROP TABLE users;"},
    {"version": 2, "name": "add name", "up_sql": "ALTER TABLE users ADD COLUMN name TEXT;\n"
                                                 "CREATE INDEX users_email ON users (email);",
     "down_sql": "DROP INDEX users_email; ALTER TABLE users DROP COLUMN name;"},
]


def columns(path: Path, table: str) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def recorded(path: Path) -> list[tuple[int, str]]:
    conn = sqlite3.connect(path)
    try:
        return [(r[0], r[1]) for r in conn.execute("SELECT version, name FROM migrations ORDER BY version")]
    finally:
        conn.close()


# -- MigrationRunner with the seed's list --------------------------------------------------------------------------

def test_run_migrations_takes_the_seeds_list(project: Project) -> None:
    runner = MigrationRunner(project.url)
    try:
        assert runner.run_migrations(SEED_LIST) == [1, 2]
        assert runner.get_current_version() == 2
        assert runner.run_migrations(SEED_LIST) == []
        assert runner.rollback(0, SEED_LIST) == [2, 1]
        assert runner.get_current_version() == 0
    finally:
        runner.close()


def test_a_list_given_to_the_constructor_serves_every_call(tmp_path: Path) -> None:
    runner = MigrationRunner(f"sqlite:///{tmp_path / 'app.db'}", SEED_LIST)
    try:
        assert runner.run_migrations(to=1) == [1]
        assert runner.run_migrations() == [2]
        assert runner.rollback(1) == [2]
    finally:
        runner.close()
    assert recorded(tmp_path / "app.db") == [(1, "create users")]


@dataclass
class SeedMigration:
    version: int
    name: str
    up: Any
    down: Any = None


def test_list_items_may_be_objects_with_functions_or_plain_tuples(tmp_path: Path) -> None:
    def add_column(db: Any) -> None:
        db.execute("ALTER TABLE users ADD COLUMN name TEXT")

    Item = namedtuple("Item", "version name up")
    items = [
        (1, "create users", "CREATE TABLE users (id INTEGER PRIMARY KEY)"),
        SeedMigration(2, "add name", add_column),
        Item(3, "add age", "ALTER TABLE users ADD COLUMN age INTEGER"),
    ]
    conn = sqlite3.connect(tmp_path / "app.db")
    try:
        assert MigrationRunner(conn).run_migrations(items) == [1, 2, 3]
    finally:
        conn.close()
    assert columns(tmp_path / "app.db", "users") == ["id", "name", "age"]


def test_an_item_edited_after_it_was_applied_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    MigrationRunner(url).run_migrations(SEED_LIST[:1])
    edited = [{**SEED_LIST[0], "up": "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, extra TEXT);"},
              SEED_LIST[1]]
    with pytest.raises(MigratorError, match=r"001_create users.*edited"):
        MigrationRunner(url).run_migrations(edited)
    assert recorded(tmp_path / "app.db") == [(1, "create users")]


def test_a_failing_list_item_changes_nothing_and_is_named(tmp_path: Path) -> None:
    items = [*SEED_LIST, {"version": 3, "name": "bad", "up": "CREATE TABLE t3 (id INTEGER); SELECT * FROM nowhere;"}]
    with pytest.raises(MigrationFailed, match=r"003_bad\.up\.sql: statement 2 of 2 \(line 1\) failed: no such "
                                              "table: nowhere"):
        MigrationRunner(f"sqlite:///{tmp_path / 'app.db'}").run_migrations(items)
    assert recorded(tmp_path / "app.db") == [(1, "create users"), (2, "add name")]
    assert "t3" not in {r[0] for r in sqlite3.connect(tmp_path / "app.db").execute(
        "SELECT name FROM sqlite_master")}


def test_two_items_with_one_version_are_refused_naming_both(tmp_path: Path) -> None:
    items = [SEED_LIST[0], {**SEED_LIST[1], "version": 1}]
    with pytest.raises(LoaderError, match=r"^MigrationRunner\.run_migrations: migrations\[0\] and migrations\[1\] "
                                          "both have version 1$"):
        MigrationRunner(f"sqlite:///{tmp_path / 'app.db'}").run_migrations(items)
    assert not (tmp_path / "app.db").exists()


def test_a_commit_inside_a_transactional_item_is_refused_before_anything_runs(tmp_path: Path) -> None:
    items = [{"version": 1, "name": "sneaky", "up": "CREATE TABLE a (id INTEGER); COMMIT;"}]
    with pytest.raises(LoaderError, match=r"migrations\[0\]: up: statement 2 is COMMIT"):
        MigrationRunner(f"sqlite:///{tmp_path / 'app.db'}").run_migrations(items)


@pytest.mark.parametrize(("item", "message"), [
    ({"version": "1", "name": "a", "up": "SELECT 1"}, r"migrations\[0\]: version must be a positive integer, not '1'"),
    ({"version": True, "name": "a", "up": "SELECT 1"}, r"migrations\[0\]: version must be a positive integer"),
    ({"version": 1, "name": "", "up": "SELECT 1"}, r"migrations\[0\]: name must be a non-empty string"),
    ({"version": 1, "name": "a"}, r"migrations\[0\]: has no up"),
    ({"version": 1, "name": "a", "up": "SELECT 1", "down": print}, r"migrations\[0\]: up and down must both be"),
    ((1, "a"), r"migrations\[0\]: a tuple must be \(version, name, up\)"),
    (42, r"migrations\[0\]: has no version"),
])
def test_a_malformed_item_is_one_line_naming_it(tmp_path: Path, item: Any, message: str) -> None:
    with pytest.raises(UsageError, match=r"^MigrationRunner\.run_migrations: " + message):
        MigrationRunner(f"sqlite:///{tmp_path / 'app.db'}").run_migrations([item])
    assert not (tmp_path / "app.db").exists()


# -- MigrationRunner with a sqlite3.Connection ---------------------------------------------------------------------

def test_a_sqlite3_connection_is_migrated_and_stays_open(sqlite_project: Project) -> None:
    sqlite_project.write("001_a.up.sql", "CREATE TABLE a (id INTEGER);\n")
    sqlite_project.write("001_a.down.sql", "DROP TABLE a;\n")
    conn = sqlite3.connect(sqlite_project.root / "app.db")
    try:
        runner = MigrationRunner(conn, sqlite_project.migrations)
        assert runner.run_migrations() == [1]
        runner.close()
        del runner
        conn.execute("INSERT INTO a VALUES (1)")  # the app's connection, still open, sees the table
        conn.commit()
        assert MigrationRunner(conn, sqlite_project.migrations).get_current_version() == 1
    finally:
        conn.close()


def test_an_in_memory_sqlite3_connection_is_migrated_in_place() -> None:
    conn = sqlite3.connect(":memory:")
    try:
        assert MigrationRunner(conn).run_migrations(SEED_LIST) == [1, 2]
        assert [r[1] for r in conn.execute("PRAGMA table_info(users)")] == ["id", "email", "name"]
        assert MigrationRunner(conn).rollback(1, SEED_LIST) == [2]
        assert [r[1] for r in conn.execute("PRAGMA table_info(users)")] == ["id", "email"]
    finally:
        conn.close()


def test_a_closed_sqlite3_connection_is_refused_naming_the_argument(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "app.db")
    conn.close()
    with pytest.raises(ConfigError, match=r"^MigrationRunner: url_or_engine: the sqlite3\.Connection cannot be "
                                          "used: Cannot operate on a closed database"):
        MigrationRunner(conn, tmp_path)


def test_a_path_object_is_a_sqlite_file(tmp_path: Path) -> None:
    folder = tmp_path / "odd #?% name"
    folder.mkdir()
    runner = MigrationRunner(folder / "app.db")
    assert runner.run_migrations(SEED_LIST) == [1, 2]
    runner.close()
    assert recorded(folder / "app.db") == [(1, "create users"), (2, "add name")]


# -- wrong argument types ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [42, None, b"sqlite://", ["sqlite://"]])
def test_a_wrong_database_argument_is_one_line_naming_it(tmp_path: Path, value: Any) -> None:
    with pytest.raises(ConfigError, match=r"^MigrationRunner: url_or_engine must be a database URL"):
        MigrationRunner(value, tmp_path)


@pytest.mark.parametrize("value", [42, {"version": 1}, b"migrations"])
def test_a_wrong_migrations_argument_is_one_line_naming_it(tmp_path: Path, value: Any) -> None:
    with pytest.raises(UsageError, match=r"^MigrationRunner: migrations_dir must be a folder"):
        MigrationRunner(f"sqlite:///{tmp_path / 'app.db'}", value)
    runner = MigrationRunner(f"sqlite:///{tmp_path / 'app.db'}")
    with pytest.raises(UsageError, match=r"^MigrationRunner\.run_migrations: migrations must be a folder"):
        runner.run_migrations(value)


def test_no_migrations_anywhere_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^MigrationRunner\.run_migrations: no migrations: pass a folder"):
        MigrationRunner(f"sqlite:///{tmp_path / 'app.db'}").run_migrations()


def test_a_wrong_rollback_target_is_one_line(tmp_path: Path) -> None:
    runner = MigrationRunner(f"sqlite:///{tmp_path / 'app.db'}", SEED_LIST)
    runner.run_migrations()
    with pytest.raises(UsageError, match=r"rollback target \[1\] \(list\) is neither"):
        runner.rollback([1])  # type: ignore[arg-type]
    assert runner.get_current_version() == 2


# -- MigrationManager's helpers ------------------------------------------------------------------------------------

pytest_lance = pytest.mark.lancedb


@pytest_lance
def test_manager_helpers_describe_the_declared_migrations(tmp_path: Path) -> None:
    manager = MigrationManager(str(tmp_path / "db"), REPO / "migrations" / "lancedb")
    names = manager.get_all_table_names()
    assert names[:2] == ["users", "notebooks"] and len(names) == len(set(names)) and "memos" in names
    memos = manager.get_migrations_for_table("memos")
    assert [m.version for m in memos] == [1, 2] and memos[1].name == "add tags to memos"
    assert all(m.line == "memos" for m in memos)
    assert manager.get_latest_version("memos") == 2
    assert manager.get_latest_version("nowhere") == 0 and manager.get_migrations_for_table("nowhere") == []
    assert not (tmp_path / "db").exists()  # describing the files touches no database


@pytest_lance
@pytest.mark.parametrize("value", [3, None, ""])
def test_manager_helpers_refuse_a_table_name_that_is_not_one(tmp_path: Path, value: Any) -> None:
    manager = MigrationManager(str(tmp_path / "db"), REPO / "migrations" / "lancedb")
    with pytest.raises(UsageError, match=r"^MigrationManager\.get_latest_version: table_name must be a table's name"):
        manager.get_latest_version(value)
    with pytest.raises(UsageError, match=r"^MigrationManager\.get_migrations_for_table: table_name must be"):
        manager.get_migrations_for_table(value)


@pytest_lance
@pytest.mark.parametrize(("args", "message"), [
    ((3, "m"), r"MigrationManager: uri must be a LanceDB URI \(a string or a path\) or a lancedb connection"),
    (("db", 3), r"MigrationManager: migrations_dir must be a folder"),
    (("db", ["m"]), r"MigrationManager: migrations_dir must be a folder"),
    (("db", "m", "yes"), r"MigrationManager: verbose must be True or False, not 'yes'"),
    (("db", "m", False, 1), r"MigrationManager: dry_run must be True or False, not 1"),
])
def test_manager_refuses_wrong_argument_types_naming_them(tmp_path: Path, args: tuple[Any, ...],
                                                          message: str) -> None:
    with pytest.raises(MigratorError, match="^" + message):
        MigrationManager(*args)


@pytest_lance
def test_manager_takes_the_apps_lancedb_connection(tmp_path: Path) -> None:
    import lancedb

    db = lancedb.connect(tmp_path / "db")
    manager = MigrationManager(db, REPO / "migrations" / "lancedb")
    status = manager.initialize()
    manager.close()
    assert status["memos"] == 2
    assert "memos" in db.list_tables().tables  # the app's connection, still usable
