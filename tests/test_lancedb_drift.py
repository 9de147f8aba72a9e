"""A LanceDB table whose data disagrees with table_migrations (restored or dropped by hand) is drift.

``status``, ``validate``, ``check`` and ``MigrationManager.validate()`` report
it, ``upgrade`` refuses it naming the table, its stamp and the recorded
version; a table that is merely ahead because a crash left its data committed
before its bookkeeping is not drift (the next upgrade settles it).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import lancedb
import pytest

from conftest import Project, lance_project
from migrator import MigrationManager
from migrator.lancedb import table_stamp

pytestmark = pytest.mark.lancedb

MEMOS = {
    "001_memos.py": '''
        import pyarrow as pa
        from migrator.lancedb import migration

        @migration(table="memos", version=1, description="create memos")
        def create(db):
            db.create_table("memos", data=pa.table({"id": pa.array([1, 2, 3], pa.int64())}))
    ''',
    "002_memos_title.py": '''
        import pyarrow as pa
        from migrator.lancedb import add_columns, migration

        @migration(table="memos", version=2, description="add memos.title")
        def add_title(db):
            add_columns(db, "memos", pa.field("title", pa.string()))
    ''',
}

THIRD = '''
    import pyarrow as pa
    from migrator.lancedb import add_columns, migration

    @migration(table="memos", version=3, description="add memos.body")
    def add_body(db):
        add_columns(db, "memos", pa.field("body", pa.string()))
'''


def lance_uri(p: Project) -> str:
    return str(p.root / "data" / "lance")


def recorded_lance_version(p: Project, version: int) -> int:
    """The Lance version table_migrations recorded for memos after ``version``."""
    p.capsys.readouterr()
    result = p.cli("history", "--backend", "vec", "--json")
    rows = json.loads(result.out)["backends"][0]["history"]
    return int(next(r["lance_version"] for r in rows if r["line"] == "memos" and r["version"] == version))


@pytest.fixture
def migrated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Project:
    p = lance_project(tmp_path, capsys, MEMOS)
    assert p.cli("upgrade", "--backend", "vec").code == 0
    return p


def restore_by_hand(p: Project, version: int) -> None:
    table = lancedb.connect(lance_uri(p)).open_table("memos")
    table.restore(recorded_lance_version(p, version))


def drift_issues(p: Project) -> list[dict[str, object]]:
    result = p.cli("status", "--backend", "vec", "--json")
    assert result.code == 0, result.err
    issues: list[dict[str, object]] = json.loads(result.out)["backends"][0]["issues"]
    return [i for i in issues if i["kind"] == "drift"]


def test_a_table_restored_by_hand_is_drift_in_status_json(migrated: Project) -> None:
    restore_by_hand(migrated, 1)
    issues = drift_issues(migrated)
    assert [(i["line"], i["version"]) for i in issues] == [("memos", 2)]
    message = str(issues[0]["message"])
    assert "memos" in message and "v1" in message and "v2" in message


def test_validate_exits_1_on_a_table_restored_by_hand(migrated: Project) -> None:
    restore_by_hand(migrated, 1)
    result = migrated.cli("validate", "--backend", "vec")
    assert result.code == 1
    assert "drift" in result.out and "memos" in result.out
    assert "valid" not in result.out.splitlines()


def test_check_exits_1_on_a_table_restored_by_hand(migrated: Project) -> None:
    assert migrated.cli("check", "--backend", "vec").code == 0
    restore_by_hand(migrated, 1)
    result = migrated.cli("check", "--backend", "vec")
    assert result.code == 1
    assert "drift" in result.out


def test_upgrade_refuses_a_drifted_table_naming_stamp_recorded_version_and_the_way_out(migrated: Project) -> None:
    restore_by_hand(migrated, 1)
    (migrated.root / "migrations" / "vec" / "003_memos_body.py").write_text(textwrap.dedent(THIRD))
    before = lancedb.connect(lance_uri(migrated)).open_table("memos").version
    result = migrated.cli("upgrade", "--backend", "vec")
    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert len(lines) == 1
    assert "memos" in lines[0] and "v1" in lines[0] and "v2" in lines[0]
    assert "migrator stamp 1 --table memos" in lines[0]
    table = lancedb.connect(lance_uri(migrated)).open_table("memos")
    assert table.version == before and "body" not in table.schema.names


def test_dry_run_refuses_a_drifted_table_too(migrated: Project) -> None:
    restore_by_hand(migrated, 1)
    result = migrated.cli("upgrade", "--backend", "vec", "--dry-run")
    assert result.code == 1
    assert "migrator stamp 1 --table memos" in result.err


def test_stamping_the_tables_true_version_clears_drift_and_upgrade_runs_the_rest(migrated: Project) -> None:
    restore_by_hand(migrated, 1)
    assert migrated.cli("stamp", "1", "--backend", "vec", "--table", "memos").code == 0
    assert drift_issues(migrated) == []
    assert migrated.cli("upgrade", "--backend", "vec").code == 0
    db = lancedb.connect(lance_uri(migrated))
    assert "title" in db.open_table("memos").schema.names
    assert table_stamp(db, "memos") == 2
    assert migrated.cli("check", "--backend", "vec").code == 0


def test_a_table_dropped_by_hand_is_drift_and_upgrade_refuses(migrated: Project) -> None:
    lancedb.connect(lance_uri(migrated)).drop_table("memos")
    issues = drift_issues(migrated)
    assert [(i["line"], i["version"]) for i in issues] == [("memos", 2)]
    assert "does not exist" in str(issues[0]["message"])
    assert migrated.cli("check", "--backend", "vec").code == 1
    result = migrated.cli("upgrade", "--backend", "vec")
    assert result.code == 1
    assert "migrator stamp 0 --table memos" in result.err


def test_stamp_0_after_a_drop_by_hand_lets_upgrade_create_the_table_again(migrated: Project) -> None:
    lancedb.connect(lance_uri(migrated)).drop_table("memos")
    assert migrated.cli("stamp", "0", "--backend", "vec", "--table", "memos").code == 0
    assert drift_issues(migrated) == []
    assert migrated.cli("upgrade", "--backend", "vec").code == 0
    assert table_stamp(lancedb.connect(lance_uri(migrated)), "memos") == 2


def test_data_ahead_of_the_bookkeeping_after_a_crash_is_not_drift(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    p = lance_project(tmp_path, capsys, MEMOS)
    assert p.cli("upgrade", "--backend", "vec", "--to", "1").code == 0
    # what a kill -9 after recreate_table's overwrite leaves: the data stamped v2, table_migrations at v1
    table = lancedb.connect(lance_uri(p)).open_table("memos")
    table.to_lance().update_schema_metadata({"migrator.version": "2"})
    assert drift_issues(p) == []
    assert p.cli("upgrade", "--backend", "vec").code == 0
    assert drift_issues(p) == []


def test_a_stamp_two_versions_ahead_of_the_bookkeeping_is_drift(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    p = lance_project(tmp_path, capsys, {**MEMOS, "003_memos_body.py": THIRD})
    assert p.cli("upgrade", "--backend", "vec", "--to", "1").code == 0
    # v2 would run over data already at v3: not a crash the adapter can settle
    lancedb.connect(lance_uri(p)).open_table("memos").to_lance().update_schema_metadata({"migrator.version": "3"})
    assert [(i["line"], i["version"]) for i in drift_issues(p)] == [("memos", 1)]
    assert p.cli("upgrade", "--backend", "vec").code == 1


def test_stamp_up_writes_the_tables_stamp_so_a_baseline_is_not_drift(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    p = lance_project(tmp_path, capsys, MEMOS)
    assert p.cli("upgrade", "--backend", "vec", "--to", "1").code == 0
    lancedb.connect(lance_uri(p)).open_table("memos").add_columns({"title": "CAST(NULL AS STRING)"})
    assert p.cli("stamp", "2", "--backend", "vec", "--table", "memos").code == 0
    assert table_stamp(lancedb.connect(lance_uri(p)), "memos") == 2
    assert drift_issues(p) == []
    assert p.cli("check", "--backend", "vec").code == 0


def test_migration_manager_validate_reports_drift(migrated: Project) -> None:
    manager = MigrationManager(lance_uri(migrated), migrated.root / "migrations" / "vec")
    assert manager.validate().valid
    restore_by_hand(migrated, 1)
    result = manager.validate()
    assert not result.valid
    assert any("memos" in e and "v1" in e and "v2" in e for e in result.errors)


def test_a_table_restored_to_before_its_first_stamp_is_drift_until_stamped(migrated: Project) -> None:
    lancedb.connect(lance_uri(migrated)).open_table("memos").restore(1)  # the create commit, before the stamp
    issues = drift_issues(migrated)
    assert [(i["line"], i["version"]) for i in issues] == [("memos", 2)]
    assert "no migrator stamp" in str(issues[0]["message"])
    assert migrated.cli("stamp", "1", "--backend", "vec", "--table", "memos").code == 0
    assert table_stamp(lancedb.connect(lance_uri(migrated)), "memos") == 1
    assert drift_issues(migrated) == []
    assert migrated.cli("upgrade", "--backend", "vec").code == 0
    assert "title" in lancedb.connect(lance_uri(migrated)).open_table("memos").schema.names


def test_a_rollback_interrupted_after_its_restore_is_not_drift(migrated: Project) -> None:
    from migrator.backends.lancedb.bookkeeping import Bookkeeping, records_by_version

    db = lancedb.connect(lance_uri(migrated))
    books = Bookkeeping("table_migrations")
    record = records_by_version(books.read(db) or [])[("memos", 2)]
    # what a kill -9 leaves between a rollback's restore and its rolled_back row
    books.reverting(db, record, lance_version=db.open_table("memos").version, attempt="killed", detail="rollback")
    db.open_table("memos").restore(recorded_lance_version(migrated, 1))
    assert drift_issues(migrated) == []
    status = json.loads(migrated.cli("status", "--backend", "vec", "--json").out)
    assert status["backends"][0]["lines"][0]["current"] == 1


def test_drift_on_one_table_does_not_block_upgrading_another(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    notes = '''
        import pyarrow as pa
        from migrator.lancedb import migration

        @migration(table="notes", version=1, description="create notes")
        def create(db):
            db.create_table("notes", data=pa.table({"id": pa.array([1], pa.int64())}))
    '''
    p = lance_project(tmp_path, capsys, MEMOS)
    assert p.cli("upgrade", "--backend", "vec").code == 0
    restore_by_hand(p, 1)
    (p.root / "migrations" / "vec" / "003_notes.py").write_text(textwrap.dedent(notes))
    assert p.cli("upgrade", "--backend", "vec").code == 1
    result = p.cli("upgrade", "--backend", "vec", "--table", "notes")
    assert result.code == 0, result.err
    assert "notes" in lancedb.connect(lance_uri(p)).list_tables().tables
