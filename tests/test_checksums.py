"""Checksums name the file that changed: a pair stores ``sha256(up):sha256(down)``.

Editing only a ``.down.sql`` file was reported (and repaired) as an edit of the ``.up.sql`` file. Checksums
stored by migrator 0.1 (one sha256 over both files of a pair) still read as unchanged; when they differ the
message says honestly that either file may have changed, and ``validate --repair`` records the current form.
"""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa
from snapshots import snapshot

from conftest import Project, lance_project

UP = "CREATE TABLE a (id INTEGER);\n"
DOWN = "DROP TABLE a;\n"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pair(project: Project) -> tuple[Path, Path]:
    up, down = project.write("001_a.up.sql", UP), project.write("001_a.down.sql", DOWN)
    assert project.cli("upgrade").code == 0
    return up, down


def stored(project: Project) -> str:
    checksum: str = snapshot(project.url)["rows"][0][2]
    return checksum


def store(project: Project, checksum: str) -> None:
    """Write a checksum into the version table, as an older release would have."""
    engine = sa.create_engine(project.url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE migrations SET checksum = :c WHERE version = 1"), {"c": checksum})
    finally:
        engine.dispose()


def test_a_pair_stores_each_files_digest(project: Project) -> None:
    up, down = pair(project)
    assert stored(project) == f"{sha256(up)}:{sha256(down)}"


def test_editing_only_the_down_file_names_the_down_file(project: Project) -> None:
    _, down = pair(project)
    down.write_text("DROP TABLE IF EXISTS a;\n")
    result = project.cli("validate")
    assert result.code == 1
    assert "001_a.down.sql: version 1 (a) was edited" in result.out
    assert "001_a.up.sql" not in result.out


def test_editing_only_the_up_file_names_the_up_file(project: Project) -> None:
    up, _ = pair(project)
    up.write_text(UP + "-- note\n")
    result = project.cli("validate")
    assert result.code == 1
    assert "001_a.up.sql: version 1 (a) was edited" in result.out and "down.sql" not in result.out


def test_editing_both_files_names_both(project: Project) -> None:
    up, down = pair(project)
    up.write_text(UP + "-- note\n")
    down.write_text(DOWN + "-- note\n")
    assert "001_a.up.sql and 001_a.down.sql: version 1 (a) was edited" in project.cli("validate").out


def test_upgrade_refusal_names_the_edited_down_file(project: Project) -> None:
    _, down = pair(project)
    down.write_text("DROP TABLE IF EXISTS a;\n")
    project.write("002_b.up.sql", "CREATE TABLE b (id INTEGER);\n")
    result = project.cli("upgrade")
    assert result.code == 1 and "001_a.down.sql" in result.err and "001_a.up.sql" not in result.err


def test_repair_after_editing_the_down_file_names_it_and_records_both_digests(project: Project) -> None:
    up, down = pair(project)
    down.write_text("DROP TABLE IF EXISTS a;\n")
    result = project.cli("validate", "--repair")
    assert result.code == 0, result.out + result.err
    assert "recorded the new checksum of 001_a.down.sql" in result.out
    assert stored(project) == f"{sha256(up)}:{sha256(down)}"


def test_a_down_file_added_after_the_migration_was_applied_is_named(project: Project) -> None:
    project.write("001_a.up.sql", UP)
    project.cli("upgrade")
    project.write("001_a.down.sql", DOWN)
    result = project.cli("validate")
    assert result.code == 1 and "001_a.down.sql: version 1 (a) gained this down file" in result.out


def test_a_down_file_removed_after_the_migration_was_applied_is_named(project: Project) -> None:
    _, down = pair(project)
    down.unlink()
    result = project.cli("validate")
    assert result.code == 1 and "001_a.down.sql: version 1 (a) lost this down file" in result.out


# --------------------------------------------------------------------------- checksums stored by migrator 0.1


def legacy(up: Path, down: Path) -> str:
    return hashlib.sha256(up.read_bytes() + down.read_bytes()).hexdigest()


def test_a_pair_checksum_stored_by_the_released_version_still_validates(project: Project) -> None:
    up, down = pair(project)
    store(project, legacy(up, down))
    result = project.cli("validate")
    assert result.code == 0 and "valid" in result.out
    project.write("002_b.up.sql", "CREATE TABLE b (id INTEGER);\n")
    assert project.cli("upgrade").code == 0


def test_an_old_pair_checksum_that_differs_says_either_file_may_have_changed(project: Project) -> None:
    up, down = pair(project)
    store(project, legacy(up, down))
    down.write_text("DROP TABLE IF EXISTS a;\n")
    result = project.cli("validate")
    assert result.code == 1
    assert "001_a.up.sql or 001_a.down.sql: version 1 (a) was edited" in result.out
    assert "which one cannot be told" in result.out


def test_repair_rewrites_an_old_pair_checksum_in_the_current_form(project: Project) -> None:
    up, down = pair(project)
    store(project, legacy(up, down))
    assert project.cli("validate", "--repair").code == 0
    assert stored(project) == f"{sha256(up)}:{sha256(down)}"
    down.write_text("DROP TABLE IF EXISTS a;\n")
    assert "001_a.down.sql: version 1 (a) was edited" in project.cli("validate").out


def test_a_single_file_checksum_keeps_the_released_form(project: Project) -> None:
    path = project.write("001_a.py", "def up(db):\n    db.execute('CREATE TABLE a (id INTEGER)')\n")
    project.cli("upgrade")
    assert stored(project) == sha256(path)


# --------------------------------------------------------------------------- LanceDB: one file, several migrations

TWO = '''\
from migrator.lancedb import migration

@migration(table="notes", version=1, description="create notes")
def create_notes(db):
    db.create_table("notes", data=[{"id": 1}])

@migration(table="people", version=1, description="create people")
def create_people(db):
    db.create_table("people", data=[{"id": 1}])
'''


@pytest.mark.lancedb
def test_lancedb_edit_names_the_file_and_says_it_holds_several_migrations(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    p = lance_project(tmp_path, capsys, {"001_init.py": TWO})
    assert p.cli("upgrade", "--backend", "vec").code == 0
    path = p.root / "migrations" / "vec" / "001_init.py"
    path.write_text(path.read_text() + "# edited\n")
    result = p.cli("validate", "--backend", "vec")
    assert result.code == 1
    assert "001_init.py: notes v1 (create notes) was edited" in result.out
    assert "001_init.py: people v1 (create people) was edited" in result.out
    assert "holds 2 migrations" in result.out
    assert p.cli("validate", "--backend", "vec", "--repair").code == 0
    assert p.cli("validate", "--backend", "vec").code == 0
    (backend,) = json.loads(p.cli("history", "--backend", "vec", "--json").out)["backends"]
    assert {r["checksum"] for r in backend["history"]} == {sha256(path)}


def test_a_lancedb_checksum_is_the_files_sha256(tmp_path: Path) -> None:
    from migrator.loader import checksum

    path = tmp_path / "001_init.py"
    path.write_text(textwrap.dedent(TWO))
    assert checksum(path) == sha256(path)
