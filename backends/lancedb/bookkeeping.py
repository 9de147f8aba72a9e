"""The bookkeeping of a LanceDB database: ``table_migrations`` (the seed's shape) and its history table.

``table_migrations`` (the configured ``version_table``) is exactly the seed
document's ``TableMigrationRecord``, one row per table::

    tableName       string   the migrated table (the version line), unique
    currentVersion  int64    the version the table really is at
    lastMigratedAt  int64    ms since the epoch: when the table reached it

``<version_table>_history`` (``table_migrations_history``) holds everything
else, one row per event, appended and never updated or deleted::

    tableName       string   the table the event is about
    version         int64    the migration version the event is about
    recordedAt      int64    when the event was written, ms since the epoch
    event           string   applied | stamped | adopted | baseline | unstamped | started | failed | reverting |
                             rolled_back | synced
    description     string   the migration's description
    checksum        string   sha256 of the migration file (null for adopted versions)
    durationMs      int64    how long the migration ran
    lanceVersion    int64    applied/stamped: the table's Lance version after the migration
                             (``table.restore(lanceVersion)`` returns to the state after it);
                             started: the table's Lance version before it (null: no table yet);
                             reverting: before the rollback; rolled_back: after it (null: dropped)
    attempt         string   id linking a ``started`` row to its ``applied`` / ``failed`` row
    detail          string   why it failed, or how it was completed (recovered after a crash)

The history is the truth migrator acts on; it is replayed in the order it was
written (:func:`replay`): ``applied``/``stamped`` record a version,
``rolled_back``/``unstamped`` remove one (nothing is deleted: a ``stamp`` that
lowers a table is two events), ``adopted`` raises the table's *baseline* (every
version up to it counts as applied, without checksums: the bookkeeping of an
earlier tool), ``baseline`` sets it (an unstamp below an adopted baseline).
``started``/``failed``/``reverting`` are intents and outcomes the crash
recovery reads; ``synced`` notes that a ``table_migrations`` row another tool
wrote agrees with the history.

Write order for every change of a table's version: the data commit carries
the table's stamp (schema metadata); then the history append (one commit, only
adds rows: conflict-safe against any other writer, and the parallel line
threads of this process are serialised by a lock anyway); then the
``table_migrations`` row, written as one overwrite of that small table that
commits only on the version it read (a guarded commit: when another writer —
the seed's TypeScript tool — committed in between, it is re-read and
re-computed). A reader therefore never sees two rows for a table migrator
wrote, nor a half-written row; after a crash between the history and the row,
the row is one step behind and the next run that takes the lock repairs it
(:meth:`Bookkeeping.sync`).

Other writers of ``table_migrations``: a row whose ``lastMigratedAt`` is the
time of no history event of its table was written by someone else (the seed's
TypeScript tool: it deletes a table's row and adds the new one). Its version
is taken as the truth: above migrator's, it is adopted as the table's new
baseline; below, the table is lowered to it; equal, it is acknowledged. Readers
apply this in memory (:func:`foreign_events`); the next run under the lock
writes those events to the history, so nothing of either tool is lost.

A database written by migrator 0.1 (one event-log table ``table_migrations``
with the seed's columns plus the history columns) is converted on its first
run under the lock: see :mod:`.legacy`.

The history table can be compacted: the next run under the lock calls
``optimize()`` on it once it has :data:`COMPACT_FRAGMENTS` fragments or more (one
fragment per append); ``db.open_table("table_migrations_history").optimize()``
does the same by hand.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from migrator.errors import BackendUnavailable
from migrator.model import AppliedMigration, Migration

from .common import open_table, retry
from .guard import overwrite

EVENT_APPLIED = "applied"
EVENT_STAMPED = "stamped"
EVENT_ADOPTED = "adopted"
EVENT_BASELINE = "baseline"
EVENT_UNSTAMPED = "unstamped"
EVENT_STARTED = "started"
EVENT_FAILED = "failed"
EVENT_REVERTING = "reverting"
EVENT_ROLLED_BACK = "rolled_back"
EVENT_SYNCED = "synced"
RECORD_EVENTS = frozenset({EVENT_APPLIED, EVENT_STAMPED})
STATE_EVENTS = frozenset({EVENT_APPLIED, EVENT_STAMPED, EVENT_ADOPTED, EVENT_BASELINE, EVENT_UNSTAMPED,
                          EVENT_ROLLED_BACK})

SEED_COLUMNS = ("tableName", "currentVersion", "lastMigratedAt")
HISTORY_COLUMNS = ("tableName", "version", "recordedAt", "event", "description", "checksum", "durationMs",
                   "lanceVersion", "attempt", "detail")
_STRING = ("tableName", "event", "description", "checksum", "attempt", "detail")
COMPACT_FRAGMENTS = 64
GUARD_ATTEMPTS = 20


def seed_schema() -> Any:
    import pyarrow as pa

    return pa.schema([pa.field("tableName", pa.string()), pa.field("currentVersion", pa.int64()),
                      pa.field("lastMigratedAt", pa.int64())])


def history_schema() -> Any:
    import pyarrow as pa

    return pa.schema([pa.field(name, pa.string() if name in _STRING else pa.int64(), nullable=True)
                      for name in HISTORY_COLUMNS])


def history_name(version_table: str) -> str:
    """The history table's name: ``<version_table>_history``."""
    return f"{version_table}_history"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Row:
    """One event of the history table."""

    table: str
    version: int
    at_ms: int
    event: str
    description: str | None = None
    checksum: str | None = None
    duration_ms: int | None = None
    lance_version: int | None = None
    attempt: str | None = None
    detail: str | None = None
    position: int = 0                 # order in the history (the order it was written)

    def record(self) -> dict[str, Any]:
        return {
            "tableName": self.table, "version": self.version, "recordedAt": self.at_ms, "event": self.event,
            "description": self.description, "checksum": self.checksum, "durationMs": self.duration_ms,
            "lanceVersion": self.lance_version, "attempt": self.attempt, "detail": self.detail,
        }

    @property
    def key(self) -> tuple[int, int]:
        return (self.at_ms, self.position)


@dataclass(frozen=True)
class SeedRow:
    """One row of ``table_migrations`` as the seed defines it; ``extra`` keeps columns another tool added."""

    table: str
    version: int
    at_ms: int
    extra: tuple[tuple[str, Any], ...] = ()

    def record(self) -> dict[str, Any]:
        return {**dict(self.extra), "tableName": self.table, "currentVersion": self.version,
                "lastMigratedAt": self.at_ms}


@dataclass(frozen=True)
class Intent:
    """A migration that started and never finished (its process died)."""

    table: str
    version: int
    start_version: int | None
    attempt: str
    at_ms: int


@dataclass
class Line:
    """One table's state, replayed from the history."""

    baseline: Row | None = None                              # adopted: every version up to it counts as applied
    records: dict[int, Row] = field(default_factory=dict)    # versions recorded one by one
    changed: Row | None = None                               # the last event that changed the state

    @property
    def current(self) -> int:
        return max([self.baseline.version if self.baseline else 0, *self.records])

    def covers(self, version: int) -> bool:
        return version in self.records or (self.baseline is not None and 0 < version <= self.baseline.version)


def as_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def parse(records: Iterable[dict[str, Any]], start: int = 0) -> list[Row]:
    """History rows from the history table's records (positions from ``start``)."""
    rows = []
    for position, item in enumerate(records, start):
        table, version, event = item.get("tableName"), as_int(item.get("version")), item.get("event")
        if table is None or version is None or not event:
            continue
        rows.append(Row(
            table=str(table), version=version, at_ms=as_int(item.get("recordedAt")) or 0, event=str(event),
            description=item.get("description"), checksum=item.get("checksum"),
            duration_ms=as_int(item.get("durationMs")), lance_version=as_int(item.get("lanceVersion")),
            attempt=item.get("attempt"), detail=item.get("detail"), position=position,
        ))
    return rows


def parse_seed(records: Iterable[dict[str, Any]]) -> list[SeedRow]:
    rows = []
    for item in records:
        table, version = item.get("tableName"), as_int(item.get("currentVersion"))
        if table is None or version is None:
            continue
        extra = tuple((k, v) for k, v in item.items() if k not in SEED_COLUMNS)
        rows.append(SeedRow(str(table), version, as_int(item.get("lastMigratedAt")) or 0, extra))
    return rows


# -- pure derivations ------------------------------------------------------------------------------------------------


def appended(rows: Sequence[Row], more: Iterable[Row]) -> list[Row]:
    """``rows`` then ``more``, positioned after them (events made in memory, not written yet)."""
    start = max((r.position for r in rows), default=-1) + 1
    return [*rows, *(replace(row, position=start + i) for i, row in enumerate(more))]


def replay(rows: Sequence[Row]) -> dict[str, Line]:
    """Each table's state after the events, in the order they were written."""
    lines: dict[str, Line] = {}
    for row in sorted(rows, key=lambda r: r.position):
        if row.event not in STATE_EVENTS:
            continue
        line = lines.setdefault(row.table, Line())
        if row.event in RECORD_EVENTS:
            line.records[row.version] = row
        elif row.event == EVENT_ADOPTED:
            if line.baseline is not None and row.version <= line.baseline.version:
                continue
            line.baseline = row
        elif row.event == EVENT_BASELINE:
            line.baseline = row if row.version > 0 else None
        else:  # rolled_back, unstamped
            line.records.pop(row.version, None)
        line.changed = row
    return lines


def shown(seeds: Sequence[SeedRow]) -> dict[str, SeedRow]:
    """The row a seed-shaped reader takes for each table (two rows for one table: the latest written)."""
    found: dict[str, SeedRow] = {}
    for seed in seeds:
        best = found.get(seed.table)
        if best is None or (seed.at_ms, seed.version) > (best.at_ms, best.version):
            found[seed.table] = seed
    return found


def foreign_events(rows: Sequence[Row], seeds: Sequence[SeedRow]) -> list[Row]:
    """Events that take in the ``table_migrations`` rows another tool wrote (see the module docstring); pure."""
    own = {(r.table, r.at_ms) for r in rows}
    lines = replay(rows)
    events: list[Row] = []
    position = max((r.position for r in rows), default=-1) + 1
    for seed in sorted(shown(seeds).values(), key=lambda s: s.table):
        if (seed.table, seed.at_ms) in own:
            continue  # migrator's own row (perhaps one step behind after a crash: the history wins)
        line = lines.get(seed.table, Line())
        word = f"table_migrations says v{seed.version} (written by another tool)"
        made: list[Row] = []
        if seed.version > line.current:
            made.append(Row(seed.table, seed.version, seed.at_ms, EVENT_ADOPTED,
                            detail=f"{word}: adopted as the baseline"))
        elif seed.version < line.current:
            made.extend(Row(seed.table, v, seed.at_ms, EVENT_UNSTAMPED, r.description, r.checksum,
                            detail=f"{word}: no longer applied")
                        for v, r in sorted(line.records.items()) if v > seed.version)
            if line.baseline is not None and line.baseline.version > seed.version:
                made.append(Row(seed.table, seed.version, seed.at_ms, EVENT_BASELINE,
                                detail=f"{word}: baseline lowered"))
        else:
            made.append(Row(seed.table, seed.version, seed.at_ms, EVENT_SYNCED, detail=f"{word}: agrees"))
        for row in made:
            events.append(replace(row, position=position))
            position += 1
    return events


def wanted_rows(rows: Sequence[Row], seeds: Sequence[SeedRow]) -> list[SeedRow]:
    """``table_migrations`` as it should be: one row per table, the history's version (other tables' rows kept)."""
    lines = replay(rows)
    current = shown(seeds)
    wanted: list[SeedRow] = []
    for table in sorted(set(lines) | set(current)):
        line, seed = lines.get(table), current.get(table)
        if line is None or line.changed is None:
            assert seed is not None
            wanted.append(seed)
            continue
        if seed is None and line.current == 0:
            continue  # never reached a version: no row, as before its first migration
        if seed is not None and seed.version == line.current:
            wanted.append(seed)
            continue
        wanted.append(SeedRow(table, line.current, line.changed.at_ms, seed.extra if seed is not None else ()))
    return wanted


def records_by_version(rows: Sequence[Row]) -> dict[tuple[str, int], Row]:
    """Each table's recorded versions and its adopted baseline (at its own version), by (table, version)."""
    found: dict[tuple[str, int], Row] = {}
    for table, line in replay(rows).items():
        if line.baseline is not None:
            found[(table, line.baseline.version)] = line.baseline
        for version, row in line.records.items():
            found[(table, version)] = row
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
    lines = replay(rows)
    closed = {r.attempt for r in rows if r.attempt and r.event in (EVENT_ROLLED_BACK, EVENT_FAILED)}
    return [r for r in rows if r.event == EVENT_REVERTING and r.attempt not in closed
            and r.table in lines and r.version in lines[r.table].records]


def derive_applied(rows: Sequence[Row]) -> list[AppliedMigration]:
    """One AppliedMigration per recorded version, and one per adopted baseline (not one per version it covers)."""
    started = starts(rows)
    found: list[tuple[Row, AppliedMigration]] = []
    for table, line in replay(rows).items():
        if line.baseline is not None:
            row = line.baseline
            found.append((row, AppliedMigration(
                version=row.version, name=row.description or "", line=table, checksum=None,
                applied_at=_when(row.at_ms), duration_ms=None,
                extra={"lance_version": row.lance_version, "event": EVENT_ADOPTED, "adopted": True, "baseline": True},
                irreversible=why_irreversible(row), baseline=True)))
        for row in line.records.values():
            found.append((row, AppliedMigration(
                version=row.version, name=row.description or "", line=table, checksum=row.checksum,
                applied_at=_when(row.at_ms), duration_ms=row.duration_ms,
                extra={"lance_version": row.lance_version, "event": row.event},
                irreversible=None if before_migration(started, row)[0] else why_irreversible(row))))
    found.sort(key=lambda pair: (pair[0].key, pair[1].line, pair[1].version))
    return [applied for _, applied in found]


def _when(ms: int) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms else None


def was_run(record: AppliedMigration) -> bool:
    """Whether migrator ran this migration (and so stamped its table), rather than stamping or adopting it."""
    return record.extra.get("event") == EVENT_APPLIED


def is_adopted(record: AppliedMigration | None) -> bool:
    """Whether this record was taken from another tool's bookkeeping (which writes no stamp into the table)."""
    return record is not None and record.extra.get("event") == EVENT_ADOPTED


def recorded_lance_version(record: AppliedMigration) -> int | None:
    """The table's Lance version this record wrote (None: the table did not exist then, or it is not known)."""
    value = record.extra.get("lance_version")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def why_irreversible(row: Row) -> str:
    how = {EVENT_STAMPED: "was stamped, not run by migrator",
           EVENT_APPLIED: "was recorded without the Lance version it started from"}.get(
        row.event, "was adopted from the bookkeeping of an earlier tool")
    return f"{row.table} v{row.version} {how}: there is no state from before it to restore"


def open_intents(rows: Sequence[Row]) -> dict[tuple[str, int], Intent]:
    """Started migrations with no applied/failed row and no record of their version."""
    lines = replay(rows)
    closed = {r.attempt for r in rows if r.attempt and r.event in (EVENT_APPLIED, EVENT_FAILED)}
    latest: dict[tuple[str, int], Row] = {}
    for row in sorted(rows, key=lambda r: r.position):
        if row.event == EVENT_STARTED:
            latest[(row.table, row.version)] = row
    return {
        key: Intent(row.table, row.version, row.lance_version, row.attempt or "", row.at_ms)
        for key, row in latest.items()
        if not (key[0] in lines and lines[key[0]].covers(key[1])) and row.attempt not in closed
    }


def _row(migration: Migration, event: str, **fields: Any) -> Row:
    return Row(table=migration.line, version=migration.version, at_ms=now_ms(), event=event,
               description=migration.name, checksum=migration.checksum, **fields)


def _not_ours(name: str) -> BackendUnavailable:
    return BackendUnavailable(f"{name} exists but has no tableName/currentVersion columns: it is not migrator's "
                              "bookkeeping (set version_table to another name)")


class Bookkeeping:
    """Reads and writes the two bookkeeping tables; writes are serialised per process."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.history = history_name(name)
        self._lock = threading.RLock()
        self._ready = False

    # -- reading ---------------------------------------------------------------------------------------------------

    def read(self, db: Any) -> list[Row] | None:
        """The history as migrator acts on it, other tools' ``table_migrations`` rows taken in (creates nothing).

        None when neither table exists.
        """
        snapshot = self._snapshot(db)
        if snapshot is None:
            return None
        rows, seeds = snapshot
        return appended(rows, foreign_events(rows, seeds))

    def seeds(self, db: Any) -> list[SeedRow]:
        """``table_migrations`` as a seed-shaped reader sees it."""
        snapshot = self._snapshot(db)
        return [] if snapshot is None else snapshot[1]

    def _snapshot(self, db: Any) -> tuple[list[Row], list[SeedRow]] | None:
        from .legacy import is_legacy, legacy_rows

        table = open_table(db, self.name)
        history = open_table(db, self.history)
        if table is None and history is None:
            return None
        rows = parse(history.to_arrow().to_pylist()) if history is not None else []
        if table is None:
            return rows, []
        names = set(table.schema.names)
        if not {"tableName", "currentVersion"} <= names:
            raise _not_ours(self.name)
        records = table.to_arrow().to_pylist()
        if is_legacy(names):  # migrator 0.1's event log, not converted yet: convert it in memory
            old = legacy_rows(records)
            return (rows if len(rows) >= len(old) else old), []
        return rows, parse_seed(records)

    # -- creating and converting -------------------------------------------------------------------------------------

    def ensure(self, db: Any) -> None:
        """Create both tables if missing; convert a 0.1 event log (:mod:`.legacy`). Run under the migration lock."""
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            from .legacy import convert, is_legacy

            self._create(db, self.history, history_schema())
            table = open_table(db, self.name)
            if table is None:
                self._create(db, self.name, seed_schema())
            elif not {"tableName", "currentVersion"} <= set(table.schema.names):
                raise _not_ours(self.name)
            elif is_legacy(set(table.schema.names)):
                convert(db, self)
            self._ready = True

    @staticmethod
    def _create(db: Any, name: str, schema: Any) -> Any:
        table = open_table(db, name)
        if table is not None:
            return table
        try:
            return db.create_table(name, schema=schema)
        except (ValueError, OSError) as exc:
            if "already exists" not in str(exc):
                raise
            return open_table(db, name)

    # -- writing ---------------------------------------------------------------------------------------------------

    def append(self, db: Any, rows: Sequence[Row]) -> None:
        """One history commit adding ``rows`` (retried on commit conflicts), then ``table_migrations`` follows."""
        if not rows:
            return
        self.ensure(db)
        with self._lock:
            self.add_events(db, rows)
            changed = {r.table for r in rows if r.event in STATE_EVENTS}
            if changed:  # intents (started, reverting) and failures change no version: no row to write
                self.sync(db, changed)

    def add_events(self, db: Any, rows: Sequence[Row]) -> None:
        """One history commit adding ``rows``, nothing else (the conversion's copy; :meth:`append` for changes)."""
        import pyarrow as pa

        history = open_table(db, self.history)
        if history is None:
            raise BackendUnavailable(f"{self.history} disappeared while migrating")
        disk = history.schema
        data = pa.Table.from_pylist([{k: v for k, v in r.record().items() if k in disk.names} for r in rows],
                                    schema=disk)
        retry(lambda: history.add(data), what=f"append to {self.history}")

    def sync(self, db: Any, tables: set[str] | None = None) -> None:
        """Take in other tools' rows (history events), then make ``table_migrations`` say the history's versions.

        ``tables``: the tables whose rows may be behind (None: all). The row
        write is one overwrite committed only on the version read; when another
        writer committed meanwhile, it is read again and recomputed.
        """
        with self._lock:
            for _ in range(GUARD_ATTEMPTS):
                table = open_table(db, self.name)
                history = open_table(db, self.history)
                if table is None or history is None:
                    return
                dataset = table.to_lance()
                seeds = parse_seed(dataset.to_table().to_pylist())
                rows = parse(history.to_arrow().to_pylist())
                news = foreign_events(rows, seeds)
                if news:
                    self.add_events(db, news)
                    continue  # read again: the history now holds them
                wanted = wanted_rows(rows, seeds)
                if not _differs(seeds, wanted, tables):
                    return
                if self._overwrite(dataset, [s.record() for s in _keep(seeds, wanted, tables)]):
                    return
            raise BackendUnavailable(f"{self.name} kept changing under another writer; gave up updating it after "
                                     f"{GUARD_ATTEMPTS} attempts (the next run repairs it from {self.history})")

    def _overwrite(self, dataset: Any, records: list[dict[str, Any]]) -> bool:
        """Replace ``table_migrations``'s rows in one commit, only if nobody committed since ``dataset`` was read."""
        import pyarrow as pa

        schema = dataset.schema
        data = pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in records], schema=schema)
        return overwrite(dataset, data)

    def compact(self, db: Any) -> bool:
        """``optimize()`` the history table once it has :data:`COMPACT_FRAGMENTS` fragments; True if it did."""
        history = open_table(db, self.history)
        if history is None or len(history.to_lance().get_fragments()) < COMPACT_FRAGMENTS:
            return False
        with self._lock:
            history.optimize()
        return True

    # -- the verbs: each writes its events in one history commit and returns them ----------------------------------

    def started(self, db: Any, migration: Migration, *, lance_version: int | None, attempt: str) -> Row:
        """The intent, before the function runs: the table's Lance version then (None: no table yet).

        Its ``detail`` names the process (``pid N on HOST``): ``status`` tells a running step from an interrupted one.
        """
        from .interrupted import started_detail

        return self._one(db, _row(migration, EVENT_STARTED, lance_version=lance_version, attempt=attempt,
                                  detail=started_detail()))

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

        The copy keeps the record's time, so ``applied_at`` does not move; being
        later in the history it wins. Adopted versions have no checksum to
        correct. Returns rows written.
        """
        lines = replay(self.read(db) or [])
        rows = []
        when = f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S}Z"
        for (table, version), digest in checksums.items():
            current = lines[table].records.get(version) if table in lines else None
            if current is None:
                continue
            rows.append(replace(current, checksum=digest, detail=f"checksum recorded by validate --repair at {when}"))
        self.append(db, rows)
        return len(rows)

    def forget(self, db: Any, migrations: Sequence[Migration], *, below: Callable[[str, int], int]) -> list[Row]:
        """``unstamped`` events for ``migrations`` (one commit; nothing is deleted).

        A version under a table's adopted baseline lowers the baseline to
        ``below(table, lowest unstamped version)``: the highest version of a
        migration file under it (0: none), so the table lands on a version
        that exists.
        """
        if not migrations:
            return []
        self.ensure(db)
        lines = replay(self.read(db) or [])
        when = now_ms()
        rows = [Row(m.line, m.version, when, EVENT_UNSTAMPED, m.name, m.checksum, detail="unstamped (migrator stamp)")
                for m in migrations]
        for table in sorted({m.line for m in migrations}):
            line = lines.get(table)
            lowest = min(m.version for m in migrations if m.line == table)
            if line is not None and line.baseline is not None and line.baseline.version >= lowest:
                to = below(table, lowest)
                rows.append(Row(table, to, when, EVENT_BASELINE,
                                detail=f"adopted baseline lowered from v{line.baseline.version} (migrator stamp)"))
        self.append(db, rows)
        return rows


def _differs(seeds: Sequence[SeedRow], wanted: Sequence[SeedRow], tables: set[str] | None) -> bool:
    return _keep(seeds, wanted, tables) != list(seeds)


def _keep(seeds: Sequence[SeedRow], wanted: Sequence[SeedRow], tables: set[str] | None) -> list[SeedRow]:
    """The rows to write: ``wanted`` for ``tables`` (all: None), the rows as they are for every other table.

    Duplicate rows of a table being written collapse into one; other tables' rows are left exactly as found.
    """
    target = {s.table: s for s in wanted if tables is None or s.table in tables}
    out: list[SeedRow] = []
    done: set[str] = set()
    for seed in seeds:
        if seed.table not in target:
            out.append(seed)
        elif seed.table not in done:
            out.append(target[seed.table])
            done.add(seed.table)
    out.extend(row for table, row in sorted(target.items()) if table not in done)
    return out
