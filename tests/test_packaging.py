"""`pip install migrator` with no extras migrates SQLite: the built wheel in a fresh venv runs the main job.

The wheel is built from a copy of the sources (nothing is written into the worktree)
and installed into a new ``python -m venv`` with no extras; its dependencies come from
the package index through pip's normal configuration and cache. The commands run
there, in a temporary project, through the installed ``migrator`` script.

Marked ``slow`` (building in an isolated environment and resolving the dependencies
from the index takes about a minute): ``nox -s package`` runs it, and it is one of
the default nox sessions, so ``.ci/run`` does too.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "migrator", "backends")


@dataclass(frozen=True)
class Install:
    wheel: Path
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def env(self) -> dict[str, str]:
        dropped = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
        env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("MIGRATOR_")}
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.venv)
        env["PYTHONNOUSERSITE"] = "1"
        return env

    def migrator(self, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.venv / "bin" / "migrator"), *args], cwd=cwd, env=self.env(),
                              capture_output=True, text=True, timeout=120, check=False)


def pip(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Install]:
    base = tmp_path_factory.mktemp("package")
    src = base / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    pip("wheel", "--no-deps", "-q", "-w", str(base / "dist"), str(src))
    (wheel,) = (base / "dist").glob("migrator-*.whl")
    venv = base / "venv"
    # No pip inside the new venv (ensurepip is not everywhere, e.g. Debian without python3-venv): this
    # interpreter's pip installs into it (pip >= 22.3 --python), with the same config and cache.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    pip("--python", str(venv / "bin" / "python"), "install", "-q", str(wheel))
    yield Install(wheel, venv)


def test_wheel_holds_both_adapters_and_py_typed(installed: Install) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    layout = (("migrator/backends/sql", "backends/sql"), ("migrator/backends/lancedb", "backends/lancedb"),
              ("migrator/backends", "backends"), ("migrator", "migrator"), ("migrator/testing", "migrator/testing"))
    for package, folder in layout:
        expected = {f"{package}/{p.name}" for p in (ROOT / folder).glob("*.py")}
        assert expected and expected <= names, sorted(expected - names)
    assert "migrator/py.typed" in names
    assert not any(n.startswith(("backends/", "tests/", "migrations/")) for n in names), "stray top-level packages"


def test_wheel_registers_the_pytest_plugin(installed: Install) -> None:
    with zipfile.ZipFile(installed.wheel) as whl:
        (name,) = [n for n in whl.namelist() if n.endswith(".dist-info/entry_points.txt")]
        text = whl.read(name).decode()
    section = text.split("[pytest11]", 1)[1].split("\n[", 1)[0]
    assert "migrator = migrator.testing.plugin" in section


def test_wheel_metadata_makes_sql_a_base_dependency(installed: Install) -> None:
    with zipfile.ZipFile(installed.wheel) as whl:
        (meta_name,) = [n for n in whl.namelist() if n.endswith(".dist-info/METADATA")]
        meta = Parser().parsestr(whl.read(meta_name).decode())
    requires = meta.get_all("Requires-Dist") or []
    base = {r.split(">")[0].split("[")[0].strip().lower() for r in requires if "extra ==" not in r}
    assert {"sqlalchemy", "alembic", "click", "rich"} <= base
    assert not base & {"lancedb", "pylance", "pyarrow", "obstore", "psycopg", "ray", "lance-ray"}
    extras = set(meta.get_all("Provides-Extra") or [])
    assert {"lancedb", "postgres", "ray", "all", "sql"} <= extras   # sql: kept so old install lines work


def test_fresh_venv_has_no_optional_dependency(installed: Install) -> None:
    probe = ("import importlib.util as u; print(sorted(m for m in ('lancedb', 'lance', 'pyarrow', 'obstore', "
             "'psycopg', 'ray', 'lance_ray', 'sqlalchemy', 'alembic') if u.find_spec(m)))")
    proc = subprocess.run([str(installed.python), "-c", probe], env=installed.env(), capture_output=True, text=True,
                          check=True, cwd=installed.venv)
    assert proc.stdout.strip() == "['alembic', 'sqlalchemy']"


def sqlite_project(root: Path) -> Path:
    mig = root / "migrations" / "sqlite"
    mig.mkdir(parents=True)
    (root / "migrator.toml").write_text(textwrap.dedent('''\
        default_backend = "sqlite"

        [backends.sqlite]
        type = "sql"
        url = "sqlite:///data/app.db"
        migrations = "migrations/sqlite"
        '''))
    (root / "data").mkdir()
    (mig / "001_notes.up.sql").write_text(textwrap.dedent('''\
        CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
        CREATE TABLE tags (id INTEGER PRIMARY KEY, tag TEXT NOT NULL);
        CREATE TRIGGER tags_trim AFTER INSERT ON tags BEGIN
            UPDATE tags SET tag = trim(tag) WHERE id = new.id;
        END;
        INSERT INTO notes (body) VALUES ('first');
        INSERT INTO tags (tag) VALUES ('  a  ');
        '''))
    (mig / "001_notes.down.sql").write_text("DROP TRIGGER tags_trim;\nDROP TABLE tags;\nDROP TABLE notes;\n")
    (mig / "002_add_title.py").write_text(textwrap.dedent('''\
        import sqlalchemy as sa

        def up(db):
            db.op.add_column("notes", sa.Column("title", sa.Text(), server_default="untitled"))
            db.op.create_index("ix_notes_title", "notes", ["title"])
            db.execute("INSERT INTO notes (body, title) VALUES (:body, :title)", {"body": "second", "title": "t2"})

        def down(db):
            db.execute("DELETE FROM notes WHERE body = 'second'")
            db.op.drop_index("ix_notes_title", table_name="notes")
            db.op.drop_column("notes", "title")
        '''))
    (mig / "003_body_nullable.py").write_text(textwrap.dedent('''\
        def up(db):
            db.op.alter_column("notes", "body", nullable=True)    # a batch table copy on SQLite

        def down(db):
            db.op.alter_column("notes", "body", nullable=False)
        '''))
    return root / "data" / "app.db"


def query(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def objects(db: Path) -> list[tuple[object, ...]]:
    return query(db, "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name")


def test_sqlite_main_job_without_extras(installed: Install, tmp_path: Path) -> None:
    root = tmp_path / "proj"
    db = sqlite_project(root)

    def ok(*args: str, code: int = 0) -> str:
        proc = installed.migrator(root, *args)
        assert proc.returncode == code, (args, proc.stdout, proc.stderr)
        return proc.stdout

    ok("upgrade")
    assert query(db, "SELECT version FROM migrations ORDER BY version") == [(1,), (2,), (3,)]
    assert query(db, "SELECT id, body, title FROM notes ORDER BY id") == [(1, "first", "untitled"), (2, "second", "t2")]
    assert objects(db) == [("index", "ix_notes_title"), ("table", "migrations"), ("table", "notes"), ("table", "tags"),
                           ("trigger", "tags_trim")]
    assert query(db, "SELECT tag FROM tags") == [("a",)]    # the trigger ran: the BEGIN ... END file split right
    assert query(db, "SELECT \"notnull\" FROM pragma_table_info('notes') WHERE name = 'body'") == [(0,)]

    status = json.loads(ok("status", "--json"))
    (line,) = status["backends"][0]["lines"]
    assert (line["current"], line["latest"], line["pending"]) == (3, 3, [])
    history = json.loads(ok("history", "--json"))["backends"][0]["history"]
    assert [(h["version"], h["name"]) for h in history] == [(1, "notes"), (2, "add_title"), (3, "body_nullable")]
    ok("validate")
    ok("check")

    ok("rollback", "0")
    assert objects(db) == [("table", "migrations")]
    assert query(db, "SELECT count(*) FROM migrations") == [(0,)]
    ok("check", code=1)                            # three pending again

    ok("stamp", "2")
    assert query(db, "SELECT version FROM migrations ORDER BY version") == [(1,), (2,)]
    assert objects(db) == [("table", "migrations")]    # stamp records, runs nothing

    ok("new", "add_tags")
    ok("new", "add_more", "--sql")
    made = sorted(p.name for p in (root / "migrations" / "sqlite").iterdir())
    assert made == ["001_notes.down.sql", "001_notes.up.sql", "002_add_title.py", "003_body_nullable.py",
                    "004_add_tags.py", "005_add_more.down.sql", "005_add_more.up.sql"]
    status = json.loads(ok("status", "--json"))
    assert [p["version"] for p in status["backends"][0]["lines"][0]["pending"]] == [3, 4, 5]


def test_lancedb_backend_without_extra_names_the_extra(installed: Install, tmp_path: Path) -> None:
    """A LanceDB backend in a no-extras install: one line naming `migrator[lancedb]`, exit 2, nothing written."""
    root = tmp_path / "proj"
    (root / "migrations" / "vec").mkdir(parents=True)
    (root / "migrations" / "empty").mkdir(parents=True)
    (root / "migrations" / "vec" / "001_init.py").write_text(textwrap.dedent('''\
        import pyarrow as pa
        from migrator.lancedb import migration

        @migration(table="users", version=1, description="create users")
        def create_users(db):
            db.create_table("users", schema=pa.schema([pa.field("id", pa.int64())]))
        '''))
    (root / "migrator.toml").write_text(textwrap.dedent('''\
        default_backend = "vec"

        [backends.vec]
        type = "lancedb"
        uri = "lance"
        migrations = "migrations/vec"

        [backends.bare]
        type = "lancedb"
        uri = "lance2"
        migrations = "migrations/empty"
        '''))
    for backend, missing in (("vec", "pyarrow"), ("bare", "lancedb")):
        proc = installed.migrator(root, "upgrade", "--backend", backend)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "pip install 'migrator[lancedb]'" in lines[0] and missing in lines[0], lines
    assert sorted(p.name for p in root.iterdir()) == ["migrations", "migrator.toml"]
