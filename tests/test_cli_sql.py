"""The CLI on SQL backends, as a user runs it: exit codes, one-line errors, data unchanged.

Parametrized over SQLite and PostgreSQL through the ``project`` fixture.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import Project, write_config

CREATE_A = "CREATE TABLE a (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n"
PY_B = """\
def up(db):
    db.execute("CREATE TABLE b (id INTEGER PRIMARY KEY)")

def down(db):
    db.execute("DROP TABLE b")
"""


def snapshot(url: str) -> dict[str, Any]:
    """Every table with its columns, and the version table's rows: 'exactly as before' made checkable."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            tables = {t: sorted(c["name"] for c in inspector.get_columns(t)) for t in inspector.get_table_names()}
            rows = []
            if "migrations" in tables:
                rows = [tuple(r) for r in conn.execute(sa.text("SELECT version, name, checksum FROM migrations "
                                                               "ORDER BY version"))]
            return {"tables": tables, "rows": rows}
    finally:
        engine.dispose()


def three(project: Project) -> None:
    project.write("001_a.up.sql", CREATE_A)
    project.write("001_a.down.sql", "DROP TABLE a;\n")
    project.write("002_b.py", PY_B)
    project.write("003_c.up.sql", "CREATE TABLE c (id INTEGER);\nCREATE INDEX c_id ON c(id);\n")
    project.write("003_c.down.sql", "DROP INDEX c_id;\nDROP TABLE c;\n")


def versions(project: Project) -> list[int]:
    return [row[0] for row in snapshot(project.url)["rows"]]


def test_upgrade_applies_every_migration_and_records_them(project: Project) -> None:
    three(project)
    result = project.cli("upgrade")
    assert result.code == 0, result.err
    assert versions(project) == [1, 2, 3]
    assert {"a", "b", "c"} <= set(snapshot(project.url)["tables"])


def test_upgrade_twice_is_a_no_op(project: Project) -> None:
    three(project)
    project.cli("upgrade")
    result = project.cli("upgrade")
    assert result.code == 0 and "up to date" in result.out


def test_upgrade_to_stops_at_that_version(project: Project) -> None:
    three(project)
    assert project.cli("upgrade", "--to", "2").code == 0
    assert versions(project) == [1, 2]


def test_dry_run_lists_the_plan_and_changes_nothing(project: Project) -> None:
    three(project)
    before = snapshot(project.url)
    result = project.cli("upgrade", "--dry-run")
    assert result.code == 0 and "would apply 001_a" in result.out
    assert snapshot(project.url) == before


def test_rollback_undoes_versions_above_the_target(project: Project) -> None:
    three(project)
    project.cli("upgrade")
    result = project.cli("rollback", "1")
    assert result.code == 0, result.err
    assert versions(project) == [1]
    assert set(snapshot(project.url)["tables"]) == {"a", "migrations"}


def test_rollback_zero_undoes_everything(project: Project) -> None:
    three(project)
    project.cli("upgrade")
    assert project.cli("rollback", "0").code == 0
    assert snapshot(project.url)["tables"] == {"migrations": ["applied_at", "checksum", "duration_ms", "id", "name",
                                                              "version"]}


def test_rollback_above_current_version_is_a_usage_error(project: Project) -> None:
    three(project)
    project.cli("upgrade", "--to", "2")
    result = project.cli("rollback", "3")
    assert result.code == 2
    assert result.err.strip() == ("error: db: cannot roll back to 3: the database is at version 2 "
                                 "(to go up: migrator upgrade --to 3)")


@pytest.mark.parametrize("target", ["-1", "two", "1.5"])
def test_rollback_target_must_be_a_non_negative_integer(project: Project, target: str) -> None:
    assert project.cli("rollback", target).code == 2


def test_rollback_over_a_migration_without_down_is_refused_before_any_change(project: Project) -> None:
    project.write("001_a.up.sql", CREATE_A)
    project.write("001_a.down.sql", "DROP TABLE a;\n")
    project.write("002_b.py", 'def up(db):\n    db.execute("CREATE TABLE b (id INTEGER)")\n')
    project.write("003_c.up.sql", "CREATE TABLE c (id INTEGER);\n")
    project.write("003_c.down.sql", "DROP TABLE c;\n")
    project.cli("upgrade")
    before = snapshot(project.url)
    result = project.cli("rollback", "0")
    assert result.code == 2
    assert "002_b.py" in result.err and "no down migration" in result.err
    assert snapshot(project.url) == before


def test_failing_statement_mid_file_changes_nothing(project: Project) -> None:
    project.write("001_a.up.sql", CREATE_A)
    project.write("002_bad.up.sql", "CREATE TABLE x (id INTEGER);\nINSERT INTO x VALUES (1);\n"
                                    "INSERT INTO no_such_table VALUES (1);\n")
    assert project.cli("upgrade", "--to", "1").code == 0
    before = snapshot(project.url)
    result = project.cli("upgrade")
    assert result.code == 1
    assert "002_bad.up.sql" in result.err and "statement 3" in result.err
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    assert snapshot(project.url) == before


def test_verbose_adds_the_traceback(project: Project) -> None:
    project.write("001_bad.up.sql", "INSERT INTO no_such_table VALUES (1);\n")
    result = project.cli("-v", "upgrade")
    assert result.code == 1 and "Traceback" in result.err


def test_python_migration_with_syntax_error_applies_nothing(project: Project) -> None:
    project.write("001_a.up.sql", CREATE_A)
    project.write("002_bad.py", "def up(db)\n    pass\n")
    result = project.cli("upgrade")
    assert result.code == 2 and "002_bad.py" in result.err and "syntax error" in result.err
    assert "a" not in snapshot(project.url)["tables"]


def test_python_migration_without_up_is_refused(project: Project) -> None:
    project.write("001_nothing.py", "def down(db):\n    pass\n")
    result = project.cli("upgrade")
    assert result.code == 2 and "001_nothing.py" in result.err and "up" in result.err


def test_raising_python_migration_is_rolled_back(project: Project) -> None:
    project.write("001_boom.py", 'def up(db):\n    db.execute("CREATE TABLE t (id INTEGER)")\n'
                                 '    raise RuntimeError("boom")\n')
    result = project.cli("upgrade")
    assert result.code == 1 and "001_boom.py" in result.err and "boom" in result.err
    assert "t" not in snapshot(project.url)["tables"]


def test_two_files_with_one_version_are_named_together(project: Project) -> None:
    project.write("001_a.py", PY_B)
    project.write("1_b.up.sql", CREATE_A)
    result = project.cli("status")
    assert result.code == 2 and "001_a.py" in result.err and "1_b.up.sql" in result.err


def test_file_name_without_version_is_named(project: Project) -> None:
    project.write("create_users.py", PY_B)
    result = project.cli("status")
    assert result.code == 2 and "create_users.py" in result.err


def test_status_json_has_the_documented_shape(project: Project) -> None:
    three(project)
    project.cli("upgrade", "--to", "2")
    data = json.loads(project.cli("status", "--json").out)
    (backend,) = data["backends"]
    (line,) = backend["lines"]
    assert data["schema"] == 1
    assert (backend["name"], backend["type"], backend["pending"]) == ("db", "sql", 1)
    assert (line["current"], line["latest"], line["applied"]) == (2, 3, [1, 2])
    assert line["pending"] == [{"version": 3, "name": "c", "file": "003_c.up.sql"}]


def test_history_json_lists_applied_migrations_with_checksums(project: Project) -> None:
    three(project)
    project.cli("upgrade")
    (backend,) = json.loads(project.cli("history", "--json").out)["backends"]
    assert [h["version"] for h in backend["history"]] == [1, 2, 3]
    assert all(re.fullmatch(r"[0-9a-f]{64}(:[0-9a-f]{64})?", h["checksum"]) and h["duration_ms"] >= 0
               for h in backend["history"])


def test_check_fails_while_migrations_are_pending(project: Project) -> None:
    three(project)
    assert project.cli("check").code == 1
    project.cli("upgrade")
    assert project.cli("check").code == 0


def test_edited_applied_file_fails_validate_and_blocks_upgrade(project: Project) -> None:
    three(project)
    project.cli("upgrade", "--to", "2")
    project.write("002_b.py", PY_B + "# edited\n")
    validate = project.cli("validate")
    assert validate.code == 1 and "002_b.py" in validate.out and "edited" in validate.out
    upgrade = project.cli("upgrade")
    assert upgrade.code == 1 and "--allow-changed" in upgrade.err
    assert versions(project) == [1, 2]
    assert project.cli("upgrade", "--allow-changed").code == 0


def test_missing_applied_file_is_reported(project: Project) -> None:
    three(project)
    project.cli("upgrade")
    (project.migrations / "003_c.up.sql").unlink()
    (project.migrations / "003_c.down.sql").unlink()
    result = project.cli("validate")
    assert result.code == 1 and "missing" in result.out


def test_stamp_records_versions_without_running_them(project: Project) -> None:
    three(project)
    assert project.cli("stamp", "2").code == 0
    assert versions(project) == [1, 2]
    assert "a" not in snapshot(project.url)["tables"]


def test_new_writes_the_next_version(project: Project) -> None:
    three(project)
    assert project.cli("new", "add users").code == 0
    assert (project.migrations / "004_add_users.py").exists()
    assert project.cli("new", "more", "--sql").code == 0
    assert (project.migrations / "005_more.up.sql").exists() and (project.migrations / "005_more.down.sql").exists()


def test_unknown_backend_is_a_usage_error(project: Project) -> None:
    result = project.cli("status", "--backend", "nope")
    assert result.code == 2 and "unknown backend 'nope'" in result.err


def test_unknown_config_key_is_named(project: Project) -> None:
    write_config(project.root, project.url, "colour = 1\n")
    result = project.cli("status")
    assert result.code == 2 and "colour" in result.err and "migrator.toml" in result.err


def test_malformed_config_is_a_usage_error(project: Project) -> None:
    (project.root / "migrator.toml").write_text("[backends\n")
    result = project.cli("status")
    assert result.code == 2 and "invalid TOML" in result.err


def test_missing_migrations_folder_is_named(project: Project) -> None:
    project.migrations.rmdir()
    result = project.cli("status")
    assert result.code == 2 and "migrations/db" in result.err


def test_no_config_is_a_usage_error(tmp_path: Any, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from migrator.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MIGRATOR_CONFIG", raising=False)
    assert main(["status"]) == 2
    assert "no migrator configuration found" in capsys.readouterr().err
