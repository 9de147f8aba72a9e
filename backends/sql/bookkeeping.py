"""The version table (default ``migrations``, DESIGN section 5): the only code that names it.

Writes go through the driver's own cursor in its own parameter style (the apply path is
benchmarked: SQLAlchemy's per-statement machinery would cost more than a small migration).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from migrator.errors import BackendUnavailable, ConfigError
from migrator.model import DATABASE_LINE, AppliedMigration, Migration

from .dialects import Dialect
from .timestamps import to_datetime as _to_datetime

if TYPE_CHECKING:  # the lean SQLite path (driver.py) writes the table without SQLAlchemy
    import sqlalchemy as sa

_PARAM_STYLES = frozenset({"qmark", "format", "numeric", "named", "pyformat", "numeric_dollar"})
_POSITIONAL = frozenset({"qmark", "format", "numeric", "numeric_dollar"})
_WRITTEN = ("version", "name", "applied_at", "checksum", "duration_ms")


@dataclass(frozen=True)
class _Statement:
    """One SQL statement in the driver's parameter style, and the order its parameters go in."""

    sql: str
    names: tuple[str, ...]
    positional: bool

    def params(self, **values: Any) -> Any:
        if self.positional:
            return tuple(values[name] for name in self.names)
        return {name: values[name] for name in self.names}


@dataclass(frozen=True)
class _Statements:
    insert: _Statement
    delete: _Statement
    set_checksum: _Statement
    find: _Statement
    versions: str

    @classmethod
    def for_style(cls, style: str, table: str) -> _Statements:
        if style not in _PARAM_STYLES:
            raise BackendUnavailable(f"unsupported DB-API parameter style {style!r}")
        positional = style in _POSITIONAL

        def statement(template: str, names: Sequence[str]) -> _Statement:
            if style == "qmark":
                marks = ["?"] * len(names)
            elif style == "format":
                marks = ["%s"] * len(names)
            elif style == "numeric":
                marks = [f":{i}" for i in range(1, len(names) + 1)]
            elif style == "numeric_dollar":
                marks = [f"${i}" for i in range(1, len(names) + 1)]
            elif style == "named":
                marks = [f":{name}" for name in names]
            else:
                marks = [f"%({name})s" for name in names]
            return _Statement(template.format(*marks), tuple(names), positional)

        return cls(
            insert=statement(
                f"INSERT INTO {table} ({', '.join(_WRITTEN)}) VALUES ({', '.join('{}' for _ in _WRITTEN)})",
                _WRITTEN,
            ),
            delete=statement(f"DELETE FROM {table} WHERE version = {{}}", ("version",)),
            set_checksum=statement(f"UPDATE {table} SET checksum = {{}} WHERE version = {{}}", ("checksum", "version")),
            find=statement(f"SELECT count(*) FROM {table} WHERE version = {{}}", ("version",)),
            versions=f"SELECT version FROM {table}",
        )


class VersionTable:
    """Reads and writes the version table of one database."""

    def __init__(self, name: str, backend: str, location: str, dialect: Dialect) -> None:
        self.name = name
        self._backend = backend
        self._location = location
        self._dialect = dialect
        self._sql: _Statements | None = None

    def _quoted(self, conn: sa.Connection) -> str:
        return conn.dialect.identifier_preparer.quote(self.name)

    def _statements(self, conn: Any) -> _Statements:
        if self._sql is None:
            self._sql = _Statements.for_style(conn.dialect.paramstyle, self._quoted(conn))
        return self._sql

    def bind(self, paramstyle: str, quoted_name: str) -> None:
        """Fix the statements' parameter style and quoted table name up front: the lean SQLite path
        (``driver.py``) writes through a bare ``sqlite3`` cursor, with no SQLAlchemy connection to ask."""
        self._sql = _Statements.for_style(paramstyle, quoted_name)

    def columns(self, conn: sa.Connection) -> set[str] | None:
        """The table's column names (lower case); None when it does not exist."""
        import sqlalchemy as sa

        inspector = sa.inspect(conn)
        if not inspector.has_table(self.name):
            return None
        columns = {str(c["name"]).lower() for c in inspector.get_columns(self.name)}
        check_columns(columns, self._backend, self.name, self._location)
        return columns

    def ensure(self, conn: sa.Connection) -> None:
        """CREATE the table, or ADD the columns an older migrator did not write."""
        columns = self.columns(conn)
        if columns is None and self._dialect.version_table_ddl is None:
            self._create_with_core(conn)
            return
        for sql in self.ddl(columns, self._quoted(conn)):
            conn.exec_driver_sql(sql)

    def ddl(self, columns: set[str] | None, quoted_name: str) -> list[str]:
        """What makes the table ready: its CREATE (``columns`` None: no table yet), or the ADDs of the
        columns an older migrator did not write (none when it is complete)."""
        if columns is None:
            assert self._dialect.version_table_ddl is not None
            return [self._dialect.version_table_ddl(quoted_name)]
        return [f"ALTER TABLE {quoted_name} ADD COLUMN {column} {sql_type}"
                for column, sql_type in (("checksum", "TEXT"), ("duration_ms", "INTEGER")) if column not in columns]

    def _create_with_core(self, conn: sa.Connection) -> None:
        """A dialect without its own DDL here: SQLAlchemy Core's CREATE TABLE."""
        import sqlalchemy as sa

        table_def = sa.Table(
            self.name,
            sa.MetaData(),
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("version", sa.BigInteger, unique=True, nullable=False),
            sa.Column("name", sa.String(255), nullable=False),
            sa.Column("applied_at", sa.DateTime, server_default=sa.func.current_timestamp()),
            sa.Column("checksum", sa.Text),  # a .up.sql/.down.sql pair stores two digests
            sa.Column("duration_ms", sa.Integer),
        )
        table_def.create(conn, checkfirst=True)

    def read(self, conn: sa.Connection, columns: set[str]) -> list[AppliedMigration]:
        wanted = [c for c in _WRITTEN if c in columns]
        order_by = ["id"] if "id" in columns else [c for c in ("applied_at", "version") if c in columns]
        query = f"SELECT {', '.join(wanted)} FROM {self._quoted(conn)} ORDER BY {', '.join(order_by)}"
        records = []
        for row in conn.exec_driver_sql(query).mappings():
            duration = row.get("duration_ms")
            records.append(
                AppliedMigration(
                    version=int(row["version"]),
                    name=str(row["name"]),
                    line=DATABASE_LINE,
                    checksum=row.get("checksum"),
                    applied_at=_to_datetime(row.get("applied_at")),
                    duration_ms=int(duration) if duration is not None else None,
                )
            )
        return records

    def record(self, conn: Any, cursor: Any, migration: Migration, duration_ms: int | None,
               now: datetime | None = None) -> AppliedMigration:
        """Insert the row of an applied ``migration`` through ``cursor`` (in the caller's transaction)."""
        now = now or utcnow()
        insert = self._statements(conn).insert
        cursor.execute(insert.sql, self._row(insert, migration, duration_ms, now))
        return AppliedMigration(
            version=migration.version,
            name=migration.name,
            line=DATABASE_LINE,
            checksum=migration.checksum,
            applied_at=now,
            duration_ms=duration_ms,
        )

    def has(self, conn: Any, cursor: Any, version: int) -> bool:
        """Whether ``version`` is recorded, read through ``cursor`` in the caller's transaction."""
        find = self._statements(conn).find
        cursor.execute(find.sql, find.params(version=version))
        row = cursor.fetchone()
        return bool(row and row[0])

    def remove(self, conn: Any, cursor: Any, versions: Iterable[int]) -> None:
        delete = self._statements(conn).delete
        rows = [delete.params(version=v) for v in versions]
        if len(rows) == 1:
            cursor.execute(delete.sql, rows[0])
        elif rows:
            cursor.executemany(delete.sql, rows)

    def stamp(self, conn: Any, cursor: Any, migrations: Sequence[Migration]) -> None:
        """Record ``migrations`` as applied without running them (those already recorded stay as they are)."""
        sql = self._statements(conn)
        cursor.execute(sql.versions)
        present = {int(row[0]) for row in cursor.fetchall()}
        now = utcnow()
        rows = [self._row(sql.insert, m, None, now)
                for m in sorted(migrations, key=lambda m: m.version) if m.version not in present]
        if rows:
            cursor.executemany(sql.insert.sql, rows)

    def set_checksums(self, conn: Any, cursor: Any, migrations: Sequence[Migration]) -> None:
        update = self._statements(conn).set_checksum
        cursor.executemany(update.sql, [update.params(checksum=m.checksum, version=m.version) for m in migrations])

    def _row(self, insert: _Statement, migration: Migration, duration_ms: int | None, now: datetime) -> Any:
        return insert.params(
            version=migration.version,
            name=migration.name,
            applied_at=self._timestamp(now),
            checksum=migration.checksum,
            duration_ms=duration_ms,
        )

    def _timestamp(self, moment: datetime) -> Any:
        naive = moment.astimezone(UTC).replace(tzinfo=None)
        if self._dialect.text_timestamps:  # the text format SQLAlchemy and CURRENT_TIMESTAMP use
            return naive.isoformat(" ", "microseconds")  # strftime("%Y-%m-%d %H:%M:%S.%f"), faster
        return naive


def check_columns(columns: set[str], backend: str, table: str, location: str) -> None:
    """ConfigError unless a table with these (lower-case) ``columns`` can be migrator's version table."""
    missing = {"version", "name"} - columns
    if missing:
        raise ConfigError(
            f"{backend}: table {table!r} in {location} is not a migrator version table "
            f"(no column {sorted(missing)[0]!r}); set version_table to another name"
        )


def utcnow() -> datetime:
    return datetime.now(UTC)
