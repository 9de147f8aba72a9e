"""A SQLite file through the standard library's ``sqlite3`` only: the lean apply path's handle.

A step of a plain SQL file runs on the driver's own cursor anyway (``steps``, ``bookkeeping``):
``BEGIN IMMEDIATE``, the file's statements, the version row, ``COMMIT``. :class:`SqliteDriver` is
that cursor without SQLAlchemy around it, so that ``upgrade`` and ``rollback`` of SQL files on a
SQLite file never import SQLAlchemy (its import is most of what such a run costs above the raw
floor: benchmarks/README, issue 14). ``readpath.SqliteFront`` decides which calls it takes; what
needs SQLAlchemy (a Python migration's ``db``, a file that runs outside a transaction, backups,
autogenerate...) goes to the full ``SqlBackend`` once this connection is closed.

This module imports neither SQLAlchemy nor anything that does.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .dialects import SQLITE, Dialect

# The words SQLAlchemy's SQLite dialect quotes (``SQLiteIdentifierPreparer.reserved_words``): the version table's
# name is quoted as SqlBackend quotes it, so both write the same CREATE TABLE (a test holds the two equal).
_RESERVED = frozenset((
    "add", "after", "all", "alter", "analyze", "and", "as", "asc", "attach", "autoincrement", "before", "begin",
    "between", "by", "cascade", "case", "cast", "check", "collate", "column", "commit", "conflict", "constraint",
    "create", "cross", "current_date", "current_time", "current_timestamp", "database", "default", "deferrable",
    "deferred", "delete", "desc", "detach", "distinct", "drop", "each", "else", "end", "escape", "except",
    "exclusive", "exists", "explain", "fail", "false", "for", "foreign", "from", "full", "glob", "group", "having",
    "if", "ignore", "immediate", "in", "index", "indexed", "initially", "inner", "insert", "instead", "intersect",
    "into", "is", "isnull", "join", "key", "left", "like", "limit", "match", "natural", "not", "notnull", "null",
    "of", "offset", "on", "or", "order", "outer", "plan", "pragma", "primary", "query", "raise", "references",
    "reindex", "rename", "replace", "restrict", "right", "rollback", "row", "select", "set", "table", "temp",
    "temporary", "then", "to", "transaction", "trigger", "true", "union", "unique", "update", "using", "vacuum",
    "values", "view", "virtual", "when", "where",
))
_UNQUOTED = re.compile(r"[a-z_][a-z0-9_$]*")


def quote_name(name: str) -> str:
    """``name`` as SQLAlchemy's SQLite dialect writes it in DDL: bare when it may be, else in double quotes."""
    if _UNQUOTED.fullmatch(name) and name not in _RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


class DriverTransaction:
    """A transaction opened on the driver's connection (``begin_on_driver``): commit or roll back once."""

    __slots__ = ("_dbapi", "is_active")

    def __init__(self, dbapi: Any) -> None:
        self._dbapi = dbapi
        self.is_active = True

    def commit(self) -> None:
        self.is_active = False
        self._dbapi.commit()

    def rollback(self) -> None:
        if self.is_active:
            self.is_active = False
            self._dbapi.rollback()


class SqliteDriver:
    """What ``steps.Steps`` needs of a handle (``steps.StepHandle``), on one ``sqlite3`` connection.

    The connection is what SQLAlchemy's pysqlite dialect would open for the same file URL (the
    driver's defaults: a 5 s busy timeout, no type detection), with the driver's own transaction
    handling off as ``handle.Handle`` switches it off: every write transaction is our ``BEGIN
    IMMEDIATE``. Python migrations are never run here (their ``db`` is SQLAlchemy's).
    """

    dialect: Dialect = SQLITE
    driver_error: type[BaseException] = sqlite3.Error

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self.cursor: Any = None
        self.begin_sql: str | None = None
        self.guarding = False  # SQL files were checked for COMMIT/BEGIN when they were loaded
        self.refused: str | None = None

    def fresh_connection(self) -> sqlite3.Connection:
        """The connection (opened on first use), with no transaction open."""
        conn = self._conn
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None)
            self._conn, self.cursor = conn, conn.cursor()
        elif conn.in_transaction:
            conn.rollback()
        return conn

    def begin_on_driver(self) -> DriverTransaction:
        conn = self.fresh_connection()
        self.cursor.execute("BEGIN IMMEDIATE")
        return DriverTransaction(conn)

    @contextlib.contextmanager
    def transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        """One transaction (``BEGIN IMMEDIATE`` for writes), committed when the block ends, else rolled back."""
        conn = self.fresh_connection()
        self.cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
        conn.commit()

    def database_errors(self) -> tuple[type[BaseException], ...]:
        return (sqlite3.Error,)

    def transaction_id(self) -> Any:
        return None  # SQLite has none; only Python migrations are asked for it

    def driver_in_transaction(self, conn: sqlite3.Connection) -> bool:
        return conn.in_transaction

    def abandon(self, conn: sqlite3.Connection, trans: DriverTransaction) -> None:
        with contextlib.suppress(Exception):
            trans.rollback()
        with contextlib.suppress(Exception):
            conn.rollback()

    def scrub(self, text: str) -> str:
        return text  # a plain file URL holds no password

    def close(self) -> None:
        conn, cursor = self._conn, self.cursor
        self._conn = self.cursor = None
        with contextlib.suppress(Exception):
            if cursor is not None:
                cursor.close()
        with contextlib.suppress(Exception):
            if conn is not None:
                conn.close()
