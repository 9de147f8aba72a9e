"""The library API: ``Migrator.from_config().upgrade()``.

A thin facade: it picks backends from the config, opens each adapter for the
length of one call, and hands the work to a :class:`~migrator.runner.Runner`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrator import crossplan, crossrun, interruptions, scaffold
from migrator import plan as planning
from migrator.backends import open_backend
from migrator.config import BackendConfig, Config, load_config, load_dict
from migrator.errors import UsageError
from migrator.events import Listener, ignore
from migrator.model import (
    AppliedMigration,
    BackendStatus,
    Direction,
    Issue,
    Migration,
    RunResult,
    Status,
    Waiting,
)
from migrator.runner import Runner
from migrator.targets import Target, rollback_target, upgrade_target


@dataclass(frozen=True)
class CheckResult:
    """What ``check`` found: pending migrations and validation issues per backend."""

    status: Status
    issues: dict[str, list[Issue]]

    @property
    def ok(self) -> bool:
        return self.status.pending_count == 0 and not any(self.issues.values())


class Migrator:
    """Migrations of every backend in one config."""

    def __init__(self, config: Config, listener: Listener = ignore) -> None:
        self.config = config
        self.listener = listener

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | None = None, *, listener: Listener = ignore) -> Migrator:
        return cls(load_config(path), listener)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base: str | os.PathLike[str] | None = None,
                  listener: Listener = ignore) -> Migrator:
        """The config's keys as a dict; relative paths against ``base`` (default: the working directory).

        A SQLAlchemy ``Engine`` or ``sqlite3.Connection`` may stand in for a SQL backend's ``url``, a lancedb
        connection for a LanceDB backend's ``uri``: migrator uses it and never disposes or closes it.
        """
        return cls(load_dict(data, base=base), listener)

    @property
    def backend_names(self) -> list[str]:
        return list(self.config.backends)

    @contextmanager
    def _runner(self, cfg: BackendConfig) -> Iterator[Runner]:
        backend = open_backend(cfg)
        try:
            yield Runner(backend, self.listener, lock_timeout=cfg.lock_timeout)
        finally:
            backend.close()

    # -- changing ------------------------------------------------------------------------------------------------

    def upgrade(
        self,
        backend: str | None = None,
        *,
        to: int | str | None = None,
        table: str | None = None,
        dry_run: bool = False,
        allow_changed: bool = False,
        allow_out_of_order: bool = False,
        jobs: int | None = None,
        fail_fast: bool = False,
        backup: bool | None = None,
    ) -> list[RunResult]:
        """Apply pending migrations; every backend unless one is named. Raises MigrationFailed on failure.

        ``to``: a version (``3`` or ``"3"``: up to it, inclusive) or ``"+N"`` (the next N migrations).
        """
        goal = upgrade_target(to)
        targets = self.config.select(backend, all_if_none=True)
        if to is not None and len(targets) > 1:
            raise UsageError("--to is a version of one backend: name it with --backend")
        if table is not None and len(targets) > 1:
            raise UsageError("--table names a table of one LanceDB backend: name it with --backend")
        if len(targets) > 1:
            return self._upgrade_all(targets, dry_run=dry_run, allow_changed=allow_changed,
                                     allow_out_of_order=allow_out_of_order, jobs=jobs, fail_fast=fail_fast,
                                     backup=backup)
        results = []
        for cfg in targets:
            with self._runner(cfg) as runner:
                migrations = runner.backend.discover()
                if len(self.config.backends) > 1 and any(m.requires for m in migrations):
                    self._refuse_unreached(runner, migrations, goal, table)
                result = runner.upgrade(to=goal, line=table, dry_run=dry_run, allow_changed=allow_changed,
                                        allow_out_of_order=allow_out_of_order,
                                        jobs=jobs if jobs is not None else cfg.jobs,
                                        fail_fast=fail_fast, backup=cfg.backup if backup is None else backup,
                                        migrations=migrations)
            results.append(result)
            result.raise_if_failed()
        return results

    def _refuse_unreached(self, runner: Runner, migrations: Sequence[Migration], goal: Target | None,
                          table: str | None) -> None:
        """One backend's upgrade: refuse a step whose requirement on another backend is not reached yet."""
        name = runner.backend.name
        views = [crossplan.View(name, runner.backend.capabilities.per_table_lines, migrations,
                                runner.backend.applied())]
        for cfg in self.config.backends.values():
            if cfg.name != name:
                with self._runner(cfg) as other:
                    views.append(crossplan.View(cfg.name, other.backend.capabilities.per_table_lines,
                                                other.backend.discover(), other.backend.applied()))
        crossplan.check(views)
        steps = planning.upgrade_plan(migrations, views[0].applied, to=goal, line=table, allow_changed=True,
                                      allow_out_of_order=True, backend=name)
        reached = {view.name: crossplan.current(view) for view in views}
        for migration in steps:
            for requirement in migration.requires:
                now = reached[requirement.backend].get(requirement.line, 0)
                if requirement.backend != name and now < requirement.version:
                    raise UsageError(f"{crossplan.where(name, migration)} requires {requirement.label}, but "
                                     f"{requirement.backend!r} is at version {now} there: run `migrator upgrade` "
                                     "over every backend (one plan), or upgrade that backend first")

    def _upgrade_all(self, targets: list[BackendConfig], *, dry_run: bool, allow_changed: bool,
                     allow_out_of_order: bool, jobs: int | None, fail_fast: bool,
                     backup: bool | None) -> list[RunResult]:
        """Every backend: one cross-backend plan when a migration declares ``requires``, else one after another."""
        with ExitStack() as stack:
            runners = [stack.enter_context(self._runner(cfg)) for cfg in targets]
            declared = {cfg.name: runner.backend.discover() for cfg, runner in zip(targets, runners, strict=True)}
            if any(m.requires for migrations in declared.values() for m in migrations):
                results = crossrun.upgrade(runners, declared, dry_run=dry_run, allow_changed=allow_changed,
                                           allow_out_of_order=allow_out_of_order, fail_fast=fail_fast,
                                           backup={cfg.name: cfg.backup if backup is None else backup
                                                   for cfg in targets})
                for result in results:
                    result.raise_if_failed()
                return results
            results = []
            for cfg, runner in zip(targets, runners, strict=True):
                result = runner.upgrade(dry_run=dry_run, allow_changed=allow_changed,
                                        allow_out_of_order=allow_out_of_order,
                                        jobs=jobs if jobs is not None else cfg.jobs, fail_fast=fail_fast,
                                        backup=cfg.backup if backup is None else backup,
                                        migrations=declared[cfg.name])
                results.append(result)
                result.raise_if_failed()
            return results

    def rollback(self, target: int | str, backend: str | None = None, *, table: str | None = None,
                 dry_run: bool = False, backup: bool | None = None, cascade: bool = False) -> RunResult:
        """Undo, newest first, every applied version above ``target`` (0 undoes all); ``"-N"``: the N newest.

        Refused (UsageError, naming it) when an applied migration of another backend requires a version this would
        undo; ``cascade`` rolls such dependants back first (each refused beforehand if it cannot be undone).
        """
        goal = rollback_target(target)
        (cfg,) = self.config.select(backend, all_if_none=False)
        steps = self._rollback_steps(cfg, goal, table, cascade, depth=0)
        if len(steps) > 1 and not dry_run:  # every refusal before any change
            for step_cfg, step_goal, step_table in steps:
                with self._runner(step_cfg) as runner:
                    runner.rollback(step_goal, line=step_table, dry_run=True)
        result = RunResult(backend=cfg.name, direction=Direction.DOWN)
        for step_cfg, step_goal, step_table in steps:
            with self._runner(step_cfg) as runner:
                result = runner.rollback(step_goal, line=step_table, dry_run=dry_run,
                                         backup=step_cfg.backup if backup is None else backup)
            result.raise_if_failed()
        return result

    def _rollback_steps(self, cfg: BackendConfig, goal: Target, table: str | None, cascade: bool,
                        depth: int) -> list[tuple[BackendConfig, Target, str | None]]:
        """The rollbacks to run, dependants (other backends' migrations requiring what goes) first."""
        step = (cfg, goal, table)
        if len(self.config.backends) == 1 or depth > len(self.config.backends) * 64:
            return [step]
        if not any(_may_require(other) for other in self.config.backends.values() if other.name != cfg.name):
            return [step]  # no other backend's file even mentions `requires`: nothing to discover (or import)
        views: list[crossplan.View] = []
        with ExitStack() as stack:
            runners = [stack.enter_context(self._runner(c)) for c in self.config.backends.values()]
            declared = {r.backend.name: r.backend.discover() for r in runners}
            if not any(q.backend == cfg.name for ms in declared.values() for m in ms for q in m.requires):
                return [step]
            for runner in runners:
                name = runner.backend.name
                views.append(crossplan.View(name, runner.backend.capabilities.per_table_lines, declared[name],
                                            runner.backend.applied()))
        own = next(v for v in views if v.name == cfg.name)
        undone = planning.rollback_plan(own.declared, own.applied, goal, line=table, backend=cfg.name)
        gone = {(m.line, m.version) for m in undone}
        remaining = {m.line: max((r.version for r in own.applied if r.line == m.line
                                  and (r.line, r.version) not in gone), default=0) for m in undone}
        found = crossplan.dependants(views, cfg.name, remaining)
        if not found:
            return [step]
        if not cascade:
            name, migration, requirement = found[0]
            more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
            on = f"{requirement.line!r}" if requirement.line else f"{cfg.name!r}"
            raise UsageError(f"{cfg.name}: rollback refused: it would take {on} below version "
                             f"{requirement.version}, which the applied {crossplan.where(name, migration)} "
                             f"requires{more}; roll that back first, or pass --cascade")
        lowest: dict[tuple[str, str], int] = {}
        for name, migration, _ in found:
            key = (name, migration.line)
            lowest[key] = min(lowest.get(key, migration.version), migration.version)
        steps: list[tuple[BackendConfig, Target, str | None]] = []
        for (name, line), version in lowest.items():
            dependant = self.config.backends[name]
            steps.extend(self._rollback_steps(dependant, rollback_target(version - 1), line or None, True,
                                              depth + 1))
        return [*steps, step]

    def stamp(self, version: int, backend: str | None = None, *, table: str | None = None) -> list[str]:
        """Record versions up to ``version`` as applied without running them (baseline).

        Clears the marks of interrupted non-atomic SQL migrations; returns the labels of the steps it cleared.
        """
        (cfg,) = self.config.select(backend, all_if_none=False)
        with self._runner(cfg) as runner:
            stamped = runner.stamp(version, line=table)
            migrations = runner.backend.discover() if stamped.cleared else []
        return [f"{interruptions.label(step, migrations)} ({step.direction.value})" for step in stamped.cleared]

    def repair(self, backend: str | None = None) -> dict[str, list[str]]:
        """Record new checksums of applied files edited on purpose; returns the files per backend."""
        repaired = {}
        for cfg in self.config.select(backend, all_if_none=True):
            with self._runner(cfg) as runner:
                repaired[cfg.name] = [r.files for r in runner.repair()]
        return repaired

    def new(self, name: str, backend: str | None = None, *, sql: bool = False, table: str | None = None) -> list[Path]:
        """Write a new migration file (or .up.sql/.down.sql pair) with the next version."""
        (cfg,) = self.config.select(backend, all_if_none=False)
        table_version = 1
        if table is not None and cfg.type == "lancedb":
            with self._runner(cfg) as runner:
                declared = [m.version for m in runner.backend.discover() if m.line == table]
            table_version = max(declared, default=0) + 1
        return scaffold.new_migration(cfg, name, sql=sql, table=table, table_version=table_version)

    # -- reading -------------------------------------------------------------------------------------------------

    def status(self, backend: str | None = None) -> Status:
        statuses = []
        for cfg in self.config.select(backend, all_if_none=True):
            with self._runner(cfg) as runner:
                statuses.append(runner.status())
        if any(m.requires for s in statuses for line in s.lines for m in line.pending):
            statuses = self._with_waiting(statuses)
        return Status(tuple(statuses))

    def _with_waiting(self, statuses: list[BackendStatus]) -> list[BackendStatus]:
        """Each backend's pending migrations whose requirements the required lines have not reached yet."""
        known = {s.backend: s for s in statuses}
        for cfg in self.config.backends.values():
            if cfg.name not in known:
                with self._runner(cfg) as runner:
                    known[cfg.name] = runner.status()
        reached = {(s.backend, line.line): line.current for s in known.values() for line in s.lines}
        return [dataclasses.replace(s, waiting=tuple(
            Waiting(m, q, reached.get((q.backend, q.line), 0))
            for line in s.lines for m in line.pending for q in m.requires
            if reached.get((q.backend, q.line), 0) < q.version)) for s in statuses]

    def history(self, backend: str | None = None) -> dict[str, list[AppliedMigration]]:
        histories = {}
        for cfg in self.config.select(backend, all_if_none=True):
            with self._runner(cfg) as runner:
                histories[cfg.name] = runner.history()
        return histories

    def validate(self, backend: str | None = None) -> dict[str, list[Issue]]:
        return {s.backend: list(s.issues) for s in self.status(backend).backends}

    def check(self, backend: str | None = None) -> CheckResult:
        status = self.status(backend)
        return CheckResult(status=status, issues={s.backend: list(s.issues) for s in status.backends})


def _may_require(cfg: BackendConfig) -> bool:
    """Whether any migration file of ``cfg`` mentions ``requires`` (a cheap text test before importing them)."""
    try:
        entries = list(os.scandir(cfg.migrations))
    except OSError:
        return True  # let discovery report it
    for entry in entries:
        try:
            if entry.is_file() and b"requires" in Path(entry.path).read_bytes():
                return True
        except OSError:
            return True
    return False
