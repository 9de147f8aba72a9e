"""The migration lock of a SQL database: a file lock beside a SQLite file, a session advisory lock on PostgreSQL."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from migrator.errors import LockLost, LockTimeout

from ..locking import Waiting, holder_line, read_holder, tell_waiting, try_flock, wait_for, write_holder
from .messages import cause, first_line, path_unusable, printable

if TYPE_CHECKING:
    from .handle import Handle

# The settings the lock's session changes for itself while it holds the lock: the server must not
# end it for idling (between statements, or inside a migration's transaction), and a dead peer is
# noticed through TCP keepalives. Read from pg_settings, so a server without one of them is fine.
_SESSION_SETTINGS = (
    ("idle_session_timeout", "0"),
    ("idle_in_transaction_session_timeout", "0"),
    ("tcp_keepalives_idle", "30"),
    ("tcp_keepalives_interval", "10"),
    ("tcp_keepalives_count", "3"),
)
_NAMES = ", ".join(f"'{name}'" for name, _ in _SESSION_SETTINGS)
KEEP_ALIVE_SQL = (
    "SELECT set_config(s.name, v.setting, false) FROM pg_settings s JOIN (VALUES "
    + ", ".join(f"('{name}', '{value}')" for name, value in _SESSION_SETTINGS)
    + ") AS v(name, setting) ON v.name = s.name"
)
# The lock's session also names its holder in ``application_name`` (as a lock file holds its holder's line), so that
# a process that times out waiting can say who holds the lock; restored with the rest on release.
HOLDER_PREFIX = "migrator: "
NAME_HOLDER_SQL = "SELECT set_config('application_name', :holder, false)"
RESTORE_SQL = (f"SELECT set_config(name, reset_val, false) FROM pg_settings "
               f"WHERE name IN ({_NAMES}, 'application_name')")
# A bigint advisory key shows in pg_locks as classid (high 32 bits), objid (low 32 bits), objsubid 1.
_HELD_SQL = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid() "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND objsubid = 1 "
    "AND ((classid::bigint << 32) | objid::bigint) = {key:d}"
)
# Who holds the advisory key: its session's pid and application_name (visible to every user of the server).
_HOLDER_SQL = (
    "SELECT a.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND ((l.classid::bigint << 32) | l.objid::bigint) = {key:d}"
)


def advisory_lock_key(version_table: str) -> int:
    """The PostgreSQL advisory lock key: a stable non-negative 63-bit int from the version table's name."""
    digest = hashlib.sha256(f"migrator:{version_table}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def lock_file_for(database: Path) -> Path:
    """The lock file beside a SQLite database file, named after its real path.

    One database reached through a symlink, or as ``x/../app.db``, must get one lock, not one per
    spelling of its path.
    """
    real = Path(os.path.realpath(database))
    return real.with_name(real.name + ".migrator-lock")


def sqlite_file_lock(backend: str, location: str, database: Path, timeout: float,
                     waiting: Waiting | None = None) -> AbstractContextManager[None]:
    """The migration lock of a SQLite database file (:func:`file_lock`), its failures worded for ``backend``."""
    return file_lock(
        database,
        timeout,
        lambda lock_path, holder: lock_timeout(backend, location, timeout, lock_path, holder),
        lambda lock_path, exc: path_unusable(backend, lock_path, "create the lock file", exc),
        waiting,
    )


def lock_timeout(backend: str, location: str, timeout: float, lock_file: Path | None = None,
                 holder: str = "") -> LockTimeout:
    """Another process held the lock for all of ``timeout`` seconds; who, when it is known."""
    where = f"; {printable(str(lock_file))} is held by " if lock_file else "; the lock is held by "
    held = f"{where}{printable(holder)}" if holder else ""
    return LockTimeout(f"{backend}: database {location} is being migrated by another process "
                       f"(waited {timeout:g} s){held}")


@contextlib.contextmanager
def file_lock(
    database: Path,
    timeout: float,
    timed_out: Callable[[Path, str], BaseException],
    unusable: Callable[[Path, OSError], BaseException],
    waiting: Waiting | None = None,
) -> Iterator[None]:
    """An exclusive ``flock`` on the lock file beside ``database``, held while the block runs.

    The holder writes who it is into the file; ``timed_out(lock file, holder line)`` makes the error, and
    ``waiting`` hears once who holds it when the wait begins.
    """
    import fcntl

    lock_path = lock_file_for(database)
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise unusable(lock_path, exc) from None
    try:
        wait_for(lambda: try_flock(fd), timeout, lambda: timed_out(lock_path, read_holder(lock_path)),
                 waiting=tell_waiting(waiting, lambda: read_holder(lock_path), timeout))
        write_holder(fd)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class SessionLock:
    """A PostgreSQL session advisory lock held by the very session that runs the migrations.

    Holding it on the run's own connection (as golang-migrate does) ties the lock to the work:
    when the server ends that session (``pg_terminate_backend``, an idle timeout, a network drop)
    the lock and the migration's open transaction end together, so nothing can commit without
    the lock, and the handle refuses to open a new session in its place (``Handle.pin``).
    The session switches the server's idle timeouts off for itself and sends TCP keepalives
    while it holds the lock; :meth:`verify` checks before each migration that it is still
    connected and still holds the lock (``pg_locks`` for its own pid).
    """

    def __init__(self, handle: Handle, key: int, lost: Callable[[str, str], LockLost]) -> None:
        self._handle = handle
        self._key = key
        self._lost = lost  # lost(why, what happened to the run) makes the error

    def acquire(self, timeout: float, timed_out: Callable[[str], BaseException],
                waiting: Waiting | None = None) -> None:
        """Wait up to ``timeout`` s; ``timed_out(holder)`` makes the error (``holder``: who holds it, or "")."""
        import sqlalchemy as sa  # PostgreSQL only: the file lock of SQLite runs without SQLAlchemy

        handle = self._handle
        try:
            with handle.transaction(write=False) as conn:
                conn.exec_driver_sql(KEEP_ALIVE_SQL)
                conn.execute(sa.text(NAME_HOLDER_SQL), {"holder": HOLDER_PREFIX + holder_line()})
            wait_for(self._try_once, timeout, lambda: timed_out(self.holder()),
                     waiting=tell_waiting(waiting, self.holder, timeout))
        except BaseException as exc:
            self._restore()  # a lent Engine's connection goes back to its pool as it came
            if isinstance(exc, sa.exc.DBAPIError):
                raise handle.unavailable(exc) from None
            raise
        handle.pin(lambda why: self._lost(why, "stopped"))

    def _try_once(self) -> bool:
        with self._handle.transaction(write=False) as conn:
            return bool(conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({self._key:d})").scalar())

    def holder(self) -> str:
        """Who holds the lock, as its session named itself ("pid 12 on host since ..."); "" when unknown."""
        try:
            with self._handle.transaction(write=False) as conn:
                row = conn.exec_driver_sql(_HOLDER_SQL.format(key=self._key)).first()
        except Exception:  # the message is only made better by it
            return ""
        if row is None:
            return ""
        pid, name = row
        name = str(name or "")
        if name.startswith(HOLDER_PREFIX):
            return f"{name[len(HOLDER_PREFIX):]} (server process {pid})"
        return f"server process {pid}" + (f" ({name})" if name else "")

    def held(self) -> bool:
        """Whether this session holds the lock, asked on the run's cursor in whatever transaction is open.

        A dead session raises the driver's error.
        """
        cursor = self._handle.cursor
        cursor.execute(_HELD_SQL.format(key=self._key))
        row = cursor.fetchone()
        return bool(row and row[0])

    def verify(self, then: str) -> None:
        """LockLost (``then`` says what became of the run) unless the session is alive and holds the lock."""
        handle = self._handle
        if not handle.alive():
            raise self._lost("the database session holding it ended", then)
        try:
            with handle.transaction(write=False):
                held = self.held()
        except LockLost:
            raise
        except Exception as exc:  # the driver's own error (raw cursor) or SQLAlchemy's
            why = first_line(str(exc)) if isinstance(exc, handle.driver_error) else cause(exc)
            raise self._lost(f"the database session holding it ended: {handle.scrub(why)}", then) from exc
        if not held:
            raise self._lost("the database session no longer holds it", then)

    def lost(self, why: str, then: str) -> LockLost:
        return self._lost(why, then)

    def release(self) -> None:
        """Unlock and restore the session's settings, if the session is still there (never a new one)."""
        self._handle.unpin()
        self._restore(f"SELECT pg_advisory_unlock({self._key:d})")

    def _restore(self, *first: str) -> None:
        handle = self._handle
        if not handle.alive():
            return
        with contextlib.suppress(Exception), handle.transaction(write=False) as conn:
            for sql in (*first, RESTORE_SQL):
                conn.exec_driver_sql(sql)


@contextlib.contextmanager
def session_lock(
    handle: Handle,
    key: int,
    timeout: float,
    timed_out: Callable[[str], BaseException],
    lost: Callable[[str, str], LockLost],
    waiting: Waiting | None = None,
) -> Iterator[SessionLock]:
    """A :class:`SessionLock` on the handle's connection, held while the block runs."""
    lock = SessionLock(handle, key, lost)
    lock.acquire(timeout, timed_out, waiting)
    try:
        yield lock
    finally:
        lock.release()
