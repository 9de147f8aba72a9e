"""Eight `migrator upgrade` processes at once apply each migration exactly once (SQLite and PostgreSQL)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from conftest import Project

# Each migration inserts one row into a ledger: a migration applied twice shows up twice.
STEP = """\
import time

def up(db):
    db.execute("CREATE TABLE IF NOT EXISTS ledger (version INTEGER)")
    db.execute("INSERT INTO ledger (version) VALUES ({n})")
    time.sleep(0.02)

def down(db):
    db.execute("DELETE FROM ledger WHERE version = {n}")
"""


def test_eight_concurrent_upgrades_apply_each_migration_exactly_once(project: Project) -> None:
    for n in range(1, 21):
        project.write(f"{n:03d}_step.py", STEP.format(n=n))
    procs = [subprocess.Popen([sys.executable, "-m", "migrator", "upgrade"], cwd=project.root,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(8)]
    outcomes = [(p.wait(timeout=240), p.stderr.read() if p.stderr else "") for p in procs]
    assert all(code == 0 for code, _ in outcomes), outcomes
    engine = sa.create_engine(project.url)
    try:
        with engine.connect() as conn:
            ledger = [r[0] for r in conn.execute(sa.text("SELECT version FROM ledger ORDER BY version"))]
            recorded = [r[0] for r in conn.execute(sa.text("SELECT version FROM migrations ORDER BY version"))]
    finally:
        engine.dispose()
    assert ledger == list(range(1, 21))
    assert recorded == list(range(1, 21))


def write_slow_first(project: Project, release: Path) -> None:
    """001_slow.py: runs (holding the lock) until the file ``release`` exists."""
    project.write("001_slow.py", "import pathlib, time\n\ndef up(db):\n"
                                 f"    release = pathlib.Path({str(release)!r})\n"
                                 "    for _ in range(6000):\n"
                                 "        if release.exists():\n"
                                 "            return\n"
                                 "        time.sleep(0.05)\n")


def test_a_second_process_times_out_with_a_clear_message(project: Project, tmp_path: Path) -> None:
    # the first process holds the lock until the test lets it go (not for a fixed time a loaded machine may need
    # just to start the second process)
    release = tmp_path / "release"
    write_slow_first(project, release)
    (project.root / "migrator.toml").write_text((project.root / "migrator.toml").read_text()
                                                .replace('default_backend = "db"',
                                                         'default_backend = "db"\nlock_timeout = 1'))
    first = subprocess.Popen([sys.executable, "-m", "migrator", "upgrade"], cwd=project.root,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # wait until the first process holds the lock (it prints the plan only under the lock)
        assert first.stdout is not None
        first.stdout.readline()
        second = subprocess.run([sys.executable, "-m", "migrator", "upgrade"], cwd=project.root,
                                capture_output=True, text=True, timeout=60, check=False)
        assert second.returncode == 1
        assert "being migrated by another process" in second.stderr
    finally:
        release.touch()
        first.wait(timeout=60)
    assert first.returncode == 0


def test_a_second_process_says_once_that_it_waits_and_for_whom_then_migrates(project: Project,
                                                                             tmp_path: Path) -> None:
    release = tmp_path / "release"
    write_slow_first(project, release)
    project.write("002_next.up.sql", "CREATE TABLE next_one (id INTEGER);\n")
    first = subprocess.Popen([sys.executable, "-m", "migrator", "upgrade", "--to", "1"], cwd=project.root,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = None
    try:
        assert first.stdout is not None
        first.stdout.readline()  # the first process holds the lock (it prints the plan only under the lock)
        second = subprocess.Popen([sys.executable, "-m", "migrator", "upgrade"], cwd=project.root,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert second.stdout is not None
        said = second.stdout.readline()   # before anything else: it is waiting
    finally:
        release.touch()
        first.wait(timeout=60)
    assert second is not None
    out, err = second.communicate(timeout=120)
    assert first.returncode == 0 and second.returncode == 0, err
    assert said.startswith("db: waiting for the migration lock (held by ")
    assert f"pid {first.pid} on " in said and said.rstrip().endswith("up to 60 s")
    assert "waiting" not in out      # said once
    assert "applied 002_next" in out
