"""One plan across backends: per-line orders merged with the edges the ``requires`` declarations add.

Pure functions over what the runner read. A migration runs as soon as what it
requires is reached and before the required line moves past it (so it sees the
state it was written for); a line already past the required version is taken as
it is. Ties go in config order. See README, "Cross-backend requirements".
"""

from __future__ import annotations

import heapq
import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from migrator.errors import LoaderError, UsageError
from migrator.model import AppliedMigration, Migration, Requirement

Key = tuple[str, str, int]  # (backend, line, version)


@dataclass(frozen=True)
class View:
    """One backend as the planner sees it: its files, its bookkeeping, and the steps this run would apply."""

    name: str
    per_table_lines: bool
    declared: Sequence[Migration]
    applied: Sequence[AppliedMigration] = ()
    steps: Sequence[Migration] = ()


@dataclass
class Plan:
    """The steps in run order, and for each step the steps it must wait for (its line and its requirements)."""

    order: list[tuple[str, Migration]] = field(default_factory=list)
    after: dict[Key, set[Key]] = field(default_factory=dict)


def has_requirements(views: Iterable[View]) -> bool:
    return any(m.requires for view in views for m in view.declared)


def current(view: View) -> dict[str, int]:
    reached: dict[str, int] = defaultdict(int)
    for record in view.applied:
        reached[record.line] = max(reached[record.line], record.version)
    return reached


def where(backend: str, migration: Migration) -> str:
    """``sqlite: 003_backfill.up.sql`` / ``vectors: chunks_vec v3 (reembed)``, as messages name a dependant."""
    return f"{backend}: {migration.label if migration.line else migration.path.name}"


def check(views: Sequence[View]) -> None:
    """Refuse (LoaderError, one line) a requirement naming an unknown backend, table or version, or a cycle."""
    by_name = {view.name: view for view in views}
    for view in views:
        for migration in view.declared:
            for requirement in migration.requires:
                _check_one(by_name, view.name, migration, requirement)
    fresh = [View(v.name, v.per_table_lines, v.declared, (), sorted(v.declared, key=lambda m: (m.line, m.version)))
             for v in views]
    order(fresh)  # a cycle among the declarations: refused whatever the databases hold


def _check_one(views: Mapping[str, View], backend: str, migration: Migration, requirement: Requirement) -> None:
    prefix = f"{migration.path}: {migration.label} requires {requirement.label}"
    target = views.get(requirement.backend)
    if target is None:
        known = ", ".join(sorted(views)) or "none"
        raise LoaderError(f"{prefix}, but the config has no backend {requirement.backend!r} (backends: {known})")
    if target.per_table_lines and not requirement.line:
        raise LoaderError(f"{prefix}, but {requirement.backend!r} keeps a version per table: name the table "
                          f"({requirement.backend}.TABLE=VERSION)")
    if not target.per_table_lines and requirement.line:
        raise LoaderError(f"{prefix}, but {requirement.backend!r} has one version line, not tables "
                          f"({requirement.backend}=VERSION)")
    if requirement.backend == backend and requirement.line == migration.line:
        raise LoaderError(f"{prefix}: its own line (versions of a line already run in order)")
    versions = {m.version for m in target.declared if m.line == requirement.line}
    versions |= {r.version for r in target.applied if r.line == requirement.line}
    if not versions:
        raise LoaderError(f"{prefix}, but no migration of {requirement.backend!r} declares table "
                          f"{requirement.line!r}")
    if requirement.version not in versions:
        on = f"table {requirement.line!r} of " if requirement.line else ""
        raise LoaderError(f"{prefix}, but {on}{requirement.backend!r} has no version {requirement.version} "
                          f"(versions: {', '.join(str(v) for v in sorted(versions))})")


def order(views: Sequence[View]) -> Plan:
    """Every view's steps in one order: each line in version order, requirement edges honoured, ties by config.

    Raises UsageError when a requirement cannot be met by this run (its version is not reached and not in the
    plan), LoaderError naming the migrations when the requirements form a cycle.
    """
    rank = {view.name: index for index, view in enumerate(views)}
    steps: dict[Key, Migration] = {}
    lines: dict[tuple[str, str], list[Migration]] = defaultdict(list)
    for view in views:
        for migration in view.steps:
            steps[(view.name, migration.line, migration.version)] = migration
            lines[(view.name, migration.line)].append(migration)
    after: dict[Key, set[Key]] = {key: set() for key in steps}
    for (backend, line), line_steps in lines.items():
        line_steps.sort(key=lambda m: m.version)
        for before, then in itertools.pairwise(line_steps):
            after[(backend, line, then.version)].add((backend, line, before.version))
    reached = {view.name: current(view) for view in views}
    for (backend, line, version), migration in steps.items():
        key = (backend, line, version)
        for requirement in migration.requires:
            required = (requirement.backend, requirement.line)
            now = reached.get(requirement.backend, {}).get(requirement.line, 0)
            if now > requirement.version:
                continue  # already past: it runs against the newer state
            pending = lines.get(required, [])
            if now < requirement.version:
                if not any(m.version == requirement.version for m in pending):
                    raise UsageError(f"{where(backend, migration)} requires {requirement.label}, which this run "
                                     "does not reach (run `migrator upgrade` over every backend)")
                after[key].add((*required, requirement.version))
            moving_on = next((m for m in pending if m.version > requirement.version), None)
            if moving_on is not None:
                after[(*required, moving_on.version)].add(key)
    plan = Plan(after=after)
    waiting = {key: len(preds) for key, preds in after.items()}
    successors: dict[Key, list[Key]] = defaultdict(list)
    for key, preds in after.items():
        for pred in preds:
            successors[pred].append(key)
    ready = [(rank[key[0]], key[1], key[2], key) for key, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    while ready:
        *_, key = heapq.heappop(ready)
        plan.order.append((key[0], steps[key]))
        for successor in successors[key]:
            waiting[successor] -= 1
            if waiting[successor] == 0:
                heapq.heappush(ready, (rank[successor[0]], successor[1], successor[2], successor))
    if len(plan.order) < len(steps):
        raise LoaderError(f"requirements form a cycle: {_cycle(after, waiting, steps)}")
    return plan


def _cycle(after: Mapping[Key, set[Key]], waiting: Mapping[Key, int], steps: Mapping[Key, Migration]) -> str:
    """One cycle among the steps left unordered, named migration by migration."""
    left = {key for key, count in waiting.items() if count > 0}
    key = min(left)
    path: list[Key] = []
    while key not in path:
        path.append(key)
        key = min(pred for pred in after[key] if pred in left)
    loop = path[path.index(key):]
    loop.reverse()  # requirement order: each one before the next
    names = [where(k[0], steps[k]) for k in (*loop, loop[0])]
    return " -> ".join(names)


def dependants(views: Sequence[View], backend: str, remaining: Mapping[str, int]) -> list[tuple[str, Migration,
                                                                                               Requirement]]:
    """Applied migrations (of any backend) that require ``backend``'s lines above what a rollback leaves.

    ``remaining``: per rolled-back line, the version it will be at. A migration that the same rollback undoes is
    not a dependant.
    """
    found = []
    for view in views:
        files = {(m.line, m.version): m for m in view.declared}
        for record in view.applied:
            if view.name == backend and record.line in remaining and record.version > remaining[record.line]:
                continue
            migration = files.get((record.line, record.version))
            if migration is None:
                continue
            for requirement in migration.requires:
                if (requirement.backend == backend and requirement.line in remaining
                        and requirement.version > remaining[requirement.line]):
                    found.append((view.name, migration, requirement))
    return found
