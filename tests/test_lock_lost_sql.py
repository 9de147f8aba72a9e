"""A SQL migration lock that the server takes away is noticed, and no migration runs twice.

PostgreSQL holds the advisory lock on the session that runs the migrations. When the server
ends that session (``pg_terminate_backend``, ``idle_session_timeout``, a network drop), the lock
is gone with it, and so is anything the session was doing: the run stops with ``LockLost``
(exit 1) and a second ``migrator upgrade`` may take over. The session also switches the
server's idle timeouts off for itself, so an idle-session limit set on the database or role
cannot end it in the first place. Under any dialect, each step re-reads its version in the
version table under the lock, in the step's own transaction (right before the body of a
migration that runs outside one): a version another process recorded is never run again.

The CLI tests run real ``migrator upgrade`` child processes against the embedded PostgreSQL;
the counter migration inserts a row into ``runs`` each time its body runs.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from pg import PostgresServer

from conftest import write_config
from migrator.backends.sql import SqlBackend
from migrator.errors import LockLost, LockTimeout
from migrator.model import Direction

CREATE_RUNS = """\
def up(db):
    db.execute("CREATE TABLE runs (version INTEGER NOT NULL)")
    db.execute("INSERT INTO runs (version) VALUES (1)")
"""

# The counter migration: runs outside a transaction. The first process to run it marks STARTED,
# then waits (its session idle, or busy in pg_sleep) until the test creates GO; whoever runs it
# again finds STARTED and goes straight on. Each run of the body adds one row (2) to `runs`.
COUNTER = """\
import pathlib
import time

transactional = False
STARTED = pathlib.Path({started!r})
GO = pathlib.Path({go!r})


def up(db):
    first = not STARTED.exists()
    STARTED.touch()
    deadline = time.monotonic() + 120
    while first and not GO.exists() and time.monotonic() < deadline:
        {wait}
    db.execute("INSERT INTO runs (version) VALUES (2)")
"""
IDLE_WAIT = "time.sleep(0.05)"  # the session sits idle
BUSY_WAIT = 'db.execute("SELECT pg_sleep(0.05)")'  # the session is never idle for long

AFTER = """\
def up(db):
    db.execute("INSERT INTO runs (version) VALUES (3)")
"""

TIMEOUT = 120


class PgProject:
    def __init__(self, root: Path, url: str, server: PostgresServer) -> None:
        self.root = root
        self.url = url
        self.server = server
        self.database = sa.make_url(url).database or ""
        self.started = root / "started"
        self.go = root / "go"

    def write(self, name: str, text: str) -> None:
        (self.root / "migrations" / "db" / name).write_text(text, encoding="utf-8")

    def write_counter_migrations(self, wait: str) -> None:
        self.write("001_runs.py", CREATE_RUNS)
        self.write("002_counter.py", COUNTER.format(started=str(self.started), go=str(self.go), wait=wait))
        self.write("003_after.py", AFTER)

    def upgrade(self, lock_timeout: float = 60) -> subprocess.Popen[str]:
        """A ``migrator upgrade`` child process that waits up to ``lock_timeout`` s for the lock."""
        config = self.root / f"lock-timeout-{lock_timeout:g}.toml"
        if not config.exists():
            write_config(self.root, self.url).rename(config)
            config.write_text(f"lock_timeout = {lock_timeout:g}\n" + config.read_text())
        return subprocess.Popen([sys.executable, "-m", "migrator", "--config", str(config), "upgrade"],
                                cwd=self.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_for_start(self, process: subprocess.Popen[str]) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not self.started.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                out, err = process.communicate()
                raise AssertionError(f"the counter migration did not start: {process.returncode} {out} {err}")
            time.sleep(0.05)

    def lock_holders(self) -> list[int]:
        rows = self.server.admin().execute(
            "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = %s", (self.database,)).fetchall()
        return [int(row[0]) for row in rows]

    def runs(self) -> list[int]:
        return self._column("SELECT version FROM runs ORDER BY version")

    def recorded(self) -> list[int]:
        return self._column("SELECT version FROM migrations ORDER BY version")

    def _column(self, sql: str) -> list[int]:
        engine = sa.create_engine(self.url)
        try:
            with engine.connect() as conn:
                return [int(row[0]) for row in conn.exec_driver_sql(sql)]
        finally:
            engine.dispose()


@pytest.fixture
def pg_project(tmp_path: Path, postgres_url: str, postgres_server: PostgresServer) -> Iterator[PgProject]:
    root = tmp_path / "proj"
    (root / "migrations" / "db").mkdir(parents=True)
    project = PgProject(root, postgres_url, postgres_server)
    yield project
    project.go.touch()  # a child still waiting goes on and ends


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    return process.returncode, out, err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


# --------------------------------------------------------------------------- the server ends the lock session


def test_a_terminated_lock_session_stops_the_run_and_the_counter_migration_runs_once_after_stamp(
    pg_project: PgProject,
) -> None:
    pg_project.write_counter_migrations(IDLE_WAIT)
    first = pg_project.upgrade()
    pg_project.wait_for_start(first)
    [holder] = pg_project.lock_holders()
    pg_project.server.admin().execute("SELECT pg_terminate_backend(%s)", (holder,))

    # The counter migration runs outside a transaction and its marker is committed: the second process,
    # which takes the lock, cannot know how far it got, and refuses until an operator says.
    second = finish(pg_project.upgrade())
    pg_project.go.touch()
    code, _, err = finish(first)

    assert second[0] == 1, second
    [refusal] = error_lines(second[2])
    assert "upgrade refused" in refusal and "002_counter (up) was interrupted" in refusal, refusal
    assert code == 1, err
    [line] = error_lines(err)
    assert "lost the migration lock" in line and "002_counter" in line, err
    assert pg_project.runs() == [1]  # the body's statement came after the session ended
    assert pg_project.recorded() == [1]

    config = pg_project.root / "lock-timeout-60.toml"
    stamped = subprocess.run([sys.executable, "-m", "migrator", "--config", str(config), "stamp", "1"],
                             cwd=pg_project.root,
                             capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert stamped.returncode == 0 and "cleared the interrupted mark of 002_counter (up)" in stamped.stdout, stamped
    assert finish(pg_project.upgrade())[0] == 0
    assert pg_project.runs() == [1, 2, 3]
    assert pg_project.recorded() == [1, 2, 3]


@pytest.mark.parametrize("wait", [IDLE_WAIT, BUSY_WAIT], ids=["session-idle", "session-busy"])
def test_a_server_idle_session_timeout_does_not_end_the_lock_session(pg_project: PgProject, wait: str) -> None:
    pg_project.server.admin().execute(f'ALTER DATABASE "{pg_project.database}" SET idle_session_timeout = \'1s\'')
    pg_project.write_counter_migrations(wait)
    first = pg_project.upgrade()
    pg_project.wait_for_start(first)

    # A second process waits far longer than the server lets an idle session live; it must not get the lock.
    second = finish(pg_project.upgrade(lock_timeout=4))
    pg_project.go.touch()
    code, out, err = finish(first)

    assert code == 0, (out, err)
    assert second[0] == 1 and "being migrated by another process" in second[2], second
    assert pg_project.runs() == [1, 2, 3]
    assert pg_project.recorded() == [1, 2, 3]


LONG_IN_TRANSACTION = """\
import time


def up(db):
    db.execute("INSERT INTO runs (version) VALUES ({n})")
    time.sleep(2.5)
"""

LONG_OUTSIDE = """\
import time

transactional = False


def up(db):
    time.sleep(2.5)
    db.execute("INSERT INTO runs (version) VALUES ({n})")
"""

STEP = """\
def up(db):
    db.execute("INSERT INTO runs (version) VALUES ({n})")
"""


def test_many_migrations_with_long_idle_ones_between_run_under_one_lock_despite_server_idle_timeouts(
    pg_project: PgProject,
) -> None:
    admin = pg_project.server.admin()
    for setting in ("idle_session_timeout", "idle_in_transaction_session_timeout"):
        admin.execute(f'ALTER DATABASE "{pg_project.database}" SET {setting} = \'1s\'')
    pg_project.write("001_runs.py", CREATE_RUNS)
    for n in range(2, 9):
        text = LONG_IN_TRANSACTION if n == 4 else LONG_OUTSIDE if n == 6 else STEP
        pg_project.write(f"{n:03d}_step.py", text.format(n=n))

    code, out, err = finish(pg_project.upgrade())

    assert code == 0, (out, err)
    assert pg_project.runs() == list(range(1, 9))
    assert pg_project.recorded() == list(range(1, 9))


# --------------------------------------------------------------------------- in-process: the adapter's checks


def noop(message: str) -> None:
    pass


@pytest.fixture
def counter_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir()
    return folder


def _other_connection(url: str, sql: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


@pytest.mark.parametrize("transactional", [True, False], ids=["in-transaction", "no-transaction"])
def test_a_version_recorded_by_another_process_meanwhile_is_not_run_again(
    sql_url: str, counter_dir: Path, transactional: bool
) -> None:
    flag = "" if transactional else "transactional = False\n"
    (counter_dir / "001_counter.py").write_text(
        f'{flag}\ndef up(db):\n    db.execute("INSERT INTO runs (version) VALUES (1)")\n')
    backend = SqlBackend("db", sql_url, counter_dir)
    try:
        with backend.lock(5):
            backend.prepare()
            [migration] = backend.load(backend.discover())
            # another process that (wrongly) also thought it held the lock applied it meanwhile
            _other_connection(sql_url, "CREATE TABLE runs (version INTEGER NOT NULL)")
            _other_connection(sql_url, "INSERT INTO runs (version) VALUES (1)")
            _other_connection(sql_url, "INSERT INTO migrations (version, name) VALUES (1, 'counter')")
            with pytest.raises(LockLost) as info:
                backend.apply(migration, Direction.UP, noop)
    finally:
        backend.close()
    assert "version 1 is already recorded" in str(info.value) and "001_counter" in str(info.value)
    engine = sa.create_engine(sql_url)
    try:
        with engine.connect() as conn:
            assert [r[0] for r in conn.exec_driver_sql("SELECT version FROM runs")] == [1]
    finally:
        engine.dispose()


def test_a_lock_session_ended_by_the_server_stops_before_the_next_migration(
    postgres_url: str, postgres_server: PostgresServer, counter_dir: Path
) -> None:
    (counter_dir / "001_runs.py").write_text(CREATE_RUNS)
    backend = SqlBackend("db", postgres_url, counter_dir)
    database = sa.make_url(postgres_url).database
    try:
        with backend.lock(5):
            backend.prepare()
            [migration] = backend.load(backend.discover())
            postgres_server.admin().execute(
                "SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                "WHERE l.locktype = 'advisory' AND d.datname = %s", (database,))
            with pytest.raises(LockLost) as info:
                backend.apply(migration, Direction.UP, noop)
    finally:
        backend.close()
    message = str(info.value)
    assert "lost the migration lock" in message and "001_runs" in message
    assert sa.make_url(postgres_url).password not in message
    engine = sa.create_engine(postgres_url)
    try:
        assert not sa.inspect(engine).has_table("runs")
    finally:
        engine.dispose()


SETTINGS_PROBE = """\
import socket


def up(db):
    names = ("idle_session_timeout", "idle_in_transaction_session_timeout", "tcp_keepalives_idle")
    db.execute("CREATE TABLE probe (name TEXT, value TEXT)")
    for name in names:
        value = db.execute(f"SELECT current_setting('{name}')").scalar()
        db.execute("INSERT INTO probe VALUES (:n, :v)", {"n": name, "v": str(value)})
    sock = socket.socket(fileno=db.connection.connection.dbapi_connection.fileno())
    try:
        for name in ("SO_KEEPALIVE", "TCP_KEEPIDLE"):
            level = socket.SOL_SOCKET if name == "SO_KEEPALIVE" else socket.IPPROTO_TCP
            value = sock.getsockopt(level, getattr(socket, name))
            db.execute("INSERT INTO probe VALUES (:n, :v)", {"n": name, "v": str(value)})
    finally:
        sock.detach()
"""


def test_the_session_holding_the_lock_switches_idle_timeouts_off_and_sends_tcp_keepalives(
    postgres_url: str, postgres_server: PostgresServer, counter_dir: Path
) -> None:
    database = sa.make_url(postgres_url).database
    postgres_server.admin().execute(f'ALTER DATABASE "{database}" SET idle_session_timeout = \'1s\'')
    (counter_dir / "001_probe.py").write_text(SETTINGS_PROBE)
    backend = SqlBackend("db", postgres_url, counter_dir)
    try:
        with backend.lock(5):
            backend.prepare()
            [migration] = backend.load(backend.discover())
            backend.apply(migration, Direction.UP, noop)
    finally:
        backend.close()
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            probe = dict(conn.exec_driver_sql("SELECT name, value FROM probe").fetchall())
    finally:
        engine.dispose()
    assert probe == {"idle_session_timeout": "0", "idle_in_transaction_session_timeout": "0",
                     "tcp_keepalives_idle": "30", "SO_KEEPALIVE": "1", "TCP_KEEPIDLE": "30"}


def test_a_lent_engines_session_gets_its_idle_timeout_back_when_the_lock_is_released(
    postgres_url: str, postgres_server: PostgresServer, counter_dir: Path
) -> None:
    database = sa.make_url(postgres_url).database
    postgres_server.admin().execute(f'ALTER DATABASE "{database}" SET idle_session_timeout = \'5min\'')
    engine = sa.create_engine(postgres_url, pool_size=1, max_overflow=0)
    try:
        backend = SqlBackend("db", engine, counter_dir)
        with backend.lock(5):
            pass
        backend.close()
        with engine.connect() as conn:  # the pool's one connection: the session the lock was held in
            assert conn.exec_driver_sql("SHOW idle_session_timeout").scalar() == "5min"
            assert conn.exec_driver_sql(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()").scalar() == 0
    finally:
        engine.dispose()


def test_a_lent_engines_session_gets_its_idle_timeout_back_when_the_lock_wait_times_out(
    postgres_url: str, postgres_server: PostgresServer, counter_dir: Path
) -> None:
    database = sa.make_url(postgres_url).database
    postgres_server.admin().execute(f'ALTER DATABASE "{database}" SET idle_session_timeout = \'5min\'')
    holder = SqlBackend("db", postgres_url, counter_dir)
    engine = sa.create_engine(postgres_url, pool_size=1, max_overflow=0)
    try:
        with holder.lock(5):
            waiter = SqlBackend("db", engine, counter_dir)
            with pytest.raises(LockTimeout), waiter.lock(0):
                pass
            waiter.close()
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW idle_session_timeout").scalar() == "5min"
    finally:
        holder.close()
        engine.dispose()


def test_a_lent_engines_session_gets_its_application_name_back_when_the_lock_is_released(
    postgres_url: str, counter_dir: Path
) -> None:
    engine = sa.create_engine(postgres_url, pool_size=1, max_overflow=0, connect_args={"application_name": "my-app"})
    watcher = sa.create_engine(postgres_url)
    try:
        backend = SqlBackend("db", engine, counter_dir)
        with backend.lock(5), watcher.connect() as other:  # the lock's session names its holder meanwhile ...
            names = other.exec_driver_sql("SELECT application_name FROM pg_stat_activity").scalars().all()
        backend.close()
        assert any(name.startswith("migrator: pid ") for name in names)
        with engine.connect() as conn:  # ... and gives the app its own name back
            assert conn.exec_driver_sql("SHOW application_name").scalar() == "my-app"
    finally:
        watcher.dispose()
        engine.dispose()
