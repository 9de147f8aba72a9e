"""Seed data of a SQL backend (``migrator seed``): ``.sql`` files and ``.py`` files with ``seed(db)``.

Every file of the ``seeds`` folder whose name ends in ``.sql`` or ``.py`` (hidden files and names
starting with ``_`` aside) runs in file-name order, all of them in ONE transaction on the run's
connection (SQLite: ``BEGIN IMMEDIATE``): the first failure rolls every seed back, and the error
names the file. ``seed(db)`` gets the ``db`` a migration gets (``db.execute``, ``db.op``,
``db.connection``, ``db.dialect``). Seeds run on every ``migrator seed``: they are written to be
idempotent (``INSERT ... ON CONFLICT DO NOTHING`` / ``DO UPDATE``, both SQLite and PostgreSQL).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from migrator import loader
from migrator.errors import LoaderError, MigrationFailed

from ..base import Seed, Seeded
from . import split as sqlsplit
from .database import Database
from .handle import Handle
from .messages import cause, first_line, line_in

SUFFIXES = (".sql", ".py")
_NAMESPACE = "migrator_seeds"


@dataclass(frozen=True)
class SqlSeed:
    statements: tuple[sqlsplit.Statement, ...]


@dataclass(frozen=True)
class PythonSeed:
    function: Callable[[Database], object]


class SeedError(Exception):
    """A seed failed; ``message`` says where (the file is added by the caller)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def seed_files(folder: Path) -> list[Path]:
    """The folder's seed files in file-name order; LoaderError naming one that is not a readable file."""
    names = loader.seed_folder_names(folder)
    found = []
    for name in names:
        if name.startswith((".", "_")) or not name.endswith(SUFFIXES):
            continue
        path = folder / name
        if not path.is_file():
            raise LoaderError(f"{path}: is not a regular file (seed files are .sql or .py files)")
        found.append(path)
    return found


def load(folder: Path, dialect: str) -> list[Seed]:
    """Every seed of ``folder``, loaded: SQL split into statements, Python imported; LoaderError naming the file."""
    return [_load_one(path, dialect) for path in seed_files(folder)]


def _load_one(path: Path, dialect: str) -> Seed:
    if path.name.endswith(".py"):
        module = loader.import_file(path, _NAMESPACE)
        function = getattr(module, "seed", None)
        if not callable(function):
            raise LoaderError(f"{path}: defines no seed(db) function")
        return Seed(path.name, path, PythonSeed(function))
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoaderError(f"{path}: is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise LoaderError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        statements = tuple(sqlsplit.split(text, dialect))
    except sqlsplit.SplitError as exc:
        raise LoaderError(f"{path}:{exc.line}: {exc.message}") from None
    for number, statement in enumerate(statements, 1):
        command = sqlsplit.transaction_control(statement.text, dialect)
        if command is not None:
            raise LoaderError(f"{path}:{statement.line}: statement {number} is {command}, but every seed runs in "
                              "one transaction; remove it")
    return Seed(path.name, path, SqlSeed(statements))


def describe(seed: Seed) -> str:
    """What a dry run says a seed would do."""
    if isinstance(seed.payload, SqlSeed):
        count = len(seed.payload.statements)
        return f"{count} statement{'' if count == 1 else 's'}"
    return "seed(db)"


def run(handle: Handle, seeds: list[Seed], backend: str) -> list[Seeded]:
    """Run ``seeds`` in order in one transaction; MigrationFailed naming the file, every seed rolled back."""
    done: list[Seeded] = []
    current: Seed | None = None
    try:
        with handle.transaction(write=True) as conn:
            for current in seeds:
                done.append(Seeded(current.label, _run_one(handle, conn, current)))
            current = None  # a failure from here on is the commit's
    except MigrationFailed:
        raise
    except (Exception, SystemExit) as exc:  # sys.exit() in a seed is that seed's failure
        with contextlib.suppress(Exception):
            handle.connection().connection.dbapi_connection.rollback()  # type: ignore[union-attr]
        if isinstance(exc, SeedError):
            why = exc.message
        elif isinstance(exc, handle.driver_error):
            why = first_line(str(exc))
        else:
            why = cause(exc)
        where = f"{current.path}: " if current is not None else "committing the seeds failed: "
        raise MigrationFailed(f"{backend}: seed {where}{handle.scrub(why)}; nothing was seeded (every seed rolled "
                              "back)", backend=backend) from exc
    return done


def _run_one(handle: Handle, conn: sa.Connection, seed: Seed) -> str:
    code = seed.payload
    if isinstance(code, SqlSeed):
        total = len(code.statements)
        rows = 0
        cursor: Any = handle.cursor
        for number, statement in enumerate(code.statements, 1):
            try:
                cursor.execute(statement.text)
            except Exception as exc:
                why = first_line(str(exc)) if isinstance(exc, handle.driver_error) else cause(exc)
                raise SeedError(f"statement {number} of {total} (line {statement.line}) failed: {why}") from exc
            rows += max(cursor.rowcount or 0, 0)
        return f"{total} statement{'' if total == 1 else 's'}, {rows} row{'' if rows == 1 else 's'} affected"
    assert isinstance(code, PythonSeed)
    xid = handle.transaction_id()
    handle.refused = None
    handle.guarding = True  # the seed's own COMMIT / ROLLBACK / BEGIN is refused (see Handle)
    try:
        code.function(Database(conn, handle.dialect.name, handle))
    except (Exception, SystemExit) as exc:
        if handle.refused is not None:
            raise SeedError(_refused(handle.refused)) from exc
        line = line_in(exc, seed.path)
        raise SeedError(f"seed() failed{f' at line {line}' if line is not None else ''}: {cause(exc)}") from exc
    finally:
        handle.guarding = False
    if handle.refused is not None:  # refused, but the seed caught the error and went on
        raise SeedError(_refused(handle.refused))
    if not conn.in_transaction() or not handle.driver_in_transaction(conn) or \
            (xid is not None and handle.transaction_id() != xid):
        raise SeedError("seed() ended migrator's transaction itself (COMMIT/ROLLBACK); every seed runs in one "
                        "transaction")
    return "seed(db)"


def _refused(refused: str) -> str:
    """The guard's refusal (``"COMMIT refused: the migration runs ..."``) in a seed's words."""
    command = refused.split(" refused", 1)[0]
    return f"seed(): {command} refused: every seed runs in one transaction"
