"""Operator paths on the SQL backends, checked for safety: non-atomic files failing half-way,
``validate --repair``, ``upgrade --backup`` (and the ``backup`` key), ``stamp`` + ``history``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from snapshots import assert_clean_error, snapshot, sqlite_integrity, versions

from conftest import Project, write_config

CREATE_A = "CREATE TABLE a (id INTEGER PRIMARY KEY, name TEXT);\n"
NOT_ATOMIC = """\
-- migrator: no-transaction
CREATE TABLE IF NOT EXISTS first_kept (id INTEGER);
INSERT INTO no_such_table VALUES (1);
CREATE TABLE third (id INTEGER);
"""


def base(project: Project) -> dict[str, object]:
    project.write("001_a.up.sql", CREATE_A)
    project.write("001_a.down.sql", "DROP TABLE a;\n")
    assert project.cli("upgrade").code == 0
    return snapshot(project.url)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pair_checksum(project: Project, stem: str) -> str:
    """The checksum of a .up.sql/.down.sql pair: the up file's sha256, then the down file's, joined by ':'."""
    up, down = project.migrations / f"{stem}.up.sql", project.migrations / f"{stem}.down.sql"
    return f"{sha256(up)}:{sha256(down)}"


# --------------------------------------------------------------------------- a non-transactional file failing half-way


def test_a_no_transaction_file_failing_at_statement_2_of_3_names_it_and_says_not_atomic(project: Project) -> None:
    base(project)
    project.write("002_manual.up.sql", NOT_ATOMIC)
    line = assert_clean_error(project.cli("upgrade"), 1, "002_manual.up.sql", "statement 2 of 3 (line 3)",
                              "not atomic", "statement 1 stays applied", "the version is not recorded")
    assert "no_such_table" in line


def test_a_no_transaction_file_failing_half_way_keeps_the_last_good_version(project: Project) -> None:
    base(project)
    project.write("002_manual.up.sql", NOT_ATOMIC)
    project.write("003_after.up.sql", "CREATE TABLE after_it (id INTEGER);\n")
    assert project.cli("upgrade").code == 1
    state = snapshot(project.url)
    assert [row[0] for row in state["rows"]] == [1]
    assert "first_kept" in state["tables"]  # statement 1 ran outside a transaction, as the error said
    assert not {"third", "after_it"} & set(state["tables"])
    status = json.loads(project.cli("status", "--json").out)
    assert status["backends"][0]["lines"][0]["current"] == 1


def test_a_no_transaction_file_runs_again_once_fixed_and_its_mark_settled(project: Project) -> None:
    base(project)
    path = project.write("002_manual.up.sql", NOT_ATOMIC)
    assert project.cli("upgrade").code == 1
    path.write_text(NOT_ATOMIC.replace("INSERT INTO no_such_table VALUES (1);", "INSERT INTO first_kept VALUES (1);"))
    # statement 1 stayed applied: the file is marked interrupted until an operator says what state it left
    assert_clean_error(project.cli("upgrade"), 1, "upgrade refused", "002_manual (up) was interrupted",
                       "`migrator stamp 1 --backend db` if it is not")
    stamped = project.cli("stamp", "1")
    assert stamped.code == 0 and "cleared the interrupted mark of 002_manual (up)" in stamped.out
    result = project.cli("upgrade")
    assert result.code == 0, result.err
    assert versions(project.url) == [1, 2]
    assert {"first_kept", "third"} <= set(snapshot(project.url)["tables"])
    assert snapshot(project.url)["rows"][1][2] == sha256(path)  # the fixed file's checksum is the one recorded
    assert project.cli("validate").code == 0


def test_a_failed_no_transaction_file_is_reported_interrupted_not_edited(project: Project) -> None:
    base(project)
    project.write("002_manual.up.sql", NOT_ATOMIC)
    project.cli("upgrade")
    result = project.cli("validate")
    assert result.code == 1 and "interrupted: 002_manual (up) was interrupted" in result.out
    assert "edited" not in result.out  # nothing recorded: nothing to be "edited"


# --------------------------------------------------------------------------- validate --repair


@pytest.fixture
def edited(project: Project) -> Path:
    base(project)
    path = project.write("002_b.py", "def up(db):\n    db.execute('CREATE TABLE b (id INTEGER)')\n")
    assert project.cli("upgrade").code == 0
    path.write_text(path.read_text() + "# a comment added after the fact\n")
    return path


def test_validate_reports_a_deliberate_edit(project: Project, edited: Path) -> None:
    result = project.cli("validate")
    assert result.code == 1 and "002_b.py" in result.out and "edited" in result.out


def test_validate_repair_records_the_new_checksum(project: Project, edited: Path) -> None:
    old = snapshot(project.url)["rows"][1][2]
    result = project.cli("validate", "--repair")
    assert result.code == 0, result.out + result.err
    assert "recorded the new checksum of 002_b.py" in result.out
    rows = snapshot(project.url)["rows"]
    assert rows[1][2] == sha256(edited) != old
    assert rows[0][2] == pair_checksum(project, "001_a") and len(rows) == 2


def test_validate_passes_after_repair(project: Project, edited: Path) -> None:
    project.cli("validate", "--repair")
    result = project.cli("validate")
    assert result.code == 0 and "valid" in result.out
    assert project.cli("check").code == 0


def test_upgrade_no_longer_refuses_after_repair(project: Project, edited: Path) -> None:
    project.write("003_c.up.sql", "CREATE TABLE c (id INTEGER);\n")
    refused = project.cli("upgrade")
    assert refused.code == 1 and "--allow-changed" in refused.err
    project.cli("validate", "--repair")
    result = project.cli("upgrade")
    assert result.code == 0, result.err
    assert versions(project.url) == [1, 2, 3]


def test_validate_repair_changes_no_schema_and_no_other_row(project: Project, edited: Path) -> None:
    before = snapshot(project.url)
    project.cli("validate", "--repair")
    after = snapshot(project.url)
    assert after["tables"] == before["tables"]
    assert [row[:2] for row in after["rows"]] == [row[:2] for row in before["rows"]]


def test_validate_repair_cannot_repair_a_missing_file(project: Project) -> None:
    base(project)
    (project.migrations / "001_a.up.sql").unlink()
    (project.migrations / "001_a.down.sql").unlink()
    before = snapshot(project.url)
    result = project.cli("validate", "--repair")
    assert result.code == 1 and "missing" in result.out
    assert snapshot(project.url) == before


# --------------------------------------------------------------------------- upgrade --backup


def backups(project: Project) -> list[Path]:
    return sorted(project.root.glob("app.db.backup-*"))


def tables_in(path: Path) -> set[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


def versions_in(path: Path) -> list[int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [row[0] for row in conn.execute("SELECT version FROM migrations ORDER BY version")]
    finally:
        conn.close()


def test_upgrade_backup_writes_a_sqlite_copy_beside_the_database(sqlite_project: Project) -> None:
    base(sqlite_project)
    sqlite_project.write("002_b.up.sql", "CREATE TABLE b (id INTEGER);\n")
    result = sqlite_project.cli("upgrade", "--backup")
    assert result.code == 0, result.err
    (backup,) = backups(sqlite_project)
    assert backup.parent == sqlite_project.root and f"backup at {backup}" in result.out
    assert sqlite_integrity(backup) == "ok"


def test_the_backup_holds_the_schema_before_the_first_migration(sqlite_project: Project) -> None:
    base(sqlite_project)
    sqlite_project.write("002_b.up.sql", "CREATE TABLE b (id INTEGER);\n")
    sqlite_project.write("003_c.up.sql", "CREATE TABLE c (id INTEGER);\n")
    assert sqlite_project.cli("upgrade", "--backup").code == 0
    (backup,) = backups(sqlite_project)
    assert {"a", "migrations"} <= tables_in(backup) and not {"b", "c"} & tables_in(backup)
    assert versions_in(backup) == [1]


def test_the_backup_is_taken_before_a_migration_that_fails(sqlite_project: Project) -> None:
    base(sqlite_project)
    sqlite_project.write("002_bad.up.sql", "CREATE TABLE b (id INTEGER);\nINSERT INTO nowhere VALUES (1);\n")
    assert sqlite_project.cli("upgrade", "--backup").code == 1
    (backup,) = backups(sqlite_project)
    assert versions_in(backup) == [1] and "a" in tables_in(backup)


def test_the_backup_config_key_backs_up_like_the_flag(sqlite_project: Project) -> None:
    base(sqlite_project)
    write_config(sqlite_project.root, sqlite_project.url, "backup = true\n")
    sqlite_project.write("002_b.up.sql", "CREATE TABLE b (id INTEGER);\n")
    assert sqlite_project.cli("upgrade").code == 0
    (backup,) = backups(sqlite_project)
    assert versions_in(backup) == [1] and "b" not in tables_in(backup)


def test_no_backup_overrides_the_config_key(sqlite_project: Project) -> None:
    base(sqlite_project)
    write_config(sqlite_project.root, sqlite_project.url, "backup = true\n")
    sqlite_project.write("002_b.up.sql", "CREATE TABLE b (id INTEGER);\n")
    assert sqlite_project.cli("upgrade", "--no-backup").code == 0
    assert backups(sqlite_project) == []


def test_backup_with_nothing_to_do_or_a_dry_run_writes_no_file(sqlite_project: Project) -> None:
    base(sqlite_project)
    assert sqlite_project.cli("upgrade", "--backup").code == 0
    sqlite_project.write("002_b.up.sql", "CREATE TABLE b (id INTEGER);\n")
    assert sqlite_project.cli("upgrade", "--backup", "--dry-run").code == 0
    assert backups(sqlite_project) == []
    assert versions(sqlite_project.url) == [1]


def test_rollback_backup_keeps_the_state_before_the_rollback(sqlite_project: Project) -> None:
    base(sqlite_project)
    sqlite_project.write("002_b.up.sql", "CREATE TABLE b (id INTEGER);\n")
    sqlite_project.write("002_b.down.sql", "DROP TABLE b;\n")
    assert sqlite_project.cli("upgrade").code == 0
    assert sqlite_project.cli("rollback", "1", "--backup").code == 0
    (backup,) = backups(sqlite_project)
    assert versions_in(backup) == [1, 2] and "b" in tables_in(backup)


@pytest.mark.postgres
def test_backup_on_postgresql_is_a_usage_error_that_changes_nothing(postgres_url: str, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    project = pg_project(postgres_url, tmp_path, capsys)
    before = base(project)
    project.write("002_b.up.sql", "CREATE TABLE b (id INTEGER);\n")
    assert_clean_error(project.cli("upgrade", "--backup"), 2, "--backup", "SQLite only", "pg_dump")
    assert snapshot(project.url) == before


@pytest.mark.postgres
def test_the_backup_key_on_postgresql_is_a_usage_error_that_changes_nothing(
    postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    project = pg_project(postgres_url, tmp_path, capsys)
    before = base(project)
    write_config(project.root, project.url, "backup = true\n")
    project.write("002_b.up.sql", "CREATE TABLE b (id INTEGER);\n")
    assert_clean_error(project.cli("upgrade"), 2, "--backup", "SQLite only")
    assert snapshot(project.url) == before


@pytest.mark.postgres
def test_backup_on_a_fresh_postgresql_database_creates_nothing(postgres_url: str, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    project = pg_project(postgres_url, tmp_path, capsys)
    project.write("001_a.up.sql", CREATE_A)
    before = snapshot(project.url)
    assert_clean_error(project.cli("upgrade", "--backup"), 2, "SQLite only")
    assert snapshot(project.url) == before


def pg_project(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Project:
    root = tmp_path / "proj"
    (root / "migrations" / "db").mkdir(parents=True)
    write_config(root, url)
    return Project(root, url, capsys)


# --------------------------------------------------------------------------- stamp and history


def four(project: Project) -> None:
    for version, name in ((1, "a"), (2, "b"), (3, "c"), (5, "e")):
        project.write(f"00{version}_{name}.up.sql", f"CREATE TABLE {name} (id INTEGER);\n")
        project.write(f"00{version}_{name}.down.sql", f"DROP TABLE {name};\n")


def history(project: Project) -> list[dict[str, object]]:
    result = project.cli("history", "--json")
    assert result.code == 0, result.err
    (backend,) = json.loads(result.out)["backends"]
    rows: list[dict[str, object]] = backend["history"]
    return rows


def test_stamp_then_history_shows_the_stamped_rows(project: Project) -> None:
    four(project)
    result = project.cli("stamp", "3")
    assert result.code == 0 and "stamped at version 3" in result.out
    rows = history(project)
    assert [(r["version"], r["name"]) for r in rows] == [(1, "a"), (2, "b"), (3, "c")]
    assert all(r["checksum"] for r in rows) and all(r["applied_at"] for r in rows)
    text = project.cli("history")
    assert text.code == 0 and all(name in text.out for name in ("a", "b", "c"))


def test_stamp_runs_nothing(project: Project) -> None:
    four(project)
    project.cli("stamp", "3")
    assert set(snapshot(project.url)["tables"]) == {"migrations"}


def test_stamp_records_the_files_checksums_so_validate_passes(project: Project) -> None:
    four(project)
    project.cli("stamp", "5")
    rows = history(project)
    assert rows[0]["checksum"] == pair_checksum(project, "001_a")
    assert project.cli("validate").code == 0


def test_upgrade_after_stamp_runs_only_what_is_above(project: Project) -> None:
    four(project)
    project.cli("stamp", "2")
    assert project.cli("upgrade").code == 0
    assert set(snapshot(project.url)["tables"]) == {"migrations", "c", "e"}


def test_stamp_lower_unrecords_the_versions_above_without_running_downs(project: Project) -> None:
    four(project)
    assert project.cli("upgrade").code == 0
    assert project.cli("stamp", "2").code == 0
    assert [r["version"] for r in history(project)] == [1, 2]
    assert {"a", "b", "c", "e"} <= set(snapshot(project.url)["tables"])


@pytest.mark.parametrize("version", ["4", "6", "999999"])
def test_stamping_a_version_that_has_no_file_is_a_usage_error_that_changes_nothing(project: Project,
                                                                                   version: str) -> None:
    four(project)
    project.cli("stamp", "2")
    before = snapshot(project.url)
    assert_clean_error(project.cli("stamp", version), 2, f"no migration has version {version}")
    assert snapshot(project.url) == before


@pytest.mark.parametrize("version", ["-1", "two", "1.5", "99999999999999999999999"])
def test_stamp_needs_a_non_negative_integer(project: Project, version: str) -> None:
    four(project)
    result = project.cli("stamp", version)
    assert result.code == 2 and "Traceback" not in result.err
    assert not (project.root / "app.db").exists() or versions(project.url) == []
