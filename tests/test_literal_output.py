"""User text (file names, descriptions, table names) is printed literally, never read as rich markup."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import Project, lance_project, write_config

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
SQL_NAMES = ["add_[red]flag", "x_[bold]y", "emoji_:smile:_z", "[link=http:x]q", "open_[_only"]
DESCRIPTIONS = ["fix [/] closing", "make [red]it red", "emoji :smile: here", "[bold]b[/bold] and \\[esc]"]


@pytest.fixture(params=["plain", "terminal"])
def output(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Off a terminal, and on one (rich writes styles and a progress bar then)."""
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.setenv("TTY_COMPATIBLE", "1" if request.param == "terminal" else "0")
    return str(request.param)


def _plain(text: str) -> str:
    return ANSI.sub("", text)


def _sql_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Project:
    root = tmp_path / "proj"
    (root / "migrations" / "db").mkdir(parents=True)
    write_config(root, "sqlite:///app.db")
    for number, name in enumerate(SQL_NAMES, 1):
        (root / "migrations" / "db" / f"{number:03d}_{name}.up.sql").write_text(f"CREATE TABLE t{number} (id INT);\n")
    return Project(root, "", capsys)


def _lance_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Project:
    body = "from migrator.lancedb import migration\n"
    for version, description in enumerate(DESCRIPTIONS, 1):
        body += (f"\n@migration(table='docs-v2.x', version={version}, description={description!r})\n"
                 f"def step{version}(db):\n    pass\n")
    return lance_project(tmp_path, capsys, {"001_steps.py": body})


def test_sql_file_names_are_printed_literally_by_status(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        output: str) -> None:
    project = _sql_project(tmp_path, capsys)
    result = project.cli("status")
    assert result.code == 0, result.err
    for name in SQL_NAMES[:3]:  # status lists the first three pending files
        assert name in _plain(result.out)


def test_sql_file_names_are_printed_literally_by_upgrade_and_history(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], output: str) -> None:
    project = _sql_project(tmp_path, capsys)
    upgraded = project.cli("upgrade")
    assert upgraded.code == 0, upgraded.err
    history = project.cli("history")
    assert history.code == 0, history.err
    for name in SQL_NAMES:
        assert f"applied {SQL_NAMES.index(name) + 1:03d}_{name}" in _plain(upgraded.out)
        assert name in _plain(history.out)


def test_sql_json_output_carries_names_unchanged(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 output: str) -> None:
    project = _sql_project(tmp_path, capsys)
    pending = json.loads(project.cli("status", "--json").out)["backends"][0]["lines"][0]["pending"]
    assert [p["name"] for p in pending] == SQL_NAMES
    project.cli("upgrade")
    history = json.loads(project.cli("history", "--json").out)["backends"][0]["history"]
    assert [h["name"] for h in history] == SQL_NAMES


def test_a_failing_migration_with_markup_in_its_name_is_named_literally(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], output: str) -> None:
    project = _sql_project(tmp_path, capsys)
    (project.migrations / "009_boom_[red]x.up.sql").write_text("CREATE TABLE broken (;\n")
    result = project.cli("upgrade")
    assert result.code == 1
    assert "009_boom_[red]x" in _plain(result.err)


def test_created_file_names_are_printed_literally(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  output: str) -> None:
    root = tmp_path / "[red]proj"
    (root / "migrations" / "db").mkdir(parents=True)
    write_config(root, "sqlite:///app.db")
    result = Project(root, "", capsys).cli("new", "first")
    assert result.code == 0, result.err
    assert f"created {root / 'migrations' / 'db' / '001_first.py'}" in _plain(result.out)


def test_lancedb_descriptions_and_table_names_are_printed_literally_by_status(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], output: str) -> None:
    project = _lance_project(tmp_path, capsys)
    result = project.cli("status", "--backend", "vec")
    assert result.code == 0, result.err
    out = _plain(result.out)
    assert "docs-v2.x" in out
    for version, description in enumerate(DESCRIPTIONS[:3], 1):
        assert f"v{version} {description}" in out


def test_lancedb_descriptions_are_printed_literally_by_upgrade_and_history(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], output: str) -> None:
    project = _lance_project(tmp_path, capsys)
    upgraded = project.cli("upgrade", "--backend", "vec")
    assert upgraded.code == 0, upgraded.err
    history = project.cli("history", "--backend", "vec")
    assert history.code == 0, history.err
    for description in DESCRIPTIONS:
        assert description in _plain(upgraded.out)
        assert description in _plain(history.out)
    assert "docs-v2.x" in _plain(history.out)


def test_lancedb_json_output_carries_descriptions_unchanged(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            output: str) -> None:
    project = _lance_project(tmp_path, capsys)
    project.cli("upgrade", "--backend", "vec")
    history = json.loads(project.cli("history", "--backend", "vec", "--json").out)["backends"][0]["history"]
    assert [h["name"] for h in history] == DESCRIPTIONS
    assert {h["line"] for h in history} == {"docs-v2.x"}
