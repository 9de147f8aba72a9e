"""The runner's events as standard ``logging`` records (logger ``migrator.runner``).

One record per plan, per step start and end (with its duration), per failure and per line
skipped; adapters' progress lines are records too. The library installs no handler (``migrator``
has a ``NullHandler``): an application shows these with its own logging configuration, e.g.
``logging.basicConfig(level=logging.INFO)``. Every record carries ``extra`` fields an application
can filter or format on: ``migrator_backend``, ``migrator_event`` and, for steps,
``migrator_line``, ``migrator_version``, ``migrator_direction``, ``migrator_duration_ms``.

Alembic's own ``MigrationContext`` announces itself on every configuration ("Context impl
SQLiteImpl.", "Will assume non-transactional DDL."), which contradicts migrator's transactional
SQLite, and its first import lists its plugins: :func:`quiet_alembic` drops those records while
migrator imports Alembic and configures its context, and only then (an application's own Alembic
use keeps its logging).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from migrator.events import (
    BackendProgress,
    BackupTaken,
    Event,
    LineSkipped,
    MigrationDone,
    MigrationFailedEvent,
    MigrationProgress,
    MigrationStarted,
    PlanReady,
    SeedDone,
    SeedsReady,
)
from migrator.model import Direction, Migration
from migrator.progress import RowsProgress

ROOT_LOGGER = "migrator"
RUNNER_LOGGER = "migrator.runner"
# the context's "Will assume ... DDL" lines; the plugins' "setup plugin ..." lines of Alembic's first import
ALEMBIC_LOGGERS = ("alembic.runtime.migration", "alembic.runtime.plugins")

log = logging.getLogger(RUNNER_LOGGER)

_VERB = {Direction.UP: ("applying", "applied"), Direction.DOWN: ("reverting", "reverted")}


def log_event(event: Event) -> None:
    """Log one runner event on ``migrator.runner`` (the runner calls this for every event it emits)."""
    if isinstance(event, MigrationStarted):
        _step(logging.INFO, event.backend, event.migration, event.direction, "started",
              "%s: %s %s", _VERB[event.direction][0], event.migration.label)
    elif isinstance(event, MigrationDone):
        _step(logging.INFO, event.backend, event.migration, event.direction, "done",
              "%s: %s %s in %d ms", _VERB[event.direction][1], event.migration.label, event.duration_ms,
              duration_ms=event.duration_ms)
    elif isinstance(event, MigrationFailedEvent):
        _step(logging.ERROR, event.backend, event.migration, event.direction, "failed",
              "%s: %s %s failed: %s", _VERB[event.direction][0], event.migration.label, event.error)
    elif isinstance(event, MigrationProgress):  # a rows progress between two notable ones: DEBUG
        quiet = isinstance(event.message, RowsProgress) and not event.message.notable
        _step(logging.DEBUG if quiet else logging.INFO, event.backend, event.migration, None, "progress",
              "%s: %s: %s", event.migration.label, event.message)
    elif isinstance(event, PlanReady):
        _plan(event)
    elif isinstance(event, LineSkipped):
        log.warning("%s: %s not run: %s", event.backend, event.line, event.reason,
                    extra=_extra(event.backend, "skipped", migrator_line=event.line))
    elif isinstance(event, BackupTaken):
        log.info("%s: backup at %s", event.backend, event.location, extra=_extra(event.backend, "backup"))
    elif isinstance(event, BackendProgress):
        log.info("%s: %s", event.backend, event.message, extra=_extra(event.backend, "progress"))
    elif isinstance(event, SeedsReady):
        log.info("%s: %sseed %d seed(s): %s", event.backend, "dry run: would " if event.dry_run else "",
                 len(event.seeds), ", ".join(event.seeds[:10]) + (", ..." if len(event.seeds) > 10 else ""),
                 extra=_extra(event.backend, "seeds", migrator_count=len(event.seeds),
                              migrator_dry_run=event.dry_run))
    elif isinstance(event, SeedDone):
        log.info("%s: seeded %s (%s)", event.backend, event.seed, event.detail,
                 extra=_extra(event.backend, "seeded"))


def _step(level: int, backend: str, migration: Migration, direction: Direction | None, kind: str, text: str,
          *args: Any, duration_ms: int | None = None) -> None:
    """One record about one step: ``text % (backend, *args)`` with the step's fields as ``extra``."""
    if log.isEnabledFor(level):
        log.log(level, text, backend, *args, extra=_extra(
            backend, kind, migrator_line=migration.line, migrator_version=migration.version,
            migrator_direction=direction.value if direction is not None else None,
            migrator_duration_ms=duration_ms))


def _plan(event: PlanReady) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    count = len(event.migrations)
    verb = "apply" if event.direction is Direction.UP else "revert"
    args: tuple[Any, ...]
    if count == 0:
        text, args = "%s: nothing to %s", (event.backend, verb)
    else:
        labels = ", ".join(m.label for m in event.migrations[:10]) + (", ..." if count > 10 else "")
        prefix = "dry run: would " if event.dry_run else ""
        text, args = "%s: %s%s %d migration(s): %s", (event.backend, prefix, verb, count, labels)
    log.info(text, *args, extra=_extra(event.backend, "plan", migrator_count=count, migrator_dry_run=event.dry_run))


def _extra(backend: str, kind: str, **fields: Any) -> Mapping[str, Any]:
    return {"migrator_backend": backend, "migrator_event": kind, **fields}


# -- Alembic's context announcements -------------------------------------------------------------------------------

_CONFIGURING: ContextVar[bool] = ContextVar("migrator_configuring_alembic", default=False)


class _WhileMigratorConfigures(logging.Filter):
    """Drops the records Alembic's context logs while migrator configures one (in this thread / task only)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _CONFIGURING.get()


@contextmanager
def quiet_alembic() -> Iterator[None]:
    """Around Alembic's import and ``MigrationContext.configure``: its announcements are not logged."""
    for name in ALEMBIC_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _WhileMigratorConfigures) for f in logger.filters):
            logger.addFilter(_WhileMigratorConfigures())
    token = _CONFIGURING.set(True)
    try:
        yield
    finally:
        _CONFIGURING.reset(token)
