"""`migrator rollback` on LanceDB: Lance time travel to the version each migration started from."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import lancedb
import pyarrow as pa
import pytest
from lance_scripts.testlib import assert_seed_view_true, backend, by_line
from lancedb.index import BTree

from conftest import Project, lance_project
from migrator.backends.lancedb.bookkeeping import EVENT_REVERTING, Bookkeeping, Row, now_ms
from migrator.lancedb import table_stamp
from migrator.model import Direction

pytestmark = pytest.mark.lancedb

NOTES = '''\
import pyarrow as pa
from migrator.lancedb import Index, migration, add_columns

@migration(table="notes", version=1, description="create notes", indices=[Index("id")])
def create_notes(db):
    db.create_table("notes", data=[{"id": i, "text": f"n{i}"} for i in range(50)])

@migration(table="notes", version=2, description="add summary")
def add_summary(db):
    add_columns(db, "notes", pa.field("summary", pa.string()))

@migration(table="notes", version=3, description="delete ten")
def delete_ten(db):
    db.open_table("notes").delete("id >= 40")

@migration(table="people", version=1, description="create people")
def create_people(db):
    db.create_table("people", data=[{"id": 1, "name": "ann"}])

@migration(table="people", version=2, description="add email")
def add_email(db):
    add_columns(db, "people", pa.field("email", pa.string()))
'''


def project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Project:
    return lance_project(tmp_path, capsys, {"001_notes.py": NOTES})


def db_of(p: Project) -> lancedb.DBConnection:
    return lancedb.connect(p.root / "data" / "lance")


def versions(p: Project) -> dict[str, int]:
    (status,) = json.loads(p.cli("status", "--json", "--backend", "vec").out)["backends"]
    return {line["line"]: line["current"] for line in status["lines"]}


def bookkeeping(p: Project) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = db_of(p).open_table("table_migrations_history").to_arrow().to_pylist()
    return rows


def test_rollback_restores_the_table_as_it_was_before_each_migration(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    p = project(tmp_path, capsys)
    assert p.cli("upgrade").code == 0
    result = p.cli("rollback", "1", "--table", "notes")
    assert result.code == 0, result.err
    assert "restored notes to Lance version" in result.out
    notes = db_of(p).open_table("notes")
    assert notes.schema.names == ["id", "text"] and notes.count_rows() == 50
    assert table_stamp(db_of(p), "notes") == 1
    assert {i.name for i in notes.list_indices()} == {"id_idx"}
    assert versions(p) == {"notes": 1, "people": 2}  # the other table's line is untouched


def test_rollback_to_zero_drops_a_table_its_first_migration_created(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    p = project(tmp_path, capsys)
    p.cli("upgrade")
    assert p.cli("rollback", "0", "--table", "people").code == 0
    assert "people" not in db_of(p).list_tables().tables
    assert versions(p) == {"notes": 3, "people": 0}


def test_rollback_without_a_table_undoes_every_line_above_the_target(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    p = project(tmp_path, capsys)
    p.cli("upgrade")
    assert p.cli("rollback", "1").code == 0
    assert versions(p) == {"notes": 1, "people": 1}
    assert "email" not in db_of(p).open_table("people").schema.names


def test_upgrade_after_a_rollback_runs_the_migrations_again_once(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    p = project(tmp_path, capsys)
    p.cli("upgrade")
    p.cli("rollback", "0")
    assert p.cli("upgrade").code == 0
    assert versions(p) == {"notes": 3, "people": 2}
    assert db_of(p).open_table("notes").count_rows() == 40
    history = json.loads(p.cli("history", "--json", "--backend", "vec").out)["backends"][0]["history"]
    assert sorted((h["line"], h["version"]) for h in history) == [
        ("notes", 1), ("notes", 2), ("notes", 3), ("people", 1), ("people", 2)]


def test_the_log_keeps_each_rollback_with_its_lance_versions(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    p = project(tmp_path, capsys)
    p.cli("upgrade")
    p.cli("rollback", "2", "--table", "notes")
    rows = [r for r in bookkeeping(p) if r["tableName"] == "notes" and r["version"] == 3]
    events = [r["event"] for r in rows]
    assert events == ["started", "applied", "reverting", "rolled_back"]
    assert rows[3]["lanceVersion"] == db_of(p).open_table("notes").version
    assert rows[2]["attempt"] == rows[3]["attempt"]
    assert assert_seed_view_true(p.root / "data" / "lance") == {"notes": 2, "people": 2}


def test_rollback_refuses_when_the_application_wrote_since_and_changes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = project(tmp_path, capsys)
    p.cli("upgrade")
    notes = db_of(p).open_table("notes")
    notes.add([{"id": 7, "text": "written by the app", "summary": None}])
    before = (notes.version, len(bookkeeping(p)))
    result = p.cli("rollback", "2", "--table", "notes")
    assert result.code == 1
    assert "notes has commits since notes v3 (delete ten) that restoring would discard" in result.err
    assert "(Append)" in result.err and "table.restore(" in result.err and "migrator stamp 2" in result.err
    assert (db_of(p).open_table("notes").version, len(bookkeeping(p))) == before
    assert versions(p)["notes"] == 3


def test_index_builds_and_undone_failures_since_do_not_block_a_rollback(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    p = project(tmp_path, capsys)
    p.cli("upgrade")
    db_of(p).open_table("notes").create_index("text", config=BTree())  # no rows change
    (p.root / "migrations" / "vec" / "002_broken.py").write_text(textwrap.dedent('''\
        import pyarrow as pa
        from migrator.lancedb import migration, add_columns

        @migration(table="notes", version=4, description="breaks after a change")
        def breaks(db):
            add_columns(db, "notes", pa.field("late", pa.string()))
            raise RuntimeError("boom")
        '''))
    assert p.cli("upgrade").code == 1  # restored to the version before it
    (p.root / "migrations" / "vec" / "002_broken.py").unlink()
    result = p.cli("rollback", "2", "--table", "notes")
    assert result.code == 0, result.err
    assert db_of(p).open_table("notes").count_rows() == 50


def test_a_stamped_version_cannot_be_rolled_back_and_nothing_changes(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    p = project(tmp_path, capsys)
    assert p.cli("upgrade", "--backend", "vec", "--table", "notes", "--to", "1").code == 0
    db_of(p).open_table("notes").add_columns(pa.schema([pa.field("summary", pa.string())]))  # done by hand
    assert p.cli("stamp", "2", "--table", "notes").code == 0
    assert p.cli("upgrade", "--backend", "vec", "--table", "notes").code == 0
    result = p.cli("rollback", "1", "--table", "notes")
    assert result.code == 2
    assert "notes v2 was stamped, not run by migrator: there is no state from before it to restore" in result.err
    assert "nothing was changed" in result.err
    assert versions(p)["notes"] == 3 and db_of(p).open_table("notes").count_rows() == 40  # v3 not undone either


def test_rollback_dry_run_lists_the_steps_and_changes_nothing(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    p = project(tmp_path, capsys)
    p.cli("upgrade")
    version = db_of(p).open_table("notes").version
    result = p.cli("rollback", "1", "--table", "notes", "--dry-run")
    assert "would roll back notes v3" in result.out and "would roll back notes v2" in result.out
    assert db_of(p).open_table("notes").version == version and versions(p)["notes"] == 3


def test_rollback_backup_tags_the_tables_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = project(tmp_path, capsys)
    p.cli("upgrade")
    assert p.cli("rollback", "2", "--table", "notes", "--backup").code == 0
    notes = db_of(p).open_table("notes")
    (tag,) = [t for t in notes.tags.list() if t.startswith("migrator-backup-")]
    notes.restore(tag)
    assert notes.count_rows() == 40  # the tag holds the state before the rollback


# -- interrupted rollbacks (the state a kill -9 leaves between the log rows and the restore) ------------------


def interrupted(tmp_path: Path, *, restored: bool, version: int = 3) -> tuple[Path, Path]:
    migrations = tmp_path / "m"
    migrations.mkdir()
    (migrations / "001_notes.py").write_text(NOTES)
    uri = tmp_path / "db"
    b = backend(uri, migrations)
    with b.lock(5):
        for m in sorted(b.discover(), key=lambda m: (m.line, m.version)):
            b.apply(m, Direction.UP, lambda _: None)
    db = lancedb.connect(uri)
    books = Bookkeeping("table_migrations")
    rows = books.read(db) or []
    started = next(r for r in rows if r.table == "notes" and r.version == version and r.event == "started")
    books.append(db, [Row("notes", version, now_ms(), EVENT_REVERTING, "x", None,
                          lance_version=db.open_table("notes").version, attempt="crashed")])
    if restored:
        db.open_table("notes").restore(started.lance_version)
    return uri, migrations


@pytest.mark.parametrize("restored", [False, True], ids=["before-the-restore", "after-the-restore"])
def test_an_interrupted_rollback_reads_as_the_version_the_table_really_has(tmp_path: Path, restored: bool) -> None:
    uri, migrations = interrupted(tmp_path, restored=restored)
    b = backend(uri, migrations)
    assert by_line(b.applied())["notes"] == ([1, 2] if restored else [1, 2, 3])
    assert table_stamp(lancedb.connect(uri), "notes") == (2 if restored else 3)


@pytest.mark.parametrize("restored", [False, True], ids=["before-the-restore", "after-the-restore"])
def test_the_next_run_settles_an_interrupted_rollback_and_continues(tmp_path: Path, restored: bool) -> None:
    uri, migrations = interrupted(tmp_path, restored=restored)
    b = backend(uri, migrations)
    with b.lock(5):
        (v3,) = [m for m in b.discover() if m.line == "notes" and m.version == 3]
        b.apply(v3, Direction.UP if restored else Direction.DOWN, lambda _: None)
    assert by_line(b.applied())["notes"] == ([1, 2, 3] if restored else [1, 2])
    table = lancedb.connect(uri).open_table("notes")
    assert table.count_rows() == (40 if restored else 50)
    events = [r.event for r in Bookkeeping("table_migrations").read(lancedb.connect(uri)) or []
              if r.attempt == "crashed"]
    assert events == [EVENT_REVERTING, "rolled_back" if restored else "failed"]


def test_an_interrupted_drop_is_finished_by_the_next_run(tmp_path: Path) -> None:
    uri, migrations = interrupted(tmp_path, restored=True)  # notes v3 rolled back (interrupted, settled below)
    b = backend(uri, migrations)
    steps = {m.version: m for m in b.discover() if m.line == "notes"}
    with b.lock(5):
        b.apply(steps[2], Direction.DOWN, lambda _: None)
    db = lancedb.connect(uri)
    # rolling back notes v1 (which created the table) died after its stamp-0 commit, before the drop
    Bookkeeping("table_migrations").append(db, [Row("notes", 1, now_ms(), EVENT_REVERTING, "x", None,
                                                    lance_version=db.open_table("notes").version,
                                                    attempt="dropping")])
    db.open_table("notes").to_lance().update_schema_metadata({"migrator.version": "0"})
    assert "notes" not in by_line(b.applied())  # the stamp says the rollback went through
    with b.lock(5):  # taking the lock settles: finishes the drop
        assert "notes" not in lancedb.connect(uri).list_tables().tables
        b.apply(steps[1], Direction.UP, lambda _: None)  # v1 runs again
    assert lancedb.connect(uri).open_table("notes").count_rows() == 50
    assert by_line(b.applied())["notes"] == [1]
    assert pa.types.is_int64(lancedb.connect(uri).open_table("notes").schema.field("id").type)
