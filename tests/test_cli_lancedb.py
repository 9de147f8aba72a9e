"""The CLI and the seed-shaped MigrationManager on LanceDB backends, beside a SQLite one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import lancedb
import pytest
from lance_scripts.testlib import assert_seed_view_true

from conftest import Project, lance_project
from migrator import MigrationFailed, MigrationManager

pytestmark = pytest.mark.lancedb

REPO = Path(__file__).resolve().parent.parent

NOTES = '''\
import pyarrow as pa
from migrator.lancedb import migration, add_columns

@migration(table="notes", version=1, description="create notes")
def create_notes(db):
    db.create_table("notes", data=[{"id": i, "text": f"n{i}"} for i in range(50)])

@migration(table="people", version=1, description="create people")
def create_people(db):
    db.create_table("people", data=[{"id": 1, "name": "ann"}])
'''
NOTES_2 = '''\
import pyarrow as pa
from migrator.lancedb import migration, add_columns

@migration(table="notes", version=2, description="add summary")
def add_summary(db):
    add_columns(db, "notes", pa.field("summary", pa.string()))

@migration(table="people", version=2, description="add email")
def add_email(db):
    add_columns(db, "people", pa.field("email", pa.string()))
'''
BROKEN_PEOPLE = '''\
from migrator.lancedb import migration

@migration(table="people", version=2, description="broken")
def broken(db):
    raise RuntimeError("people exploded")

@migration(table="notes", version=2, description="fine")
def fine(db):
    db.open_table("notes").add(data=[{"id": 999, "text": "late"}])
'''


def versions(project: Project) -> dict[str, int]:
    """Each table's version by ``status --json``; the seed-shaped reader of table_migrations must see the same."""
    (backend,) = json.loads(project.cli("status", "--json", "--backend", "vec").out)["backends"]
    current = {line["line"]: line["current"] for line in backend["lines"]}
    if (project.root / "data" / "lance" / "table_migrations.lance").is_dir():
        view = assert_seed_view_true(project.root / "data" / "lance")
        assert view == {t: v for t, v in current.items() if v or t in view}, (view, current)
    return current


def test_upgrade_migrates_sqlite_and_lancedb_from_one_config(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    project = lance_project(tmp_path, capsys, {"001_init.py": NOTES, "002_more.py": NOTES_2})
    result = project.cli("upgrade")
    assert result.code == 0, result.err
    assert versions(project) == {"notes": 2, "people": 2}
    assert (project.root / "data" / "app.db").exists()
    status = project.cli("status")
    assert "notes" in status.out and "people" in status.out and "up to date" in status.out


def test_upgrade_of_one_table_leaves_the_others(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = lance_project(tmp_path, capsys, {"001_init.py": NOTES, "002_more.py": NOTES_2})
    assert project.cli("upgrade", "--backend", "vec", "--table", "notes").code == 0
    assert versions(project) == {"notes": 2, "people": 0}


def test_dry_run_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = lance_project(tmp_path, capsys, {"001_init.py": NOTES})
    result = project.cli("upgrade", "--backend", "vec", "--dry-run")
    assert result.code == 0 and "would apply notes v1 (create notes)" in result.out
    assert not (project.root / "data" / "lance").exists()


def test_failed_table_exits_1_naming_it_and_other_tables_still_run(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    project = lance_project(tmp_path, capsys, {"001_init.py": NOTES, "002_more.py": BROKEN_PEOPLE})
    result = project.cli("upgrade", "--backend", "vec", "--jobs", "1")
    assert result.code == 1
    assert "people" in result.err and "people exploded" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert versions(project) == {"notes": 2, "people": 1}


BROKEN_NOTES = NOTES + '''

@migration(table="notes", version=2, description="broken")
def broken(db):
    raise RuntimeError("no")
'''


@pytest.mark.parametrize(("flags", "people"), [(["--fail-fast"], 0), ([], 1)])
def test_fail_fast_stops_the_lines_not_yet_started(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   flags: list[str], people: int) -> None:
    # with one job the lines run in name order: notes (fails at v2) before people
    project = lance_project(tmp_path, capsys, {"001_init.py": BROKEN_NOTES})
    result = project.cli("upgrade", "--backend", "vec", "--jobs", "1", *flags)
    assert result.code == 1
    assert versions(project) == {"notes": 1, "people": people}


def test_stamp_needs_a_table_and_records_without_running(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    project = lance_project(tmp_path, capsys, {"001_init.py": NOTES})
    assert project.cli("stamp", "1", "--backend", "vec").code == 2
    assert project.cli("stamp", "1", "--backend", "vec", "--table", "people").code == 0
    assert versions(project) == {"notes": 0, "people": 1}
    assert "people" not in lancedb.connect(project.root / "data" / "lance").list_tables().tables
    history = json.loads(project.cli("history", "--json", "--backend", "vec").out)["backends"][0]["history"]
    assert [(h["line"], h["version"]) for h in history] == [("people", 1)]


def test_check_and_validate_cover_lancedb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = lance_project(tmp_path, capsys, {"001_init.py": NOTES})
    assert project.cli("check", "--backend", "vec").code == 1
    project.cli("upgrade")
    assert project.cli("check").code == 0
    (project.root / "migrations" / "vec" / "001_init.py").write_text(NOTES + "\n# edited\n")
    result = project.cli("validate", "--backend", "vec")
    assert result.code == 1 and "edited" in result.out


def test_new_scaffolds_the_next_version_of_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = lance_project(tmp_path, capsys, {"001_init.py": NOTES})
    assert project.cli("new", "add tags", "--table", "notes").code == 0
    text = (project.root / "migrations" / "vec" / "002_add_tags.py").read_text()
    assert 'table="notes", version=2' in text


@pytest.mark.timeout(900)
def test_eight_concurrent_upgrades_apply_each_lancedb_migration_once(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    project = lance_project(tmp_path, capsys, {"001_init.py": NOTES, "002_more.py": NOTES_2})
    config = project.root / "migrator.toml"   # waiting is not under test: a loaded machine must not time it out
    config.write_text("lock_timeout = 600\n" + config.read_text())
    procs = [subprocess.Popen([sys.executable, "-m", "migrator", "upgrade", "--backend", "vec"], cwd=project.root,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(8)]
    outcomes = [(p.wait(timeout=900), p.stderr.read() if p.stderr else "") for p in procs]
    assert all(code == 0 for code, _ in outcomes), outcomes
    history = json.loads(project.cli("history", "--json", "--backend", "vec").out)["backends"][0]["history"]
    assert sorted((h["line"], h["version"]) for h in history) == [("notes", 1), ("notes", 2), ("people", 1),
                                                                   ("people", 2)]
    assert lancedb.connect(project.root / "data" / "lance").open_table("notes").count_rows() == 50


def test_the_demo_migrations_run_from_the_repository_config(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "demo"
    shutil.copytree(REPO / "migrations", root / "migrations")
    shutil.copytree(REPO / "seeds", root / "seeds")
    pyproject = (REPO / "pyproject.toml").read_text()
    (root / "pyproject.toml").write_text(pyproject[pyproject.index("[tool.migrator]"):pyproject.index(
        "[tool.pytest")])
    project = Project(root, "", capsys)
    assert project.cli("upgrade").code == 0
    status = json.loads(project.cli("status", "--json").out)
    lines = {b["name"]: {line["line"]: line["current"] for line in b["lines"]} for b in status["backends"]}
    assert lines["sqlite"] == {"": 3}
    assert lines["lancedb"]["memos"] == 2 and len(lines["lancedb"]) == 7


# -- the seed's MigrationManager ---------------------------------------------------------------------------------


def test_manager_initialize_runs_everything_and_reports_status(tmp_path: Path) -> None:
    manager = MigrationManager(str(tmp_path / "db"), REPO / "migrations" / "lancedb")
    status = manager.initialize()
    assert status["memos"] == 2 and status["users"] == 1
    assert manager.run() == []
    assert manager.validate().valid


def test_manager_dry_run_changes_nothing(tmp_path: Path) -> None:
    manager = MigrationManager(str(tmp_path / "db"), REPO / "migrations" / "lancedb", dry_run=True)
    planned = manager.run()
    assert ("memos", 2) in planned
    assert not (tmp_path / "db").exists() or lancedb.connect(tmp_path / "db").list_tables().tables == []


def test_manager_validate_reports_tables_behind(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "001_init.py").write_text(NOTES)
    manager = MigrationManager(str(tmp_path / "db"), folder)
    manager.initialize()
    (folder / "002_more.py").write_text(NOTES_2)
    result = manager.validate()
    assert not result.valid and any("notes: at version 1, latest is 2" in e for e in result.errors)


def test_manager_verbose_logs_each_step(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="migrator")
    MigrationManager(str(tmp_path / "db"), REPO / "migrations" / "lancedb", verbose=True).initialize()
    assert any("applied memos v2 (add tags to memos) in" in r.getMessage() for r in caplog.records)


def test_manager_run_raises_on_a_failed_migration(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "001_init.py").write_text(NOTES)
    (folder / "002_more.py").write_text(BROKEN_PEOPLE)
    with pytest.raises(MigrationFailed, match="people exploded"):
        MigrationManager(str(tmp_path / "db"), folder).initialize()


def test_status_lists_lancedb_lines_under_a_table_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = lance_project(tmp_path, capsys, {"001_init.py": NOTES})
    out = project.cli("status").out.splitlines()
    vec = next(i for i, line in enumerate(out) if line.startswith("vec (lancedb)"))
    sql = next(i for i, line in enumerate(out) if line.startswith("sql (sql)"))
    assert out[vec + 1].split()[:2] == ["table", "current"]
    assert out[sql + 1].split()[0] == "current"  # one line per database: no table column


def test_upgrade_backup_prints_each_tagged_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = lance_project(tmp_path, capsys, {"001_init.py": NOTES})
    assert project.cli("upgrade", "--backend", "vec").code == 0
    (project.root / "migrations" / "vec" / "002_more.py").write_text(NOTES_2)
    result = project.cli("upgrade", "--backend", "vec", "--backup")
    assert result.code == 0, result.err
    assert "vec: notes: tagged Lance version" in result.out and "vec: people: tagged Lance version" in result.out
    assert "vec: backup at tag migrator-backup-" in result.out
