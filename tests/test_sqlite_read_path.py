"""status, history, validate and check on a SQLite file read the version table with sqlite3, not SQLAlchemy.

The read path (``migrator.backends.sql.readpath``) must give exactly the records
``SqlBackend`` reads, and leave every error to ``SqlBackend``'s wording.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import write_config
from migrator.api import Migrator
from migrator.backends import open_backend
from migrator.backends.sql import SqlBackend, create
from migrator.backends.sql.readpath import SqliteFront
from migrator.config import BackendConfig, load_config

PROBE = """
import json, sys
from migrator.cli import main
code = main(sys.argv[1:])
print("LOADED", json.dumps(sorted(m for m in ("sqlalchemy", "alembic") if m in sys.modules)))
sys.exit(code)
"""

PY_MIGRATION = '''\
    import sqlalchemy as sa

    def up(db):
        db.op.add_column("notes", sa.Column("title", sa.Text()))

    def down(db):
        db.op.drop_column("notes", "title")
    '''


def project(root: Path, url: str = "sqlite:///app.db") -> Path:
    mig = root / "migrations" / "db"
    mig.mkdir(parents=True)
    write_config(root, url)
    (mig / "001_notes.up.sql").write_text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n")
    (mig / "001_notes.down.sql").write_text("DROP TABLE notes;\n")
    (mig / "002_title.py").write_text(textwrap.dedent(PY_MIGRATION))
    (mig / "003_more.up.sql").write_text("CREATE TABLE more (id INTEGER);\n")
    return mig


def cli(root: Path, *args: str) -> tuple[int, str, list[str]]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=root, capture_output=True, text=True,
                          timeout=120, check=False)
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("LOADED ")]
    return proc.returncode, proc.stdout + proc.stderr, json.loads(line.removeprefix("LOADED "))


def backend_config(root: Path) -> BackendConfig:
    return load_config(root / "migrator.toml").backends["db"]


@pytest.mark.parametrize("command, code, shown", [
    (["status"], 0, "1 pending: 003_more"), (["status", "--json"], 0, '"current": 2'), (["history"], 0, "title"),
    (["history", "--json"], 0, '"name": "title"'), (["validate"], 0, "valid"), (["check"], 1, "003_more"),
])
def test_read_commands_on_sqlite_import_neither_sqlalchemy_nor_alembic(tmp_path: Path, command: list[str],
                                                                       code: int, shown: str) -> None:
    project(tmp_path)
    assert cli(tmp_path, "upgrade", "--to", "2")[0] == 0
    got, output, loaded = cli(tmp_path, *command)
    assert got == code, output
    assert loaded == []
    assert shown in output


def test_read_commands_see_what_upgrade_wrote_in_the_same_process(tmp_path: Path) -> None:
    project(tmp_path)
    migrator = Migrator.from_config(tmp_path / "migrator.toml")
    assert [line.current for line in migrator.status().backends[0].lines] == [0]
    migrator.upgrade()
    assert [line.current for line in migrator.status().backends[0].lines] == [3]
    assert [r.version for r in migrator.history()["db"]] == [1, 2, 3]


@pytest.mark.parametrize("url", ["sqlite:///app.db", "sqlite+pysqlite:///app.db", "sqlite:///sub/dir/app.db"])
def test_read_path_gives_the_records_and_location_sqlalchemy_gives(tmp_path: Path, url: str) -> None:
    project(tmp_path, url)
    assert cli(tmp_path, "upgrade", "--to", "1")[0] == 0
    assert cli(tmp_path, "stamp", "2")[0] == 0       # a row written by a stamp too (no duration)
    assert cli(tmp_path, "upgrade")[0] == 0
    config = backend_config(tmp_path)
    front, full = open_backend(config), create(config)
    try:
        assert isinstance(front, SqliteFront) and isinstance(full, SqlBackend)
        assert front.location == full.location
        assert front.applied() == full.applied()
        assert front.discover() == full.discover()
        assert front.capabilities == full.capabilities
    finally:
        front.close()
        full.close()


def test_read_path_on_a_missing_database_creates_nothing(tmp_path: Path) -> None:
    project(tmp_path)
    code, output, loaded = cli(tmp_path, "status")
    assert code == 0 and "3 pending" in output
    assert not (tmp_path / "app.db").exists()
    assert loaded == []


def test_read_path_keeps_the_version_table_check(tmp_path: Path) -> None:
    project(tmp_path)
    with sqlite3.connect(tmp_path / "app.db") as conn:
        conn.execute("CREATE TABLE migrations (id INTEGER, what TEXT)")   # the app's own table of that name
    code, output, loaded = cli(tmp_path, "status")
    assert code == 2
    assert "table 'migrations'" in output and "is not a migrator version table" in output
    assert "set version_table" in output
    assert loaded == []


def test_a_file_that_is_not_a_database_is_worded_by_sqlalchemy_as_before(tmp_path: Path) -> None:
    project(tmp_path)
    (tmp_path / "app.db").write_bytes(b"this is not a database" * 100)
    code, output, _ = cli(tmp_path, "status")
    with pytest.raises(Exception) as full_error:
        create(backend_config(tmp_path)).applied()
    assert code == 2
    assert str(full_error.value) in output
    assert (tmp_path / "app.db").read_bytes() == b"this is not a database" * 100


@pytest.mark.parametrize("url", ["sqlite:///app.db?mode=ro&uri=true", "sqlite:///my%20data.db", "sqlite://"])
def test_urls_the_read_path_cannot_take_go_to_sqlalchemy(tmp_path: Path, url: str) -> None:
    project(tmp_path, url)
    backend = open_backend(backend_config(tmp_path))
    try:
        assert isinstance(backend, SqlBackend)
    finally:
        backend.close()


def test_engine_options_go_to_sqlalchemy(tmp_path: Path) -> None:
    project(tmp_path)
    with (tmp_path / "migrator.toml").open("a") as config:
        config.write("engine_options = { echo = false }\n")
    backend = open_backend(backend_config(tmp_path))
    try:
        assert isinstance(backend, SqlBackend)
    finally:
        backend.close()
