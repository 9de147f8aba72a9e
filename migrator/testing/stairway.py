"""The stairway walk (pytest-alembic's "stairway" test): every migration up, down and up again.

Migrations go in the order one ``migrator upgrade`` over every backend would run them (cross-backend
``requires`` honoured). For each: a snapshot of every backend's schema (:mod:`migrator.testing.snapshot`)
before its up, after it, after its down (SQL: its ``down``; LanceDB: ``migrator rollback``, Lance time
travel) and after the second up. After the down the schema must be the one from before the up; after the
second up, the one from after the first. The walk stops at the first difference, which it describes with a
diff naming the migration. A migration without a ``down`` (irreversible, on purpose) is only applied.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from migrator import crossplan
from migrator.api import Migrator
from migrator.backends import open_backend
from migrator.errors import MigratorError
from migrator.model import Migration
from migrator.testing import snapshot

Snapshot = dict[str, list[str]]


@dataclass(frozen=True)
class Step:
    backend: str
    migration: Migration

    @property
    def name(self) -> str:
        """``sqlite: version 2 (002_add_indexes.py)`` / ``vectors: table memos version 2 (002_add_memo_tags.py)``."""
        where = f"table {self.migration.line} " if self.migration.line else ""
        files = ", ".join(p.name for p in (self.migration.files or (self.migration.path,)))
        return f"{self.backend}: {where}version {self.migration.version} ({files})"


@dataclass(frozen=True)
class Walked:
    """What the walk did: the steps it went up, down and up again, those it only applied (no ``down``)."""

    stairs: tuple[Step, ...]
    irreversible: tuple[Step, ...]


class StairwayFailed(Exception):
    """A step of the walk failed or its schema did not come back; the message names the migration."""


def plan(migrator: Migrator) -> list[Step]:
    """Every migration of every backend, loaded, in the order one upgrade over every backend runs them."""
    views = []
    for cfg in migrator.config.backends.values():
        backend = open_backend(cfg)
        try:
            declared = list(backend.discover())
            loaded = list(backend.load(declared)) if declared else []
            views.append(crossplan.View(cfg.name, backend.capabilities.per_table_lines, loaded, (),
                                        sorted(loaded, key=lambda m: (m.line, m.version))))
        finally:
            backend.close()
    crossplan.check(views)
    return [Step(name, migration) for name, migration in crossplan.order(views).order]


def walk(migrator: Migrator, take: Callable[[Migrator], Snapshot] | None = None) -> Walked:
    """Walk every step up, down and up; raise :class:`StairwayFailed` at the first one that does not hold."""
    shoot = take or schemas
    stairs: list[Step] = []
    irreversible: list[Step] = []
    for step in plan(migrator):
        before = shoot(migrator)
        _run(step, "up", _up, migrator)
        after = shoot(migrator)
        if not step.migration.reversible:
            irreversible.append(step)
            continue
        _run(step, "down", _down, migrator)
        down = shoot(migrator)
        if down != before:
            undo = "its down" if not step.migration.line else "rolling it back"
            raise StairwayFailed(f"{step.name}: {undo} does not undo its up; the schema before the up (-) and after "
                                 f"the down (+):\n{_diff(before, down, 'before up', 'after down')}")
        _run(step, "up again", _up, migrator)
        again = shoot(migrator)
        if again != after:
            raise StairwayFailed(f"{step.name}: applied again after its down, it gives another schema than the first "
                                 f"time; after the first up (-) and after the second (+):\n"
                                 f"{_diff(after, again, 'after first up', 'after second up')}")
        stairs.append(step)
    return Walked(tuple(stairs), tuple(irreversible))


def schemas(migrator: Migrator) -> Snapshot:
    return {name: snapshot.take(cfg) for name, cfg in migrator.config.backends.items()}


def _up(migrator: Migrator, step: Step) -> None:
    migrator.upgrade(step.backend, to=step.migration.version, table=step.migration.line or None)


def _down(migrator: Migrator, step: Step) -> None:
    migrator.rollback("-1", step.backend, table=step.migration.line or None)


def _run(step: Step, what: str, action: Callable[[Migrator, Step], None], migrator: Migrator) -> None:
    try:
        action(migrator, step)
    except MigratorError as exc:
        raise StairwayFailed(f"{step.name}: {what} failed: {exc}") from exc


def _diff(before: Snapshot, after: Snapshot, before_name: str, after_name: str) -> str:
    parts: list[str] = []
    for backend in sorted(set(before) | set(after)):
        one, two = before.get(backend, []), after.get(backend, [])
        if one != two:
            parts.append(f"[{backend}]\n" + snapshot.diff(one, two, before_name, after_name))
    return "\n".join(parts)


def labels(steps: Sequence[Step]) -> str:
    return ", ".join(step.name for step in steps)
