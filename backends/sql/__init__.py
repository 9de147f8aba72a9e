"""The SQL adapter: SQLAlchemy + Alembic operations; SQLite and PostgreSQL tested.

Migration files: ``NNN_name.py`` (``up(db)``, optional ``down(db)``, optional
``transactional = False``) or ``NNN_name.up.sql`` with an optional
``NNN_name.down.sql`` (a first line ``-- migrator: no-transaction`` runs the
file outside a transaction).

Modules: ``adapter`` (``SqlBackend``, ``create``), ``sources`` (discovery and loading),
``handle`` (engine, connection, cursor, transactions, COMMIT guard), ``steps`` (running one
migration), ``bookkeeping`` (the version table), ``dialects`` (dialect differences),
``lock`` (file and advisory locks), ``database`` (the ``db`` of ``up(db)``, Alembic
operations), ``messages`` (failure wording), ``split`` (statement splitting).
"""

from __future__ import annotations

from .adapter import DEFAULT_VERSION_TABLE, SqlBackend, create
from .database import Database
from .lock import advisory_lock_key
from .sources import SUFFIXES, PythonCode, PythonSource, SqlCode, SqlSource

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
