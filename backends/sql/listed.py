"""Migrations given as a list in code (the seed's ``MigrationRunner.run_migrations(MIGRATIONS)``), not as files.

Each item is a mapping, an object with attributes, or a tuple ``(version, name, up[, down])``:

- ``version``: a positive integer, unique in the list; ``name``: a non-empty string;
- ``up`` (also read as ``up_sql`` or ``sql``): SQL text (many statements, split as a ``.up.sql`` file is)
  or a callable ``up(db)`` receiving the same ``db`` as a ``.py`` migration;
- ``down`` (or ``down_sql``), optional: the same; no ``down`` means irreversible;
- ``transactional``, optional: ``False`` runs it outside a transaction.

Messages and the bookkeeping name such a migration ``NNN_name`` as if it were a file; its checksum is the
sha256 of its SQL text (of a callable's source), so an item edited after it was applied is reported as
edited, as a file would be.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from migrator import loader
from migrator.errors import LoaderError, UsageError
from migrator.model import Migration

from . import split as sqlsplit
from .sources import PythonCode, SqlCode

_MISSING = object()
_FIELDS = {"version": ("version",), "name": ("name",), "up": ("up", "up_sql", "sql"), "down": ("down", "down_sql"),
           "transactional": ("transactional",)}


def from_list(items: Any, dialect: str, where: str) -> list[Migration]:
    """The loaded migrations of ``items``, in version order; UsageError / LoaderError naming ``where`` and the item."""
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Sequence):
        raise UsageError(f"{where}: migrations must be a folder (a string or a path) or a list of migrations, "
                         f"not {type(items).__name__}")
    found: dict[int, tuple[int, Migration]] = {}
    for index, item in enumerate(items):
        migration = _one(item, dialect, f"{where}: migrations[{index}]")
        if migration.version in found:
            raise LoaderError(f"{where}: migrations[{found[migration.version][0]}] and migrations[{index}] both have "
                              f"version {migration.version}")
        found[migration.version] = (index, migration)
    return [found[version][1] for version in sorted(found)]


def _one(item: Any, dialect: str, here: str) -> Migration:
    version, name, up, down, transactional = (_field(item, key, here) for key in _FIELDS)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise UsageError(f"{here}: version must be a positive integer, not {version!r}")
    if not isinstance(name, str) or not name.strip():
        raise UsageError(f"{here}: name must be a non-empty string, not {name!r}")
    if up is _MISSING or up is None:
        raise UsageError(f"{here}: has no up (SQL text or a function up(db))")
    down = None if down is _MISSING else down
    transactional = True if transactional is _MISSING else transactional
    if not isinstance(transactional, bool):
        raise UsageError(f"{here}: transactional must be True or False, not {transactional!r}")
    label = f"{version:03d}_{name.strip().replace('/', '_').replace(chr(0), '_')}"
    path = Path(label)
    if isinstance(up, str) and (down is None or isinstance(down, str)):
        up_statements = _statements(up, dialect, f"{here}: up", transactional)
        down_statements = None if down is None else _statements(down, dialect, f"{here}: down", transactional)
        contents = [up.encode(), *([] if down is None else [down.encode()])]
        return Migration(version=version, name=name, path=path, checksum=loader.digest(*contents),
                         reversible=down is not None, transactional=transactional,
                         payload=SqlCode(path, path if down is not None else None, up_statements, down_statements,
                                         transactional, transactional))
    if callable(up) and (down is None or callable(down)):
        return Migration(version=version, name=name, path=path,
                         checksum=loader.digest(*(_source(f) for f in (up, down) if f is not None)),
                         reversible=down is not None, transactional=transactional,
                         payload=PythonCode(path, up, down))
    raise UsageError(f"{here}: up and down must both be SQL text or both be functions up(db) / down(db), not "
                     f"{type(up).__name__} and {type(down).__name__}")


def _field(item: Any, key: str, here: str) -> Any:
    names = _FIELDS[key]
    if isinstance(item, tuple | list) and not hasattr(item, "_fields"):  # a plain tuple: (version, name, up[, down])
        if not 3 <= len(item) <= 4:
            raise UsageError(f"{here}: a tuple must be (version, name, up) or (version, name, up, down), "
                             f"not {len(item)} items")
        position = {"version": 0, "name": 1, "up": 2, "down": 3}.get(key)
        return item[position] if position is not None and position < len(item) else _MISSING
    for name in names:
        if isinstance(item, Mapping):
            if name in item:
                return item[name]
        elif hasattr(item, name):
            return getattr(item, name)
    if key in ("version", "name"):
        raise UsageError(f"{here}: has no {key} (a mapping, an object with version, name, up[, down], or a "
                         f"tuple (version, name, up[, down]); got {type(item).__name__})")
    return _MISSING


def _statements(text: str, dialect: str, here: str, transactional: bool) -> tuple[sqlsplit.Statement, ...]:
    try:
        statements = tuple(sqlsplit.split(text, dialect))
    except sqlsplit.SplitError as exc:
        raise LoaderError(f"{here}: line {exc.line}: {exc.message}") from None
    if not statements:
        raise LoaderError(f"{here}: holds no SQL statement")
    if transactional:
        for number, statement in enumerate(statements, 1):
            command = sqlsplit.transaction_control(statement.text, dialect)
            if command is not None:
                raise LoaderError(f"{here}: statement {number} is {command}, but the migration runs in one "
                                  "transaction with its version row; remove it, or set transactional=False")
    return statements


def _source(function: Callable[..., object]) -> bytes:
    try:
        return inspect.getsource(function).encode()
    except (OSError, TypeError):
        return getattr(function, "__qualname__", repr(function)).encode()
