"""kill -9 at random moments of `migrator upgrade`: the line is always at a version it really reached.

A few trials run in the default suite; `nox -s crash` runs hundreds (marker ``crash``).
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from conftest import Project

# Each migration makes a table and fills it in several statements: a half-applied one would show.
STEP = """\
def up(db):
    db.execute("CREATE TABLE t{n} (v TEXT)")
    for i in range(20):
        db.execute("INSERT INTO t{n} (v) VALUES ('x')")

def down(db):
    db.execute("DROP TABLE t{n}")
"""
COUNT = 40


def consistent(url: str) -> tuple[list[int], list[str]]:
    """(recorded versions, problems): every recorded step complete, nothing unrecorded present."""
    engine = sa.create_engine(url)
    problems = []
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            tables = set(inspector.get_table_names())
            recorded = []
            if "migrations" in tables:
                recorded = [r[0] for r in conn.execute(sa.text("SELECT version FROM migrations ORDER BY version"))]
            if recorded != list(range(1, len(recorded) + 1)):
                problems.append(f"recorded versions have a hole: {recorded}")
            for n in range(1, COUNT + 1):
                present = f"t{n}" in tables
                if n in recorded:
                    rows = conn.execute(sa.text(f"SELECT count(*) FROM t{n}")).scalar()
                    if not present or rows != 20:
                        problems.append(f"version {n} recorded but table t{n} has {rows if present else 'no'} rows")
                elif present:
                    problems.append(f"table t{n} exists but version {n} is not recorded")
    finally:
        engine.dispose()
    return recorded, problems


def trial(project: Project, seed: int) -> None:
    rng = random.Random(seed)
    proc = subprocess.Popen([sys.executable, "-m", "migrator", "upgrade"], cwd=project.root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(rng.uniform(0.2, 1.5))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    recorded, problems = consistent(project.url)
    assert problems == [], f"seed {seed}: {problems}"
    resumed = subprocess.run([sys.executable, "-m", "migrator", "upgrade"], cwd=project.root, capture_output=True,
                             text=True, timeout=240, check=False)
    assert resumed.returncode == 0, resumed.stderr
    recorded, problems = consistent(project.url)
    assert problems == [] and recorded == list(range(1, COUNT + 1))


def setup(project: Project) -> None:
    for n in range(1, COUNT + 1):
        project.write(f"{n:03d}_t{n}.py", STEP.format(n=n))


@pytest.mark.parametrize("seed", range(2))
def test_kill_9_during_upgrade_leaves_a_consistent_line(project: Project, seed: int) -> None:
    setup(project)
    trial(project, seed)


@pytest.mark.crash
@pytest.mark.parametrize("seed", range(100, 200))
def test_kill_9_trials(project: Project, seed: int) -> None:
    setup(project)
    trial(project, seed)
