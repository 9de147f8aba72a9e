"""`migrator new` writes files that always compile and load, or refuses with exit 2 and writes nothing."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import Project, lance_project, write_config
from migrator.backends.lancedb import LanceBackend
from migrator.backends.sql import SqlBackend
from migrator.config import BackendConfig
from migrator.errors import UsageError
from migrator.loader import import_file
from migrator.scaffold import new_migration


def _sql_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Project:
    root = tmp_path / "proj"
    (root / "migrations" / "db").mkdir(parents=True)
    write_config(root, "sqlite:///app.db")
    return Project(root, "", capsys)


@pytest.mark.parametrize("name", ["fix \\N{oops", "ends with a backslash \\", 'a """ b', "a ''' b", "x\ny", "{braces}"])
@pytest.mark.parametrize("sql", [False, True], ids=["py", "sql"])
def test_new_sql_migration_with_an_awkward_name_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      name: str, sql: bool) -> None:
    project = _sql_project(tmp_path, capsys)
    result = project.cli("new", name, *(["--sql"] if sql else []))
    assert result.code == 0, result.err
    migrations = SqlBackend("db", "sqlite://", project.migrations).discover()
    assert [m.version for m in migrations] == [1]
    if not sql:
        assert import_file(migrations[0].path).__doc__ == name.strip()
    else:
        up = (project.migrations / f"{migrations[0].path.name}").read_text()
        assert up.count("\n") == 1 and up.startswith("-- ")  # the name stays inside its comment line


@pytest.mark.parametrize("name", ["fix \\N{oops", "trailing \\", 'quote " and """'])
def test_new_lancedb_migration_with_an_awkward_description_loads(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    project = lance_project(tmp_path, capsys, {})
    result = project.cli("new", name, "--table", "docs")
    assert result.code == 0, result.err
    (migration,) = LanceBackend("vec", str(tmp_path / "db"), project.root / "migrations" / "vec").discover()
    assert (migration.line, migration.version, migration.name) == ("docs", 1, name.strip())


@pytest.mark.parametrize("table", ['x", version=9, description="y', "a b", "docs\n", "", "-x", "x)\nimport os"])
def test_new_refuses_a_table_that_is_not_a_table_name(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      table: str) -> None:
    project = lance_project(tmp_path, capsys, {})
    result = project.cli("new", "step", "--table", table)
    assert result.code == 2
    assert result.err.count("\n") == 1 and "--table" in result.err
    assert list((project.root / "migrations" / "vec").iterdir()) == []


def test_new_refuses_a_name_too_long_for_a_file_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = _sql_project(tmp_path, capsys)
    result = project.cli("new", "n" * 300, "--sql")
    assert result.code == 2
    assert result.err.count("\n") == 1 and "too long" in result.err
    assert list(project.migrations.iterdir()) == []


def test_a_lancedb_function_name_is_always_an_identifier(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = lance_project(tmp_path, capsys, {})
    for name in ("2fa", "class", "None"):
        assert project.cli("new", name, "--table", "docs").code == 0, name
    migrations = LanceBackend("vec", str(tmp_path / "db"), project.root / "migrations" / "vec").discover()
    assert [(m.line, m.version) for m in migrations] == [("docs", 1), ("docs", 2), ("docs", 3)]


NAMES = st.text(st.characters(exclude_categories=()), max_size=60) | st.text("ab \\{}'\"\n\tN", max_size=20)
TABLES = st.none() | st.text(max_size=20) | st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,15}", fullmatch=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=NAMES, table=TABLES, kind=st.sampled_from(["py", "sql", "lancedb"]))
@example(name="fix \\N{oops", table="docs", kind="lancedb")
@example(name="n" * 300, table=None, kind="sql")
@example(name="\udcff name", table=None, kind="py")
def test_generated_files_always_load_or_the_command_refuses(name: str, table: str | None, kind: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "migrations"
        folder.mkdir()
        cfg = BackendConfig(name="b", type="lancedb" if kind == "lancedb" else "sql", location="x",
                            migrations=folder, source="test")
        try:
            written = new_migration(cfg, name, sql=kind == "sql", table=table)
        except UsageError as exc:
            assert exc.exit_code == 2 and "\n" not in str(exc)
            assert list(folder.iterdir()) == []
            return
        if kind == "lancedb":
            (migration,) = LanceBackend("b", str(Path(tmp) / "db"), folder).discover()
            assert (migration.line, migration.version, migration.name) == (table, 1, name.strip())
        else:
            (migration,) = SqlBackend("b", "sqlite://", folder).discover()
            assert migration.path == written[0] and migration.version == 1
            if kind == "py":
                assert import_file(migration.path).__doc__ == name.strip()
            else:
                assert all(p.read_text().count("\n") == 1 for p in written)
