"""Execute plans against one backend: lock, read the bookkeeping, plan, apply, emit events.

The runner never prints. It asks the adapter (``migrator.backends.base.Backend``)
for files and bookkeeping, lets :mod:`migrator.plan` decide, and applies the
steps one by one — independent lines (LanceDB tables) in parallel threads when
the adapter allows it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import NamedTuple, TypeVar

from migrator import checksums, interruptions, logsink, targets
from migrator import plan as planning
from migrator.backends.base import Backend
from migrator.errors import LockLost, MigrationFailed, UsageError
from migrator.events import (
    BackendProgress,
    BackupTaken,
    Event,
    LineSkipped,
    Listener,
    MigrationDone,
    MigrationFailedEvent,
    MigrationProgress,
    MigrationStarted,
    PlanReady,
    ignore,
)
from migrator.model import (
    SETTLED_BY_STAMP,
    AppliedMigration,
    BackendStatus,
    Direction,
    InterruptedStep,
    Issue,
    Migration,
    RunResult,
    StepResult,
)
from migrator.targets import Target

T = TypeVar("T")


class Stamped(NamedTuple):
    """What ``stamp`` did: versions recorded, versions unrecorded, interrupted markers cleared."""

    recorded: list[Migration]
    unrecorded: list[Migration]
    cleared: list[InterruptedStep]


class Repaired(NamedTuple):
    """A checksum ``validate --repair`` recorded anew, and the file(s) it names."""

    migration: Migration
    files: str


def default_jobs() -> int:
    """Parallel lines by default: the cores this process may use, at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


class Runner:
    def __init__(self, backend: Backend, listener: Listener = ignore, *, lock_timeout: float = 60.0) -> None:
        self.backend = backend
        self.lock_timeout = lock_timeout
        self._listener = listener
        self._emit_lock = threading.Lock()

    # -- reading -------------------------------------------------------------------------------------------------

    def status(self) -> BackendStatus:
        migrations = self.backend.discover()
        applied = self.backend.applied()
        interrupted = interruptions.observed(self.backend.name, self.backend.interrupted(), migrations, applied)
        return BackendStatus(
            backend=self.backend.name,
            type=self.backend.type,
            location=self.backend.location,
            lines=tuple(planning.line_statuses(migrations, applied)),
            issues=tuple(self._issues(migrations, applied, interrupted)),
            per_table_lines=self.backend.capabilities.per_table_lines,
            interrupted=interrupted,
        )

    def history(self) -> list[AppliedMigration]:
        return sorted(self.backend.applied(), key=lambda r: (r.applied_at is None, r.applied_at, r.line, r.version))

    def validate(self) -> list[Issue]:
        migrations, applied = self.backend.discover(), self.backend.applied()
        return self._issues(migrations, applied,
                            interruptions.observed(self.backend.name, self.backend.interrupted(), migrations, applied))

    def _issues(self, migrations: Sequence[Migration], applied: Sequence[AppliedMigration],
                interrupted: Sequence[InterruptedStep]) -> list[Issue]:
        """The files' issues (:func:`planning.validate`), the adapter's drift of the stored data, and the
        interrupted steps an operator must settle (not those still running)."""
        issues = [*planning.validate(migrations, applied), *self.backend.drift(migrations, applied),
                  *interruptions.issues(interrupted)]
        return sorted(issues, key=lambda i: (i.line, i.version or 0, i.kind))

    # -- changing ------------------------------------------------------------------------------------------------

    def upgrade(
        self,
        *,
        to: int | str | Target | None = None,
        line: str | None = None,
        dry_run: bool = False,
        allow_changed: bool = False,
        allow_out_of_order: bool = False,
        jobs: int | None = None,
        fail_fast: bool = False,
        backup: bool = False,
        migrations: Sequence[Migration] | None = None,
    ) -> RunResult:
        """``migrations``: what ``discover`` returned, when the caller already asked (not asked twice)."""
        goal = targets.upgrade_target(to)
        migrations = self.backend.discover() if migrations is None else migrations
        self._check_line(migrations, line)

        def make_plan(applied: Sequence[AppliedMigration]) -> list[Migration]:
            self.refuse_interrupted(migrations, applied, "upgrade")
            planning.refuse_drift(self.backend.drift(migrations, applied), line=line, backend=self.backend.name)
            return planning.upgrade_plan(migrations, applied, to=goal, line=line, allow_changed=allow_changed,
                                         allow_out_of_order=allow_out_of_order, backend=self.backend.name)

        return self._run(Direction.UP, make_plan, dry_run=dry_run, jobs=jobs, fail_fast=fail_fast, backup=backup)

    def rollback(self, target: int | str | Target, *, line: str | None = None, dry_run: bool = False,
                 backup: bool = False, migrations: Sequence[Migration] | None = None) -> RunResult:
        """``migrations``: the declared migrations, when they do not come from ``discover`` (a list in code)."""
        goal = targets.rollback_target(target)
        if not self.backend.capabilities.reversible:
            raise UsageError(f"{self.backend.name}: {self.backend.type} backends cannot roll back")
        migrations = self.backend.discover() if migrations is None else migrations
        self._check_line(migrations, line)

        def make_plan(applied: Sequence[AppliedMigration]) -> list[Migration]:
            self.refuse_interrupted(migrations, applied, "rollback")
            return planning.rollback_plan(migrations, applied, goal, line=line, backend=self.backend.name)

        return self._run(Direction.DOWN, make_plan, dry_run=dry_run, jobs=1, fail_fast=True, backup=backup)

    def stamp(self, version: int, *, line: str | None = None) -> Stamped:
        """Record exactly the versions up to ``version`` as applied, running nothing.

        Clears the interrupted markers ``stamp`` settles (the operator has said what state the database is in).
        """
        migrations = self.backend.discover()
        self._check_line(migrations, line)
        if self.backend.capabilities.per_table_lines and line is None:
            raise UsageError(f"{self.backend.name}: stamp on a {self.backend.type} backend needs --table")
        with self.lock():
            self.backend.prepare()
            record, unrecord = planning.stamp_plan(migrations, self.backend.applied(), version, line=line,
                                                   backend=self.backend.name)
            cleared = [step for step in self.backend.interrupted() if step.settled_by == SETTLED_BY_STAMP]
            if unrecord:
                self.backend.unstamp(unrecord)
            if record or (cleared and not unrecord):
                self.backend.stamp(record)
        return Stamped(record, unrecord, cleared)

    def refuse_interrupted(self, migrations: Sequence[Migration], applied: Sequence[AppliedMigration],
                           doing: str) -> None:
        """Under the lock: InterruptedMigration while a step that ran outside a transaction is left marked."""
        interruptions.refuse(self.backend.name, self.backend.interrupted(), migrations, applied, doing=doing)

    def repair(self) -> list[Repaired]:
        """Record the current checksums of applied files that were edited on purpose.

        Checksums stored by migrator 0.1 in an older form (a pair's combined digest) are rewritten in the current
        form too, so that a later edit names the file that changed.
        """
        with self.lock():
            migrations = {(m.line, m.version): m for m in self.backend.discover()}
            repaired: list[Repaired] = []
            for record in self.backend.applied():
                migration = migrations.get((record.line, record.version))
                if migration is None or not record.checksum or record.checksum == migration.checksum:
                    continue
                if checksums.matches(record.checksum, migration):  # the 0.1 form of the same bytes
                    files = " and ".join(path.name for path in migration.files or (migration.path,))
                else:
                    files = checksums.change(record.checksum, migration).files
                repaired.append(Repaired(migration, files))
            if repaired:
                self.backend.record_checksums([r.migration for r in repaired])
        return repaired

    # -- internals -----------------------------------------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        """Log the event (:mod:`migrator.logsink`) and tell the listener; a listener that fails (a closed stdout
        pipe) is dropped, the run goes on."""
        with self._emit_lock:
            # a broken logging filter never stops a migration (no suppress(): a context object per event)
            try:  # noqa: SIM105
                logsink.log_event(event)
            except Exception:
                pass
            try:
                self._listener(event)
            except (Exception, SystemExit):
                self._listener = ignore

    def _check_line(self, migrations: Sequence[Migration], line: str | None) -> None:
        if line is None:
            return
        if not self.backend.capabilities.per_table_lines:
            raise UsageError(f"{self.backend.name}: --table applies to LanceDB backends only")
        if not any(m.line == line for m in migrations):
            raise UsageError(f"{self.backend.name}: no migration declares table {line!r}")

    def _run(
        self,
        direction: Direction,
        make_plan: Callable[[Sequence[AppliedMigration]], list[Migration]],
        *,
        dry_run: bool,
        jobs: int | None,
        fail_fast: bool,
        backup: bool,
    ) -> RunResult:
        result = RunResult(backend=self.backend.name, direction=direction, dry_run=dry_run)
        # A dry run walks the real run's path (lock, fresh bookkeeping, plan, load, refusals) and stops before the
        # first change, so it refuses whatever the real run would refuse. It skips the lock only where taking it
        # would create the database (nothing recorded yet, so no run of this database can be half-way).
        needs_lock = not dry_run or bool(self.backend.applied())
        locking: AbstractContextManager[None] = self.lock() if needs_lock else nullcontext()
        with locking:
            applied = self.backend.applied()  # re-read under the lock: another process may have moved on
            steps = make_plan(applied)
            if steps:
                steps = list(self.backend.load(steps))
                if direction is Direction.DOWN:
                    planning.check_reversible(steps, self.backend.name, applied)
                self.backend.check_plan(steps, direction, backup=backup)
            result.planned = steps
            if dry_run:
                self._emit(PlanReady(self.backend.name, direction, steps, dry_run=True))
                return result
            if steps:
                if backup:  # before prepare(): the backup holds the database exactly as it was
                    where = self.backend.backup(lambda message: self._emit(BackendProgress(self.backend.name,
                                                                                           message)))
                    self._emit(BackupTaken(self.backend.name, where))
                self.backend.prepare()
            self._emit(PlanReady(self.backend.name, direction, steps, dry_run=False))
            lines = planning.by_line(steps) if direction is Direction.UP else {"": steps}
            if len(lines) > 1 and self.backend.capabilities.parallel_lines:
                self._run_parallel(lines, direction, result, jobs or default_jobs(), fail_fast)
            else:
                stop = threading.Event()
                for line_steps in lines.values():
                    self._run_line(line_steps, direction, result, stop, fail_fast)
        return result

    def _run_parallel(self, lines: dict[str, list[Migration]], direction: Direction, result: RunResult, jobs: int,
                      fail_fast: bool) -> None:
        stop = threading.Event()
        with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="migrator-line") as pool:
            futures = [pool.submit(self._run_line, steps, direction, result, stop, fail_fast)
                       for steps in lines.values()]
            for future in futures:
                future.result()

    def _run_line(self, steps: Sequence[Migration], direction: Direction, result: RunResult, stop: threading.Event,
                  fail_fast: bool) -> None:
        """Apply one line's steps in order; stop the line at its first failure."""
        for migration in steps:
            if stop.is_set():
                self.skip(migration, "an earlier migration failed (--fail-fast)")
                return
            if not self.run_step(migration, direction, result, stop, fail_fast):
                return

    def skip(self, migration: Migration, reason: str) -> None:
        """Tell the listener that ``migration``'s line stops here, not run."""
        self._emit(LineSkipped(self.backend.name, migration.line or migration.label, reason))

    def run_step(self, migration: Migration, direction: Direction, result: RunResult, stop: threading.Event,
                 fail_fast: bool) -> bool:
        """Apply one loaded migration (the lock held, ``prepare`` done); False when it failed (recorded in result)."""
        self._emit(MigrationStarted(self.backend.name, migration, direction))
        started = time.perf_counter()

        def report(message: str, migration: Migration = migration) -> None:
            self._emit(MigrationProgress(self.backend.name, migration, message))

        try:
            record = self.backend.apply(migration, direction, report)
        except LockLost as exc:  # not this migration's failure: the whole run stops, every line
            stop.set()
            self._emit(MigrationFailedEvent(self.backend.name, migration, direction, exc.message))
            raise
        except MigrationFailed as exc:
            self._fail(result, migration, direction, exc.message, stop, fail_fast)
            return False
        except (Exception, SystemExit) as exc:  # a migration's own error: report it as that migration's failure
            where = migration.path.name if migration.line == "" else migration.label
            self._fail(result, migration, direction, f"{where}: {type(exc).__name__}: {exc}", stop, fail_fast)
            return False
        # One duration: the one the adapter measured and recorded in the bookkeeping (history shows it); a step
        # that leaves no record (a rollback) is timed here.
        duration = record.duration_ms if record is not None and record.duration_ms is not None else \
            int((time.perf_counter() - started) * 1000)
        with self._emit_lock:
            result.steps.append(StepResult(migration, direction, duration))
        self._emit(MigrationDone(self.backend.name, migration, direction, duration))
        return True

    def lock(self) -> AbstractContextManager[None]:
        """The backend's migration lock, waited for up to ``lock_timeout``; a wait is reported once when it begins."""
        name = self.backend.name
        return self.backend.lock(self.lock_timeout, lambda message: self._emit(BackendProgress(name, message)))

    def emit(self, event: Event) -> None:
        """Send an event to the listener (the cross-backend runner's plan and backups)."""
        self._emit(event)

    def _fail(self, result: RunResult, migration: Migration, direction: Direction, message: str,
              stop: threading.Event, fail_fast: bool) -> None:
        with self._emit_lock:
            result.failures.append((migration, message))
        if fail_fast:
            stop.set()
        self._emit(MigrationFailedEvent(self.backend.name, migration, direction, message))
