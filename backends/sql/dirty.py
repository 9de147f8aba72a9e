"""The marker table of migrations that run outside a transaction: ``<version_table>_dirty``.

As golang-migrate's dirty flag, kept apart from the version table so that a reader of the seed's
``migrations`` table never sees a version that was not applied::

    version     BIGINT        the step's version
    name        VARCHAR(255)  the step's name
    direction   VARCHAR(8)    up | down
    started_at  VARCHAR(40)   ISO 8601, UTC, when the marker was committed
    host        VARCHAR(255)  the host name of the process running the step
    pid         INTEGER       its process id
    error       TEXT          the failure migrator caught (NULL: it is running, or its process died)

A step that runs outside a transaction (``transactional = False``, ``-- migrator: no-transaction``)
commits its marker before its body, in the transaction that also re-checks the lock and the version
(``steps``); the transaction that records its version (or, going down, deletes it) deletes the marker.
A marker left behind means the database may hold part of that step: ``upgrade`` and ``rollback`` refuse
until ``migrator stamp`` (which deletes every marker) says what state it is in. A failure whose first
statement failed (plain SQL files) applied nothing: its marker is deleted.

The table is created with the first marker, so a database that never ran a non-atomic step has none.
This module imports SQLAlchemy only where it writes: the SQLite read path (``readpath``) reads the
table with the standard library and shares :func:`step_of`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from migrator.errors import ConfigError
from migrator.interruptions import this_host
from migrator.model import DATABASE_LINE, Direction, InterruptedStep, Migration

if TYPE_CHECKING:
    import sqlalchemy as sa

COLUMNS = ("version", "name", "direction", "started_at", "host", "pid", "error")
ERROR_LENGTH = 2000
_CONTROL_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # as messages.printable: one line stays one line


def _text(value: Any) -> str | None:
    """A text column as messages may print it: control characters escaped (a row edited by hand)."""
    if value is None:
        return None
    return _CONTROL_CHARS.sub(lambda m: repr(m.group())[1:-1], str(value))


def marker_table(version_table: str) -> str:
    """The marker table's name: ``<version_table>_dirty`` (``migrations_dirty`` by default)."""
    return f"{version_table}_dirty"


def step_of(row: Mapping[str, Any]) -> InterruptedStep:
    """One marker row as the core's :class:`InterruptedStep`; odd values (a hand-edited row) are read leniently."""
    try:
        direction = Direction(str(row.get("direction") or "up").strip().lower())
    except ValueError:
        direction = Direction.UP
    started = row.get("started_at")
    when: datetime | None
    if isinstance(started, datetime):
        when = started if started.tzinfo else started.replace(tzinfo=UTC)
    else:
        try:
            when = datetime.fromisoformat(str(started)) if started else None
        except ValueError:
            when = None
        if when is not None and when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    pid = row.get("pid")
    try:
        pid_number = int(pid) if pid is not None else None
    except (TypeError, ValueError):
        pid_number = None
    return InterruptedStep(
        version=int(row["version"]),
        name=_text(row.get("name")) or "",
        line=DATABASE_LINE,
        direction=direction,
        started_at=when,
        host=_text(row.get("host")),
        pid=pid_number,
        error=_text(row.get("error")),
    )


def one_line(text: str) -> str:
    """An error as stored in the marker: one line, bounded."""
    flat = " ".join(text.split())
    return flat if len(flat) <= ERROR_LENGTH else flat[: ERROR_LENGTH - 3] + "..."


class DirtyTable:
    """Reads and writes the marker table of one database (through SQLAlchemy Core: any dialect)."""

    def __init__(self, version_table: str, backend: str = "", location: str = "") -> None:
        self.version_table = version_table
        self._where = (f"{backend}: " if backend else "", f" in {location}" if location else "")
        self.name = marker_table(version_table)
        self._definition: sa.Table | None = None

    def _table(self) -> sa.Table:
        if self._definition is None:
            import sqlalchemy as sa

            self._definition = sa.Table(
                self.name,
                sa.MetaData(),
                sa.Column("version", sa.BigInteger, nullable=False),
                sa.Column("name", sa.String(255), nullable=False),
                sa.Column("direction", sa.String(8), nullable=False),
                sa.Column("started_at", sa.String(40), nullable=False),
                sa.Column("host", sa.String(255)),
                sa.Column("pid", sa.Integer),
                sa.Column("error", sa.Text),
            )
        return self._definition

    def exists(self, conn: sa.Connection) -> bool:
        """Whether the marker table exists; ConfigError when a table of that name is not migrator's."""
        import sqlalchemy as sa

        inspector = sa.inspect(conn)
        if not inspector.has_table(self.name):
            return False
        columns = {str(c["name"]).lower() for c in inspector.get_columns(self.name)}
        missing = [c for c in COLUMNS if c not in columns]
        if missing:
            prefix, where = self._where
            raise ConfigError(f"{prefix}table {self.name!r}{where} is not migrator's marker table (no column "
                              f"{missing[0]!r}); "
                              "migrator keeps the marks of interrupted migrations in <version_table>_dirty: "
                              "set version_table to another name")
        return True

    def read(self, conn: sa.Connection) -> list[InterruptedStep]:
        """Every marker, oldest first; [] when there is no marker table (nothing is created)."""
        if not self.exists(conn):
            return []
        table = self._table()
        rows = conn.execute(table.select().order_by(table.c.started_at, table.c.version)).mappings()
        return [step_of(dict(row)) for row in rows]

    def mark(self, conn: sa.Connection, migration: Migration, direction: Direction) -> None:
        """Insert the marker of ``migration`` in the caller's transaction (creating the table on first use)."""
        table = self._table()
        if not self.exists(conn):
            table.create(conn)
        conn.execute(table.insert().values(
            version=migration.version,
            name=migration.name[:255],
            direction=direction.value,
            started_at=datetime.now(UTC).isoformat(),
            host=this_host()[:255],
            pid=os.getpid(),
            error=None,
        ))

    def failed(self, conn: sa.Connection, migration: Migration, error: str) -> None:
        """Note on ``migration``'s marker the failure migrator caught (the marker stays)."""
        table = self._table()
        conn.execute(table.update().where(table.c.version == migration.version).values(error=one_line(error)))

    def clear(self, conn: sa.Connection, migration: Migration) -> None:
        """Delete ``migration``'s marker (in the transaction that records or deletes its version)."""
        table = self._table()
        conn.execute(table.delete().where(table.c.version == migration.version))

    def other_version(self, conn: sa.Connection, version: int) -> int:
        """The highest recorded version other than ``version`` (0: none): the line's version without the step."""
        import sqlalchemy as sa

        quoted = conn.dialect.identifier_preparer.quote(self.version_table)
        found = conn.execute(sa.text(f"SELECT max(version) FROM {quoted} WHERE version <> :version"),
                             {"version": version}).scalar()
        return int(found) if found is not None else 0

    def clear_all(self, conn: sa.Connection) -> int:
        """Delete every marker (``migrator stamp``: the operator said what state the database is in)."""
        if not self.exists(conn):
            return 0
        result = conn.execute(self._table().delete())
        return int(result.rowcount or 0)
