"""A migration file that cannot be read is refused by name in every command, never skipped."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import Project, lance_project, write_config

LANCE_FILE = '''\
from migrator.lancedb import migration

@migration(table="docs", version={v}, description="step {v}")
def step(db):
    pass
'''

COMMANDS = [("status",), ("validate",), ("check",), ("upgrade",), ("upgrade", "--dry-run"), ("rollback", "0"),
            ("stamp", "1"), ("new", "next")]


def _sql(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Project, str]:
    root = tmp_path / "proj"
    (root / "migrations" / "db").mkdir(parents=True)
    write_config(root, "sqlite:///app.db")
    (root / "migrations" / "db" / "001_a.up.sql").write_text("CREATE TABLE a (id INTEGER);\n")
    return Project(root, "", capsys), "002_b.up.sql"


def _lance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Project, str]:
    project = lance_project(tmp_path, capsys, {"001_a.py": LANCE_FILE.format(v=1)})
    return project, "002_b.py"


PROJECTS = {"sql": _sql, "lancedb": _lance}


def _folder(project: Project) -> Path:
    return project.root / "migrations" / ("db" if (project.root / "migrations" / "db").exists() else "vec")


def _assert_refused(project: Project, args: tuple[str, ...], path: Path, words: str) -> None:
    result = project.cli(*args)
    assert result.code == 2, (result.out, result.err)
    assert result.err.count("\n") == 1, result.err
    assert str(path) in result.err and words in result.err


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("kind", PROJECTS)
def test_a_dangling_symlink_migration_is_refused_by_name(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, args: tuple[str, ...]) -> None:
    project, name = PROJECTS[kind](tmp_path, capsys)
    link = _folder(project) / name
    link.symlink_to(tmp_path / "gone.sql")
    _assert_refused(project, args, link, "which does not exist")


def test_a_dangling_symlink_down_file_is_refused_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project, _ = _sql(tmp_path, capsys)
    link = _folder(project) / "001_a.down.sql"
    link.symlink_to("nowhere.sql")
    _assert_refused(project, ("status",), link, "symlink to nowhere.sql, which does not exist")


@pytest.mark.parametrize("args", [("status",), ("validate",), ("check",), ("upgrade",)], ids=" ".join)
@pytest.mark.parametrize("kind", PROJECTS)
def test_a_symlink_loop_migration_is_refused_by_name(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, args: tuple[str, ...]) -> None:
    project, name = PROJECTS[kind](tmp_path, capsys)
    link = _folder(project) / name
    link.symlink_to(link.name)
    _assert_refused(project, args, link, "symlink loop")


@pytest.mark.parametrize("kind", PROJECTS)
def test_a_folder_named_like_a_migration_is_refused_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            kind: str) -> None:
    project, name = PROJECTS[kind](tmp_path, capsys)
    folder = _folder(project) / name
    folder.mkdir()
    _assert_refused(project, ("status",), folder, "is a folder")


@pytest.mark.parametrize("kind", PROJECTS)
def test_a_named_pipe_named_like_a_migration_is_refused_without_hanging(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str) -> None:
    project, name = PROJECTS[kind](tmp_path, capsys)
    pipe = _folder(project) / name
    os.mkfifo(pipe)
    _assert_refused(project, ("status",), pipe, "not a regular file")


@pytest.mark.parametrize("kind", PROJECTS)
def test_a_symlink_to_a_real_file_still_works(tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str) -> None:
    project, name = PROJECTS[kind](tmp_path, capsys)
    target = tmp_path / "elsewhere" / name
    target.parent.mkdir()
    target.write_text("CREATE TABLE b (id INTEGER);\n" if kind == "sql" else LANCE_FILE.format(v=2))
    (_folder(project) / name).symlink_to(target)
    result = project.cli("status")
    assert result.code == 0, result.err
    assert "2 pending" in result.out


def _unprivileged() -> list[str]:
    """A command prefix under which file permissions apply (root ignores them unless it drops the capabilities)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: a file cannot be made unreadable")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


@pytest.mark.parametrize("kind", PROJECTS)
def test_an_unreadable_migration_file_is_refused_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         kind: str) -> None:
    project, name = PROJECTS[kind](tmp_path, capsys)
    path = _folder(project) / name
    path.write_text(textwrap.dedent("CREATE TABLE b (id INTEGER);\n" if kind == "sql" else LANCE_FILE.format(v=2)))
    path.chmod(0)
    proc = subprocess.run([*_unprivileged(), sys.executable, "-m", "migrator", "status"], cwd=project.root,
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and f"{path}: cannot be read: Permission denied" in proc.stderr
