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


# --------------------------------------------------------------------------- kill -9 during upgrade --backup

BIG_ROWS = 40_000


def backup_trial(project: Project) -> tuple[list[str], bool]:
    """Kill `upgrade --backup` once its copy has started; (visible backups, whether the kill came mid-copy)."""
    import sqlite3

    db = project.root / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE big (v TEXT)")
        conn.executemany("INSERT INTO big VALUES (?)", (("x" * 1000,) for _ in range(BIG_ROWS)))
    full = db.stat().st_size
    project.write("001_a.up.sql", "CREATE TABLE a (id INTEGER);\n")
    proc = subprocess.Popen([sys.executable, "-m", "migrator", "upgrade", "--backup"], cwd=project.root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    mid_copy = False
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        copies = [p for p in project.root.iterdir() if "backup-" in p.name]
        sizes = [p.stat().st_size for p in copies if p.exists()]
        if sizes and any(0 < s < full for s in sizes):
            proc.send_signal(signal.SIGKILL)
            mid_copy = True
            break
        time.sleep(0.0005)
    proc.wait()
    visible = sorted(p.name for p in project.root.glob("app.db.backup-*"))
    for name in visible:   # a file that has a backup's name is a whole backup
        with sqlite3.connect(project.root / name) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok", name
            assert conn.execute("SELECT count(*) FROM big").fetchone()[0] == BIG_ROWS, name
    return visible, mid_copy


def test_kill_9_during_a_backup_leaves_no_file_that_looks_like_a_finished_backup(sqlite_project: Project) -> None:
    visible, mid_copy = backup_trial(sqlite_project)
    if mid_copy:
        assert visible == []
    resumed = sqlite_project.cli("upgrade", "--backup")
    assert resumed.code == 0, resumed.err
    assert len(list(sqlite_project.root.glob("app.db.backup-*"))) == len(visible) + 1
