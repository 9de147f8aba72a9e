"""Small pieces shared by the LanceDB adapter modules: metadata keys, the migration context, table helpers.

Every migrator key in a data table's schema metadata starts with ``migrator.``:

``migrator.version``
    The migration version the table's data is at. Written by the same commit
    as the data when ``recreate_table`` runs inside a migration (the overwrite
    carries the new schema with this key), and by a metadata commit after any
    other migration. It is what makes a crash between a data commit and the
    bookkeeping recoverable without running a transform twice.
``migrator.indices``
    JSON list of the :class:`migrator.lancedb.Index` specs migrator keeps on
    the table (created, deferred or to rebuild), with their parameters.
``migrator.source_version`` / ``migrator.attempt``
    Present only between a ``recreate_table`` overwrite commit and the end of
    its migration: the Lance version the rewrite read, and the attempt id
    carried in the overwrite's transaction properties. Recovery uses them to
    check that no other writer's commit was overwritten.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from migrator.lancedb import Index
from migrator.progress import Structured

META_VERSION = "migrator.version"
META_INDICES = "migrator.indices"
META_SOURCE = "migrator.source_version"
META_ATTEMPT = "migrator.attempt"
MIGRATOR_PREFIX = "migrator."

TX_ATTEMPT = "migrator.attempt"
TX_OP = "migrator.op"

# Lance operations that change no row: they may interleave with a rewrite without loss.
ROW_NEUTRAL_OPS = frozenset({"CreateIndex", "UpdateConfig", "Rewrite"})

Report = Callable[[str], None]
T = TypeVar("T")


def no_report(message: str) -> None:
    """A report callback that drops the line."""


def prefixed(report: Report, name: str) -> Report:
    """``report`` with ``"<table>: "`` in front: progress lines of helpers called outside a migration.

    Inside a migration the runner already names the migration (and its table)
    in front of each line, so the adapter reports without the prefix.
    """
    if report is no_report:
        return report

    def say(message: str) -> None:
        text = f"{name}: {message}"
        report(message.reworded(text) if isinstance(message, Structured) else text)  # a progress record stays one

    return say


@dataclass
class MigrationContext:
    """The migration being applied in this thread (set by the adapter around the function)."""

    table: str
    version: int
    label: str
    report: Report
    attempt: str
    start_version: int | None                    # the table's Lance version before the migration (None: absent)
    deferred_reported: set[str] = field(default_factory=set)  # deferred indices already reported
    engine: str = "local"                        # the backend's ``engine`` key: where recreate_table runs by default


CURRENT: ContextVar[MigrationContext | None] = ContextVar("migrator_lance_migration", default=None)


def table_names(db: Any) -> list[str]:
    """Every table of the connection, page after page."""
    names: list[str] = []
    token = None
    while True:
        page = db.list_tables(page_token=token)
        names.extend(page.tables)
        token = getattr(page, "page_token", None)
        if not token:
            return names


def open_table(db: Any, name: str) -> Any | None:
    """The table at its latest version, or None when it does not exist."""
    try:
        return db.open_table(name)
    except ValueError as exc:
        if "not found" in str(exc) or "does not exist" in str(exc):
            return None
        raise
    except FileNotFoundError:
        return None


def metadata_of(schema: Any) -> dict[str, str]:
    """A pyarrow schema's metadata as ``str -> str``."""
    raw = schema.metadata or {}
    return {_text(k): _text(v) for k, v in raw.items()}


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def stamp_of(meta: dict[str, str]) -> int | None:
    value = meta.get(META_VERSION)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def stamp_of_table(db: Any, name: str) -> int | None:
    table = open_table(db, name)
    return None if table is None else stamp_of(metadata_of(table.schema))


def recorded_indices(meta: dict[str, str]) -> list[Index]:
    raw = meta.get(META_INDICES)
    if not raw:
        return []
    try:
        items = json.loads(raw)
    except ValueError:
        return []
    specs = []
    for item in items if isinstance(items, list) else []:
        try:
            specs.append(Index.from_dict(item))
        except (KeyError, TypeError, ValueError):
            continue
    return specs


def indices_json(specs: Iterable[Index]) -> str:
    return json.dumps([s.to_dict() for s in specs], sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Commit:
    version: int
    operation: str          # Lance operation class name: Append, Overwrite, Merge, CreateIndex, ...
    properties: dict[str, str]
    restored_to: int | None = None  # a Restore: the version it brought back

    @property
    def changes_rows(self) -> bool:
        return self.operation not in ROW_NEUTRAL_OPS

    def __str__(self) -> str:
        return f"{self.version} ({self.operation})"


def commits(dataset: Any, first: int, last: int) -> list[Commit]:
    """The commits of versions ``first..last`` (inclusive); an unreadable one counts as a row change."""
    found = []
    for version in range(max(first, 1), last + 1):
        try:
            transaction = dataset.read_transaction(version)
        except Exception:
            transaction = None
        if transaction is None:
            found.append(Commit(version, "Unknown", {}))
            continue
        props = dict(getattr(transaction, "transaction_properties", None) or {})
        operation = transaction.operation
        target = getattr(operation, "version", None) if type(operation).__name__ == "Restore" else None
        found.append(Commit(version, type(operation).__name__, props,
                            int(target) if isinstance(target, int) else None))
    return found


def changes_since(dataset: Any, base: int, upto: int | None = None) -> list[Commit]:
    """The row-changing commits that make the dataset's latest version (or version ``upto``) differ from ``base``.

    A Restore to a version at or after ``base`` brings back exactly that
    version's changes (a failed migration undone leaves none); a Restore to an
    older version is itself a change.
    """
    latest = int(dataset.version) if upto is None else upto
    states: dict[int, list[Commit]] = {base: []}
    for commit in commits(dataset, base + 1, latest):
        before = states.get(commit.version - 1, [])
        if commit.restored_to is not None:
            states[commit.version] = states.get(commit.restored_to, [commit]) if commit.restored_to >= base \
                else [commit]
        else:
            states[commit.version] = [*before, commit] if commit.changes_rows else before
    return states.get(latest, [])


def describe(items: Iterable[Commit]) -> str:
    return ", ".join(str(c) for c in items)


def retry(action: Callable[[], T], *, attempts: int = 8, what: str = "commit") -> T:
    """Run ``action``, retrying Lance commit conflicts with a short backoff."""
    delay = 0.05
    for attempt in range(attempts):
        try:
            return action()
        except Exception as exc:
            if attempt == attempts - 1 or not is_conflict(exc):
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    raise AssertionError("unreachable")  # pragma: no cover


def is_conflict(exc: BaseException) -> bool:
    """A commit conflict worth retrying (Lance marks incompatible ones as not retryable)."""
    retryable = getattr(exc, "retryable", None)
    if isinstance(retryable, bool):
        return retryable
    text = f"{type(exc).__name__} {exc}".lower()
    if "incompatible" in text:
        return False
    return "conflict" in text or "retryable" in text
