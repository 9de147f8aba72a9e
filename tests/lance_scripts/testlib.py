"""Helpers shared by the LanceDB tests and the child processes they start (tests/test_lancedb_*.py)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from migrator.backends.lancedb import LanceBackend
from migrator.model import AppliedMigration, Direction, Migration

DIM = 16


def vectors(n: int, dim: int = DIM, seed: int = 0) -> pa.FixedSizeListArray:
    rng = np.random.default_rng(seed)
    return pa.FixedSizeListArray.from_arrays(pa.array(rng.random(n * dim, dtype=np.float32)), dim)


def memo_rows(n: int, start: int = 0, dim: int = DIM, seed: int = 0) -> pa.Table:
    ids = np.arange(start, start + n, dtype=np.int64)
    return pa.table({
        "id": pa.array(ids),
        "title": pa.array([f"memo {i}" for i in ids]),
        "category": pa.array([("work", "home", "misc")[i % 3] for i in ids]),
        "rev": pa.array(np.zeros(n, dtype=np.int64)),
        "vector": vectors(n, dim, seed + start),
    })


def write_files(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return folder


def backend(uri: Path | str, migrations: Path, name: str = "vectors",
            storage_options: dict[str, str] | None = None) -> LanceBackend:
    """The adapter as the tests use it: a 5 s lock timeout; on object storage a 1 s lease (killed holders)."""
    return LanceBackend(name, str(uri), migrations, lock_timeout=5.0, storage_options=storage_options,
                        lock_lease=1.0)


def pending(b: LanceBackend, *, to: int | None = None, line: str | None = None) -> list[Migration]:
    applied = b.applied()
    done = {(a.line, a.version) for a in applied}
    baselines = {a.line: a.version for a in applied if getattr(a, "baseline", False)}  # covers every version under it
    return [m for m in b.discover() if (m.line, m.version) not in done and m.version > baselines.get(m.line, 0)
            and (to is None or m.version <= to) and (line is None or m.line == line)]


def upgrade(b: LanceBackend, *, to: int | None = None, line: str | None = None,
            report: Callable[[str], None] | None = None) -> list[AppliedMigration]:
    """A minimal sequential runner over the Backend protocol (file order, each table in version order)."""
    lines: list[str] = []
    say = report or (lambda message: None)
    with b.lock(5.0):
        steps = list(b.load(pending(b, to=to, line=line)))
        if steps:
            b.prepare()
        done = []
        for m in sorted(steps, key=lambda m: (m.line, m.version)):
            lines.append(m.label)
            result = b.apply(m, Direction.UP, say)
            assert result is not None
            done.append(result)
    return done


def rollback(b: LanceBackend, table: str, target: int,
             report: Callable[[str], None] | None = None) -> list[int]:
    """Undo ``table``'s applied versions above ``target``, newest first (what `migrator rollback` does)."""
    say = report or (lambda message: None)
    undone = []
    with b.lock(5.0):
        files = {(m.line, m.version): m for m in b.discover()}
        for version in sorted((a.version for a in b.applied() if a.line == table and a.version > target),
                              reverse=True):
            b.apply(files[(table, version)], Direction.DOWN, say)
            undone.append(version)
    return undone


def by_line(applied: Sequence[AppliedMigration]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for a in applied:
        out.setdefault(a.line, []).append(a.version)
    return {k: sorted(v) for k, v in out.items()}


def index_names(table: Any) -> set[str]:
    return {i.name for i in table.list_indices()}


SEED_COLUMNS = ["tableName", "currentVersion", "lastMigratedAt"]
BOOKKEEPING = ("table_migrations", "table_migrations_history")


def seed_view(uri: Path | str, storage_options: dict[str, str] | None = None,
              version_table: str = "table_migrations") -> dict[str, int]:
    """``table_migrations`` read as the seed's TypeScript service reads it: three columns, one row per table.

    Fails if the table has other columns or two rows for one table.
    """
    import lancedb

    db = lancedb.connect(str(uri), storage_options=storage_options)
    table = db.open_table(version_table)
    assert table.schema.names == SEED_COLUMNS, f"{version_table} columns: {table.schema.names}"
    rows = table.to_arrow().to_pylist()
    names = [r["tableName"] for r in rows]
    assert len(names) == len(set(names)), f"{version_table} has two rows for one table: {sorted(names)}"
    assert all(isinstance(r["currentVersion"], int) and isinstance(r["lastMigratedAt"], int) for r in rows), rows
    return {r["tableName"]: r["currentVersion"] for r in rows}


def assert_seed_view_true(uri: Path | str, storage_options: dict[str, str] | None = None) -> dict[str, int]:
    """The seed-shaped reader's view equals each table's real stamp (``migrator.version`` in its schema metadata).

    Tables without a stamp (never migrated by migrator, e.g. adopted ones) and tables that do not exist (dropped,
    or stamped without running) have no stamp to compare. Returns the view.
    """
    import lancedb

    from migrator.lancedb import table_stamp

    view = seed_view(uri, storage_options)
    db = lancedb.connect(str(uri), storage_options=storage_options)
    tables = set(db.list_tables().tables) - set(BOOKKEEPING)
    for name in sorted(tables | set(view)):
        stamp = table_stamp(db, name) if name in tables else None
        if stamp is not None:
            assert view.get(name, 0) == stamp, f"{name} is stamped v{stamp}, table_migrations says {view.get(name)}"
    return view
