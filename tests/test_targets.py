"""Targets of `upgrade --to` and `rollback`: absolute versions, `+N` / `-N` steps, everything else refused.

`rollback +1` at version 4 once undid three migrations (read as version 1), and `upgrade --to +1` said
"up to date". SQL cases run on SQLite and PostgreSQL (the ``project`` fixture); LanceDB counts steps on one
table's line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from snapshots import assert_clean_error, snapshot

from conftest import Project, lance_project
from migrator import Migrator
from migrator.errors import UsageError


def four(project: Project) -> None:
    for version, name in enumerate("abcd", 1):
        project.write(f"00{version}_{name}.up.sql", f"CREATE TABLE {name} (id INTEGER);\n")
        project.write(f"00{version}_{name}.down.sql", f"DROP TABLE {name};\n")


def versions(project: Project) -> list[int]:
    return [row[0] for row in snapshot(project.url)["rows"]]


# --------------------------------------------------------------------------- relative targets on SQL


def test_rollback_minus_one_undoes_only_the_newest_migration(project: Project) -> None:
    four(project)
    assert project.cli("upgrade").code == 0
    result = project.cli("rollback", "-1")
    assert result.code == 0, result.err
    assert versions(project) == [1, 2, 3]
    assert "d" not in snapshot(project.url)["tables"]


def test_rollback_minus_two_with_options_around_it_undoes_two(project: Project) -> None:
    four(project)
    project.cli("upgrade")
    result = project.cli("rollback", "--backend", "db", "-2", "--no-backup")
    assert result.code == 0, result.err
    assert versions(project) == [1, 2]


def test_rollback_minus_n_counts_applied_versions_across_gaps(project: Project) -> None:
    project.write("001_a.up.sql", "CREATE TABLE a (id INTEGER);\n")
    project.write("001_a.down.sql", "DROP TABLE a;\n")
    project.write("010_j.up.sql", "CREATE TABLE j (id INTEGER);\n")
    project.write("010_j.down.sql", "DROP TABLE j;\n")
    project.cli("upgrade")
    assert project.cli("rollback", "-1").code == 0
    assert versions(project) == [1]


def test_rollback_plus_one_is_refused_and_changes_nothing(project: Project) -> None:
    four(project)
    project.cli("upgrade")
    before = snapshot(project.url)
    assert_clean_error(project.cli("rollback", "+1"), 2, "'+1'", "steps back (-1)")
    assert snapshot(project.url) == before


def test_upgrade_to_plus_one_applies_exactly_one_migration(project: Project) -> None:
    four(project)
    result = project.cli("upgrade", "--to", "+1")
    assert result.code == 0, result.err
    assert "up to date" not in result.out
    assert versions(project) == [1]


def test_upgrade_to_plus_two_goes_two_steps_from_the_current_version(project: Project) -> None:
    four(project)
    project.cli("upgrade", "--to", "1")
    assert project.cli("upgrade", "--to", "+2").code == 0
    assert versions(project) == [1, 2, 3]


def test_more_steps_forward_than_are_pending_is_refused_and_runs_nothing(project: Project) -> None:
    four(project)
    project.cli("upgrade", "--to", "2")
    before = snapshot(project.url)
    assert_clean_error(project.cli("upgrade", "--to", "+3"), 2, "cannot apply 3 migrations", "2 are pending")
    assert snapshot(project.url) == before


def test_more_steps_back_than_are_applied_is_refused_and_undoes_nothing(project: Project) -> None:
    four(project)
    project.cli("upgrade", "--to", "2")
    before = snapshot(project.url)
    assert_clean_error(project.cli("rollback", "-3"), 2, "cannot roll back 3 migrations", "2 are applied")
    assert snapshot(project.url) == before


@pytest.mark.parametrize("bad", ["-1", "1.5", "abc", "", "+0", " 2", "+", "٣", "0x2"])
def test_upgrade_to_any_other_form_is_refused_with_exit_2(project: Project, bad: str) -> None:
    four(project)
    project.cli("upgrade", "--to", "1")
    before = snapshot(project.url)
    assert_clean_error(project.cli("upgrade", "--to", bad), 2, "--to")
    assert snapshot(project.url) == before


@pytest.mark.parametrize("bad", ["+1", "1.5", "abc", "", "-0", "--1", "-", "+2"])
def test_rollback_to_any_other_form_is_refused_with_exit_2(project: Project, bad: str) -> None:
    four(project)
    project.cli("upgrade")
    before = snapshot(project.url)
    assert_clean_error(project.cli("rollback", "--", bad), 2, "rollback")
    assert snapshot(project.url) == before


def test_upgrade_to_a_version_below_the_current_one_says_so_and_runs_nothing(project: Project) -> None:
    four(project)
    project.cli("upgrade", "--to", "3")
    project.write("005_e.up.sql", "CREATE TABLE e (id INTEGER);\n")
    before = snapshot(project.url)
    line = assert_clean_error(project.cli("upgrade", "--to", "1"), 2, "cannot upgrade to 1",
                              "already at version 3", "rollback 1")
    assert "up to date" not in line
    assert snapshot(project.url) == before


def test_upgrade_to_the_current_version_is_up_to_date(project: Project) -> None:
    four(project)
    project.cli("upgrade", "--to", "2")
    result = project.cli("upgrade", "--to", "2")
    assert result.code == 0 and "up to date" in result.out
    assert versions(project) == [1, 2]


def test_rollback_to_a_version_above_the_current_one_says_so(project: Project) -> None:
    four(project)
    project.cli("upgrade", "--to", "2")
    assert_clean_error(project.cli("rollback", "3"), 2, "cannot roll back to 3", "at version 2")
    assert versions(project) == [1, 2]


# --------------------------------------------------------------------------- the library API


def test_api_accepts_step_strings_and_ints(sqlite_project: Project) -> None:
    four(sqlite_project)
    m = Migrator.from_config(sqlite_project.root / "migrator.toml")
    m.upgrade("db", to="+3")
    assert versions(sqlite_project) == [1, 2, 3]
    m.rollback("-2", "db")
    assert versions(sqlite_project) == [1]
    m.upgrade("db", to=2)
    m.upgrade("db", to="4")
    m.rollback(3, "db")
    assert versions(sqlite_project) == [1, 2, 3]


@pytest.mark.parametrize("bad", [-1, "+1", "1.5", "", True, 1.0, None])
def test_api_rollback_refuses_other_targets_naming_the_forms(sqlite_project: Project, bad: object) -> None:
    four(sqlite_project)
    m = Migrator.from_config(sqlite_project.root / "migrator.toml")
    m.upgrade()
    with pytest.raises(UsageError, match="rollback target"):
        m.rollback(bad, "db")  # type: ignore[arg-type]
    assert versions(sqlite_project) == [1, 2, 3, 4]


@pytest.mark.parametrize("bad", [-1, "-1", "1.5", "abc", True, 2.0])
def test_api_upgrade_refuses_other_targets_naming_the_forms(sqlite_project: Project, bad: object) -> None:
    four(sqlite_project)
    m = Migrator.from_config(sqlite_project.root / "migrator.toml")
    with pytest.raises(UsageError, match="--to"):
        m.upgrade("db", to=bad)  # type: ignore[arg-type]
    assert not (sqlite_project.root / "app.db").exists() or versions(sqlite_project) == []


# --------------------------------------------------------------------------- LanceDB: steps on one table's line

NOTES = '''\
import pyarrow as pa
from migrator.lancedb import migration, add_columns

@migration(table="notes", version=1, description="create notes")
def create_notes(db):
    db.create_table("notes", data=[{"id": 1, "text": "n"}])

@migration(table="notes", version=2, description="add summary")
def add_summary(db):
    add_columns(db, "notes", pa.field("summary", pa.string()))

@migration(table="notes", version=3, description="add tag")
def add_tag(db):
    add_columns(db, "notes", pa.field("tag", pa.string()))

@migration(table="people", version=1, description="create people")
def create_people(db):
    db.create_table("people", data=[{"id": 1, "name": "ann"}])
'''


def lance_versions(p: Project) -> dict[str, int]:
    (status,) = json.loads(p.cli("status", "--json", "--backend", "vec").out)["backends"]
    return {line["line"]: line["current"] for line in status["lines"]}


@pytest.mark.lancedb
def test_lancedb_rollback_minus_one_with_table_undoes_that_tables_newest(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    p = lance_project(tmp_path, capsys, {"001_notes.py": NOTES})
    assert p.cli("upgrade", "--backend", "vec").code == 0
    result = p.cli("rollback", "-1", "--table", "notes")
    assert result.code == 0, result.err
    assert lance_versions(p) == {"notes": 2, "people": 1}


@pytest.mark.lancedb
def test_lancedb_steps_without_table_are_refused_naming_table(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    p = lance_project(tmp_path, capsys, {"001_notes.py": NOTES})
    p.cli("upgrade", "--backend", "vec", "--to", "1")
    assert_clean_error(p.cli("rollback", "-1"), 2, "--table")
    assert_clean_error(p.cli("upgrade", "--backend", "vec", "--to", "+1"), 2, "--table")
    assert lance_versions(p) == {"notes": 1, "people": 1}


@pytest.mark.lancedb
def test_lancedb_upgrade_to_plus_two_with_table_moves_that_line_two_steps(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    p = lance_project(tmp_path, capsys, {"001_notes.py": NOTES})
    result = p.cli("upgrade", "--backend", "vec", "--table", "notes", "--to", "+2")
    assert result.code == 0, result.err
    assert lance_versions(p) == {"notes": 2, "people": 0}
