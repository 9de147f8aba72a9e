"""``SqlBackend``: the Protocol of ``backends/base.py`` for a SQL database, and the registry's ``create``.

One version line per database (``line = ""``), kept in the version table (default
``migrations``, DESIGN section 5). The work lives beside it: ``sources`` (files),
``handle`` (connection and transactions), ``bookkeeping`` (the version table),
``steps`` (running one migration), ``lock``, ``database`` (the ``db`` of ``up(db)``).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import URL

from migrator.config import DEFAULT_LOCK_TIMEOUT
from migrator.errors import (
    BackendUnavailable,
    ConfigError,
    IrreversibleMigration,
    LockTimeout,
    MigrationFailed,
    UsageError,
)
from migrator.model import AppliedMigration, Direction, Issue, Migration

from ..base import Capabilities, Report
from . import sources
from .bookkeeping import VersionTable, utcnow
from .handle import Handle
from .lock import advisory_lock, advisory_lock_key, file_lock
from .messages import cause, printable
from .steps import Steps

if TYPE_CHECKING:
    from migrator.config import BackendConfig

DEFAULT_VERSION_TABLE = "migrations"
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def create(config: BackendConfig) -> SqlBackend:
    """The registry's factory (``migrator.backends.open_backend``)."""
    options = dict(config.options)
    engine_options = options.get("engine_options")
    if engine_options is not None and not isinstance(engine_options, Mapping):
        raise ConfigError(f"{config.source}: engine_options must be a table")
    return SqlBackend(
        config.name,
        config.location,
        config.migrations,
        version_table=config.version_table or DEFAULT_VERSION_TABLE,
        engine_options=dict(engine_options) if engine_options else None,
        lock_timeout=config.lock_timeout,
    )


class SqlBackend:
    """A SQL database reached through SQLAlchemy: one version line, reversible, transactional DDL."""

    type = "sql"
    capabilities = Capabilities(reversible=True, per_table_lines=False, parallel_lines=False, transactional_ddl=True)

    def __init__(
        self,
        name: str,
        url_or_engine: str | URL | sa.Engine,
        migrations_dir: str | os.PathLike[str],
        version_table: str = DEFAULT_VERSION_TABLE,
        engine_options: Mapping[str, Any] | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        if not _PLAIN_NAME.fullmatch(version_table):
            raise ConfigError(f"{name}: version_table {version_table!r} is not a plain table name")
        self.name = name
        self.migrations_dir = Path(migrations_dir)
        self.version_table = version_table
        self.lock_timeout = lock_timeout
        self._handle = Handle(name, url_or_engine, engine_options or {})
        self.location = self._handle.location
        self.dialect = self._handle.dialect.name
        self._books = VersionTable(version_table, name, self.location, self._handle.dialect)
        self._steps = Steps(name, self._handle, self._books)
        self._prepared = False

    def __repr__(self) -> str:
        return f"<SqlBackend {self.name} {self.location}>"

    # ------------------------------------------------------------------ discovery and loading

    def discover(self) -> list[Migration]:
        return sources.discover(self.migrations_dir)

    def load(self, migrations: Sequence[Migration]) -> list[Migration]:
        return [sources.load_one(migration, self.dialect) for migration in migrations]

    # ------------------------------------------------------------------ bookkeeping

    def applied(self) -> list[AppliedMigration]:
        handle = self._handle
        path = handle.sqlite_path()
        handle.engine()  # URL arguments and engine_options are checked on a fresh database too
        if path is not None and not handle.connected and not handle.file_exists(path):
            return []  # reading must not create the database file
        try:
            with handle.transaction(write=False) as conn:
                columns = self._books.columns(conn)
                if columns is None:
                    return []
                return self._books.read(conn, columns)
        except sa.exc.DBAPIError as exc:
            raise handle.unavailable(exc) from None

    def prepare(self) -> None:
        if self._prepared:
            return
        handle = self._handle
        path = handle.sqlite_path()
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise handle.path_unusable(path.parent, "create the folder of", exc) from None
        try:
            with handle.transaction(write=True) as conn:
                self._books.ensure(conn)
        except sa.exc.DBAPIError as exc:
            raise handle.unavailable(exc) from None
        self._prepared = True

    def stamp(self, migrations: Sequence[Migration]) -> None:
        if not migrations:
            return
        self.prepare()
        with self._writing("stamp") as conn:
            self._books.stamp(conn, self._handle.cursor, migrations)

    def drift(self, migrations: Sequence[Migration], applied: Sequence[AppliedMigration]) -> Sequence[Issue]:
        """Nothing: the version table is the only record of a SQL database's version."""
        return ()

    def unstamp(self, migrations: Sequence[Migration]) -> None:
        if not migrations:
            return
        self.prepare()
        with self._writing("unstamp") as conn:
            self._books.remove(conn, self._handle.cursor, [m.version for m in migrations])

    def record_checksums(self, migrations: Sequence[Migration]) -> None:
        if not migrations:
            return
        self.prepare()
        with self._writing("recording checksums") as conn:
            self._books.set_checksums(conn, self._handle.cursor, migrations)

    @contextlib.contextmanager
    def _writing(self, doing: str) -> Iterator[sa.Connection]:
        """A write transaction for a bookkeeping-only command; a database error is ``MigrationFailed``."""
        handle = self._handle
        try:
            with handle.transaction(write=True) as conn:
                yield conn
        except handle.database_errors() as exc:
            raise MigrationFailed(f"{self.name}: {doing} failed: {handle.scrub(cause(exc))}",
                                  backend=self.name) from exc

    def backup(self, report: Report) -> str:
        """SQLite: a consistent copy through the online backup API, beside the database file."""
        handle = self._handle
        path = handle.sqlite_path()
        if self.dialect != "sqlite":
            raise UsageError(
                f"{self.name}: --backup is available for SQLite only; back {self.dialect} up with its own tools "
                "(for PostgreSQL: pg_dump) before migrating"
            )
        if path is None:
            raise UsageError(f"{self.name}: an in-memory SQLite database cannot be backed up")
        stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
        target = path.with_name(f"{path.name}.backup-{stamp}")
        counter = 1
        while target.exists():
            counter += 1
            target = path.with_name(f"{path.name}.backup-{stamp}-{counter}")
        report(f"backing up {path} to {target}")
        conn = handle.fresh_connection()
        import sqlite3

        source: Any = conn.connection.dbapi_connection
        try:
            destination = sqlite3.connect(target)
            try:
                source.backup(destination)
            finally:
                destination.close()
        except (sqlite3.Error, OSError) as exc:
            target.unlink(missing_ok=True)
            raise BackendUnavailable(f"{self.name}: backup to {target} failed: {exc}") from exc
        return str(target)

    # ------------------------------------------------------------------ running

    def apply(self, migration: Migration, direction: Direction, report: Report) -> AppliedMigration | None:
        loaded = sources.load_one(migration, self.dialect)
        if direction is Direction.DOWN and not loaded.reversible:
            raise IrreversibleMigration(f"{self.name}: {loaded.label} has no down migration; it cannot be undone")
        return self._steps.apply(loaded, direction, report)

    # ------------------------------------------------------------------ locking

    def lock(self, timeout: float) -> AbstractContextManager[None]:
        handle = self._handle
        engine = handle.engine()  # a missing driver or a bad URL is reported before the lock file is created
        path = handle.sqlite_path()
        if path is not None:
            return file_lock(
                path,
                timeout,
                lambda lock_path, holder: self._lock_timeout(timeout, lock_path, holder),
                lambda lock_path, exc: handle.path_unusable(lock_path, "create the lock file", exc),
            )
        if self.dialect == "postgresql":
            return advisory_lock(engine, advisory_lock_key(self.version_table), timeout,
                                 lambda: self._lock_timeout(timeout), handle.unavailable)
        return contextlib.nullcontext()

    def _lock_timeout(self, timeout: float, lock_file: Path | None = None, holder: str = "") -> LockTimeout:
        held = f"; {printable(str(lock_file))} is held by {printable(holder)}" if lock_file and holder else ""
        return LockTimeout(
            f"{self.name}: database {self.location} is being migrated by another process (waited {timeout:g} s)"
            f"{held}"
        )

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        self._handle.close()
        self._prepared = False

    def __enter__(self) -> SqlBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
