"""The library API: ``Migrator.from_config().upgrade()``.

A thin facade: it picks backends from the config, opens each adapter for the
length of one call, and hands the work to a :class:`~migrator.runner.Runner`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from migrator import scaffold
from migrator.backends import open_backend
from migrator.config import BackendConfig, Config, load_config
from migrator.errors import UsageError
from migrator.events import Listener, ignore
from migrator.model import AppliedMigration, Issue, RunResult, Status
from migrator.runner import Runner
from migrator.targets import rollback_target, upgrade_target


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
        results = []
        for cfg in targets:
            with self._runner(cfg) as runner:
                result = runner.upgrade(to=goal, line=table, dry_run=dry_run, allow_changed=allow_changed,
                                        allow_out_of_order=allow_out_of_order,
                                        jobs=jobs if jobs is not None else cfg.jobs,
                                        fail_fast=fail_fast, backup=cfg.backup if backup is None else backup)
            results.append(result)
            result.raise_if_failed()
        return results

    def rollback(self, target: int | str, backend: str | None = None, *, table: str | None = None,
                 dry_run: bool = False, backup: bool | None = None) -> RunResult:
        """Undo, newest first, every applied version above ``target`` (0 undoes all); ``"-N"``: the N newest."""
        goal = rollback_target(target)
        (cfg,) = self.config.select(backend, all_if_none=False)
        with self._runner(cfg) as runner:
            result = runner.rollback(goal, line=table, dry_run=dry_run,
                                     backup=cfg.backup if backup is None else backup)
        result.raise_if_failed()
        return result

    def stamp(self, version: int, backend: str | None = None, *, table: str | None = None) -> None:
        """Record versions up to ``version`` as applied without running them (baseline)."""
        (cfg,) = self.config.select(backend, all_if_none=False)
        with self._runner(cfg) as runner:
            runner.stamp(version, line=table)

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
        return Status(tuple(statuses))

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
