"""The seed documents' own API shapes, thin over the same runner.

``MigrationRunner`` is the first seed's SQL runner; ``MigrationManager`` the
second seed's LanceDB manager (what an app calls on start-up). Both build their
adapter directly from a URL / URI and a folder: no config file needed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrator import handles
from migrator import plan as planning
from migrator.config import check_lance_folder
from migrator.errors import UsageError
from migrator.events import ignore
from migrator.model import ISSUE_MISSING, Direction, Migration
from migrator.runner import Runner

log = logging.getLogger("migrator")


class MigrationRunner:
    """``MigrationRunner(url_or_engine, migrations_dir)``: one SQL database, one folder (or list) of migrations.

    ``url_or_engine``: a SQLAlchemy URL (string or ``URL``), an ``Engine``, a ``sqlite3.Connection`` or the path
    of a SQLite file (a ``Path``); an Engine or connection stays the application's: never disposed or closed.
    ``migrations_dir``: a folder, or the seed's list of migrations (see :mod:`migrator.backends.sql.listed`);
    ``run_migrations`` and ``rollback`` also take either, for that call.
    """

    def __init__(self, url_or_engine: Any, migrations_dir: Any = None, *, version_table: str = "migrations",
                 lock_timeout: float = 60.0) -> None:
        from migrator.backends.sql import SqlBackend

        where = "MigrationRunner"
        self._source = _source_argument(migrations_dir, f"{where}: migrations_dir", optional=True)
        if not isinstance(version_table, str):
            raise UsageError(f"{where}: version_table must be a string, not {type(version_table).__name__}")
        folder = self._source if isinstance(self._source, Path) else Path("<no migrations folder>")
        self._backend = SqlBackend("sql", _sql_target(url_or_engine, f"{where}: url_or_engine"), folder,
                                   version_table=version_table, lock_timeout=lock_timeout)
        self._runner = Runner(self._backend, ignore, lock_timeout=lock_timeout)

    def get_current_version(self) -> int:
        """The newest applied version (0 when nothing is applied)."""
        return max((r.version for r in self._backend.applied()), default=0)

    def run_migrations(self, migrations: Any = None, to: int | str | None = None) -> list[int]:
        """Apply every pending migration (up to ``to``); returns the versions applied.

        ``migrations``: a folder or a list of migrations for this call (default: the ``migrations_dir``)."""
        result = self._runner.upgrade(to=to, migrations=self._declared(migrations, "run_migrations"))
        result.raise_if_failed()
        return [step.migration.version for step in result.steps]

    def rollback(self, target_version: int | str, migrations: Any = None) -> list[int]:
        """Undo every applied version above ``target_version``; returns the versions undone."""
        result = self._runner.rollback(target_version, migrations=self._declared(migrations, "rollback"))
        result.raise_if_failed()
        return [step.migration.version for step in result.steps]

    def _declared(self, migrations: Any, method: str) -> Sequence[Migration] | None:
        """The declared migrations of a call: None (the folder's, discovered by the runner) or the list's."""
        where = f"MigrationRunner.{method}"
        source = _source_argument(migrations, f"{where}: migrations", optional=True) if migrations is not None \
            else self._source
        if source is None:
            raise UsageError(f"{where}: no migrations: pass a folder or a list of migrations "
                             "(or give MigrationRunner a migrations_dir)")
        if isinstance(source, Path):
            if source == self._backend.migrations_dir:
                return None
            from migrator.backends.sql import sources

            return sources.discover(source)
        from migrator.backends.sql.listed import from_list

        return from_list(source, self._backend.dialect, where)

    def close(self) -> None:
        self._backend.close()


def _source_argument(value: Any, where: str, *, optional: bool) -> Path | Sequence[Any] | None:
    """A folder (str / PathLike) as a Path, a list of migrations as it is; anything else refused naming ``where``."""
    if value is None and optional:
        return None
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        if not isinstance(text, str) or not text:
            raise UsageError(f"{where} must be a folder or a list of migrations, not {value!r}")
        return Path(text)
    if isinstance(value, (list, tuple)):
        return value
    raise UsageError(f"{where} must be a folder (a string or a path) or a list of migrations, "
                     f"not {type(value).__name__}")


def _sql_target(value: Any, where: str) -> Any:
    """What ``SqlBackend`` takes for ``url_or_engine``: a path becomes a SQLite URL; wrong types are refused."""
    if isinstance(value, os.PathLike):
        from sqlalchemy.engine import URL

        return URL.create("sqlite", database=os.fspath(Path(value).absolute()))
    if isinstance(value, str) or (type(value).__name__ == "URL" and type(value).__module__.startswith("sqlalchemy")):
        return value
    handles.sql_location(value, where)  # refuses anything but an Engine or a sqlite3.Connection
    return value


@dataclass(frozen=True)
class ValidationResult:
    valid: bool
    errors: list[str] = field(default_factory=list)


class MigrationManager:
    """``MigrationManager(uri, migrations_dir, verbose=False, dry_run=False)`` for a LanceDB database.

    ``uri``: a local folder or object-storage URI, or the application's own lancedb connection (used, never
    closed; its URI and storage options are taken from it).
    """

    def __init__(self, uri: Any, migrations_dir: str | os.PathLike[str], verbose: bool = False,
                 dry_run: bool = False, *, storage_options: dict[str, str] | None = None,
                 lock_timeout: float = 60.0) -> None:
        from migrator.backends.lancedb import LanceBackend

        where = "MigrationManager"
        connection = None
        if handles.lance_location(uri, f"{where}: uri") is not None:
            connection, uri = uri, uri.uri
        uri = os.fspath(uri)
        if not isinstance(uri, str) or not uri:
            raise UsageError(f"{where}: uri must be a LanceDB URI or folder, not {uri!r}")
        folder = _source_argument(migrations_dir, f"{where}: migrations_dir", optional=False)
        if not isinstance(folder, Path):
            raise UsageError(f"{where}: migrations_dir must be a folder (a string or a path), not "
                             f"{type(migrations_dir).__name__}")
        for name, flag in (("verbose", verbose), ("dry_run", dry_run)):
            if not isinstance(flag, bool):
                raise UsageError(f"{where}: {name} must be True or False, not {flag!r}")
        check_lance_folder(uri, where)
        self.dry_run = dry_run
        self._backend = LanceBackend("lancedb", uri, folder, storage_options=storage_options,
                                     lock_timeout=lock_timeout, connection=connection)
        self._runner = Runner(self._backend, lock_timeout=lock_timeout)
        if verbose:
            _show_log()

    # -- the seed's helpers over the declared migrations ---------------------------------------------------------

    def get_migrations_for_table(self, table_name: str) -> list[Migration]:
        """The migrations declared for ``table_name``, in version order ([] for a table none declares).

        Each is a :class:`migrator.model.Migration`: ``version``, ``name`` (the description), ``line`` (the table).
        """
        _table_argument(table_name, "get_migrations_for_table")
        return sorted((m for m in self._backend.discover() if m.line == table_name), key=lambda m: m.version)

    def get_latest_version(self, table_name: str) -> int:
        """The highest version declared for ``table_name`` (0 when none is)."""
        _table_argument(table_name, "get_latest_version")
        return max((m.version for m in self._backend.discover() if m.line == table_name), default=0)

    def get_all_table_names(self) -> list[str]:
        """Every table some migration declares, in the order they are first declared (file order)."""
        return list(dict.fromkeys(m.line for m in self._backend.discover()))

    def initialize(self) -> dict[str, int]:
        """Ensure ``table_migrations`` exists, then run every pending migration; returns ``get_status()``."""
        if not self.dry_run:
            with self._runner.lock():
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


def _table_argument(value: Any, method: str) -> None:
    if not isinstance(value, str) or not value:
        raise UsageError(f"MigrationManager.{method}: table_name must be a table's name (a non-empty string), "
                         f"not {value!r}")


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
