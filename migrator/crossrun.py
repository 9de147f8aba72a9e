"""Execute one upgrade plan across backends (``migrator upgrade`` when migrations declare ``requires``).

Every backend's lock is taken, in config order, for the whole run; the
bookkeeping is re-read under the locks, each backend plans and loads its own
steps as it does alone, :mod:`migrator.crossplan` merges them, and the steps run
one at a time in that order. A failure skips what waits for it (its line, and the
migrations requiring it); the other lines go on unless ``fail_fast``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack

from migrator import crossplan
from migrator import plan as planning
from migrator.events import BackendProgress, BackupTaken, PlanReady
from migrator.model import Direction, Migration, RunResult
from migrator.runner import Runner


def upgrade(runners: Sequence[Runner], declared: Mapping[str, Sequence[Migration]], *, dry_run: bool,
            allow_changed: bool, allow_out_of_order: bool, fail_fast: bool,
            backup: Mapping[str, bool]) -> list[RunResult]:
    """Upgrade every backend of ``runners`` (config order) in one plan; one RunResult per backend."""
    results = {r.backend.name: RunResult(backend=r.backend.name, direction=Direction.UP, dry_run=dry_run)
               for r in runners}
    with ExitStack() as locks:
        for runner in runners:  # config order: two cross-backend runs never wait for each other's second lock
            if not dry_run or runner.backend.applied():  # a dry run never creates a database to lock it
                locks.enter_context(runner.lock())
        views = []
        for runner in runners:
            name = runner.backend.name
            applied = runner.backend.applied()
            runner.refuse_interrupted(declared[name], applied, "upgrade")
            planning.refuse_drift(runner.backend.drift(declared[name], applied), line=None, backend=name)
            steps = planning.upgrade_plan(declared[name], applied, allow_changed=allow_changed,
                                          allow_out_of_order=allow_out_of_order, backend=name)
            if steps:
                steps = list(runner.backend.load(steps))
                runner.backend.check_plan(steps, Direction.UP, backup=backup[name])
            results[name].planned = steps
            views.append(crossplan.View(name, runner.backend.capabilities.per_table_lines, declared[name],
                                        applied, steps))
        crossplan.check(views)
        plan = crossplan.order(views)
        if dry_run:
            for runner in runners:
                runner.emit(PlanReady(runner.backend.name, Direction.UP, results[runner.backend.name].planned,
                                      dry_run=True))
            return list(results.values())
        for runner in runners:
            name = runner.backend.name
            if results[name].planned:
                if backup[name]:
                    where = runner.backend.backup(_progress(runner))
                    runner.emit(BackupTaken(name, where))
                runner.backend.prepare()
        for runner in runners:
            runner.emit(PlanReady(runner.backend.name, Direction.UP, results[runner.backend.name].planned,
                                  dry_run=False))
        _run(plan, {r.backend.name: r for r in runners}, results, fail_fast)
    return list(results.values())


def _progress(runner: Runner) -> Callable[[str], None]:
    def report(message: str) -> None:
        runner.emit(BackendProgress(runner.backend.name, message))

    return report


def _run(plan: crossplan.Plan, runners: Mapping[str, Runner], results: Mapping[str, RunResult],
         fail_fast: bool) -> None:
    stop = threading.Event()
    stopped: dict[crossplan.Key, str] = {}  # steps not run, and why
    for backend, migration in plan.order:
        key = (backend, migration.line, migration.version)
        runner = runners[backend]
        if stop.is_set():
            runner.skip(migration, "an earlier migration failed (--fail-fast)")
            break
        blocked = sorted(k for k in plan.after[key] if k in stopped)
        if blocked:
            stopped[key] = stopped[blocked[0]]
            if migration.line != blocked[0][1] or backend != blocked[0][0]:
                runner.skip(migration, f"waits for {stopped[key]}")
            continue
        if not runner.run_step(migration, Direction.UP, results[backend], stop, fail_fast):
            stopped[key] = f"{crossplan.where(backend, migration)}, which failed"
