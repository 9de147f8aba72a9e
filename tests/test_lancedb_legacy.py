"""A database written by migrator 0.1 (one event-log table ``table_migrations``) is converted on its first run.

The fixture writes 0.1's layout directly: its schema and rows are copied here as data (from the 0.1 bookkeeping
module's docstring), so the test does not depend on the code that wrote them.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import textwrap
from pathlib import Path
from typing import Any

import lancedb
import pyarrow as pa
import pytest
from lance_scripts.testlib import assert_seed_view_true, backend, seed_view, write_files
from test_lancedb_crash import Kill, run_child

from conftest import Project, lance_project
from migrator.backends.lancedb.bookkeeping import Bookkeeping
from migrator.backends.lancedb.legacy import convert
from migrator.lancedb import table_stamp

pytestmark = pytest.mark.lancedb

# -- 0.1's layout, as data ------------------------------------------------------------------------------------------

OLD_SCHEMA = pa.schema([
    pa.field("tableName", pa.string()), pa.field("currentVersion", pa.int64()), pa.field("lastMigratedAt", pa.int64()),
    pa.field("event", pa.string()), pa.field("description", pa.string()), pa.field("checksum", pa.string()),
    pa.field("durationMs", pa.int64()), pa.field("lanceVersion", pa.int64()), pa.field("attempt", pa.string()),
    pa.field("detail", pa.string()),
])
T0 = 1_700_000_000_000


def old_row(table: str, version: int, at: int, event: str | None, **fields: Any) -> dict[str, Any]:
    row = {name: None for name in OLD_SCHEMA.names}
    row.update(tableName=table, currentVersion=version, lastMigratedAt=T0 + at, event=event, **fields)
    return row


def old_events(sums: dict[str, str], filler: int = 0) -> list[dict[str, Any]]:
    """A 0.1 log: a seed row, adopted rows (an unstamp expanded a seed row), runs that failed, a rollback, a stamp."""
    rows = [
        old_row("legacy_notes", 2, 0, None),                                      # the TypeScript tool's row
        old_row("people", 1, 1, "adopted", detail="adopted from the seed tool's row"),
        old_row("people", 2, 1, "adopted", detail="adopted from the seed tool's row"),
        old_row("notes", 1, 10, "started", description="create notes", checksum=sums["001"], attempt="a1"),
        old_row("notes", 1, 11, "applied", description="create notes", checksum=sums["001"], durationMs=5,
                lanceVersion=1, attempt="a1"),
        old_row("notes", 2, 20, "started", description="add a", checksum=sums["002"], lanceVersion=1, attempt="a2"),
        old_row("notes", 2, 21, "failed", description="add a", checksum=sums["002"], lanceVersion=3, attempt="a2",
                detail="RuntimeError: boom"),
        old_row("notes", 2, 30, "started", description="add a", checksum=sums["002"], lanceVersion=3, attempt="a3"),
        old_row("notes", 2, 31, "applied", description="add a", checksum=sums["002"], durationMs=7, lanceVersion=4,
                attempt="a3"),
        old_row("notes", 2, 40, "reverting", description="add a", checksum=sums["002"], lanceVersion=4, attempt="r1",
                detail="restore Lance version 3"),
        old_row("notes", 2, 41, "rolled_back", description="add a", checksum=sums["002"], durationMs=3, lanceVersion=5,
                attempt="r1"),
        old_row("notes", 2, 50, "started", description="add a", checksum=sums["002"], lanceVersion=5, attempt="a4"),
        old_row("notes", 2, 51, "applied", description="add a", checksum=sums["002"], durationMs=6, lanceVersion=6,
                attempt="a4"),
        old_row("tags", 1, 60, "stamped", description="create tags", checksum=sums["001"], lanceVersion=1,
                detail="stamped without running"),
    ]
    # a long-lived database: many failed attempts of a later migration (makes the copy take a while)
    for i in range(filler):
        rows.append(old_row("tags", 9, 100 + i, "started", description="never works", attempt=f"f{i}"))
        rows.append(old_row("tags", 9, 100 + i, "failed", description="never works", attempt=f"f{i}", detail="no"))
    return rows


FILES = {
    "001_init.py": '''
        import pyarrow as pa
        from migrator.lancedb import migration

        @migration(table="notes", version=1, description="create notes")
        def notes(db):
            db.create_table("notes", data=pa.table({"id": pa.array(range(3), pa.int64())}))

        @migration(table="tags", version=1, description="create tags")
        def tags(db):
            db.create_table("tags", data=pa.table({"id": pa.array([1], pa.int64())}))
    ''',
    "002_more.py": '''
        import pyarrow as pa
        from migrator.lancedb import migration, add_columns

        @migration(table="notes", version=2, description="add a")
        def a(db):
            add_columns(db, "notes", pa.field("a", pa.string()))

        @migration(table="notes", version=3, description="add b")
        def b(db):
            add_columns(db, "notes", pa.field("b", pa.string()))

        @migration(table="people", version=3, description="add email")
        def email(db):
            add_columns(db, "people", pa.field("email", pa.string()))
    ''',
}


FILES = {name: textwrap.dedent(text).lstrip() for name, text in FILES.items()}


def stamped(data: pa.Table, version: int | None) -> pa.Table:
    return data if version is None else data.replace_schema_metadata({"migrator.version": str(version)})


def checksums() -> dict[str, str]:
    """The sha256 of each migration file as written (what 0.1 stored): by file number."""
    return {name[:3]: hashlib.sha256(text.encode()).hexdigest() for name, text in FILES.items()}


def legacy_database(uri: Path, filler: int = 0) -> list[dict[str, Any]]:
    """Data tables as 0.1 left them (stamped where migrator ran them) and 0.1's ``table_migrations``."""
    db = lancedb.connect(str(uri))
    ids = pa.array(range(3), pa.int64())
    db.create_table("notes", data=stamped(pa.table({"id": ids, "a": pa.array([None] * 3, pa.string())}), 2))
    db.create_table("tags", data=stamped(pa.table({"id": pa.array([1], pa.int64())}), 1))
    db.create_table("people", data=pa.table({"id": ids}))
    db.create_table("legacy_notes", data=pa.table({"id": ids}))
    rows = old_events(checksums(), filler)
    db.create_table("table_migrations", data=pa.Table.from_pylist(rows, schema=OLD_SCHEMA))
    return rows


def event_keys(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """(table, version, event, attempt, time) of 0.1 rows; a seed row is an ``adopted`` event after conversion."""
    return [(r["tableName"], r["currentVersion"], r["event"] or "adopted", r["attempt"], r["lastMigratedAt"])
            for r in rows]


def history_keys(uri: Path) -> list[tuple[Any, ...]]:
    rows = lancedb.connect(str(uri)).open_table("table_migrations_history").to_arrow().to_pylist()
    return [(r["tableName"], r["version"], r["event"], r["attempt"], r["recordedAt"]) for r in rows]


def project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Project:
    return lance_project(tmp_path, capsys, FILES)


def test_status_reads_an_unconverted_database_and_changes_nothing(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    p = project(tmp_path, capsys)
    uri = p.root / "data" / "lance"
    legacy_database(uri)
    before = lancedb.connect(str(uri)).open_table("table_migrations").version
    (status,) = json.loads(p.cli("status", "--json", "--backend", "vec").out)["backends"]
    assert {line["line"]: line["current"] for line in status["lines"]} == {
        "legacy_notes": 2, "notes": 2, "people": 2, "tags": 1}
    db = lancedb.connect(str(uri))
    assert db.open_table("table_migrations").version == before
    assert "table_migrations_history" not in db.list_tables().tables


def test_first_upgrade_converts_keeping_every_event(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = project(tmp_path, capsys)
    uri = p.root / "data" / "lance"
    old = legacy_database(uri)
    assert p.cli("upgrade", "--backend", "vec").code == 0
    assert seed_view(uri) == {"legacy_notes": 2, "notes": 3, "people": 3, "tags": 1}
    assert_seed_view_true(uri)
    keys = history_keys(uri)
    assert keys[:len(old)] == event_keys(old)  # the whole 0.1 log, in order, once
    assert sorted((k[0], k[1], k[2]) for k in keys[len(old):]) == [
        ("notes", 3, "applied"), ("notes", 3, "started"), ("people", 3, "applied"), ("people", 3, "started")]
    db = lancedb.connect(str(uri))
    assert db.open_table("table_migrations").version > 1  # an overwrite: 0.1's log is still in Lance's history
    history = json.loads(p.cli("history", "--json", "--backend", "vec").out)["backends"][0]["history"]
    notes2 = next(h for h in history if (h["line"], h["version"]) == ("notes", 2))
    assert notes2["checksum"] == checksums()["002"] and notes2["lance_version"] == 6
    # rollback still finds the Lance version notes v3 started from (its started row is in the history)
    assert p.cli("rollback", "2", "--table", "notes").code == 0
    assert table_stamp(db, "notes") == 2 and seed_view(uri)["notes"] == 2


def test_a_copy_cut_short_is_finished_not_duplicated(tmp_path: Path) -> None:
    uri = tmp_path / "db"
    old = legacy_database(uri)
    db = lancedb.connect(str(uri))
    books = Bookkeeping("table_migrations")
    from migrator.backends.lancedb.bookkeeping import history_schema
    from migrator.backends.lancedb.legacy import legacy_rows

    db.create_table("table_migrations_history", schema=history_schema())
    books.add_events(db, legacy_rows(old)[:5])  # as if the 0.1 log grew after a first copy of five rows
    convert(db, books)
    convert(db, books)  # idempotent
    assert history_keys(uri) == event_keys(old)
    assert seed_view(uri) == {"legacy_notes": 2, "notes": 2, "people": 2, "tags": 1}


# -- kill -9 during the conversion ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def legacy_prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, float]:
    root = tmp_path_factory.mktemp("legacy")
    migrations = write_files(root / "migrations", FILES)
    base = root / "base"
    legacy_database(base, filler=400)
    calibration = root / "calibration"
    shutil.copytree(base, calibration)
    lines, _, duration = run_child(calibration, migrations, None)
    assert lines[-1] == "done", lines
    return base, migrations, duration


def legacy_trial(prepared: tuple[Path, Path, float], tmp_path: Path, delay: float) -> None:
    base, migrations, _ = prepared
    db = tmp_path / "db"
    shutil.copytree(base, db)
    old = lancedb.connect(str(db)).open_table("table_migrations").to_arrow().to_pylist()
    first, killed, _ = run_child(db, migrations, Kill("ready", delay))
    again, _, _ = run_child(db, migrations, None)
    assert again[-1] == "done", (first, again)
    keys = history_keys(db)
    assert keys[:len(old)] == event_keys(old), (first, killed)
    assert seed_view(db) == {"legacy_notes": 2, "notes": 3, "people": 3, "tags": 1}, (first, killed)
    assert_seed_view_true(db)
    b = backend(db, migrations)
    assert {(a.line, a.version) for a in b.applied() if not a.baseline} >= {("notes", 3), ("people", 3)}


# the conversion runs about 10-20 % into the child's run (after the lock), the migrations after it
@pytest.mark.parametrize("fraction", [0.08, 0.12, 0.16])
def test_kill_during_the_conversion(legacy_prepared: tuple[Path, Path, float], tmp_path: Path,
                                    fraction: float) -> None:
    legacy_trial(legacy_prepared, tmp_path, legacy_prepared[2] * fraction)


@pytest.mark.crash
@pytest.mark.parametrize("seed", range(30))
def test_kill_during_the_conversion_many(legacy_prepared: tuple[Path, Path, float], tmp_path: Path,
                                         seed: int) -> None:
    legacy_trial(legacy_prepared, tmp_path, random.Random(seed).uniform(0.0, 0.4 * legacy_prepared[2]))
