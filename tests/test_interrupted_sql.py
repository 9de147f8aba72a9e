"""A non-atomic SQL migration that is killed or fails half way is never mistaken for "pending".

Before the body of a migration that runs outside a transaction, migrator commits a marker row in
``<version_table>_dirty``; the transaction that records the version deletes it. A marker left behind
(kill -9, a failure) shows in ``status`` as *interrupted* (when, pid, host), makes ``validate`` and
``check`` exit 1 and ``upgrade`` / ``rollback`` refuse with the way out, until ``migrator stamp`` says
what state the database is in. SQLite and PostgreSQL; the kills are real child processes and SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from snapshots import assert_clean_error, snapshot, versions

from conftest import Project, write_config
from migrator.backends.sql import SqlBackend
from migrator.model import Direction, InterruptedStep

FIRST = ("def up(db):\n    db.execute('CREATE TABLE base (id INTEGER)')\n\n"
         "def down(db):\n    db.execute('DROP TABLE base')\n")

# a non-atomic migration of two DDL statements; it touches STARTED after the first and waits for GO
TWO_STEPS = """\
import pathlib
import time

transactional = False
STARTED = pathlib.Path({started!r})
GO = pathlib.Path({go!r})


def up(db):
    db.execute("CREATE TABLE a (id INTEGER)")
    STARTED.touch()
    deadline = time.monotonic() + 60
    while not GO.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    db.execute("CREATE TABLE b (id INTEGER)")


def down(db):
    db.execute("DROP TABLE b")
    db.execute("DROP TABLE a")
"""


def secret(project: Project) -> list[str]:
    password = sa.make_url(project.url).password
    return [str(password)] if password else []


def markers(url: str, table: str = "migrations_dirty") -> list[dict[str, Any]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(table):
                return []
            return [dict(row) for row in conn.execute(sa.text(f"SELECT * FROM {table}")).mappings()]
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    return set(snapshot(url)["tables"])


def status_json(project: Project) -> dict[str, Any]:
    result = project.cli("status", "--json")
    assert result.code == 0, result.err
    backend: dict[str, Any] = json.loads(result.out)["backends"][0]
    return backend


def start_upgrade(project: Project) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "migrator", "upgrade"], cwd=project.root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(path: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while not path.exists():
        assert process.poll() is None, f"the migration process ended early ({process.returncode})"
        assert time.monotonic() < deadline, "the migration did not start"
        time.sleep(0.02)


@pytest.fixture
def two_steps(project: Project) -> Project:
    project.write("001_base.py", FIRST)
    project.write("002_two.py", TWO_STEPS.format(started=str(project.root / "started"),
                                                 go=str(project.root / "go")))
    assert project.cli("upgrade", "--to", "1").code == 0
    return project


@pytest.fixture
def killed(two_steps: Project) -> Iterator[tuple[Project, int]]:
    """002_two killed with SIGKILL between its two CREATE TABLEs: (project, the killed process's pid)."""
    process = start_upgrade(two_steps)
    try:
        wait_for(two_steps.root / "started", process)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert "a" in tables(two_steps.url) and "b" not in tables(two_steps.url)
    yield two_steps, process.pid


# --------------------------------------------------------------------------- the marker's life


def test_the_marker_is_committed_before_the_body_and_the_version_table_never_shows_the_step(
    project: Project,
) -> None:
    project.write("001_base.py", FIRST)
    project.write("002_look.py", """\
        transactional = False

        def up(db):
            db.execute("CREATE TABLE seen (markers INTEGER, direction TEXT, pid INTEGER, recorded INTEGER)")
            db.execute("INSERT INTO seen SELECT (SELECT count(*) FROM migrations_dirty WHERE version = 2), "
                       "(SELECT max(direction) FROM migrations_dirty), (SELECT max(pid) FROM migrations_dirty), "
                       "(SELECT count(*) FROM migrations WHERE version = 2)")
        """)
    assert project.cli("upgrade").code == 0
    engine = sa.create_engine(project.url)
    try:
        with engine.connect() as conn:
            seen = conn.execute(sa.text("SELECT markers, direction, pid, recorded FROM seen")).one()
    finally:
        engine.dispose()
    assert tuple(seen) == (1, "up", os.getpid(), 0)
    assert markers(project.url) == []  # cleared with the version's row
    assert versions(project.url) == [1, 2]


def test_a_database_that_never_ran_a_non_atomic_step_has_no_marker_table(project: Project) -> None:
    project.write("001_base.py", FIRST)
    assert project.cli("upgrade").code == 0
    assert project.cli("status").code == 0
    assert "migrations_dirty" not in tables(project.url)


def test_the_marker_table_follows_the_configured_version_table(tmp_path: Path, sql_url: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "custom"
    (root / "migrations" / "db").mkdir(parents=True)
    write_config(root, sql_url, extra="")
    config = root / "migrator.toml"
    config.write_text(config.read_text() + 'version_table = "schema_versions"\n')
    project = Project(root, sql_url, capsys)
    project.write("001_fails.py", "transactional = False\n\ndef up(db):\n"
                                  "    db.execute('CREATE TABLE a (id INTEGER)')\n    raise RuntimeError('half way')\n")
    assert project.cli("upgrade").code == 1
    assert [m["version"] for m in markers(sql_url, "schema_versions_dirty")] == [1]
    assert "migrations_dirty" not in tables(sql_url) and "migrations" not in tables(sql_url)
    assert status_json(project)["interrupted"][0]["version"] == 1


def test_a_non_atomic_rollback_leaves_a_down_marker_until_its_version_row_is_deleted(project: Project) -> None:
    project.write("001_base.py", FIRST)
    project.write("002_down_fails.py", """\
        transactional = False

        def up(db):
            db.execute("CREATE TABLE a (id INTEGER)")
            db.execute("CREATE TABLE b (id INTEGER)")

        def down(db):
            db.execute("DROP TABLE b")
            raise RuntimeError("stop before a")
        """)
    assert project.cli("upgrade").code == 0
    result = project.cli("rollback", "1")
    line = assert_clean_error(result, 1, "002_down_fails.py", "not atomic", "the version stays recorded",
                              "it is marked as interrupted in migrations_dirty",
                              "`migrator stamp 1 --backend db` if it is rolled back",
                              "`migrator stamp 2 --backend db` if it is not", secrets=secret(project))
    assert "RuntimeError: stop before a" in line
    [marker] = markers(project.url)
    assert (marker["version"], marker["direction"]) == (2, "down")
    assert "stop before a" in marker["error"]
    assert versions(project.url) == [1, 2]
    [entry] = status_json(project)["interrupted"]
    assert (entry["direction"], entry["state"], entry["version"]) == ("down", "interrupted", 2)


def test_a_no_transaction_file_whose_first_statement_fails_leaves_no_marker(project: Project) -> None:
    project.write("001_base.py", FIRST)
    path = project.write("002_manual.up.sql", "-- migrator: no-transaction\nINSERT INTO nowhere VALUES (1);\n"
                                              "CREATE TABLE later (id INTEGER);\n")
    line = assert_clean_error(project.cli("upgrade"), 1, "002_manual.up.sql", "nothing was applied")
    assert "marked as interrupted" not in line
    assert markers(project.url) == []
    path.write_text("-- migrator: no-transaction\nCREATE TABLE later (id INTEGER);\n")
    result = project.cli("upgrade")  # nothing to settle: it simply runs again
    assert result.code == 0, result.err
    assert versions(project.url) == [1, 2]


def test_a_failure_migrator_catches_leaves_the_marker_with_the_error(project: Project) -> None:
    project.write("001_base.py", FIRST)
    project.write("002_fails.py", "transactional = False\n\ndef up(db):\n"
                                  "    db.execute('CREATE TABLE a (id INTEGER)')\n    raise RuntimeError('half way')\n")
    line = assert_clean_error(project.cli("upgrade"), 1, "002_fails.py", "RuntimeError: half way", "not atomic",
                              "its changes before the error stay applied",
                              "it is marked as interrupted in migrations_dirty",
                              "then run `migrator stamp 2 --backend db` if it is applied or "
                              "`migrator stamp 1 --backend db` if it is not", secrets=secret(project))
    assert line.count("\n") == 0
    [marker] = markers(project.url)
    assert marker["version"] == 2 and "RuntimeError: half way" in marker["error"]
    [entry] = status_json(project)["interrupted"]
    assert entry["state"] == "interrupted" and "failed: " in entry["message"]
    assert_clean_error(project.cli("upgrade"), 1, "upgrade refused", "002_fails (up) was interrupted")


# --------------------------------------------------------------------------- killed: what every command says


def test_a_killed_step_is_shown_interrupted_with_when_pid_and_host(killed: tuple[Project, int]) -> None:
    project, pid = killed
    result = project.cli("status")
    assert result.code == 0
    [line] = [row for row in result.out.splitlines() if "interrupted:" in row]
    assert "002_two (up) was interrupted: started " in line
    assert f"by pid {pid} on {socket.gethostname()}, never finished; its changes may be partly applied" in line
    entry = status_json(project)
    assert entry["pending"] == 1 and entry["lines"][0]["current"] == 1  # the version table tells the truth
    [step] = entry["interrupted"]
    assert {k: step[k] for k in ("line", "version", "name", "direction", "state", "host", "pid", "error",
                                 "settled_by")} == {
        "line": "", "version": 2, "name": "two", "direction": "up", "state": "interrupted",
        "host": socket.gethostname(), "pid": pid, "error": None, "settled_by": "stamp"}
    assert step["started_at"] and step["message"] in line
    assert [i["kind"] for i in entry["issues"]] == ["interrupted"]


def test_validate_and_check_exit_1_on_an_interrupted_step(killed: tuple[Project, int]) -> None:
    project, _ = killed
    validate = project.cli("validate")
    assert validate.code == 1 and "db: interrupted: 002_two (up) was interrupted" in validate.out
    check = project.cli("check")
    assert check.code == 1 and "db: interrupted: 002_two (up) was interrupted" in check.out


@pytest.mark.parametrize("command", [("upgrade",), ("upgrade", "--dry-run"), ("rollback", "0"),
                                     ("rollback", "0", "--dry-run")])
def test_upgrade_and_rollback_refuse_an_interrupted_step_and_change_nothing(
    killed: tuple[Project, int], command: tuple[str, ...]
) -> None:
    project, _ = killed
    before = snapshot(project.url)
    line = assert_clean_error(project.cli(*command), 1, f"db: {command[0]} refused, nothing was changed",
                              "002_two (up) was interrupted", "look at the schema, finish or undo its statements",
                              "`migrator stamp 2 --backend db` if it is applied",
                              "`migrator stamp 1 --backend db` if it is not (either clears the mark)",
                              secrets=secret(project))
    assert "never finished" in line
    assert snapshot(project.url) == before
    assert len(markers(project.url)) == 1


def test_stamp_v_after_finishing_by_hand_records_it_and_clears_the_mark(killed: tuple[Project, int]) -> None:
    project, _ = killed
    engine = sa.create_engine(project.url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE b (id INTEGER)"))  # the operator finishes it by hand
    finally:
        engine.dispose()
    result = project.cli("stamp", "2")
    assert result.code == 0 and "cleared the interrupted mark of 002_two (up)" in result.out
    assert versions(project.url) == [1, 2] and markers(project.url) == []
    assert project.cli("validate").code == 0 and project.cli("check").code == 0
    assert project.cli("rollback", "1").code == 0  # and it is an ordinary applied version again
    assert not {"a", "b"} & tables(project.url)


def test_stamp_v_minus_1_after_undoing_by_hand_clears_the_mark_and_upgrade_runs_it(
    killed: tuple[Project, int],
) -> None:
    project, _ = killed
    engine = sa.create_engine(project.url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE a"))  # the operator undoes it by hand
    finally:
        engine.dispose()
    result = project.cli("stamp", "1")
    assert result.code == 0 and "cleared the interrupted mark of 002_two (up)" in result.out
    assert versions(project.url) == [1] and markers(project.url) == []
    (project.root / "go").touch()
    upgraded = project.cli("upgrade")
    assert upgraded.code == 0, upgraded.err
    assert versions(project.url) == [1, 2] and {"a", "b"} <= tables(project.url)


def test_a_marker_whose_process_is_alive_on_this_host_is_reported_running(two_steps: Project) -> None:
    process = start_upgrade(two_steps)
    try:
        wait_for(two_steps.root / "started", process)
        [step] = status_json(two_steps)["interrupted"]
        assert (step["state"], step["pid"]) == ("running", process.pid)
        assert step["message"].startswith("002_two (up) is running: started ")
        assert two_steps.cli("validate").code == 0  # running is not an issue
        assert "running: 002_two (up) is running" in two_steps.cli("status").out
    finally:
        (two_steps.root / "go").touch()
        assert process.wait(timeout=120) == 0
    assert status_json(two_steps)["interrupted"] == [] and versions(two_steps.url) == [1, 2]


def test_the_adapter_reports_the_marker_through_interrupted(killed: tuple[Project, int]) -> None:
    project, pid = killed
    backend = SqlBackend("db", project.url, project.migrations)
    try:
        [step] = backend.interrupted()
    finally:
        backend.close()
    assert isinstance(step, InterruptedStep)
    assert (step.version, step.name, step.line, step.direction, step.pid, step.host, step.settled_by) == (
        2, "two", "", Direction.UP, pid, socket.gethostname(), "stamp")
    assert step.started_at is not None and step.started_at.tzinfo is not None and not step.running


def test_reading_interrupted_steps_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    backend = SqlBackend("db", f"sqlite:///{path}", tmp_path)
    try:
        assert backend.interrupted() == []
    finally:
        backend.close()
    assert not path.exists()


def test_a_table_of_the_markers_name_that_is_not_migrators_is_refused_by_name(project: Project) -> None:
    engine = sa.create_engine(project.url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE migrations_dirty (note TEXT)"))  # the application's own table
    finally:
        engine.dispose()
    project.write("001_loose.py", "transactional = False\n\ndef up(db):\n"
                                  "    db.execute('CREATE TABLE a (id INTEGER)')\n")
    assert_clean_error(project.cli("status"), 2, "'migrations_dirty'", "is not migrator's marker table",
                       "set version_table to another name", secrets=secret(project))
    assert_clean_error(project.cli("upgrade"), 2, "'migrations_dirty'", "is not migrator's marker table",
                       secrets=secret(project))
    assert "a" not in tables(project.url)


def test_an_upgrade_over_every_backend_in_one_plan_refuses_an_interrupted_step(
    sqlite_project: Project,
) -> None:
    root = sqlite_project.root
    (root / "migrations" / "other").mkdir()
    (root / "migrations" / "other" / "001_needs_db.py").write_text(
        "requires = {'db': 1}\n\ndef up(db):\n    db.execute('CREATE TABLE needs (id INTEGER)')\n")
    config = root / "migrator.toml"
    config.write_text(config.read_text() + f'\n[backends.other]\ntype = "sql"\nurl = "sqlite:///{root / "other.db"}"\n'
                      'migrations = "migrations/other"\n')
    sqlite_project.write("001_fails.py", "transactional = False\n\ndef up(db):\n"
                                         "    db.execute('CREATE TABLE a (id INTEGER)')\n"
                                         "    raise RuntimeError('half')\n")
    assert sqlite_project.cli("upgrade").code == 1
    assert_clean_error(sqlite_project.cli("upgrade"), 1, "db: upgrade refused", "001_fails (up) was interrupted")
    assert versions(f"sqlite:///{root / 'other.db'}") == []


def write_marker(project: Project, **values: Any) -> None:
    """A marker row as another process (or a hand) would have left it, the table made by a real failure first."""
    project.write("001_fails.py", "transactional = False\n\ndef up(db):\n    raise RuntimeError('first')\n")
    assert project.cli("upgrade").code == 1
    engine = sa.create_engine(project.url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM migrations_dirty"))
            row = {"version": 1, "name": "fails", "direction": "up", "started_at": "2026-01-02T03:04:05+00:00",
                   "host": socket.gethostname(), "pid": 1, "error": None, **values}
            conn.execute(sa.text("INSERT INTO migrations_dirty VALUES (:version, :name, :direction, :started_at, "
                                 ":host, :pid, :error)"), row)
    finally:
        engine.dispose()


@pytest.mark.parametrize("pid", [0, -1])
def test_a_marker_naming_no_real_process_is_interrupted_not_running(project: Project, pid: int) -> None:
    write_marker(project, pid=pid)
    [step] = status_json(project)["interrupted"]
    assert (step["state"], step["pid"]) == ("interrupted", pid)
    assert project.cli("validate").code == 1


def test_a_hand_edited_marker_with_line_breaks_is_still_one_line(project: Project) -> None:
    write_marker(project, name="two\nlines", host="web\r\n1", error="a\nb")
    line = assert_clean_error(project.cli("upgrade"), 1, "upgrade refused", "started 2026-01-02 03:04:05 UTC",
                              "on web\\r\\n1", "failed: a\\nb")
    assert "\n" not in line
    status = project.cli("status")
    assert sum("interrupted:" in row for row in status.out.splitlines()) == 1
