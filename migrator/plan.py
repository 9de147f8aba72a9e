"""What to run, in which order, for which line — pure functions over migrations and bookkeeping.

Nothing here touches a database: the runner reads the bookkeeping, the
adapter discovers the files, and these functions decide. Linear in the number
of migrations (dictionaries keyed by (line, version), one pass each).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar

from migrator import checksums, targets
from migrator.errors import IrreversibleMigration, UsageError, ValidationFailed
from migrator.model import (
    ISSUE_CHANGED,
    ISSUE_DRIFT,
    ISSUE_MISSING,
    ISSUE_OUT_OF_ORDER,
    AppliedMigration,
    Issue,
    LineStatus,
    Migration,
)
from migrator.targets import Target


class _OnALine(Protocol):
    @property
    def line(self) -> str: ...

    @property
    def version(self) -> int: ...


T = TypeVar("T", bound=_OnALine)


def _group(items: Iterable[T]) -> dict[str, list[T]]:
    """Items grouped per line, each line in version order (input order kept for ties)."""
    lines: dict[str, list[T]] = defaultdict(list)
    for item in items:
        lines[item.line].append(item)
    for group in lines.values():
        group.sort(key=lambda item: item.version)
    return dict(lines)


def by_line(migrations: Iterable[Migration]) -> dict[str, list[Migration]]:
    return _group(migrations)


def applied_by_line(applied: Iterable[AppliedMigration]) -> dict[str, list[AppliedMigration]]:
    return _group(applied)


class Covered:
    """Which (line, version) pairs count as applied: the recorded ones, and every version under a line's baseline.

    O(records) to build and O(1) to ask, however large the versions (an adopted baseline at 20240115 is one record).
    """

    def __init__(self, applied: Iterable[AppliedMigration]) -> None:
        self.done: set[tuple[str, int]] = set()
        self.baselines: dict[str, int] = {}
        for record in applied:
            if record.baseline:
                self.baselines[record.line] = max(self.baselines.get(record.line, 0), record.version)
            self.done.add((record.line, record.version))

    def __contains__(self, key: tuple[str, int]) -> bool:
        return key in self.done or 0 < key[1] <= self.baselines.get(key[0], 0)


def line_statuses(migrations: Sequence[Migration], applied: Sequence[AppliedMigration]) -> list[LineStatus]:
    """Per line: the version reached, what is applied, what is pending (sorted by line name)."""
    files = by_line(migrations)
    done = applied_by_line(applied)
    statuses = []
    for line in sorted(set(files) | set(done)):
        records = done.get(line, [])
        covered = Covered(records)
        pending = tuple(m for m in files.get(line, []) if (line, m.version) not in covered)
        current = records[-1].version if records else 0
        statuses.append(LineStatus(line=line, current=current, applied=tuple(records), pending=pending))
    return statuses


def validate(migrations: Sequence[Migration], applied: Sequence[AppliedMigration]) -> list[Issue]:
    """Edited and missing applied files, and pending versions below the newest applied one."""
    files = {(m.line, m.version): m for m in migrations}
    sharing = Counter(m.path for m in migrations)  # LanceDB: one file may hold several migrations
    issues: list[Issue] = []
    newest: dict[str, int] = {}
    applied_keys = Covered(applied)
    for record in applied:
        key = (record.line, record.version)
        newest[record.line] = max(newest.get(record.line, 0), record.version)
        migration = files.get(key)
        where = _where(record.line, record.version, record.name)
        if migration is None:
            # adopted rows (a database migrated by the seed's TypeScript tool) have no Python file by design
            if not record.extra.get("adopted"):
                issues.append(Issue(ISSUE_MISSING, f"{where} is applied but its file is missing", record.line,
                                    record.version))
        elif record.checksum and not checksums.matches(record.checksum, migration):
            change = checksums.change(record.checksum, migration)
            shared = sharing.get(migration.path, 1)
            whole = (f"; the checksum covers the whole file, which holds {shared} migrations" if shared > 1
                     else "")
            issues.append(Issue(ISSUE_CHANGED, f"{change.files}: {where} {change.what}{whole}", record.line,
                                record.version))
    for migration in migrations:
        key = (migration.line, migration.version)
        if key not in applied_keys and migration.version < newest.get(migration.line, 0):
            issues.append(Issue(
                ISSUE_OUT_OF_ORDER,
                f"{migration.path.name}: {_where(migration.line, migration.version, migration.name)} is pending "
                f"but older than the newest applied version {newest[migration.line]}",
                migration.line, migration.version))
    issues.sort(key=lambda i: (i.line, i.version or 0, i.kind))
    return issues


def upgrade_plan(
    migrations: Sequence[Migration],
    applied: Sequence[AppliedMigration],
    *,
    to: int | str | Target | None = None,
    line: str | None = None,
    allow_changed: bool = False,
    allow_out_of_order: bool = False,
    backend: str = "",
) -> list[Migration]:
    """Pending migrations up to ``to`` (a version, inclusive, or ``"+N"``: the next N), per line in version order.

    Refuses (ValidationFailed) when applied files were edited or removed
    (unless ``allow_changed``) or pending ones are out of order (unless
    ``allow_out_of_order``); refuses (UsageError) a target the line cannot
    reach going up: a version below the current one, more steps than are pending.
    """
    target = targets.upgrade_target(to)
    prefix = f"{backend}: " if backend else ""
    if target is not None and target.relative:
        _one_line(migrations, applied, line, f"{prefix}upgrade --to +{target.steps}")
    issues = validate(migrations, applied)
    blocking = [i for i in issues if (i.kind in (ISSUE_CHANGED, ISSUE_MISSING) and not allow_changed)
                or (i.kind == ISSUE_OUT_OF_ORDER and not allow_out_of_order)]
    if line is not None:
        blocking = [i for i in blocking if i.line == line]
    if blocking:
        flag = "--allow-out-of-order" if blocking[0].kind == ISSUE_OUT_OF_ORDER else "--allow-changed"
        more = f" (and {len(blocking) - 1} more)" if len(blocking) > 1 else ""
        raise ValidationFailed(f"{prefix}{blocking[0].message}{more}; refusing to upgrade (see `migrator validate`, "
                               f"or pass {flag})")
    done = Covered(applied)
    pending = [m for m in migrations if (m.line, m.version) not in done and (line is None or m.line == line)]
    pending.sort(key=lambda m: (m.line, m.version))
    if target is None:
        return pending
    if target.steps is not None:
        if len(pending) < target.steps:
            raise UsageError(f"{prefix}cannot apply {target.steps} migration{_s(target.steps)} (--to "
                             f"+{target.steps}): {len(pending)} {_is(len(pending))} pending{_on(line)}")
        return pending[:target.steps]
    version = target.version
    assert version is not None
    plan = [m for m in pending if m.version <= version]
    if not plan:
        _refuse_going_down(migrations, applied, line, version, prefix)
    return plan


def _refuse_going_down(migrations: Sequence[Migration], applied: Sequence[AppliedMigration], line: str | None,
                       version: int, prefix: str) -> None:
    """``upgrade --to V`` with every line concerned already above V: say so instead of "up to date"."""
    current: dict[str, int] = {m.line: 0 for m in migrations if line is None or m.line == line}
    for record in applied:
        if line is None or record.line == line:
            current[record.line] = max(current.get(record.line, 0), record.version)
    if current and all(reached > version for reached in current.values()):
        name, reached = min(current.items())
        where = f"{name!r} is" if name else "the database is"
        raise UsageError(f"{prefix}cannot upgrade to {version}: {where} already at version {reached} "
                         f"(to go down: migrator rollback {version})")


def _one_line(migrations: Sequence[Migration], applied: Sequence[AppliedMigration], line: str | None,
              what: str) -> None:
    """Steps count along one line: on a backend with a line per table, a relative target needs the table."""
    if line is None and (any(m.line for m in migrations) or any(r.line for r in applied)):
        raise UsageError(f"{what} counts steps on one table's version line: name the table with --table "
                         "(or give a version)")


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def _is(count: int) -> str:
    return "is" if count == 1 else "are"


def _on(line: str | None) -> str:
    return f" on {line!r}" if line else ""


def rollback_plan(
    migrations: Sequence[Migration],
    applied: Sequence[AppliedMigration],
    target: int | str | Target,
    *,
    line: str | None = None,
    backend: str = "",
) -> list[Migration]:
    """Applied migrations above ``target`` (a version, or ``"-N"``: the N newest), newest first.

    Every one must have its file; a target above the current version, or more steps than are applied, is refused.
    """
    goal = targets.rollback_target(target)
    prefix = f"{backend}: " if backend else ""
    records = [r for r in applied if line is None or r.line == line]
    if goal.steps is not None:
        _one_line(migrations, applied, line, f"{prefix}rollback -{goal.steps}")
        newest = sorted({r.version for r in records}, reverse=True)
        if len(newest) < goal.steps:
            raise UsageError(f"{prefix}cannot roll back {goal.steps} migration{_s(goal.steps)} (rollback "
                             f"-{goal.steps}): {len(newest)} {_is(len(newest))} applied{_on(line)}")
        version = newest[goal.steps] if len(newest) > goal.steps else 0
    else:
        assert goal.version is not None
        version = goal.version
    lines = {r.line for r in records}
    if line is not None and not records:
        raise UsageError(f"{prefix}nothing is applied on {line!r}")
    for name in sorted(lines):
        current = max(r.version for r in records if r.line == name)
        if version > current:
            where = f"{name!r} is" if name else "the database is"
            raise UsageError(f"{prefix}cannot roll back to {version}: {where} at version {current} "
                             f"(to go up: migrator upgrade --to {version})")
    files = {(m.line, m.version): m for m in migrations}
    plan: list[Migration] = []
    for record in sorted(records, key=lambda r: r.version, reverse=True):
        if record.version <= version:
            continue
        if record.baseline:
            why = record.irreversible or f"{_where(record.line, record.version, record.name)} is an adopted baseline"
            raise IrreversibleMigration(f"{prefix}cannot roll back below {record.line or 'the database'} "
                                        f"v{record.version}: {why}; rollback refused, nothing was changed")
        migration = files.get((record.line, record.version))
        if migration is None:
            raise UsageError(f"{prefix}cannot roll back {_where(record.line, record.version, record.name)}: "
                             "its migration file is missing")
        plan.append(migration)
    return plan


def check_reversible(plan: Sequence[Migration], backend: str = "",
                     applied: Sequence[AppliedMigration] = ()) -> None:
    """Refuse a rollback that would cross an irreversible migration, before anything runs.

    A migration is irreversible by its file (no ``down``) or by how it was applied (``AppliedMigration.irreversible``:
    a LanceDB migration that was stamped, not run, has no state to go back to).
    """
    prefix = f"{backend}: " if backend else ""
    why = {(r.line, r.version): r.irreversible for r in applied if r.irreversible}
    for migration in plan:
        if not migration.reversible:
            raise IrreversibleMigration(
                f"{prefix}{migration.path.name}: {migration.label} has no down migration; "
                "rollback refused, nothing was changed")
        reason = why.get((migration.line, migration.version))
        if reason:
            raise IrreversibleMigration(f"{prefix}{migration.path.name}: {reason}; rollback refused, nothing "
                                        "was changed")


def stamp_plan(
    migrations: Sequence[Migration], applied: Sequence[AppliedMigration], version: int, *, line: str | None = None,
    backend: str = "",
) -> tuple[list[Migration], list[Migration]]:
    """(to record, to unrecord) so that exactly the versions up to ``version`` count as applied."""
    prefix = f"{backend}: " if backend else ""
    if version < 0:
        raise UsageError(f"{prefix}stamp version must be 0 or positive (got {version})")
    chosen = [m for m in migrations if line is None or m.line == line]
    if version > 0 and not any(m.version == version for m in chosen):
        raise UsageError(f"{prefix}no migration has version {version}" + (f" on {line!r}" if line else ""))
    done = Covered(applied)
    record = [m for m in chosen if m.version <= version and (m.line, m.version) not in done]
    unrecord = [m for m in chosen if m.version > version and (m.line, m.version) in done]
    return record, unrecord


def _where(line: str, version: int, name: str) -> str:
    if line:
        return f"{line} v{version} ({name})" if name else f"{line} v{version}"
    return f"version {version} ({name})" if name else f"version {version}"


def refuse_drift(issues: Sequence[Issue], *, line: str | None = None, backend: str = "") -> None:
    """Refuse (ValidationFailed) to upgrade a line whose stored data disagrees with its bookkeeping.

    ``issues`` are the adapter's ``drift`` issues; with ``line``, only that line's count. No flag lets
    an upgrade past drift: the message names the way out (record the real version, or restore the data).
    """
    drifted = [i for i in issues if i.kind == ISSUE_DRIFT and (line is None or i.line == line)]
    if not drifted:
        return
    prefix = f"{backend}: " if backend else ""
    more = f" (and {len(drifted) - 1} more, see `migrator validate`)" if len(drifted) > 1 else ""
    raise ValidationFailed(f"{prefix}{drifted[0].message}{more}; upgrade refused, nothing was changed")
