"""The SQL adapter: SQLAlchemy + Alembic operations; SQLite and PostgreSQL tested.

Migration files: ``NNN_name.py`` (``up(db)``, optional ``down(db)``, optional
``transactional = False``) or ``NNN_name.up.sql`` with an optional
``NNN_name.down.sql`` (a first line ``-- migrator: no-transaction`` runs the
file outside a transaction).

Modules: ``adapter`` (``SqlBackend``, ``create``), ``sources`` (discovery and loading),
``handle`` (engine, connection, cursor, transactions, COMMIT guard), ``steps`` (running one
migration), ``bookkeeping`` (the version table), ``dialects`` (dialect differences),
``lock`` (file and advisory locks), ``database`` (the ``db`` of ``up(db)``, Alembic
operations), ``messages`` (failure wording), ``split`` (statement splitting), ``readpath`` (the
registry's ``create``: on a SQLite file, reads and the upgrade / rollback of SQL files with
``sqlite3``, no SQLAlchemy), ``driver`` (that ``sqlite3`` connection as a handle ``steps`` runs on).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .adapter import DEFAULT_VERSION_TABLE, SqlBackend, create
    from .database import Database
    from .lock import advisory_lock_key
    from .sources import SUFFIXES, PythonCode, PythonSource, SqlCode, SqlSource

# Imported on first use: ``readpath`` (reads, and SQL files' steps, on a SQLite file) must not import
# ``adapter``, which imports SQLAlchemy.
_EXPORTED_FROM = {
    "DEFAULT_VERSION_TABLE": "adapter", "SqlBackend": "adapter", "create": "adapter", "Database": "database",
    "advisory_lock_key": "lock", "SUFFIXES": "sources", "PythonCode": "sources", "PythonSource": "sources",
    "SqlCode": "sources", "SqlSource": "sources",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTED_FROM.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "DEFAULT_VERSION_TABLE",
    "SUFFIXES",
    "Database",
    "PythonCode",
    "PythonSource",
    "SqlBackend",
    "SqlCode",
    "SqlSource",
    "advisory_lock_key",
    "create",
]
