"""The ``db`` that a Python migration's ``up(db)`` / ``down(db)`` receives, and its Alembic ``Operations``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa

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
    - ``db.op``: Alembic ``Operations`` on this migration's connection (on SQLite, column and
      constraint changes go through batch mode by themselves).
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
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    operations = Operations(MigrationContext.configure(connection=connection))
    if dialect_of(dialect).batch_operations:
        wrapped: Operations = _BatchOperations(operations)  # type: ignore[assignment]
        return wrapped
    return operations


class _BatchOperations:
    """Alembic ``Operations`` whose column / constraint changes run in batch mode (SQLite).

    SQLite cannot alter or drop columns with constraints, nor add or drop
    constraints: Alembic's batch mode recreates the table instead. Every other
    operation goes straight to the wrapped ``Operations``.
    """

    def __init__(self, operations: Operations) -> None:
        self._operations = operations

    def __getattr__(self, name: str) -> Any:
        return getattr(self._operations, name)

    def alter_column(self, table_name: str, column_name: str, *, schema: str | None = None, **kw: Any) -> None:
        with self._operations.batch_alter_table(table_name, schema=schema) as batch:
            batch.alter_column(column_name, **kw)

    def drop_column(self, table_name: str, column_name: str, *, schema: str | None = None, **kw: Any) -> None:
        with self._operations.batch_alter_table(table_name, schema=schema) as batch:
            batch.drop_column(column_name, **kw)

    def create_foreign_key(
        self,
        constraint_name: str | None,
        source_table: str,
        referent_table: str,
        local_cols: list[str],
        remote_cols: list[str],
        *,
        source_schema: str | None = None,
        **kw: Any,
    ) -> None:
        with self._operations.batch_alter_table(source_table, schema=source_schema) as batch:
            batch.create_foreign_key(constraint_name, referent_table, local_cols, remote_cols, **kw)

    def drop_constraint(
        self, constraint_name: str, table_name: str, type_: str | None = None, *, schema: str | None = None,
        **kw: Any,
    ) -> None:
        with self._operations.batch_alter_table(table_name, schema=schema) as batch:
            batch.drop_constraint(constraint_name, type_=type_, **kw)

    def create_unique_constraint(
        self, constraint_name: str | None, table_name: str, columns: Sequence[str], *, schema: str | None = None,
        **kw: Any,
    ) -> None:
        with self._operations.batch_alter_table(table_name, schema=schema) as batch:
            batch.create_unique_constraint(cast(str, constraint_name), columns, **kw)

    def create_check_constraint(
        self, constraint_name: str | None, table_name: str, condition: Any, *, schema: str | None = None, **kw: Any,
    ) -> None:
        with self._operations.batch_alter_table(table_name, schema=schema) as batch:
            batch.create_check_constraint(cast(str, constraint_name), condition, **kw)
