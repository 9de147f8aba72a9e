"""SQLite-only behaviour of the CLI: files that are not databases, the example migrations, init."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import Project, write_config

REPO = Path(__file__).resolve().parent.parent


def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(sqlite_project: Project) -> None:
    db = sqlite_project.root / "app.db"
    db.write_bytes(b"this is not a database, just some text\n" * 10)
    before = db.read_bytes()
    sqlite_project.write("001_a.up.sql", "CREATE TABLE a (id INTEGER);\n")
    result = sqlite_project.cli("upgrade")
    assert result.code == 2 and "not a SQLite database" in result.err
    assert db.read_bytes() == before


def test_unreachable_postgres_url_is_masked(sqlite_project: Project) -> None:
    write_config(sqlite_project.root, "postgresql+psycopg://app:topsecret@127.0.0.1:1/app")
    result = sqlite_project.cli("status")
    assert result.code == 2
    assert "topsecret" not in result.err + result.out
    assert "app:***@127.0.0.1:1/app" in result.err


def test_password_never_printed_with_verbose_traceback(sqlite_project: Project) -> None:
    write_config(sqlite_project.root, "postgresql+psycopg://app:topsecret@127.0.0.1:1/app")
    result = sqlite_project.cli("-v", "upgrade")
    assert result.code == 2 and "topsecret" not in result.err + result.out


def test_the_example_migrations_go_up_down_and_up_again(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "demo"
    shutil.copytree(REPO / "migrations" / "sqlite", root / "migrations" / "db")
    write_config(root, "sqlite:///data/app.db")
    project = Project(root, f"sqlite:///{root / 'data' / 'app.db'}", capsys)
    assert project.cli("upgrade").code == 0
    status = project.cli("status")
    assert "003" not in status.err and "up to date" in status.out
    assert project.cli("rollback", "1").code == 0
    assert "2 pending" in project.cli("status").out
    assert project.cli("upgrade").code == 0
    assert project.cli("check").code == 0


def test_init_scaffolds_a_config_that_works(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = Project(tmp_path, "", capsys)
    assert project.cli("init").code == 0
    assert (tmp_path / "migrator.toml").exists() and (tmp_path / "migrations" / "sqlite").is_dir()
    assert project.cli("new", "first").code == 0
    (tmp_path / "migrations" / "sqlite" / "001_first.py").write_text(
        "def up(db):\n    db.execute('CREATE TABLE t (id INTEGER)')\n")
    assert project.cli("upgrade").code == 0
    assert (tmp_path / "data" / "app.db").exists()


def test_init_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = Project(tmp_path, "", capsys)
    project.cli("init")
    result = project.cli("init")
    assert result.code == 2 and "already exists" in result.err
