"""kill -9 at random moments of `migrator upgrade`: the line is always at a version it really reached.

A few trials run in the default suite; `nox -s crash` runs hundreds (marker ``crash``). Both file formats:
on a SQLite file, plain SQL files run through the lean ``sqlite3`` path (``backends/sql/driver.py``), Python
migrations through SQLAlchemy.
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
SQL_UP = "CREATE TABLE t{n} (v TEXT);\n" + "INSERT INTO t{n} (v) VALUES ('x');\n" * 20
SQL_DOWN = "DROP TABLE t{n};\n"
COUNT = 40
FORMATS = ["py", "sql"]
# seconds after the start when the kill may come: the whole run of SQL files on SQLite takes ~0.5 s
KILL_WINDOW = {"py": (0.2, 1.5), "sql": (0.1, 0.6)}


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


def trial(project: Project, seed: int, fmt: str = "py") -> None:
    rng = random.Random(seed)
    proc = subprocess.Popen([sys.executable, "-m", "migrator", "upgrade"], cwd=project.root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(rng.uniform(*KILL_WINDOW[fmt]))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    recorded, problems = consistent(project.url)
    assert problems == [], f"seed {seed}: {problems}"
    resumed = subprocess.run([sys.executable, "-m", "migrator", "upgrade"], cwd=project.root, capture_output=True,
                             text=True, timeout=240, check=False)
    assert resumed.returncode == 0, resumed.stderr
    recorded, problems = consistent(project.url)
    assert problems == [] and recorded == list(range(1, COUNT + 1))


def setup(project: Project, fmt: str) -> None:
    for n in range(1, COUNT + 1):
        if fmt == "py":
            project.write(f"{n:03d}_t{n}.py", STEP.format(n=n))
        else:
            project.write(f"{n:03d}_t{n}.up.sql", SQL_UP.format(n=n))
            project.write(f"{n:03d}_t{n}.down.sql", SQL_DOWN.format(n=n))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("seed", range(2))
def test_kill_9_during_upgrade_leaves_a_consistent_line(project: Project, seed: int, fmt: str) -> None:
    setup(project, fmt)
    trial(project, seed, fmt)


@pytest.mark.crash
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("seed", range(100, 200))
def test_kill_9_trials(project: Project, seed: int, fmt: str) -> None:
    setup(project, fmt)
    trial(project, seed, fmt)


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
