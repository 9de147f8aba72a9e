"""``migrator seed``: load a backend's seed data once its migrations are applied.

Seeds live in the folder the backend's ``seeds`` key names. What a seed file is, and how it is
written, is the adapter's (:class:`~migrator.backends.base.LoadsSeeds`): SQL backends run ``.sql``
files and ``.py`` files with ``seed(db)`` in file-name order in one transaction; LanceDB backends
upsert the rows of ``@seed(table=..., key=...)`` functions by key. This module owns the order of a
run: refuse while migrations are pending or a step is interrupted (before anything is written, and
again under the migration lock), load, run, report through the runner's events.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from migrator import plan as planning
from migrator.backends.base import LoadsSeeds, Seed, Seeded
from migrator.errors import SeedRefused, UsageError
from migrator.events import BackendProgress, SeedDone, SeedsReady
from migrator.model import ISSUE_DRIFT
from migrator.runner import Runner

__all__ = ["SeedRefused", "SeedResult", "load", "refuse_unmigrated", "seed", "seeder"]


@dataclass(frozen=True)
class SeedResult:
    """One backend's ``seed``: what each seed did (or would do, in a dry run)."""

    backend: str
    seeds: tuple[Seeded, ...]
    dry_run: bool = False


def seeder(runner: Runner) -> LoadsSeeds:
    """The runner's backend as a seed loader; UsageError for a backend type that has none."""
    backend = runner.backend
    if not isinstance(backend, LoadsSeeds):
        raise UsageError(f"{backend.name}: {backend.type} backends cannot load seed data")
    return backend


def refuse_unmigrated(runner: Runner) -> None:
    """SeedRefused (or InterruptedMigration) naming the first pending migration; reads only."""
    backend = runner.backend
    migrations = backend.discover()
    applied = backend.applied()
    runner.refuse_interrupted(migrations, applied, "seed")
    drifted = [issue for issue in backend.drift(migrations, applied) if issue.kind == ISSUE_DRIFT]
    if drifted:
        raise SeedRefused(f"{backend.name}: seed refused: {drifted[0].message}; nothing was seeded")
    pending = [m for line in planning.line_statuses(migrations, applied) for m in line.pending]
    if pending:
        first = pending[0]
        what = first.label if first.line else first.path.name
        more = f" and {len(pending) - 1} more" if len(pending) > 1 else ""
        raise SeedRefused(f"{backend.name}: seed refused: {what}{more} pending; run `migrator upgrade` first "
                          "(seeds load into the migrated schema); nothing was seeded")


def load(runner: Runner, folder: Path) -> Sequence[Seed]:
    """The seeds of ``folder`` for the runner's backend, loaded; LoaderError naming a file that cannot run."""
    return seeder(runner).load_seeds(folder)


def seed(runner: Runner, seeds: Sequence[Seed], *, dry_run: bool = False) -> SeedResult:
    """Run loaded ``seeds`` on one backend: under its migration lock, with nothing pending; events to the runner's
    listener. MigrationFailed naming the seed's file when one fails (SQL: nothing seeded)."""
    backend = runner.backend
    loader = seeder(runner)
    # A dry run that would have to create the database to lock it has nothing to lock: nothing is applied yet.
    needs_lock = not dry_run or bool(backend.applied())
    locking: AbstractContextManager[None] = runner.lock() if needs_lock else nullcontext()
    with locking:
        refuse_unmigrated(runner)  # again under the lock: another process may have been migrating
        if not dry_run:
            runner.emit(SeedsReady(backend.name, [s.label for s in seeds], dry_run=False))

        def report(message: str) -> None:
            runner.emit(BackendProgress(backend.name, message))

        done: Sequence[Seeded] = loader.apply_seeds(seeds, report, dry_run=dry_run) if seeds else ()
    if dry_run:
        runner.emit(SeedsReady(backend.name, [f"{s.label} ({s.detail})" for s in done], dry_run=True))
    else:
        for item in done:
            runner.emit(SeedDone(backend.name, item.label, item.detail))
    return SeedResult(backend.name, tuple(done), dry_run)
