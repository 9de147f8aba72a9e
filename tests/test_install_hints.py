"""A missing dependency is one line naming the pip command that installs it, and changes nothing.

Each case runs the CLI in a child process where the module is made unimportable
(``sys.modules[name] = None``), as in an install without that extra.
(tests/test_packaging.py checks the same in a real venv without extras.)
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import write_config

PROBE = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None
from migrator.cli import main
sys.exit(main(sys.argv[2:]))
"""

LANCE_MIGRATION = '''\
    import pyarrow as pa
    from migrator.lancedb import migration

    @migration(table="users", version=1, description="create users")
    def create_users(db):
        db.create_table("users", schema=pa.schema([pa.field("id", pa.int64())]))
    '''


def run_without(missing: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PROBE, missing, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)


def lance_config(root: Path, with_migration: bool) -> None:
    (root / "migrations" / "vec").mkdir(parents=True)
    if with_migration:
        (root / "migrations" / "vec" / "001_init.py").write_text(textwrap.dedent(LANCE_MIGRATION))
    (root / "migrator.toml").write_text('default_backend = "vec"\n\n[backends.vec]\ntype = "lancedb"\n'
                                        'uri = "data/lance"\nmigrations = "migrations/vec"\n')


def snapshot(root: Path) -> list[str]:
    """Every file and folder under ``root`` but the bytecode cache (written unless PYTHONDONTWRITEBYTECODE is set)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("url", ["sqlite:///app.db", "sqlite:///app.db?timeout=3"])   # lean path, and not
def test_sql_backend_without_sqlalchemy_asks_for_migrator_itself(tmp_path: Path, url: str) -> None:
    (tmp_path / "migrations" / "db").mkdir(parents=True)
    # a Python migration's db is SQLAlchemy's (plain SQL files on a SQLite file need only sqlite3)
    (tmp_path / "migrations" / "db" / "001_init.py").write_text("def up(db):\n    db.execute('SELECT 1')\n")
    write_config(tmp_path, url)
    proc = run_without("sqlalchemy", ["upgrade"], tmp_path)
    assert proc.returncode == 2
    assert "needs `pip install migrator`" in proc.stderr and "migrator[sql]" not in proc.stderr
    assert not (tmp_path / "app.db").exists()


@pytest.mark.parametrize("command", [["status"], ["upgrade"], ["validate"]])
def test_lance_migration_without_pyarrow_names_the_lancedb_extra(tmp_path: Path, command: list[str]) -> None:
    lance_config(tmp_path, with_migration=True)
    before = snapshot(tmp_path)
    proc = run_without("pyarrow", command, tmp_path)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "001_init.py" in line and "pyarrow" in line and "`pip install 'migrator[lancedb]'`" in line
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("missing", ["lancedb", "pyarrow", "lance"])
def test_upgrade_without_lancedb_names_the_extra_and_creates_nothing(tmp_path: Path, missing: str) -> None:
    lance_config(tmp_path, with_migration=False)
    before = snapshot(tmp_path)
    proc = run_without(missing, ["upgrade"], tmp_path)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: vec: the lancedb backend needs `pip install 'migrator[lancedb]'`"), line
    assert snapshot(tmp_path) == before          # the lock did not create data/lance


def test_postgres_url_without_psycopg_names_the_postgres_extra(tmp_path: Path) -> None:
    (tmp_path / "migrations" / "db").mkdir(parents=True)
    write_config(tmp_path, "postgresql+psycopg://app:s3cret@127.0.0.1:1/app")
    proc = run_without("psycopg", ["status"], tmp_path)
    assert proc.returncode == 2
    assert "pip install 'migrator[postgres]'" in proc.stderr and "s3cret" not in proc.stderr


@pytest.mark.lancedb
@pytest.mark.parametrize("missing", ["ray", "lance_ray"])
def test_a_ray_engine_backend_without_the_ray_extra_names_it_and_creates_nothing(tmp_path: Path, missing: str) -> None:
    lance_config(tmp_path, with_migration=True)
    config = tmp_path / "migrator.toml"
    config.write_text(config.read_text() + 'engine = "ray"\n')
    before = snapshot(tmp_path)
    proc = run_without(missing, ["upgrade"], tmp_path)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "[backends.vec]" in line and 'engine = "ray"' in line and "`pip install 'migrator[ray]'`" in line, line
    assert snapshot(tmp_path) == before


RECREATE_ON_RAY = '''\
    import pyarrow as pa
    from migrator.lancedb import migration, recreate_table

    @migration(table="users", version=1, description="create users")
    def create_users(db):
        db.create_table("users", data=pa.table({"id": [1, 2, 3]}))

    @migration(table="users", version=2, description="add a name")
    def add_name(db):
        recreate_table(db, "users", transform=lambda b: b.append_column("name", pa.array(["x"] * b.num_rows)),
                       engine="ray")
    '''


@pytest.mark.lancedb
def test_recreate_table_on_ray_without_the_extra_fails_that_migration_naming_it(tmp_path: Path) -> None:
    import lancedb

    lance_config(tmp_path, with_migration=False)
    (tmp_path / "migrations" / "vec" / "001_users.py").write_text(textwrap.dedent(RECREATE_ON_RAY))
    proc = run_without("ray", ["upgrade"], tmp_path)
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert "users v2" in line and "`pip install 'migrator[ray]'`" in line, line
    table = lancedb.connect(str(tmp_path / "data" / "lance")).open_table("users")
    assert table.schema.names == ["id"] and table.count_rows() == 3


@pytest.mark.lancedb
def test_an_object_store_backend_without_obstore_names_the_lancedb_extra(tmp_path: Path) -> None:
    (tmp_path / "migrations" / "vec").mkdir(parents=True)
    (tmp_path / "migrator.toml").write_text('[backends.vec]\ntype = "lancedb"\nuri = "s3://bucket/prefix"\n'
                                            'migrations = "migrations/vec"\n')
    before = snapshot(tmp_path)
    proc = run_without("obstore", ["upgrade"], tmp_path)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: vec") and "obstore" in line and "`pip install 'migrator[lancedb]'`" in line, line
    assert snapshot(tmp_path) == before
