"""An interrupted LanceDB migration shows in ``status`` as SQL's does: same words, same JSON shape.

LanceDB keeps a ``started`` row in ``table_migrations_history`` before each migration's function (its
``detail`` names the process: ``pid N on HOST``); one with no ``applied``/``failed`` row after it is a
step whose process died, or still runs. The next ``upgrade`` settles it by itself, so it is not an issue
for ``validate`` and blocks nothing. Real child processes, SIGKILL.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Project, lance_project

pytestmark = pytest.mark.lancedb

WAITS = """\
import pathlib
import time

import pyarrow as pa
from migrator.lancedb import migration

STARTED = pathlib.Path({started!r})
GO = pathlib.Path({go!r})


@migration(table="memos", version=1, description="create memos")
def create(db):
    db.create_table("memos", schema=pa.schema([pa.field("id", pa.int64())]))
    STARTED.touch()
    deadline = time.monotonic() + 60
    while not GO.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
"""


@pytest.fixture
def project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Project:
    root = tmp_path / "proj"
    return lance_project(tmp_path, capsys, {"001_memos.py": WAITS.format(started=str(root / "started"),
                                                                         go=str(root / "go"))})


def start_upgrade(project: Project) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-m", "migrator", "upgrade", "--backend", "vec"], cwd=project.root,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (project.root / "started").exists():
        assert process.poll() is None, f"the migration process ended early ({process.returncode})"
        assert time.monotonic() < deadline, "the migration did not start"
        time.sleep(0.02)
    return process


def interrupted(project: Project) -> list[dict[str, Any]]:
    result = project.cli("status", "--backend", "vec", "--json")
    assert result.code == 0, result.err
    steps: list[dict[str, Any]] = json.loads(result.out)["backends"][0]["interrupted"]
    return steps


def test_a_killed_lancedb_migration_is_shown_interrupted_and_the_next_upgrade_settles_it(project: Project) -> None:
    process = start_upgrade(project)
    process.send_signal(signal.SIGKILL)
    process.wait()

    [step] = interrupted(project)
    assert {k: v for k, v in step.items() if k not in ("started_at", "message")} == {
        "line": "memos", "version": 1, "name": "create memos", "direction": "up", "state": "interrupted",
        "host": socket.gethostname(), "pid": process.pid, "error": None, "settled_by": "upgrade"}
    assert step["started_at"]
    assert step["message"].startswith("memos v1 (create memos) (up) was interrupted: started ")
    assert step["message"].endswith(f"by pid {process.pid} on {socket.gethostname()}, never finished: the next "
                                    "`migrator upgrade` settles it (finishes it, or undoes what it committed and "
                                    "runs it again)")
    text = project.cli("status", "--backend", "vec")
    assert f"interrupted: {step['message']}" in text.out
    assert project.cli("validate", "--backend", "vec").code == 0  # not an operator's job: upgrade settles it

    (project.root / "go").touch()
    upgraded = project.cli("upgrade", "--backend", "vec")
    assert upgraded.code == 0, upgraded.err
    assert interrupted(project) == []


def test_a_running_lancedb_migration_is_shown_running(project: Project) -> None:
    process = start_upgrade(project)
    try:
        [step] = interrupted(project)
        assert (step["state"], step["pid"]) == ("running", process.pid)
        assert step["message"].startswith("memos v1 (create memos) (up) is running: started ")
        assert "running: memos v1 (create memos) (up) is running" in project.cli("status", "--backend", "vec").out
    finally:
        (project.root / "go").touch()
        assert process.wait(timeout=120) == 0
    assert interrupted(project) == []
