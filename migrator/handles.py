"""Live objects an application hands over instead of a URL: a SQLAlchemy ``Engine`` or a ``sqlite3.Connection``
for a SQL backend, a lancedb connection for a LanceDB backend.

The core imports neither SQLAlchemy, sqlite3 nor lancedb for this: an object can only be an instance of a class
whose module the application has already imported, so the classes are looked up in ``sys.modules``. migrator
never disposes, closes or reconfigures what it is handed (see the adapters: ``Handle`` for SQL, ``LanceBackend``).
"""

from __future__ import annotations

import inspect
import os
import sys
from typing import Any

from migrator.errors import ConfigError


def _instance(value: Any, module: str, *names: str) -> bool:
    loaded = sys.modules.get(module)
    return loaded is not None and any(isinstance(value, getattr(loaded, n, ())) for n in names)


def sql_location(value: Any, where: str) -> str | None:
    """The printable (password-masked) URL of a live SQL handle; None for a plain value (a URL string).

    Refuses, naming ``where``, what looks like a handle but cannot serve: a Connection (one session cannot hold
    migrator's lock and run the steps the way an Engine's pool does), an AsyncEngine, or anything else.
    """
    if isinstance(value, str):
        return None
    if _instance(value, "sqlalchemy.engine", "Engine"):
        return str(value.url.render_as_string(hide_password=True))
    if _instance(value, "sqlite3", "Connection"):
        return sqlite3_location(value, where)
    if _instance(value, "sqlalchemy.engine", "Connection"):
        raise ConfigError(f"{where} is a SQLAlchemy Connection: pass its Engine (connection.engine)")
    if _instance(value, "sqlalchemy.ext.asyncio", "AsyncEngine"):
        raise ConfigError(f"{where} is an AsyncEngine: migrator runs synchronously; pass a synchronous Engine "
                          "(sqlalchemy.create_engine with a synchronous driver)")
    raise ConfigError(f"{where} must be a database URL (a string), a SQLAlchemy Engine or a sqlite3.Connection, "
                      f"not {_kind(value)}")


def sqlite3_location(conn: Any, where: str) -> str:
    """``sqlite:///<file>`` (``sqlite://`` in memory) of a ``sqlite3.Connection``; refused when it is closed."""
    try:
        rows = conn.execute("PRAGMA database_list").fetchall()
    except Exception as exc:  # sqlite3.ProgrammingError: Cannot operate on a closed database.
        raise ConfigError(f"{where}: the sqlite3.Connection cannot be used: {exc}") from None
    path = next((str(row[2]) for row in rows if row[1] == "main"), "")
    return f"sqlite:///{path}" if path else "sqlite://"


def lance_location(value: Any, where: str) -> str | None:
    """The URI of a lancedb connection; None for a plain value (a URI string or a path)."""
    if isinstance(value, (str, os.PathLike)):
        return None
    if _instance(value, "lancedb", "AsyncConnection") or inspect.iscoroutinefunction(
            getattr(value, "open_table", None)):
        raise ConfigError(f"{where} is an async lancedb connection: pass the synchronous one (lancedb.connect)")
    if _instance(value, "lancedb", "DBConnection"):
        uri = value.uri
        if not isinstance(uri, str) or not uri:
            raise ConfigError(f"{where}: the lancedb connection has no URI")
        return uri
    raise ConfigError(f"{where} must be a LanceDB URI (a string or a path) or a lancedb connection "
                      f"(lancedb.connect), not {_kind(value)}")


def _kind(value: Any) -> str:
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
