"""Offline SQL: the plan of ``upgrade --sql`` / ``rollback --sql``, handed to the adapter to write, never run.

The plan is the real command's (same validation, same targets), made from the version table as it is
(read only: no lock, no ``prepare``) or, with ``start`` (``--from V``), from the files alone as if
every version up to V were applied, without connecting to the database.
"""

from __future__ import annotations

from collections.abc import Sequence

from migrator import plan as planning
from migrator.backends.base import Backend, WritesSql
from migrator.errors import UsageError
from migrator.model import AppliedMigration, Direction, Migration
from migrator.targets import Target


def upgrade_sql(backend: Backend, *, to: Target | None, start: int | None, allow_changed: bool = False,
                allow_out_of_order: bool = False) -> str:
    writer = _writer(backend)
    migrations = backend.discover()
    steps = planning.upgrade_plan(migrations, _applied(backend, migrations, start), to=to,
                                  allow_changed=allow_changed, allow_out_of_order=allow_out_of_order,
                                  backend=backend.name)
    return writer.offline_sql(steps, Direction.UP)


def rollback_sql(backend: Backend, goal: Target, *, start: int | None) -> str:
    writer = _writer(backend)
    migrations = backend.discover()
    applied = _applied(backend, migrations, start)
    steps = planning.rollback_plan(migrations, applied, goal, backend=backend.name)
    loaded = list(backend.load(steps))
    planning.check_reversible(loaded, backend.name, applied)
    return writer.offline_sql(loaded, Direction.DOWN)


def _writer(backend: Backend) -> WritesSql:
    if not isinstance(backend, WritesSql):
        raise UsageError(f"{backend.name}: --sql is for SQL backends; a {backend.type} backend has no SQL to show")
    return backend


def _applied(backend: Backend, migrations: Sequence[Migration], start: int | None) -> list[AppliedMigration]:
    """The version table's rows; with ``start``, the files up to ``start`` as if applied (nothing is read)."""
    if start is None:
        return list(backend.applied())
    versions = sorted(m.version for m in migrations)
    if start < 0 or (start and start not in versions):
        known = ", ".join(map(str, versions)) or "none"
        raise UsageError(f"{backend.name}: --from {start}: no migration has that version (versions: {known}; "
                         "0: an empty database)")
    return [AppliedMigration(version=m.version, name=m.name, checksum=m.checksum)
            for m in migrations if m.version <= start]
