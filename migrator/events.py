"""What the runner reports while it works. The CLI renders these; the library may listen."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from migrator.model import Direction, Migration


@dataclass(frozen=True)
class PlanReady:
    backend: str
    direction: Direction
    migrations: Sequence[Migration]
    dry_run: bool


@dataclass(frozen=True)
class BackendProgress:
    """A line from the adapter about the backend as a whole (the backup's progress), not about one migration."""

    backend: str
    message: str


@dataclass(frozen=True)
class BackupTaken:
    backend: str
    location: str


@dataclass(frozen=True)
class MigrationStarted:
    backend: str
    migration: Migration
    direction: Direction


@dataclass(frozen=True)
class MigrationProgress:
    backend: str
    migration: Migration
    message: str


@dataclass(frozen=True)
class MigrationDone:
    backend: str
    migration: Migration
    direction: Direction
    duration_ms: int


@dataclass(frozen=True)
class MigrationFailedEvent:
    backend: str
    migration: Migration
    direction: Direction
    error: str


@dataclass(frozen=True)
class LineSkipped:
    """A line not run because an earlier failure stopped the run (``--fail-fast``)."""

    backend: str
    line: str
    reason: str


@dataclass(frozen=True)
class SeedsReady:
    """``migrator seed``: the seeds of one backend, loaded, about to run (or, with ``dry_run``, that would)."""

    backend: str
    seeds: Sequence[str]        # their labels, in the order they run
    dry_run: bool


@dataclass(frozen=True)
class SeedDone:
    """One seed loaded (SQL: sent once the one transaction of every seed committed)."""

    backend: str
    seed: str
    detail: str


Event = (
    PlanReady | BackendProgress | BackupTaken | MigrationStarted | MigrationProgress | MigrationDone
    | MigrationFailedEvent | LineSkipped | SeedsReady | SeedDone
)
Listener = Callable[[Event], None]


def ignore(event: Event) -> None:
    """The default listener: the library is silent unless asked."""
