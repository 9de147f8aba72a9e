"""The migration lock of a SQL database: a file lock beside a SQLite file, an advisory lock on PostgreSQL."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import sqlalchemy as sa

from ..locking import read_holder, try_flock, wait_for, write_holder


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


@contextlib.contextmanager
def file_lock(
    database: Path,
    timeout: float,
    timed_out: Callable[[Path, str], BaseException],
    unusable: Callable[[Path, OSError], BaseException],
) -> Iterator[None]:
    """An exclusive ``flock`` on the lock file beside ``database``, held while the block runs.

    The holder writes who it is into the file; ``timed_out(lock file, holder line)`` makes the error.
    """
    import fcntl

    lock_path = lock_file_for(database)
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise unusable(lock_path, exc) from None
    try:
        wait_for(lambda: try_flock(fd), timeout, lambda: timed_out(lock_path, read_holder(lock_path)))
        write_holder(fd)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def advisory_lock(
    engine: sa.Engine,
    key: int,
    timeout: float,
    timed_out: Callable[[], BaseException],
    unavailable: Callable[[BaseException], BaseException],
) -> Iterator[None]:
    """A PostgreSQL session advisory lock on its own AUTOCOMMIT connection, held while the block runs."""
    try:
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    except sa.exc.DBAPIError as exc:
        raise unavailable(exc) from None
    try:
        try:
            wait_for(
                lambda: bool(conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({key:d})").scalar()),
                timeout,
                timed_out,
            )
        except sa.exc.DBAPIError as exc:
            raise unavailable(exc) from None
        try:
            yield
        finally:
            with contextlib.suppress(sa.exc.DBAPIError):
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({key:d})")
    finally:
        conn.close()
