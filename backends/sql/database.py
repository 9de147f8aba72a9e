"""The ``db`` that a Python migration's ``up(db)`` / ``down(db)`` receives, and its Alembic ``Operations``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa

from migrator.logsink import quiet_alembic

from .dialects import dialect_of

if TYPE_CHECKING:
    from alembic.operations import Operations

    from .handle import Handle

_NO_PARAMS: Mapping[str, Any] = {"no_parameters": True}


class Database:
    """What a Python migration's ``up(db)`` / ``down(db)`` receives.

    - ``db.execute(sql, params=None)``: a string without params runs as it is (literal ``%``
      and ``:word`` are fine); with params it is a SQLAlchemy ``text()`` with ``:name`` binds;
      SQLAlchemy statements are accepted too. Returns the result.
    - ``db.op``: Alembic ``Operations`` on this migration's connection. On SQLite, SQLite's own
      ALTER TABLE where it can, else a table copy that keeps every index, trigger, view, CHECK
      and foreign-key action, or a refusal naming what would be lost (``sqlite_alter``).
    - ``db.connection``: the SQLAlchemy ``Connection``; ``db.dialect``: ``"sqlite"``, ``"postgresql"``...
    """

    __slots__ = ("_handle", "connection", "dialect")

    def __init__(self, connection: sa.Connection, dialect: str, handle: Handle | None = None) -> None:
        self.connection = connection
        self.dialect = dialect
        self._handle = handle

    def execute(self, sql: Any, params: Any = None) -> sa.CursorResult[Any]:
        if isinstance(sql, str):
            if params is None:
                return self.connection.exec_driver_sql(sql, execution_options=_NO_PARAMS)
            return self.connection.execute(sa.text(sql), params)
        return self.connection.execute(sql, params)

    @property
    def op(self) -> Operations:
        if self._handle is not None:
            return self._handle.operations(self.connection)
        return operations_for(self.connection, self.dialect)

    def __repr__(self) -> str:
        return f"<migrator Database {self.dialect}>"


def operations_for(connection: sa.Connection, dialect: str) -> Operations:
    """Alembic ``Operations`` on ``connection``; on SQLite, table changes that keep every object (see sqlite_alter)."""
    with quiet_alembic():  # Alembic's "Will assume non-transactional DDL": not true of migrator's SQLite
        from alembic.operations import Operations
        from alembic.runtime.migration import MigrationContext

        operations = Operations(MigrationContext.configure(connection=connection))
    if dialect_of(dialect).sqlite_alter:
        from .sqlite_alter import SqliteOperations

        return cast("Operations", SqliteOperations(operations, connection))
    return operations
