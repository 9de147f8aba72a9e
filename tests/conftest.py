"""Shared fixtures: temporary projects, the CLI run in-process, SQL URLs for each dialect."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest_plugins = ["pg", "s3", "pytester"]


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@dataclass
class Project:
    """A folder with a migrator.toml and a migrations folder for one SQL backend named ``db``."""

    root: Path
    url: str
    capsys: pytest.CaptureFixture[str]

    @property
    def migrations(self) -> Path:
        return self.root / "migrations" / "db"

    def write(self, name: str, text: str) -> Path:
        path = self.migrations / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def cli(self, *args: str) -> CliResult:
        from migrator.cli import main

        self.capsys.readouterr()
        old = Path.cwd()
        os.chdir(self.root)
        try:
            code = main(list(args))
        finally:
            os.chdir(old)
        captured = self.capsys.readouterr()
        return CliResult(code, captured.out, captured.err)


def write_config(root: Path, url: str, extra: str = "") -> Path:
    config = root / "migrator.toml"
    config.write_text(textwrap.dedent(f'''\
        default_backend = "db"

        [backends.db]
        type = "sql"
        url = "{url}"
        migrations = "migrations/db"
        ''') + textwrap.dedent(extra), encoding="utf-8")
    return config


def lance_project(tmp_path: Path, capsys: pytest.CaptureFixture[str], files: dict[str, str]) -> Project:
    """A project with a LanceDB backend ``vec`` (the default; these files) beside a SQLite backend ``sql``."""
    root = tmp_path / "proj"
    (root / "migrations" / "sql").mkdir(parents=True)
    (root / "migrations" / "vec").mkdir(parents=True)
    for name, text in files.items():
        (root / "migrations" / "vec" / name).write_text(textwrap.dedent(text))
    (root / "migrations" / "sql" / "001_a.up.sql").write_text("CREATE TABLE a (id INTEGER);\n")
    (root / "migrator.toml").write_text(textwrap.dedent('''\
        default_backend = "vec"

        [backends.sql]
        type = "sql"
        url = "sqlite:///data/app.db"
        migrations = "migrations/sql"

        [backends.vec]
        type = "lancedb"
        uri = "data/lance"
        migrations = "migrations/vec"
        '''))
    return Project(root, "", capsys)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh empty database of each dialect."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'app.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def project(tmp_path: Path, sql_url: str, capsys: pytest.CaptureFixture[str]) -> Iterator[Project]:
    root = tmp_path / "proj"
    (root / "migrations" / "db").mkdir(parents=True)
    write_config(root, sql_url)
    yield Project(root, sql_url, capsys)


@pytest.fixture
def sqlite_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Project:
    root = tmp_path / "proj"
    (root / "migrations" / "db").mkdir(parents=True)
    url = f"sqlite:///{root / 'app.db'}"
    write_config(root, url)
    return Project(root, url, capsys)
