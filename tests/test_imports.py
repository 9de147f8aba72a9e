"""The core stays light: SQL-only commands import neither lancedb nor pyarrow, `--help` imports no adapter.

Each command runs in a child process, which then reports which of the watched modules
are in ``sys.modules``: the import set is asserted, never a time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import write_config

HEAVY = ("lancedb", "pyarrow", "lance", "obstore", "pandas", "ray", "lance_ray", "psycopg")
SQL = ("sqlalchemy", "alembic")

PROBE = """
import json, sys
from migrator.cli import main
code = main(sys.argv[2:])
print("LOADED", json.dumps(sorted(m for m in json.loads(sys.argv[1]) if m in sys.modules)))
sys.exit(code)
"""


def loaded(args: list[str], cwd: Path, expect_code: int = 0) -> set[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(HEAVY + SQL), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == expect_code, proc.stderr
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("LOADED ")]
    return set(json.loads(line.removeprefix("LOADED ")))


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """A SQLite backend ``sqlite`` beside a LanceDB backend ``vectors`` whose migration imports pyarrow."""
    (tmp_path / "migrations" / "sqlite").mkdir(parents=True)
    (tmp_path / "migrations" / "vectors").mkdir(parents=True)
    (tmp_path / "migrations" / "sqlite" / "001_a.up.sql").write_text("CREATE TABLE a (id INTEGER);\n")
    (tmp_path / "migrations" / "sqlite" / "001_a.down.sql").write_text("DROP TABLE a;\n")
    (tmp_path / "migrations" / "vectors" / "001_init.py").write_text(textwrap.dedent('''\
        import pyarrow as pa
        from migrator.lancedb import migration

        @migration(table="users", version=1, description="create users")
        def create_users(db):
            db.create_table("users", schema=pa.schema([pa.field("id", pa.int64())]))
        '''))
    (tmp_path / "migrator.toml").write_text(textwrap.dedent('''\
        default_backend = "sqlite"

        [backends.sqlite]
        type = "sql"
        url = "sqlite:///app.db"
        migrations = "migrations/sqlite"

        [backends.vectors]
        type = "lancedb"
        uri = "lance"
        migrations = "migrations/vectors"
        '''))
    return tmp_path


def test_help_imports_no_adapter(tmp_path: Path) -> None:
    assert loaded(["--help"], tmp_path) == set()


@pytest.mark.parametrize("command", ["status", "upgrade", "rollback", "history", "validate", "check"])
def test_command_help_imports_no_adapter(mixed: Path, command: str) -> None:
    assert loaded([command, "--help"], mixed) == set()


def test_sql_status_imports_neither_lancedb_nor_pyarrow(tmp_path: Path) -> None:
    (tmp_path / "migrations" / "db").mkdir(parents=True)
    write_config(tmp_path, "sqlite:///app.db", '\n[backends.vec]\ntype = "lancedb"\nuri = "lance"\n'
                                                'migrations = "migrations/db"\n')
    assert not loaded(["status", "--backend", "db"], tmp_path) & set(HEAVY)


@pytest.mark.parametrize("command", [
    ["status", "--backend", "sqlite"],
    ["status", "--backend", "sqlite", "--json"],
    ["upgrade", "--backend", "sqlite"],
    ["history", "--backend", "sqlite"],
    ["validate", "--backend", "sqlite"],
    ["check", "--backend", "sqlite"],
    ["stamp", "1"],
    ["new", "more", "--sql"],
    ["upgrade", "--sql"],
    ["rollback", "0", "--sql", "--from", "1"],
])
def test_sqlite_commands_beside_lancedb_import_no_lance_module(mixed: Path, command: list[str]) -> None:
    expect = 1 if command[0] == "check" else 0       # the SQLite file is pending
    assert not loaded(command, mixed, expect_code=expect) & set(HEAVY)


def test_sqlite_rollback_beside_lancedb_imports_no_lance_module(mixed: Path) -> None:
    assert loaded(["upgrade", "--backend", "sqlite"], mixed) & set(HEAVY) == set()
    assert not loaded(["rollback", "0"], mixed) & set(HEAVY)


def test_status_of_every_backend_does_read_the_lancedb_migrations(mixed: Path) -> None:
    """The probe can see a heavy import: `status` over all backends imports the LanceDB migration's pyarrow."""
    assert "pyarrow" in loaded(["status"], mixed)


@pytest.mark.lancedb
def test_a_lancedb_upgrade_that_recreates_a_table_locally_imports_no_ray(mixed: Path) -> None:
    (mixed / "migrations" / "vectors" / "002_recreate.py").write_text(textwrap.dedent('''\
        import pyarrow as pa
        from migrator.lancedb import migration, recreate_table

        @migration(table="users", version=2, description="rewrite users")
        def rewrite_users(db):
            recreate_table(db, "users", transform=lambda b: b.append_column("n", pa.array([1] * b.num_rows)))
        '''))
    modules = loaded(["upgrade"], mixed)
    assert "lancedb" in modules                   # the probe sees the LanceDB run's imports
    assert not modules & {"ray", "lance_ray"}


def test_importing_the_lancedb_helpers_imports_no_ray(tmp_path: Path) -> None:
    probe = ("import json, sys, migrator, migrator.lancedb, migrator.engines, migrator.api; "
             "print(json.dumps(sorted(m for m in ('ray', 'lance_ray') if m in sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          check=True)
    assert json.loads(proc.stdout) == []
