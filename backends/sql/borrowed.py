"""An application's own ``sqlite3.Connection`` as a SQLAlchemy ``Engine`` (the seed's ``MigrationRunner(conn)``).

The engine hands out that one connection (``StaticPool``), never resets it when it is returned (the
application's own state stays as it was) and is never disposed by migrator, so the connection is never
closed. Its URL names the database file (``PRAGMA database_list``), so the lock beside the database is the
same one a run from a URL takes. migrator runs each migration in its own ``BEGIN IMMEDIATE``: a connection
with a transaction of the application still open is refused rather than committed or rolled back.
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.pool import StaticPool

from migrator.errors import UsageError
from migrator.handles import sqlite3_location


def borrowed_sqlite3(conn: sqlite3.Connection, name: str) -> sa.Engine:
    """An Engine over ``conn``; UsageError (naming ``name``) when it is closed or inside a transaction."""
    location = sqlite3_location(conn, name)  # refuses a closed connection
    if conn.in_transaction:
        raise UsageError(f"{name}: the sqlite3.Connection has a transaction open; commit or roll it back "
                         "before migrating (migrator runs each migration in a transaction of its own)")
    path = location[len("sqlite:///"):] if location.startswith("sqlite:///") else None
    url = URL.create("sqlite", database=path)
    return sa.create_engine(url, creator=lambda: conn, poolclass=StaticPool, pool_reset_on_return=None)
