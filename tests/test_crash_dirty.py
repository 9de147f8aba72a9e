"""kill -9 at random points of a non-atomic migration: never "pending" with partial changes.

The migration under test runs outside a transaction and makes two tables with a pause between them.
After every kill, either its version is recorded and both tables exist, or its marker is there and
``upgrade`` refuses, or nothing of it is applied. Then the state is settled as an operator would
(``stamp 2`` if both tables are there, else drop what is and ``stamp 1``) and ``upgrade`` completes.
A few trials per dialect in the default suite; ``-m crash`` (``nox -s crash``) runs many more.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa
from snapshots import snapshot, versions

from conftest import Project

PAUSE = 0.4
BASE = "def up(db):\n    db.execute('CREATE TABLE base (id INTEGER)')\n"
NON_ATOMIC = """\
import pathlib
import time

transactional = False
STARTED = pathlib.Path({started!r})


def up(db):
    STARTED.touch()
    db.execute("CREATE TABLE a (id INTEGER)")
    time.sleep({pause})
    db.execute("CREATE TABLE b (id INTEGER)")
"""
AFTER = "def up(db):\n    db.execute('CREATE TABLE c (id INTEGER)')\n"


def setup(project: Project) -> None:
    project.write("001_base.py", BASE)
    project.write("002_two.py", NON_ATOMIC.format(started=str(project.root / "started"), pause=PAUSE))
    project.write("003_after.py", AFTER)


def marked(url: str) -> list[int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("migrations_dirty"):
                return []
            return [int(r[0]) for r in conn.execute(sa.text("SELECT version FROM migrations_dirty"))]
    finally:
        engine.dispose()


def kill_at_random(project: Project, rng: random.Random) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "migrator", "upgrade"], cwd=project.root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if rng.random() < 0.15:  # anywhere in the run
            time.sleep(rng.uniform(0.05, 2.5))
        else:  # somewhere in the non-atomic migration or just after it
            deadline = time.monotonic() + 120
            started = project.root / "started"
            while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(rng.uniform(0, PAUSE * 1.3))
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()


def trial(project: Project, seed: int) -> str:
    """One kill and the check after it; returns what the kill left ("recorded", "marked", "clean")."""
    rng = random.Random(seed)
    setup(project)
    kill_at_random(project, rng)
    recorded, tables, marks = versions(project.url), set(snapshot(project.url)["tables"]), marked(project.url)
    if 2 in recorded:
        outcome = "recorded"
        assert {"a", "b"} <= tables and marks == [], (seed, recorded, tables, marks)
    elif marks:
        outcome = "marked"
        assert marks == [2], (seed, marks)
        refused = project.cli("upgrade")
        assert refused.code == 1 and "002_two (up) was interrupted" in refused.err, (seed, refused)
        assert versions(project.url) == recorded and set(snapshot(project.url)["tables"]) == tables
        if "b" in tables:  # the operator looks at the schema: it is complete
            settle = "2"
        else:  # it is not: undo what is there
            if "a" in tables:
                engine = sa.create_engine(project.url)
                try:
                    with engine.begin() as conn:
                        conn.execute(sa.text("DROP TABLE a"))
                finally:
                    engine.dispose()
            settle = "1"
        assert project.cli("stamp", settle).code == 0
    else:
        outcome = "clean"  # pending: then nothing of it may be there
        assert not {"a", "b"} & tables, (seed, recorded, tables)
    resumed = project.cli("upgrade")
    assert resumed.code == 0, (seed, resumed.err)
    assert versions(project.url) == [1, 2, 3] and {"a", "b", "c"} <= set(snapshot(project.url)["tables"])
    assert marked(project.url) == []
    return outcome


# seeds whose kill points fall between the two statements (3, 4) and after them (2)
@pytest.mark.parametrize("seed", [2, 3, 4])
def test_kill_9_of_a_non_atomic_migration_never_leaves_it_pending_with_partial_changes(
    project: Project, seed: int
) -> None:
    assert trial(project, seed) in ("recorded", "marked", "clean")


@pytest.mark.crash
@pytest.mark.parametrize("seed", range(100, 140))
def test_kill_9_non_atomic_trials(project: Project, seed: int) -> None:
    trial(project, seed)

