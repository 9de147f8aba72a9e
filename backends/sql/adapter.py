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
import sqlite3
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
    LockLost,
    MigrationFailed,
    UsageError,
)
from migrator.model import AppliedMigration, Direction, InterruptedStep, Issue, Migration

from ..base import Capabilities, ModelChanges, Report, Seed, Seeded
from ..locking import Waiting
from . import sources
from .bookkeeping import VersionTable, utcnow
from .dirty import DirtyTable
from .handle import Handle
from .lock import SessionLock, advisory_lock_key, lock_timeout, session_lock, sqlite_file_lock
from .messages import cause
from .steps import Steps, check_recorded

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
        config.handle if config.handle is not None else config.location,
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
        url_or_engine: str | URL | sa.Engine | sqlite3.Connection,
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
        self._dirty = DirtyTable(version_table, name, self.location)
        self._steps = Steps(name, self._handle, self._books, self._dirty)
        self._prepared = False
        self._session_lock: SessionLock | None = None  # PostgreSQL, while the lock is held

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

    def interrupted(self) -> list[InterruptedStep]:
        """The markers of steps that ran outside a transaction and never finished (``dirty.py``)."""
        handle = self._handle
        path = handle.sqlite_path()
        handle.engine()
        if path is not None and not handle.connected and not handle.file_exists(path):
            return []  # reading must not create the database file
        try:
            with handle.transaction(write=False) as conn:
                return self._dirty.read(conn)
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
        """Record ``migrations`` without running them, and clear every interrupted marker in the same transaction."""
        if not migrations:
            if self.interrupted():
                with self._writing("stamp") as conn:
                    self._dirty.clear_all(conn)
            return
        self.prepare()
        with self._writing("stamp") as conn:
            self._books.stamp(conn, self._handle.cursor, migrations)
            self._dirty.clear_all(conn)

    def drift(self, migrations: Sequence[Migration], applied: Sequence[AppliedMigration]) -> Sequence[Issue]:
        """Nothing: the version table is the only record of a SQL database's version."""
        return ()

    def unstamp(self, migrations: Sequence[Migration]) -> None:
        if not migrations:
            return
        self.prepare()
        with self._writing("unstamp") as conn:
            self._books.remove(conn, self._handle.cursor, [m.version for m in migrations])
            self._dirty.clear_all(conn)

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

    def check_plan(self, migrations: Sequence[Migration], direction: Direction, *, backup: bool = False) -> None:
        """Only --backup where it cannot work: the core refuses irreversible steps and edited files."""
        if backup:
            self._backup_source()

    def _backup_source(self) -> Path:
        """The SQLite file ``backup`` copies; UsageError, before anything changes, where --backup cannot work."""
        path = self._handle.sqlite_path()
        if self.dialect != "sqlite":
            raise UsageError(
                f"{self.name}: --backup is available for SQLite only; back {self.dialect} up with its own tools "
                "(for PostgreSQL: pg_dump) before migrating"
            )
        if path is None:
            raise UsageError(f"{self.name}: an in-memory SQLite database cannot be backed up")
        return path

    def backup(self, report: Report) -> str:
        """SQLite: a consistent copy through the online backup API, beside the database file.

        The copy is written to a hidden temporary name, flushed to disk, and only then renamed to
        ``<db>.backup-<time>``: a process killed during the backup never leaves a file with a
        backup's name that is not a complete backup.
        """
        path = self._backup_source()
        stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
        target = path.with_name(f"{path.name}.backup-{stamp}")
        counter = 1
        while target.exists():
            counter += 1
            target = path.with_name(f"{path.name}.backup-{stamp}-{counter}")
        partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
        report(f"backing up {path} to {target}")
        conn = self._handle.fresh_connection()
        import sqlite3

        source: Any = conn.connection.dbapi_connection
        try:
            destination = sqlite3.connect(partial)
            try:
                source.backup(destination)
            finally:
                destination.close()
            _fsync(partial)
            os.replace(partial, target)
            _fsync(target.parent)
        except (sqlite3.Error, OSError) as exc:
            partial.unlink(missing_ok=True)
            raise BackendUnavailable(f"{self.name}: backup to {target} failed: {exc}") from exc
        return str(target)

    # ------------------------------------------------------------------ running

    def apply(self, migration: Migration, direction: Direction, report: Report) -> AppliedMigration | None:
        loaded = sources.load_one(migration, self.dialect)
        if direction is Direction.DOWN and not loaded.reversible:
            raise IrreversibleMigration(f"{self.name}: {loaded.label} has no down migration; it cannot be undone")
        lock = self._session_lock
        if lock is not None:  # still connected, still holding the lock
            lock.verify(f"stopped before {loaded.label}")
        try:
            return self._steps.apply(loaded, direction, report, self._guard)
        except MigrationFailed as exc:
            if lock is not None:  # a failure because the session holding the lock ended is that
                lock.verify(exc.message)
            raise

    def _guard(self, conn: sa.Connection, migration: Migration, direction: Direction, ran: bool) -> None:
        """Under the lock, in the step's transaction: the lock is still held, and nobody else ran the step."""
        handle = self._handle
        lock = self._session_lock
        if lock is not None and not lock.held():
            doing = "it ran outside a transaction, its version is not recorded" if ran else "it was not run"
            raise lock.lost("the database session no longer holds it", f"stopped at {migration.label}: {doing}")
        check_recorded(self._books, handle, conn, migration, direction, ran, self.name, self.location)

    def offline_sql(self, migrations: Sequence[Migration], direction: Direction) -> str:
        """The SQL script of these steps (see ``offline``): never connects."""
        from . import offline

        return offline.render(self.load(migrations), direction, backend=self.name, dialect=self.dialect,
                              version_table=self.version_table)

    # ------------------------------------------------------------------ seed data (migrator seed)

    def load_seeds(self, folder: Path) -> list[Seed]:
        """``.sql`` and ``.py`` (``seed(db)``) files of ``folder`` in file-name order, loaded (see ``seeds``)."""
        from . import seeds

        return seeds.load(folder, self.dialect)

    def apply_seeds(self, seeds: Sequence[Seed], report: Report, *, dry_run: bool = False) -> list[Seeded]:
        """Every seed in one transaction (the lock held); a dry run only describes them."""
        from . import seeds as seeding

        if dry_run:
            return [Seeded(seed.label, seeding.describe(seed)) for seed in seeds]
        lock = self._session_lock
        if lock is not None:  # still connected, still holding the lock
            lock.verify("stopped before loading the seeds; nothing was seeded")
        return seeding.run(self._handle, list(seeds), self.name)

    # ------------------------------------------------------------------ models (autogenerate, check)

    def compare_models(self, target: object, *, where: str, root: Path | None) -> ModelChanges | None:
        """The changes from the live database to the models ``target`` names (see ``autogen``); reads only.

        A SQLite file that does not exist yet is compared as the empty database it would be, and not created.
        """
        from . import autogen

        metadata = autogen.load_metadata(target, where, root)
        handle = self._handle
        path = handle.sqlite_path()
        handle.engine()
        try:
            if path is not None and not handle.connected and not handle.file_exists(path):
                empty = sa.create_engine("sqlite://")
                try:
                    with empty.connect() as conn:
                        return autogen.compare(conn, metadata, self.version_table)
                finally:
                    empty.dispose()
            with handle.transaction(write=False) as conn:
                return autogen.compare(conn, metadata, self.version_table)
        except sa.exc.DBAPIError as exc:
            raise handle.unavailable(exc) from None

    # ------------------------------------------------------------------ locking

    def lock(self, timeout: float, waiting: Waiting | None = None) -> AbstractContextManager[None]:
        handle = self._handle
        handle.engine()  # a missing driver or a bad URL is reported before the lock file is created
        path = handle.sqlite_path()
        if path is not None:
            return sqlite_file_lock(self.name, self.location, path, timeout, waiting)
        if self.dialect == "postgresql":
            return self._held(session_lock(handle, advisory_lock_key(self.version_table), timeout,
                                           lambda holder: lock_timeout(self.name, self.location, timeout,
                                                                       holder=holder),
                                           self._lost, waiting))
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def _held(self, lock: AbstractContextManager[SessionLock]) -> Iterator[None]:
        with lock as held:
            self._session_lock = held
            try:
                yield
            finally:
                self._session_lock = None

    def _lost(self, why: str, then: str) -> LockLost:
        return LockLost(f"{self.name}: lost the migration lock on database {self.location} ({why}); {then}. "
                        "Run `migrator validate` once the other process is done.")

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        self._handle.close()
        self._prepared = False

    def __enter__(self) -> SqlBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _fsync(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
