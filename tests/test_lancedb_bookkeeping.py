"""LanceDB bookkeeping: ``table_migrations`` exactly as the seed defines it, the history table beside it."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import lancedb
import pyarrow as pa
import pytest
from lance_scripts.testlib import assert_seed_view_true, backend, by_line, seed_view, upgrade, write_files

from conftest import Project, lance_project
from migrator.backends.lancedb import bookkeeping as bk
from migrator.backends.lancedb.bookkeeping import Bookkeeping, Row, now_ms
from migrator.backends.lancedb.common import open_table

pytestmark = pytest.mark.lancedb

NOTES = '''
    import pyarrow as pa
    from migrator.lancedb import migration

    @migration(table="notes", version=1, description="create notes")
    def create(db):
        db.create_table("notes", data=pa.table({"id": pa.array(range(5), pa.int64())}))

    @migration(table="people", version=1, description="create people")
    def people(db):
        db.create_table("people", data=pa.table({"id": pa.array([1], pa.int64())}))
'''

NOTES_2_4 = '''
    import pyarrow as pa
    from migrator.lancedb import migration, add_columns

    @migration(table="notes", version=2, description="add a")
    def two(db):
        add_columns(db, "notes", pa.field("a", pa.string()))

    @migration(table="notes", version=3, description="add b")
    def three(db):
        add_columns(db, "notes", pa.field("b", pa.string()))

    @migration(table="notes", version=4, description="add c")
    def four(db):
        add_columns(db, "notes", pa.field("c", pa.string()))
'''

FAILING_5 = '''
    from migrator.lancedb import migration, add_columns
    import pyarrow as pa

    @migration(table="notes", version=5, description="fails")
    def five(db):
        add_columns(db, "notes", pa.field("d", pa.string()))
        raise RuntimeError("boom")
'''


def project(tmp_path: Path, capsys: pytest.CaptureFixture[str], files: dict[str, str] | None = None) -> Project:
    return lance_project(tmp_path, capsys, files or {"001_notes.py": NOTES, "002_more.py": NOTES_2_4})


def lance_dir(p: Project) -> Path:
    return p.root / "data" / "lance"


def history(uri: Path, name: str = "table_migrations_history") -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = lancedb.connect(str(uri)).open_table(name).to_arrow().to_pylist()
    return rows


def test_table_migrations_is_the_seed_shape_after_upgrade_failure_and_rollback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = project(tmp_path, capsys)
    assert p.cli("upgrade").code == 0
    assert assert_seed_view_true(lance_dir(p)) == {"notes": 4, "people": 1}
    (p.root / "migrations" / "vec" / "003_fail.py").write_text(textwrap.dedent(FAILING_5))
    assert p.cli("upgrade").code == 1
    assert assert_seed_view_true(lance_dir(p)) == {"notes": 4, "people": 1}  # never the version that failed
    (p.root / "migrations" / "vec" / "003_fail.py").unlink()
    assert p.cli("rollback", "2", "--table", "notes").code == 0
    assert assert_seed_view_true(lance_dir(p)) == {"notes": 2, "people": 1}
    assert p.cli("rollback", "0", "--table", "people").code == 0
    assert assert_seed_view_true(lance_dir(p)) == {"notes": 2, "people": 0}  # dropped: its row says 0
    events = [(h["tableName"], h["version"], h["event"]) for h in history(lance_dir(p))]
    assert ("notes", 5, "failed") in events and ("notes", 4, "rolled_back") in events
    assert ("people", 1, "rolled_back") in events


def test_stamp_below_the_current_version_keeps_the_audit_trail(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    p = project(tmp_path, capsys)
    assert p.cli("upgrade").code == 0
    before = history(lance_dir(p))
    assert p.cli("stamp", "3", "--table", "notes").code == 0
    after = history(lance_dir(p))
    assert after[:len(before)] == before  # nothing deleted
    assert [(h["version"], h["event"]) for h in after[len(before):]] == [(4, "unstamped")]
    assert seed_view(lance_dir(p)) == {"notes": 3, "people": 1}
    (status,) = json.loads(p.cli("status", "--json", "--backend", "vec").out)["backends"]
    notes = next(line for line in status["lines"] if line["line"] == "notes")
    assert notes["current"] == 3 and [m["version"] for m in notes["pending"]] == [4]
    assert p.cli("stamp", "4", "--table", "notes").code == 0
    assert seed_view(lance_dir(p)) == {"notes": 4, "people": 1}
    assert [h["event"] for h in history(lance_dir(p))[len(after):]] == ["stamped"]


def test_a_crash_between_the_history_and_the_row_is_repaired_by_the_next_run(tmp_path: Path) -> None:
    migrations = write_files(tmp_path / "migrations", {"001_notes.py": NOTES})
    b = backend(tmp_path / "db", migrations)
    upgrade(b, to=1)
    db = lancedb.connect(str(tmp_path / "db"))
    books = Bookkeeping("table_migrations")
    # the history got notes v2's applied row, the process died before the table_migrations row was written
    books.add_events(db, [Row("notes", 2, now_ms(), bk.EVENT_STAMPED, "x", "c")])
    assert seed_view(tmp_path / "db") == {"notes": 1, "people": 1}  # one step behind, never ahead
    assert by_line(b.applied()) == {"notes": [1, 2], "people": [1]}  # migrator reads its history
    with b.lock(5.0):
        pass  # the next run takes the lock: the row catches up
    assert seed_view(tmp_path / "db") == {"notes": 2, "people": 1}


def test_the_row_write_commits_only_on_the_version_it_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    migrations = write_files(tmp_path / "migrations", {"001_notes.py": NOTES})
    b = backend(tmp_path / "db", migrations)
    db = lancedb.connect(str(tmp_path / "db"))
    real = Bookkeeping._overwrite
    calls: list[int] = []

    def racing(self: Bookkeeping, dataset: Any, records: list[dict[str, Any]]) -> None:
        calls.append(len(records))
        if len(calls) == 1:  # another tool adds its row between migrator's read and its commit
            db.open_table("table_migrations").add([{"tableName": "other", "currentVersion": 7,
                                                    "lastMigratedAt": 1_700_000_000_000}])
        real(self, dataset, records)

    monkeypatch.setattr(Bookkeeping, "_overwrite", racing)
    upgrade(b)
    assert len(calls) >= 3  # the first write was refused and redone
    assert seed_view(tmp_path / "db") == {"notes": 1, "people": 1, "other": 7}  # the other tool's row is kept


def test_history_table_is_named_after_the_version_table(tmp_path: Path) -> None:
    from migrator.backends.lancedb import LanceBackend

    migrations = write_files(tmp_path / "migrations", {"001_notes.py": NOTES})
    b = LanceBackend("vec", str(tmp_path / "db"), migrations, version_table="schema_versions")
    upgrade(b)
    names = set(lancedb.connect(str(tmp_path / "db")).list_tables().tables)
    assert {"schema_versions", "schema_versions_history"} <= names and "table_migrations" not in names
    assert seed_view(tmp_path / "db", version_table="schema_versions") == {"notes": 1, "people": 1}


def test_the_history_table_is_compacted_once_it_has_many_fragments(tmp_path: Path) -> None:
    migrations = write_files(tmp_path / "migrations", {"001_notes.py": NOTES})
    b = backend(tmp_path / "db", migrations)
    upgrade(b)
    db = lancedb.connect(str(tmp_path / "db"))
    books = Bookkeeping("table_migrations")
    for i in range(bk.COMPACT_FRAGMENTS):
        books.add_events(db, [Row("notes", 1, now_ms(), bk.EVENT_SYNCED, detail=f"filler {i}")])
    table = open_table(db, "table_migrations_history")
    assert table is not None
    rows = table.count_rows()
    assert len(table.to_lance().get_fragments()) >= bk.COMPACT_FRAGMENTS
    with b.lock(5.0):
        pass  # the next run under the lock compacts it
    table = open_table(db, "table_migrations_history")
    assert table is not None
    assert len(table.to_lance().get_fragments()) == 1 and table.count_rows() == rows
    assert by_line(b.applied()) == {"notes": [1], "people": [1]}


# -- date-style versions (section 4): reading costs O(rows), whatever the numbers ------------------------------------

DATED = '''
    import pyarrow as pa
    from migrator.lancedb import migration, add_columns

    @migration(table="docs", version=20240115, description="create docs")
    def create(db):
        db.create_table("docs", data=pa.table({"id": pa.array([1], pa.int64())}))

    @migration(table="docs", version=20240201, description="add title")
    def title(db):
        add_columns(db, "docs", pa.field("title", pa.string()))
'''


def dated_seed(uri: Path) -> None:
    """A database of the seed's tool at a date-style version."""
    db = lancedb.connect(str(uri))
    db.create_table("docs", data=pa.table({"id": pa.array([1, 2], pa.int64())}))
    db.create_table("table_migrations", data=pa.table({
        "tableName": ["docs"], "currentVersion": pa.array([20240115], pa.int64()),
        "lastMigratedAt": pa.array([1_705_300_000_000], pa.int64())}))


def test_a_date_style_adopted_version_is_one_baseline_entry(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    p = project(tmp_path, capsys, {"001_docs.py": DATED})
    dated_seed(lance_dir(p))
    out = p.cli("status", "--json", "--backend", "vec").out
    assert len(out) < 2000  # one baseline, not twenty million versions
    (status,) = json.loads(out)["backends"]
    (docs,) = status["lines"]
    assert (docs["current"], docs["baseline"], docs["applied"]) == (20240115, 20240115, [20240115])
    assert [m["version"] for m in docs["pending"]] == [20240201] and status["issues"] == []
    hist = json.loads(p.cli("history", "--json", "--backend", "vec").out)["backends"][0]["history"]
    assert [(h["version"], h["adopted"], h["baseline"]) for h in hist] == [(20240115, True, True)]
    assert p.cli("validate", "--backend", "vec").code == 0
    assert p.cli("upgrade", "--backend", "vec").code == 0
    assert seed_view(lance_dir(p)) == {"docs": 20240201}
    assert lancedb.connect(str(lance_dir(p))).open_table("docs").count_rows() == 2  # v20240115 did not re-run
    assert p.cli("check", "--backend", "vec").code == 0


def test_stamp_below_a_date_style_baseline_lands_on_a_real_version(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    files = {"001_docs.py": DATED.replace("20240115", "3").replace("20240201", "20240115")}
    p = project(tmp_path, capsys, files)
    dated_seed(lance_dir(p))
    assert p.cli("stamp", "3", "--table", "docs").code == 0
    assert seed_view(lance_dir(p)) == {"docs": 3}  # not 20240114, a version that never existed
    events = [(h["version"], h["event"]) for h in history(lance_dir(p))]
    assert events == [(20240115, "adopted"), (20240115, "unstamped"), (3, "baseline")]


def test_rollback_below_an_adopted_baseline_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = project(tmp_path, capsys, {"001_docs.py": DATED})
    dated_seed(lance_dir(p))
    assert p.cli("upgrade").code == 0
    result = p.cli("rollback", "0", "--table", "docs")
    assert result.code == 2 and "adopted" in result.err and "nothing was changed" in result.err, result
    assert seed_view(lance_dir(p)) == {"docs": 20240201}


def test_migration_manager_reads_date_style_versions_in_o_rows(tmp_path: Path) -> None:
    from migrator import MigrationManager

    migrations = write_files(tmp_path / "migrations", {"001_docs.py": DATED})
    dated_seed(tmp_path / "db")
    manager = MigrationManager(str(tmp_path / "db"), migrations)
    assert manager.get_status() == {"docs": 20240115}
    result = manager.validate()
    assert result.errors == ["docs: at version 20240115, latest is 20240201",
                             "docs: version gap, missing 1-20240114, 20240116-20240200"]


# -- the seed's TypeScript tool goes on beside migrator ---------------------------------------------------------------

BESIDE = '''
    import pyarrow as pa
    from migrator.lancedb import migration, add_columns

    @migration(table="docs", version=3, description="add c3")
    def c3(db):
        add_columns(db, "docs", pa.field("c3", pa.string()))

    @migration(table="docs", version=4, description="add c4")
    def c4(db):
        add_columns(db, "docs", pa.field("c4", pa.string()))

    @migration(table="docs", version=5, description="add c5")
    def c5(db):
        add_columns(db, "docs", pa.field("c5", pa.string()))

    @migration(table="notes", version=2, description="add n2")
    def n2(db):
        add_columns(db, "notes", pa.field("n2", pa.string()))
'''


def ts_tool_database(uri: Path) -> None:
    db = lancedb.connect(str(uri))
    db.create_table("docs", data=pa.table({"id": pa.array([1, 2], pa.int64())}))
    db.create_table("notes", data=pa.table({"id": pa.array([1], pa.int64())}))
    db.create_table("table_migrations", data=pa.table({
        "tableName": ["docs", "notes"], "currentVersion": pa.array([2, 1], pa.int64()),
        "lastMigratedAt": pa.array([1_700_000_000_000, 1_700_000_000_001], pa.int64())}))


def ts_tool_sets(uri: Path, table: str, version: int) -> None:
    """The seed's TypeScript tool recording a migration its own way: delete the table's row, add the new one."""
    books = lancedb.connect(str(uri)).open_table("table_migrations")
    books.delete(f"tableName = '{table}'")
    books.add(pa.table({"tableName": [table], "currentVersion": pa.array([version], pa.int64()),
                        "lastMigratedAt": pa.array([now_ms()], pa.int64())}))


def status_of(p: Project) -> dict[str, tuple[int, list[int]]]:
    (status,) = json.loads(p.cli("status", "--json", "--backend", "vec").out)["backends"]
    return {line["line"]: (line["current"], [m["version"] for m in line["pending"]]) for line in status["lines"]}


def test_migrator_and_the_seed_tool_read_each_others_versions(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    p = project(tmp_path, capsys, {"001_beside.py": BESIDE})
    uri = lance_dir(p)
    ts_tool_database(uri)
    assert p.cli("upgrade", "--backend", "vec", "--table", "docs", "--to", "3").code == 0
    assert seed_view(uri) == {"docs": 3, "notes": 1}  # the seed tool reads migrator's version
    # the seed tool runs its own v4 of docs
    lancedb.connect(str(uri)).open_table("docs").add_columns(pa.field("c4", pa.string()))
    ts_tool_sets(uri, "docs", 4)
    assert status_of(p) == {"docs": (4, [5]), "notes": (1, [2])}  # migrator reads the seed tool's version
    assert p.cli("upgrade").code == 0  # v4 is not run again (its column exists: it would fail)
    assert seed_view(uri) == {"docs": 5, "notes": 2}
    names = lancedb.connect(str(uri)).open_table("docs").schema.names
    assert names == ["id", "c3", "c4", "c5"]
    # the seed tool adds a table of its own; migrator's next write keeps its row
    ts_tool_sets(uri, "audit", 1)
    assert p.cli("rollback", "4", "--table", "docs").code == 0
    assert seed_view(uri) == {"docs": 4, "notes": 2, "audit": 1}
    events = [(h["tableName"], h["version"], h["event"]) for h in history(uri)]
    assert [e for e in events if e[2] == "adopted"] == [("docs", 2, "adopted"), ("notes", 1, "adopted"),
                                                        ("docs", 4, "adopted"), ("audit", 1, "adopted")]
    assert ("docs", 3, "applied") in events and ("docs", 5, "rolled_back") in events  # nothing of either lost


def test_a_seed_tool_row_below_migrators_version_is_taken_as_the_truth(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    p = project(tmp_path, capsys, {"001_beside.py": BESIDE})
    uri = lance_dir(p)
    ts_tool_database(uri)
    assert p.cli("upgrade").code == 0
    ts_tool_sets(uri, "docs", 3)  # the seed tool rolled docs back to 3 its own way
    assert status_of(p)["docs"] == (3, [4, 5])
    assert p.cli("stamp", "5", "--table", "docs").code == 0
    assert seed_view(uri) == {"docs": 5, "notes": 2}
    events = [(h["version"], h["event"]) for h in history(uri) if h["tableName"] == "docs"]
    assert (4, "unstamped") in events and (5, "unstamped") in events and events[-2:] == [(4, "stamped"),
                                                                                         (5, "stamped")]
