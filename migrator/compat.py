"""The seed documents' own API shapes, thin over the same runner.

``MigrationRunner`` is the first seed's SQL runner; ``MigrationManager`` the
second seed's LanceDB manager (what an app calls on start-up). Both build their
adapter directly from a URL / URI and a folder: no config file needed.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrator import plan as planning
from migrator.config import check_lance_folder
from migrator.events import ignore
from migrator.model import ISSUE_MISSING, Direction
from migrator.runner import Runner

log = logging.getLogger("migrator")


class MigrationRunner:
    """``MigrationRunner(url_or_engine, migrations_dir)``: one SQL database, one folder."""

    def __init__(self, url_or_engine: Any, migrations_dir: str | os.PathLike[str], *,
                 version_table: str = "migrations", lock_timeout: float = 60.0) -> None:
        from migrator.backends.sql import SqlBackend

        self._backend = SqlBackend("sql", url_or_engine, Path(migrations_dir), version_table=version_table,
                                   lock_timeout=lock_timeout)
        self._runner = Runner(self._backend, ignore, lock_timeout=lock_timeout)

    def get_current_version(self) -> int:
        """The newest applied version (0 when nothing is applied)."""
        return max((r.version for r in self._backend.applied()), default=0)

    def run_migrations(self, to: int | None = None) -> list[int]:
        """Apply every pending migration (up to ``to``); returns the versions applied."""
        result = self._runner.upgrade(to=to)
        result.raise_if_failed()
        return [step.migration.version for step in result.steps]

    def rollback(self, target_version: int) -> list[int]:
        """Undo every applied version above ``target_version``; returns the versions undone."""
        result = self._runner.rollback(target_version)
        result.raise_if_failed()
        return [step.migration.version for step in result.steps]

    def close(self) -> None:
        self._backend.close()


@dataclass(frozen=True)
class ValidationResult:
    valid: bool
    errors: list[str] = field(default_factory=list)


class MigrationManager:
    """``MigrationManager(uri, migrations_dir, verbose=False, dry_run=False)`` for a LanceDB database."""

    def __init__(self, uri: str, migrations_dir: str | os.PathLike[str], verbose: bool = False,
                 dry_run: bool = False, *, storage_options: dict[str, str] | None = None,
                 lock_timeout: float = 60.0) -> None:
        from migrator.backends.lancedb import LanceBackend

        check_lance_folder(str(uri), "MigrationManager")
        self.dry_run = dry_run
        self._backend = LanceBackend("lancedb", uri, Path(migrations_dir), storage_options=storage_options,
                                     lock_timeout=lock_timeout)
        self._runner = Runner(self._backend, lock_timeout=lock_timeout)
        if verbose:
            _show_log()

    def initialize(self) -> dict[str, int]:
        """Ensure ``table_migrations`` exists, then run every pending migration; returns ``get_status()``."""
        if not self.dry_run:
            with self._backend.lock(self._runner.lock_timeout):
                self._backend.prepare()
        self.run()
        return self.get_status()

    def run(self) -> list[tuple[str, int]]:
        """Run pending migrations only; returns (table, version) of each one applied (or planned, dry run)."""
        result = self._runner.upgrade(dry_run=self.dry_run)
        result.raise_if_failed()
        if self.dry_run:
            return [(m.line, m.version) for m in result.planned]
        return [(s.migration.line, s.migration.version) for s in result.steps if s.direction is Direction.UP]

    def get_status(self) -> dict[str, int]:
        """Each table's current version (tables with migrations but nothing applied show 0)."""
        return {line.line: line.current for line in self._runner.status().lines}

    def validate(self) -> ValidationResult:
        """Tables behind their latest version, in the metadata but declared by no migration, gaps, drift."""
        migrations = self._backend.discover()
        applied = self._backend.applied()
        declared = planning.by_line(migrations)
        errors: list[str] = []
        for line in planning.line_statuses(migrations, applied):
            if line.pending:
                errors.append(f"{line.line}: at version {line.current}, latest is {line.latest}")
            if line.line not in declared:
                errors.append(f"{line.line}: in table_migrations but no migration declares it")
                continue
            missing = _gaps([m.version for m in declared[line.line]])
            if missing:
                errors.append(f"{line.line}: version gap, missing {missing}")
        errors.extend(i.message for i in planning.validate(migrations, applied)
                      if i.kind != ISSUE_MISSING or i.line in declared)
        errors.extend(i.message for i in self._backend.drift(migrations, applied))
        return ValidationResult(valid=not errors, errors=errors)

    def close(self) -> None:
        self._backend.close()


def _show_log() -> None:
    """``verbose=True`` (the seed's console lines): migrator's INFO records on stderr, unless the application
    already configured logging (a handler of its own on ``migrator`` or on the root logger)."""
    own = [h for h in log.handlers if not isinstance(h, logging.NullHandler)]
    if not own and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[migrator] %(message)s"))
        log.addHandler(handler)
    if log.getEffectiveLevel() > logging.INFO:
        log.setLevel(logging.INFO)


def _gaps(versions: list[int]) -> str:
    """The versions missing below the highest one, as ranges ("3, 5-20240114"): O(files), whatever the numbers."""
    spans, previous = [], 0
    for version in sorted(set(versions)):
        if version > previous + 1:
            first, last = previous + 1, version - 1
            spans.append(str(first) if first == last else f"{first}-{last}")
        previous = version
    return ", ".join(spans)
