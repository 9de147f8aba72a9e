"""The ready tests a project turns on with one line in a test file::

    from migrator.testing import test_models_match_head, test_stairway, test_version_lines  # noqa: F401

Each runs on temporary databases (the plugin's ``migrator`` / ``migrated`` fixtures), never on the databases
the config names. Heavy modules (SQLAlchemy, lancedb) are imported when a test runs, not when this is imported.
"""

from __future__ import annotations

import warnings
from collections import Counter
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from migrator.api import Migrator

TARGET_KEYS = ("target_metadata", "target_schemas")
"""The config keys naming a backend's models (SQL: a SQLAlchemy MetaData; LanceDB: ``{table: pyarrow.Schema}``)."""


class IrreversibleWarning(UserWarning):
    """The stairway test applied a migration without a ``down`` and could not walk it down."""


def test_stairway(migrator: Migrator) -> None:
    """Every migration goes up, down and up again, the schema of every backend the same each time."""
    from migrator.testing.stairway import StairwayFailed, labels, walk

    try:
        walked = walk(migrator)
    except StairwayFailed as exc:
        failure = str(exc)
    else:
        failure = ""
    if failure:  # outside the except block: the message alone, no chained traceback
        pytest.fail(failure, pytrace=False)
    if walked.irreversible:
        warnings.warn(IrreversibleWarning(f"applied but not walked down (no down): {labels(walked.irreversible)}"),
                      stacklevel=1)


def test_version_lines(migrator: Migrator) -> None:
    """One version line per SQL database and per LanceDB table, no version twice on a line, requirements sound."""
    from migrator import crossplan
    from migrator.backends import open_backend
    from migrator.errors import MigratorError

    views = []
    problems: list[str] = []
    for cfg in migrator.config.backends.values():
        backend = open_backend(cfg)
        try:
            declared = list(backend.discover())
            per_table = backend.capabilities.per_table_lines
        except MigratorError as exc:
            problems.append(str(exc))
            continue
        finally:
            backend.close()
        counts = Counter((m.line, m.version) for m in declared)
        for (line, version), count in sorted(counts.items()):
            if count > 1:
                files = ", ".join(sorted({str(m.path) for m in declared if (m.line, m.version) == (line, version)}))
                where = f"table {line!r} " if line else ""
                problems.append(f"{cfg.name}: {where}version {version} is declared {count} times ({files})")
        lines = {m.line for m in declared}
        if not per_table and lines - {""}:
            problems.append(f"{cfg.name}: one version line per database expected, found lines {sorted(lines)}")
        if per_table and "" in lines:
            problems.append(f"{cfg.name}: a migration names no table ({', '.join(str(m.path) for m in declared)})")
        views.append(crossplan.View(cfg.name, per_table, declared))
    if not problems:
        try:
            crossplan.check(views)
        except MigratorError as exc:
            problems.append(str(exc))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_models_match_head(migrated: Migrator) -> None:
    """At head, autogenerate finds nothing to change for every backend whose config names its models."""
    from migrator.backends import open_backend
    from migrator.backends.base import ComparesModels

    config = migrated.config
    targets = [(cfg, cfg.options[key]) for cfg in config.backends.values() for key in TARGET_KEYS
               if cfg.options.get(key) is not None]
    if not targets:
        pytest.skip(f"no backend names its models ({' or '.join(TARGET_KEYS)})")
    root = config.path.resolve().parent if config.path else None
    problems: list[str] = []
    compared = 0
    for cfg, target in targets:
        backend = open_backend(cfg)
        try:
            if not isinstance(backend, ComparesModels):
                continue
            found = backend.compare_models(target, where=cfg.source, root=root)
            compared += 1
        finally:
            backend.close()
        if found is not None:
            changes = "\n".join(f"  {change}" for change in found.changes)
            problems.append(f"{cfg.name}: the models and the database at head differ "
                            f"(run `migrator new NAME --autogenerate --backend {cfg.name}`):\n{changes}")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
    if not compared:
        pytest.skip("no backend that names its models can compare them with its database")
