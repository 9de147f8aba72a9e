"""The ``table_migrations`` Lance table: an append-only event log, current versions derived from it.

Layout (one row per event; the first three columns are the TypeScript seed's)::

    tableName       string   the migrated table (the version line)
    currentVersion  int64    the migration version the event is about
    lastMigratedAt  int64    when the row was written, ms since the epoch
    event           string   applied | stamped | adopted | started | failed | reverting | rolled_back
                             (null: a seed row)
    description     string   the migration's description
    checksum        string   sha256 of the migration file (null for seed and adopted rows)
    durationMs      int64    how long the migration ran
    lanceVersion    int64    applied/stamped: the table's Lance version after the migration
                             (``table.restore(lanceVersion)`` returns to the state after it);
                             started: the table's Lance version before it (null: no table yet);
                             reverting: before the rollback; rolled_back: after it (null: dropped)
    attempt         string   id linking a ``started`` row to its ``applied`` / ``failed`` row
    detail          string   why it failed, or how it was completed (recovered after a crash)

Why an event log: every bookkeeping change is **one** Lance commit that only
adds rows (an append) — a crash leaves either the whole row or nothing, and
concurrent appends from the parallel line threads never overwrite each other
(Lance rebases appends; a thread lock and conflict retries serialise them in
this process anyway). Nothing is ever updated in place, so no reader can see a
half-moved "current" row. The current version of a table is derived: the
highest version with an ``applied``/``stamped``/``adopted`` row.

Seed databases: rows written by the TypeScript tool have only the three seed
columns (``event`` is null after ``prepare`` adds the history columns, an O(1)
metadata commit). Such a row adopts versions 1..currentVersion as applied,
without checksums; history rows are appended from then on. ``unstamp`` is the
only deletion: if it touches adopted versions, it first appends explicit
``adopted`` rows for all of them (harmless duplicates if it stops there), then
removes the seed row and the unstamped versions' rows in one delete commit.

``started`` rows are intents: written before a migration's function runs, with
the table's Lance version at that moment. A ``started`` row with no
``applied``/``failed`` row of the same attempt means the process died in the
middle; the adapter uses it to undo a partial migration before running it again.

Rollback (Lance time travel): a ``reverting`` row (intent), then the table is
restored to the Lance version its ``started`` row recorded (or dropped, when
the migration created it), then a ``rolled_back`` row, which removes the
version from the derived state. The restore brings back the old schema
metadata, stamp included, so after a crash between the two rows the table's
stamp says whether the rollback happened (:func:`open_reverts`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from migrator.errors import BackendUnavailable
from migrator.model import AppliedMigration, Migration

from .common import open_table, retry

EVENT_APPLIED = "applied"
EVENT_STAMPED = "stamped"
EVENT_ADOPTED = "adopted"
EVENT_STARTED = "started"
EVENT_FAILED = "failed"
EVENT_REVERTING = "reverting"
EVENT_ROLLED_BACK = "rolled_back"
RECORD_EVENTS = frozenset({EVENT_APPLIED, EVENT_STAMPED, EVENT_ADOPTED})

SEED_COLUMNS = ("tableName", "currentVersion", "lastMigratedAt")
HISTORY_COLUMNS = ("event", "description", "checksum", "durationMs", "lanceVersion", "attempt", "detail")
_STRING = ("tableName", "event", "description", "checksum", "attempt", "detail")


def schema() -> Any:
    import pyarrow as pa

    return pa.schema([
        pa.field(name, pa.string() if name in _STRING else pa.int64(), nullable=True)
        for name in (*SEED_COLUMNS, *HISTORY_COLUMNS)
    ])


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Row:
    table: str
    version: int
    at_ms: int
    event: str | None = None          # None: a row of the TypeScript seed tool
    description: str | None = None
    checksum: str | None = None
    duration_ms: int | None = None
    lance_version: int | None = None
    attempt: str | None = None
    detail: str | None = None
    position: int = 0                 # order in the table when read (ties on at_ms)

    def record(self) -> dict[str, Any]:
        return {
            "tableName": self.table, "currentVersion": self.version, "lastMigratedAt": self.at_ms,
            "event": self.event, "description": self.description, "checksum": self.checksum,
            "durationMs": self.duration_ms, "lanceVersion": self.lance_version, "attempt": self.attempt,
            "detail": self.detail,
        }

    @property
    def key(self) -> tuple[int, int]:
        return (self.at_ms, self.position)


@dataclass(frozen=True)
class Intent:
    """A migration that started and never finished (its process died)."""

    table: str
    version: int
    start_version: int | None
    attempt: str
    at_ms: int


def _int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse(records: Iterable[dict[str, Any]]) -> list[Row]:
    rows = []
    for position, item in enumerate(records):
        table = item.get("tableName")
        version = _int(item.get("currentVersion"))
        if table is None or version is None:
            continue
        rows.append(Row(
            table=str(table), version=version, at_ms=_int(item.get("lastMigratedAt")) or 0,
            event=item.get("event"), description=item.get("description"), checksum=item.get("checksum"),
            duration_ms=_int(item.get("durationMs")), lance_version=_int(item.get("lanceVersion")),
            attempt=item.get("attempt"), detail=item.get("detail"), position=position,
        ))
    return rows


def _when(ms: int) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms else None


def records_by_version(rows: Sequence[Row]) -> dict[tuple[str, int], Row]:
    """The latest applied/stamped/adopted row of each (table, version), seed rows expanded."""
    found: dict[tuple[str, int], Row] = {}
    for row in sorted(rows, key=lambda r: r.key):
        if row.event is None:
            for version in range(1, row.version + 1):
                key = (row.table, version)
                if key not in found or found[key].event is None:
                    found[key] = replace(row, version=version)
        elif row.event in RECORD_EVENTS:
            found[(row.table, row.version)] = row
        elif row.event == EVENT_ROLLED_BACK:
            found.pop((row.table, row.version), None)
    return found


def starts(rows: Sequence[Row]) -> dict[str, int | None]:
    """Each run's Lance version from before it (None: no table yet), by attempt id, from the ``started`` rows."""
    return {row.attempt: row.lance_version for row in rows if row.event == EVENT_STARTED and row.attempt}


def before_migration(started: dict[str, int | None], record: Row) -> tuple[bool, int | None]:
    """(known, Lance version) of the table just before the run that ``record`` recorded; None: no table yet.

    Known only for a migration migrator ran (``started`` is :func:`starts`); stamped and adopted ones never ran.
    """
    if record.event != EVENT_APPLIED or not record.attempt or record.attempt not in started:
        return False, None
    return True, started[record.attempt]


def open_reverts(rows: Sequence[Row]) -> list[Row]:
    """``reverting`` rows with no ``rolled_back``/``failed`` row of their attempt, for versions still recorded."""
    records = records_by_version(rows)
    closed = {r.attempt for r in rows if r.attempt and r.event in (EVENT_ROLLED_BACK, EVENT_FAILED)}
    return [r for r in rows if r.event == EVENT_REVERTING and r.attempt not in closed
            and (r.table, r.version) in records]


def derive_applied(rows: Sequence[Row]) -> list[AppliedMigration]:
    """One AppliedMigration per applied version, oldest first."""
    ordered = sorted(records_by_version(rows).values(), key=lambda r: (r.key, r.table, r.version))
    started = starts(rows)
    return [
        AppliedMigration(
            version=row.version,
            name=row.description or "",
            line=row.table,
            checksum=row.checksum,
            applied_at=_when(row.at_ms),
            duration_ms=row.duration_ms,
            extra={"lance_version": row.lance_version, "event": row.event or EVENT_ADOPTED,
                   **({"adopted": True} if row.event in (None, EVENT_ADOPTED) else {})},
            irreversible=None if before_migration(started, row)[0] else why_irreversible(row),
        )
        for row in ordered
    ]


def was_run(record: AppliedMigration) -> bool:
    """Whether migrator ran this migration (and so stamped its table), rather than stamping or adopting it."""
    return record.extra.get("event") == EVENT_APPLIED


def recorded_lance_version(record: AppliedMigration) -> int | None:
    """The table's Lance version this record wrote (None: the table did not exist then, or it is not known)."""
    value = record.extra.get("lance_version")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def why_irreversible(row: Row) -> str:
    how = {EVENT_STAMPED: "was stamped, not run by migrator",
           EVENT_APPLIED: "was recorded without the Lance version it started from"}.get(
        row.event or "", "was adopted from the bookkeeping of an earlier tool")
    return f"{row.table} v{row.version} {how}: there is no state from before it to restore"


def open_intents(rows: Sequence[Row]) -> dict[tuple[str, int], Intent]:
    """Started migrations with no applied/failed row and no record of their version."""
    records = records_by_version(rows)
    closed = {r.attempt for r in rows if r.attempt and r.event in (EVENT_APPLIED, EVENT_FAILED)}
    latest: dict[tuple[str, int], Row] = {}
    for row in sorted(rows, key=lambda r: r.key):
        if row.event == EVENT_STARTED:
            latest[(row.table, row.version)] = row
    return {
        key: Intent(row.table, row.version, row.lance_version, row.attempt or "", row.at_ms)
        for key, row in latest.items()
        if key not in records and row.attempt not in closed
    }


def _row(migration: Migration, event: str, **fields: Any) -> Row:
    return Row(table=migration.line, version=migration.version, at_ms=now_ms(), event=event,
               description=migration.name, checksum=migration.checksum, **fields)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class Bookkeeping:
    """Reads and appends ``table_migrations`` rows; writes are serialised per process."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._ready = False

    def read(self, db: Any) -> list[Row] | None:
        """Every row, or None when the table does not exist (creates nothing)."""
        table = open_table(db, self.name)
        if table is None:
            return None
        names = set(table.schema.names)
        if not {"tableName", "currentVersion"} <= names:
            raise BackendUnavailable(
                f"{self.name} exists but has no tableName/currentVersion columns: it is not migrator's "
                "bookkeeping (set version_table to another name)")
        return parse(table.to_arrow().to_pylist())

    def ensure(self, db: Any) -> None:
        """Create the table, or add the history columns a seed table lacks (O(1), no rewrite)."""
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            table = open_table(db, self.name)
            wanted = schema()
            if table is None:
                try:
                    db.create_table(self.name, schema=wanted)
                except ValueError as exc:
                    if "already exists" not in str(exc):
                        raise
                    table = open_table(db, self.name)
            if table is not None:
                names = set(table.schema.names)
                if not {"tableName", "currentVersion"} <= names:
                    raise BackendUnavailable(
                        f"{self.name} exists but has no tableName/currentVersion columns: it is not migrator's "
                        "bookkeeping (set version_table to another name)")
                missing = [f for f in wanted if f.name not in names]
                if missing:
                    import pyarrow as pa

                    retry(lambda: table.add_columns(pa.schema(missing)), what="add bookkeeping columns")
            self._ready = True

    def append(self, db: Any, rows: Sequence[Row]) -> None:
        """One commit adding ``rows`` (retried on commit conflicts)."""
        if not rows:
            return
        import pyarrow as pa

        self.ensure(db)
        with self._lock:
            table = open_table(db, self.name)
            if table is None:
                raise BackendUnavailable(f"{self.name} disappeared while migrating")
            disk = table.schema
            records = [{k: v for k, v in row.record().items() if k in disk.names} for row in rows]
            data = pa.Table.from_pylist(records, schema=disk)
            retry(lambda: table.add(data), what=f"append to {self.name}")

    # -- the verbs: each writes its rows in one append commit and returns them --------------------------------

    def started(self, db: Any, migration: Migration, *, lance_version: int | None, attempt: str) -> Row:
        """The intent, before the function runs: the table's Lance version then (None: no table yet)."""
        return self._one(db, _row(migration, EVENT_STARTED, lance_version=lance_version, attempt=attempt))

    def applied(self, db: Any, migration: Migration, *, duration_ms: int, lance_version: int | None, attempt: str,
                detail: str | None = None) -> Row:
        """The migration's data and stamp are committed: the table's Lance version after it."""
        return self._one(db, _row(migration, EVENT_APPLIED, duration_ms=duration_ms, lance_version=lance_version,
                                  attempt=attempt, detail=detail))

    def failed(self, db: Any, migration: Migration, *, duration_ms: int, lance_version: int | None, attempt: str,
               detail: str) -> Row:
        """The migration raised (its table restored): the table's Lance version after the restore."""
        return self._one(db, _row(migration, EVENT_FAILED, duration_ms=duration_ms, lance_version=lance_version,
                                  attempt=attempt, detail=detail))

    def stamped(self, db: Any, stamps: Sequence[tuple[Migration, int | None]]) -> list[Row]:
        """Migrations recorded without running (``migrator stamp``), each with its table's Lance version."""
        rows = [_row(m, EVENT_STAMPED, lance_version=lance_version, detail="stamped without running")
                for m, lance_version in stamps]
        self.append(db, rows)
        return rows

    def reverting(self, db: Any, record: Row, *, lance_version: int | None, attempt: str, detail: str) -> Row:
        """A rollback's intent, before the restore: the table's Lance version then."""
        return self._one(db, Row(record.table, record.version, now_ms(), EVENT_REVERTING, record.description,
                                 record.checksum, lance_version=lance_version, attempt=attempt, detail=detail))

    def rolled_back(self, db: Any, record: Row, *, duration_ms: int, lance_version: int | None,
                    attempt: str) -> Row:
        """A rollback done: the table's Lance version after the restore (None: dropped)."""
        return self._one(db, Row(record.table, record.version, now_ms(), EVENT_ROLLED_BACK, record.description,
                                 record.checksum, duration_ms=duration_ms, lance_version=lance_version,
                                 attempt=attempt))

    def _one(self, db: Any, row: Row) -> Row:
        self.append(db, [row])
        return row

    def rechecksum(self, db: Any, checksums: dict[tuple[str, int], str]) -> int:
        """Append a copy of each version's current record with a new checksum (``validate --repair``).

        The copy keeps the record's time, so history order and ``applied_at``
        do not move; being later in the table it wins. Returns rows written.
        """
        records = records_by_version(self.read(db) or [])
        rows = []
        when = f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S}Z"
        for key, digest in checksums.items():
            current = records.get(key)
            if current is None:
                continue
            rows.append(replace(current, event=current.event or EVENT_ADOPTED, checksum=digest,
                                detail=f"checksum recorded by validate --repair at {when}"))
        self.append(db, rows)
        return len(rows)

    def forget(self, db: Any, table_name: str, versions: Sequence[int]) -> None:
        """Remove the rows of ``versions`` of one table (unstamp), expanding a seed row first if needed."""
        if not versions:
            return
        self.ensure(db)
        rows = self.read(db) or []
        seed = [r for r in rows if r.table == table_name and r.event is None]
        if seed:
            top = max(r.version for r in seed)
            explicit = {r.version for r in rows if r.table == table_name and r.event in RECORD_EVENTS}
            stamp_ms = max(r.at_ms for r in seed)
            self.append(db, [Row(table_name, v, stamp_ms, EVENT_ADOPTED, detail="adopted from the seed tool's row")
                             for v in range(1, top + 1) if v not in explicit])
        listed = ", ".join(str(int(v)) for v in sorted(set(versions)))
        predicate = f"tableName = {_quote(table_name)} AND (event IS NULL OR currentVersion IN ({listed}))"
        with self._lock:
            table = open_table(db, self.name)
            if table is None:
                return
            retry(lambda: table.delete(predicate), what=f"delete from {self.name}")
