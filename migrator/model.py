"""Plain data shared by the core and the adapters: migrations, applied records, statuses.

Nothing here touches a database or a file. A *line* is one independent version
line: a SQL database has one (the empty string ``""``); a LanceDB database has
one per table (the table's name).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from migrator.errors import MigrationFailed

DATABASE_LINE = ""


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True)
class Requirement:
    """What a migration needs from another backend's line: ``backend``'s ``line`` at ``version`` (or past it).

    ``line`` is ``""`` for a SQL backend, the table's name for a LanceDB backend.
    """

    backend: str
    line: str
    version: int

    @property
    def label(self) -> str:
        """``vectors.chunks_vec=2`` or ``sqlite=5``: the header form."""
        return f"{self.backend}.{self.line}={self.version}" if self.line else f"{self.backend}={self.version}"


@dataclass(frozen=True)
class Migration:
    """One step of one version line, as found on disk.

    ``payload`` is the adapter's own: what it needs to run the step (callables,
    SQL text). The core never looks inside it.
    """

    version: int
    name: str
    path: Path
    checksum: str
    line: str = DATABASE_LINE
    reversible: bool = True
    transactional: bool = True
    payload: Any = field(default=None, compare=False, repr=False)
    # the files ``checksum`` covers, one digest each in this order (empty: just ``path``)
    files: tuple[Path, ...] = ()
    # the checksum migrator 0.1 stored for the same bytes, when it had another form (a pair: sha256(up + down))
    legacy_checksum: str | None = field(default=None, compare=False, repr=False)
    # what it needs from other backends' lines (``requires``); the adapter parses its own declaration form
    requires: tuple[Requirement, ...] = field(default=(), compare=False)

    @property
    def label(self) -> str:
        """How messages name this migration: ``003_add_vector_support`` or ``memos v2 (add tags)``."""
        if self.line:
            return f"{self.line} v{self.version} ({self.name})"
        name = self.path.name
        for suffix in (".up.sql", ".down.sql", ".py"):
            if name.endswith(suffix):
                return name[: -len(suffix)]
        return name


@dataclass(frozen=True)
class AppliedMigration:
    """One row of the bookkeeping: a version a line really reached."""

    version: int
    name: str
    line: str = DATABASE_LINE
    checksum: str | None = None
    applied_at: datetime | None = None
    duration_ms: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)
    irreversible: str | None = field(default=None, compare=False)  # why this application cannot be undone
    # an adopted baseline: every version of the line up to ``version`` counts as applied (the bookkeeping of an
    # earlier tool said the line is there); one record however large the version, not one per version
    baseline: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class Issue:
    """Something ``validate`` reports. ``kind`` is one of the ``ISSUE_*`` constants."""

    kind: str
    message: str
    line: str = DATABASE_LINE
    version: int | None = None


ISSUE_CHANGED = "changed"          # an applied migration's file has a new checksum
ISSUE_MISSING = "missing"          # an applied version has no file any more
ISSUE_OUT_OF_ORDER = "out_of_order"  # a pending version lower than the newest applied one
ISSUE_UNKNOWN_LINE = "unknown_line"  # bookkeeping names a line no migration declares
ISSUE_DRIFT = "drift"              # the stored data disagrees with the bookkeeping (restored or dropped by hand)
ISSUE_INTERRUPTED = "interrupted"  # a step that runs outside a transaction started and never finished (SQL)

SETTLED_BY_STAMP = "stamp"      # an operator looks at the database and says with `migrator stamp` what state it is in
SETTLED_BY_UPGRADE = "upgrade"  # the next `migrator upgrade` settles it by itself (LanceDB's crash recovery)


@dataclass(frozen=True)
class InterruptedStep:
    """A step that started and never finished: its process died, or is still running it.

    SQL: the marker row a migration that runs outside a transaction commits before its body
    (``<version_table>_dirty``); it stays when the step fails or its process is killed, and
    ``migrator stamp`` clears it (``settled_by`` ``"stamp"``). LanceDB: a ``started`` row of
    ``table_migrations_history`` with no end, which the next ``upgrade`` settles (``"upgrade"``).
    ``running`` (the process is alive on this host) and ``message`` are filled in by the core, never by an adapter.
    """

    version: int
    name: str
    line: str = DATABASE_LINE
    direction: Direction = Direction.UP
    started_at: datetime | None = None
    host: str | None = None
    pid: int | None = None
    error: str | None = None  # the failure migrator caught (None: the process died, or still runs)
    settled_by: str = SETTLED_BY_STAMP
    running: bool = False
    message: str = ""  # the core's one sentence about it (``migrator.interruptions.describe``)


@dataclass(frozen=True)
class LineStatus:
    line: str
    current: int
    applied: tuple[AppliedMigration, ...]
    pending: tuple[Migration, ...]

    @property
    def latest(self) -> int:
        """The version the line would reach after ``upgrade``."""
        return max([self.current, *(m.version for m in self.pending)])


@dataclass(frozen=True)
class Waiting:
    """A pending migration and a requirement of it that the required line has not reached yet."""

    migration: Migration
    requirement: Requirement
    current: int  # the required line's version now


@dataclass(frozen=True)
class BackendStatus:
    backend: str
    type: str
    location: str  # masked URL or URI
    lines: tuple[LineStatus, ...]
    issues: tuple[Issue, ...] = ()
    per_table_lines: bool = False  # the adapter keeps one version line per table (Capabilities)
    waiting: tuple[Waiting, ...] = ()  # pending migrations whose requirements are not reached yet
    interrupted: tuple[InterruptedStep, ...] = ()  # steps that started and never finished (or are running)

    @property
    def pending_count(self) -> int:
        return sum(len(line.pending) for line in self.lines)

    def line(self, name: str = DATABASE_LINE) -> LineStatus | None:
        return next((s for s in self.lines if s.line == name), None)


@dataclass(frozen=True)
class Status:
    backends: tuple[BackendStatus, ...]

    def __getitem__(self, name: str) -> BackendStatus:
        for status in self.backends:
            if status.backend == name:
                return status
        raise KeyError(name)

    @property
    def pending_count(self) -> int:
        return sum(b.pending_count for b in self.backends)


@dataclass(frozen=True)
class StepResult:
    migration: Migration
    direction: Direction
    duration_ms: int


@dataclass
class RunResult:
    """What one ``upgrade`` / ``rollback`` did on one backend."""

    backend: str
    direction: Direction
    dry_run: bool = False
    steps: list[StepResult] = field(default_factory=list)
    planned: list[Migration] = field(default_factory=list)
    failures: list[tuple[Migration, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def raise_if_failed(self) -> None:
        """MigrationFailed naming the first failed migration (and how many more failed)."""
        if self.ok:
            return
        migration, message = self.failures[0]
        more = f" ({len(self.failures) - 1} more failed)" if len(self.failures) > 1 else ""
        raise MigrationFailed(f"{self.backend}: {message}{more}", backend=self.backend, line=migration.line,
                              version=migration.version)
