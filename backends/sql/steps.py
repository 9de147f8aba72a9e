"""Running one migration step: its body and its version row in one transaction, or outside one.

The failure wording of both paths lives here.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from migrator import interruptions
from migrator.errors import LockLost, MigrationFailed, MigratorError
from migrator.model import DATABASE_LINE, AppliedMigration, Direction, InterruptedStep, Migration

from ..base import Report
from . import split as sqlsplit
from .bookkeeping import VersionTable
from .dialects import Dialect
from .dirty import DirtyTable
from .driver import DriverTransaction
from .messages import StepError, TransactionControlRefused, cause, first_line, line_in
from .sources import PythonCode, SqlCode

if TYPE_CHECKING:
    import sqlalchemy as sa

Guard = Callable[[Any, Migration, Direction, bool], None]
"""Checked under the lock before a step's body runs (``ran`` False) and before its version row is
written after a body that ran outside a transaction (``ran`` True); raises ``LockLost``. Its first
argument is the step's connection (SQLAlchemy's, or the lean path's ``sqlite3`` one)."""


class StepHandle(Protocol):
    """What running a step needs of a connection holder: ``handle.Handle`` (SQLAlchemy), or
    ``driver.SqliteDriver`` (a SQLite file through ``sqlite3``: plain SQL files in a transaction only)."""

    dialect: Dialect
    cursor: Any
    driver_error: type[BaseException]
    begin_sql: str | None
    guarding: bool
    refused: str | None

    def fresh_connection(self) -> Any: ...
    def begin_on_driver(self) -> DriverTransaction: ...
    def transaction(self, *, write: bool) -> AbstractContextManager[Any]: ...
    def database_errors(self) -> tuple[type[BaseException], ...]: ...
    def transaction_id(self) -> Any: ...
    def driver_in_transaction(self, conn: Any) -> bool: ...
    def abandon(self, conn: Any, trans: Any) -> None: ...
    def scrub(self, text: str) -> str: ...


def no_guard(conn: Any, migration: Migration, direction: Direction, ran: bool) -> None:
    pass


def check_recorded(books: VersionTable, handle: StepHandle, conn: Any, migration: Migration, direction: Direction,
                   ran: bool, backend: str, location: str) -> None:
    """LockLost unless the step's version is still as the plan saw it (another process moved the line on)."""
    recorded = books.has(conn, handle.cursor, migration.version)
    if recorded != (direction is Direction.DOWN):
        state, done = ("already", "applied") if direction is Direction.UP else ("no longer", "rolled back")
        doing = "it ran outside a transaction, so it ran twice" if ran else "it was not run again"
        raise LockLost(f"{backend}: version {migration.version} is {state} recorded in {books.name} "
                       f"of database {location}: another process {done} it while this one held the "
                       f"migration lock; stopped at {migration.label}: {doing}. "
                       "Run `migrator validate` once the other process is done.")


class Steps:
    """Applies loaded migrations of one backend through its handle and version table."""

    def __init__(self, backend: str, handle: StepHandle, books: VersionTable, dirty: DirtyTable | None = None) -> None:
        self._backend = backend
        self._handle = handle
        self._books = books
        self._dirty = dirty if dirty is not None else DirtyTable(books.name)

    def apply(self, migration: Migration, direction: Direction, report: Report,
              guard: Guard = no_guard) -> AppliedMigration | None:
        """Run a loaded ``migration`` (payload ``PythonCode`` or ``SqlCode``) in ``direction``.

        ``guard`` runs inside the step's transaction before the body (right before the body of a
        migration that runs outside a transaction, and again in the transaction that records it).
        """
        code = migration.payload
        assert isinstance(code, (PythonCode, SqlCode))
        what = _what(migration, code, direction)
        if isinstance(code, SqlCode):
            transactional = code.up_transactional if direction is Direction.UP else code.down_transactional
        else:
            transactional = migration.transactional
        if not transactional:
            return self._apply_outside_transaction(migration, code, direction, report, what, guard)
        return self._apply_in_transaction(migration, code, direction, what, guard)

    def _apply_in_transaction(
        self, loaded: Migration, code: PythonCode | SqlCode, direction: Direction, what: str, guard: Guard
    ) -> AppliedMigration | None:
        handle = self._handle
        conn = handle.fresh_connection()
        handle.begin_sql = handle.dialect.begin_write
        trans: sa.RootTransaction | DriverTransaction
        try:
            # A SQL file runs on the driver's cursor only (its statements were checked for COMMIT/BEGIN
            # when it was loaded): its transaction too. Python code gets SQLAlchemy's Connection, so
            # SQLAlchemy must know of the transaction it runs in.
            trans = handle.begin_on_driver() if isinstance(code, SqlCode) else conn.begin()
        except handle.database_errors() as exc:
            why = first_line(str(exc)) if isinstance(exc, handle.driver_error) else cause(exc)
            raise self._failed(loaded, f"{what}: cannot start a transaction: {handle.scrub(why)}") from exc
        try:
            guard(conn, loaded, direction, False)
            started = time.perf_counter()
            # Python code can reach the driver's connection and end the transaction behind our back;
            # on PostgreSQL that shows as a new transaction id (SQLite: the driver's in_transaction).
            xid = handle.transaction_id() if isinstance(code, PythonCode) else None
            handle.refused = None
            handle.guarding = True  # the migration's own COMMIT / ROLLBACK / BEGIN is refused (see Handle)
            try:
                self._run_body(conn, code, direction)
            finally:
                handle.guarding = False
            duration_ms = round((time.perf_counter() - started) * 1000)
            if handle.refused is not None:  # refused, but the migration caught the error and went on
                raise StepError(f"{direction.value}(): {handle.refused}")
            if (not trans.is_active or not handle.driver_in_transaction(conn)
                    or (xid is not None and handle.transaction_id() != xid)):
                raise StepError(
                    "the migration ended migrator's transaction itself (COMMIT/ROLLBACK), so what it ran before "
                    "that may stay committed while the version is not recorded; set transactional = False "
                    f"(or `{sqlsplit.NO_TRANSACTION_MARKER}`) to manage transactions yourself"
                )
            record = self._record(conn, loaded, direction, duration_ms)
            trans.commit()
        except LockLost:
            handle.abandon(conn, trans)
            raise
        except (Exception, SystemExit) as exc:  # sys.exit() in a migration is that migration's failure
            handle.abandon(conn, trans)
            if isinstance(exc, StepError):
                message = exc.message
            elif handle.refused is not None and not isinstance(exc, TransactionControlRefused):
                message = f"{direction.value}(): {handle.refused}"  # caught by the migration, then it went on
            else:
                message = _body_failure(code, direction, exc)
            raise self._failed(loaded, f"{what}: {handle.scrub(message)}") from exc
        except BaseException:
            handle.abandon(conn, trans)
            raise
        return record

    def _apply_outside_transaction(
        self, migration: Migration, code: PythonCode | SqlCode, direction: Direction, report: Report, what: str,
        guard: Guard,
    ) -> AppliedMigration | None:
        handle = self._handle
        report(f"{what} runs outside a transaction")
        # the re-read right before the body, and the marker (backends/sql/dirty.py), committed together
        try:
            with handle.transaction(write=True) as conn:
                guard(conn, migration, direction, False)
                self._dirty.mark(conn, migration, direction)
        except MigratorError:  # LockLost; a table of the marker's name that is not migrator's (ConfigError)
            raise
        except Exception as exc:
            why = first_line(str(exc)) if isinstance(exc, handle.driver_error) else cause(exc)
            raise self._failed(migration, f"{what}: marking it as started in {self._dirty.name} failed: "
                                          f"{handle.scrub(why)}; nothing was run") from exc
        conn = handle.fresh_connection()
        handle.begin_sql = None  # SQLite: no BEGIN, every statement commits by itself
        previous_isolation = None
        if handle.dialect.autocommit_isolation:
            previous_isolation = conn.get_isolation_level()
            conn.execution_options(isolation_level="AUTOCOMMIT")
        started = time.perf_counter()
        failure: Exception | SystemExit | None = None
        try:
            with conn.begin():
                self._run_body(conn, code, direction)
        except (Exception, SystemExit) as exc:
            failure = exc
        finally:
            if previous_isolation is not None:
                conn.execution_options(isolation_level=previous_isolation)
        if failure is not None:
            raise self._not_atomic(migration, code, direction, what, failure) from failure
        duration_ms = round((time.perf_counter() - started) * 1000)
        try:
            with handle.transaction(write=True) as conn:
                guard(conn, migration, direction, True)
                record = self._record(conn, migration, direction, duration_ms)
                self._dirty.clear(conn, migration)
                return record
        except LockLost:
            raise
        except Exception as exc:
            why = exc.message if isinstance(exc, StepError) else cause(exc)
            message = f"{what}: ran, but {handle.scrub(why)}"
            raise self._failed(migration, self._left_marked(migration, direction, message)) from exc

    def _not_atomic(self, migration: Migration, code: PythonCode | SqlCode, direction: Direction, what: str,
                    exc: Exception | SystemExit) -> MigrationFailed:
        """The failure of a body that ran outside a transaction: what stays applied, and its marker's fate."""
        handle = self._handle
        if isinstance(exc, StepError):
            message = exc.message
            kept = (f"statements 1 to {exc.done} stay applied" if exc.done > 1 else
                    "statement 1 stays applied" if exc.done == 1 else "nothing was applied")
        else:
            message = _body_failure(code, direction, exc)
            kept = "its changes before the error stay applied"
        if isinstance(code, SqlCode):
            how = "the file runs without a transaction (-- migrator: no-transaction)"
        else:
            how = "the migration runs without a transaction (transactional = False)"
        version = "is not recorded" if direction is Direction.UP else "stays recorded"
        text = f"{what}: {handle.scrub(message)}; not atomic: {how}, so {kept} and the version {version}"
        if isinstance(exc, StepError) and exc.done == 0:  # its first statement failed: the database is unchanged
            with contextlib.suppress(Exception), handle.transaction(write=True) as conn:
                self._dirty.clear(conn, migration)
            return self._failed(migration, text)
        return self._failed(migration, self._left_marked(migration, direction, text, handle.scrub(message)))

    def _left_marked(self, migration: Migration, direction: Direction, text: str, error: str | None = None) -> str:
        """``text`` and the way out; the failure is noted on the step's marker, which stays (best effort)."""
        handle = self._handle
        other = 0
        try:
            with handle.transaction(write=True) as conn:
                self._dirty.failed(conn, migration, error or text)
                other = self._dirty.other_version(conn, migration.version)
        except Exception:  # the connection is gone: the marker stays as it was, and says so just the same
            pass
        step = InterruptedStep(migration.version, migration.name, direction=direction)
        return (f"{text}; it is marked as interrupted in {self._dirty.name}, and upgrade and rollback refuse to run "
                f"until it is settled: {interruptions.way_out(self._backend, step, other)}")

    def _run_body(self, conn: Any, code: PythonCode | SqlCode, direction: Direction) -> None:
        handle = self._handle
        if isinstance(code, SqlCode):
            statements = code.up if direction is Direction.UP else code.down
            assert statements is not None
            total = len(statements)
            execute = handle.cursor.execute
            for number, statement in enumerate(statements, 1):
                try:
                    execute(statement.text)
                except Exception as exc:
                    why = first_line(str(exc)) if isinstance(exc, handle.driver_error) else cause(exc)
                    raise StepError(
                        f"statement {number} of {total} (line {statement.line}) failed: {why}",
                        done=number - 1,
                    ) from exc
        else:
            from .database import Database  # SQLAlchemy: only a Python migration's db needs it
            from .handle import Handle

            assert isinstance(handle, Handle)  # the lean SQLite path hands Python migrations on (driver.py)
            function = code.up if direction is Direction.UP else code.down
            assert function is not None
            function(Database(conn, handle.dialect.name, handle))

    def _record(
        self, conn: Any, migration: Migration, direction: Direction, duration_ms: int
    ) -> AppliedMigration | None:
        handle = self._handle
        try:
            if direction is Direction.DOWN:
                self._books.remove(conn, handle.cursor, [migration.version])
                return None
            return self._books.record(conn, handle.cursor, migration, duration_ms)
        except Exception as exc:
            verb = "removing" if direction is Direction.DOWN else "recording"
            why = first_line(str(exc)) if isinstance(exc, handle.driver_error) else cause(exc)
            raise StepError(f"{verb} version {migration.version} in {self._books.name} failed: {why}") from exc

    def _failed(self, migration: Migration, message: str) -> MigrationFailed:
        return MigrationFailed(message, backend=self._backend, line=DATABASE_LINE, version=migration.version)


def _what(migration: Migration, code: PythonCode | SqlCode, direction: Direction) -> str:
    if isinstance(code, SqlCode):
        return f"{migration.label}.{direction.value}.sql"
    return f"{migration.label}.py"


def _body_failure(code: PythonCode | SqlCode, direction: Direction, exc: BaseException) -> str:
    if isinstance(code, PythonCode):
        line = line_in(exc, code.path)
        where = f" at line {line}" if line is not None else ""
        return f"{direction.value}() failed{where}: {cause(exc)}"
    return f"failed: {cause(exc)}"
