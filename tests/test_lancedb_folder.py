"""A LanceDB ``uri`` that cannot be a folder (a file, under a file) or cannot be written: one line, exit 2.

A read-only folder can still be read: ``status``, ``history``, ``validate`` and ``check`` work on it.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Project, lance_project

pytestmark = pytest.mark.lancedb

NOTES = {
    "001_notes.py": '''
        import pyarrow as pa
        from migrator.lancedb import migration

        @migration(table="notes", version=1, description="create notes")
        def create(db):
            db.create_table("notes", data=pa.table({"id": pa.array([1, 2], pa.int64())}))
    ''',
}

SECOND = '''
import pyarrow as pa
from migrator.lancedb import add_columns, migration

@migration(table="notes", version=2, description="add notes.text")
def add_text(db):
    add_columns(db, "notes", pa.field("text", pa.string()))
'''

COMMANDS = [("status",), ("history",), ("validate",), ("check",), ("upgrade",), ("upgrade", "--dry-run"),
            ("stamp", "1", "--table", "notes"), ("rollback", "0", "--table", "notes")]


def assert_refused(p: Project, args: tuple[str, ...], path: Path, problem: str) -> None:
    result = p.cli(*args, "--backend", "vec")
    assert result.code == 2, (args, result)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, (args, result.err)
    assert "[backends.vec]" in lines[0] and f"uri {path} " in lines[0] and problem in lines[0], (args, lines[0])
    assert "Traceback" not in result.err and "FileExistsError" not in result.err


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_uri_naming_a_file_is_refused_naming_backend_key_and_path(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]) -> None:
    p = lance_project(tmp_path, capsys, NOTES)
    target = p.root / "data" / "lance"
    target.parent.mkdir()
    target.write_text("not a database\n")
    assert_refused(p, args, target, "is a file, not a LanceDB folder")
    assert target.read_text() == "not a database\n"


@pytest.mark.parametrize("args", [("status",), ("upgrade",)], ids=" ".join)
def test_a_uri_under_a_file_is_refused_and_nothing_is_created(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]) -> None:
    p = lance_project(tmp_path, capsys, NOTES)
    (p.root / "data").write_text("a file where a folder should be\n")
    assert_refused(p, args, p.root / "data" / "lance", f"cannot be created: {p.root / 'data'} is a file")
    assert (p.root / "data").read_text() == "a file where a folder should be\n"


def test_a_uri_that_is_a_dangling_symlink_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = lance_project(tmp_path, capsys, NOTES)
    (p.root / "data").mkdir()
    (p.root / "data" / "lance").symlink_to(tmp_path / "gone")
    assert_refused(p, ("upgrade",), p.root / "data" / "lance", "which does not exist")
    assert not (tmp_path / "gone").exists()


# -- a folder migrator cannot write in ------------------------------------------------------------------------------


def read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def writable_again(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def migrator_on_read_only(root: Path, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``migrator ARGS`` in ``root`` with ``folder`` read-only for it.

    Root ignores file modes: then ``folder`` is bind-mounted read-only onto itself in a mount namespace of the
    child alone (``unshare``), which is gone when it exits. Anyone else: the folder's write bits are cleared.
    """
    command = [sys.executable, "-m", "migrator", *args]
    if os.geteuid() != 0:
        read_only(folder)
        try:
            return subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=300, check=False)
        finally:
            writable_again(folder)
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("running as root without unshare: cannot make a folder read-only for the child")
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1" && shift && exec "$@"'
    result = subprocess.run([unshare, "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(folder),
                             *command], cwd=root, capture_output=True, text=True, timeout=300, check=False)
    if "mount:" in result.stderr or "unshare:" in result.stderr:
        pytest.skip(f"cannot mount a read-only folder here: {result.stderr.strip()}")
    return result


@pytest.fixture
def migrated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Project:
    p = lance_project(tmp_path, capsys, NOTES)
    assert p.cli("upgrade", "--backend", "vec").code == 0
    (p.root / "migrations" / "vec" / "002_notes_text.py").write_text(SECOND)
    return p


def test_upgrade_into_a_read_only_folder_is_refused_naming_backend_key_and_path(migrated: Project) -> None:
    folder = migrated.root / "data" / "lance"
    before = sorted(str(p) for p in folder.rglob("*"))
    result = migrator_on_read_only(migrated.root, folder, "upgrade", "--backend", "vec")
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "[backends.vec]" in lines[0] and f"uri {folder} is not writable" in lines[0]
    assert sorted(str(p) for p in folder.rglob("*")) == before


def test_status_reads_a_read_only_folder(migrated: Project) -> None:
    folder = migrated.root / "data" / "lance"
    status = migrator_on_read_only(migrated.root, folder, "status", "--backend", "vec", "--json")
    assert status.returncode == 0, status.stderr
    line = json.loads(status.stdout)["backends"][0]["lines"][0]
    assert (line["line"], line["current"], [p["version"] for p in line["pending"]]) == ("notes", 1, [2])


def test_check_reads_a_read_only_folder(migrated: Project) -> None:
    folder = migrated.root / "data" / "lance"
    check = migrator_on_read_only(migrated.root, folder, "check", "--backend", "vec")
    assert check.returncode == 1 and "pending" in check.stdout and not check.stderr, check
