"""Write new columns into a LanceDB table without rewriting the others: one guarded ``Merge`` commit.

The column-adding path of Lance (lancedb 0.40 / pylance 14, DESIGN.md 8a),
driven fragment by fragment so that the caller keeps the commit:

1. **Write.** For each fragment of the pinned version,
   ``LanceFragment.merge_columns`` runs a batch UDF over the columns it reads
   and writes only the UDF's output columns into a new data file; nothing is
   committed. The UDF may also only check batches (no output columns): then
   the fragments are read, nothing is written.
2. **Catch up.** Read the latest version. If the commits since the version
   written are only appends (and commits that change no fragment), the
   appended fragments get their new data files the same way; any other
   row-changing commit raises :class:`Blocked` (the caller starts again from
   the latest version or gives up, nothing committed).
3. **Commit.** One ``Merge`` holding every fragment with its new data file,
   and the new schema (the caller's ``finish`` edits it: drops, renames and
   order as metadata, see :mod:`.schema_edit`, and the schema metadata where
   migrator's stamp lives), guarded on the version caught up to
   (:mod:`.guard`: Lance refuses it when anyone committed after it; then step 2
   again). Indices on columns the commit keeps stay as they are (same index
   ids); Lance drops those on columns the new schema drops.

A kill before step 3 leaves only unreferenced data files (DESIGN.md 8a on
``cleanup_old_versions``); the commit is the only change.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .common import Commit, Report, commits, describe, open_table
from .guard import TableMoved, commit

__all__ = ["Blocked", "ColumnWrite", "Dropped", "commit_columns", "write_columns"]

# commits a catch-up can follow: appends (their rows are new fragments) and commits that change no fragment
CATCH_UP_OPS = frozenset({"Append", "CreateIndex", "UpdateConfig"})

# how many times the commit may be refused (a writer slipped in again) before giving up
MAX_COMMITS = 200


class Blocked(Exception):
    """Another writer deleted, updated or rewrote rows (not only appends): nothing was committed."""

    def __init__(self, blocking: list[Commit]) -> None:
        super().__init__(describe(blocking))
        self.blocking = blocking


class Dropped(Exception):
    """The table was dropped while its columns were being written: nothing was committed."""


class UdfFailed(Exception):
    """Wraps what the UDF raised, so that it comes out of Lance's error as itself."""


@dataclass
class ColumnWrite:
    """New data files written so far (not committed), per fragment, and the version they are caught up to."""

    compute: Callable[[Any], Any]            # RecordBatch of ``read_columns`` -> RecordBatch of ``output``
    output: Any                              # pyarrow schema of the columns written (may be empty: only read)
    read_columns: list[str]
    batch_size: int
    caught_up: int = 0
    fragments: dict[int, Any] = field(default_factory=dict)   # fragment id -> its metadata with the new file
    signatures: dict[int, str] = field(default_factory=dict)  # fragment id -> its metadata before
    schema: Any = None                       # the LanceSchema with the new fields (None: no output)
    rows: int = 0                            # rows computed
    rows_caught_up: int = 0
    error: BaseException | None = None       # what the UDF raised (Lance wraps it)


def _signature(fragment: Any) -> str:
    meta = fragment.metadata.to_json()
    return meta if isinstance(meta, str) else json.dumps(meta, sort_keys=True, default=str)


def write_columns(dataset: Any, write: ColumnWrite, fragments: list[Any] | None = None) -> None:
    """Step 1 for ``fragments`` of ``dataset`` (all of them when None); ``write.caught_up`` = its version."""
    import lance

    chosen = list(dataset.get_fragments()) if fragments is None else fragments

    def run(batch: Any) -> Any:
        try:
            out = write.compute(batch)
        except BaseException as exc:
            write.error = exc
            raise
        write.rows += batch.num_rows
        return out

    udf = lance.batch_udf(output_schema=write.output)(run) if len(write.output) else None
    for fragment in chosen:
        try:
            if udf is None:
                for batch in fragment.scanner(columns=write.read_columns, batch_size=write.batch_size).to_batches():
                    run(batch)
                merged, schema = fragment.metadata, None
            else:
                merged, schema = fragment.merge_columns(udf, columns=write.read_columns,
                                                        batch_size=write.batch_size)
        except BaseException:
            if write.error is not None:
                error, write.error = write.error, None
                raise error from None
            raise
        if schema is not None:
            if write.schema is not None and _fields(write.schema) != _fields(schema):
                raise Blocked([])  # the table's fields changed under us (not an append)
            write.schema = schema
        write.fragments[int(fragment.fragment_id)] = merged
        write.signatures[int(fragment.fragment_id)] = _signature(fragment)
    if fragments is None:
        write.caught_up = int(dataset.version)


def _fields(lance_schema: Any) -> tuple[bytes, ...]:
    _, (_meta, *raw) = lance_schema.__reduce__()
    return tuple(bytes(r) for r in raw)


def commit_columns(db: Any, name: str, write: ColumnWrite, finish: Callable[[Any], Any], *, what: str,
                   properties: dict[str, str], say: Report) -> Any:
    """Steps 2 and 3: catch up with appends, commit the ``Merge`` guarded; the new dataset.

    ``finish(lance_schema)`` returns the schema to commit (drops, renames, order, metadata).
    """
    import lance

    for _ in range(MAX_COMMITS):
        table = open_table(db, name)
        if table is None:
            raise Dropped(f"{name}: the table was dropped while its columns were being written; nothing was "
                          "committed")
        latest = table.to_lance()
        version = int(latest.version)
        if version != write.caught_up:
            since = commits(latest, write.caught_up + 1, version)
            blocking = [c for c in since if c.operation not in CATCH_UP_OPS]
            if blocking:
                raise Blocked(blocking)
            current = list(latest.get_fragments())
            changed = [f for f in current if int(f.fragment_id) in write.signatures
                       and write.signatures[int(f.fragment_id)] != _signature(f)]
            if changed:
                raise Blocked([c for c in since if c.changes_rows] or since)
            new = [f for f in current if int(f.fragment_id) not in write.fragments]
            if new:
                before = write.rows
                write_columns(latest, write, new)
                write.rows_caught_up += write.rows - before
                say(f"caught up with {write.rows - before:,} row(s) appended by {describe(since)}")
            write.caught_up = version
        current = list(latest.get_fragments())
        gone = set(write.fragments) - {int(f.fragment_id) for f in current}
        if gone:  # a fragment vanished without a blocking commit: never commit over it
            raise Blocked(commits(latest, version, version))
        schema = finish(write.schema if write.schema is not None else latest.lance_schema)
        operation = lance.LanceOperation.Merge([write.fragments[int(f.fragment_id)] for f in current], schema)
        try:
            return commit(latest, operation, read_version=version, table=name, what=what, properties=properties)
        except TableMoved:
            continue  # a writer slipped in between the catch-up and the commit: catch up again
    raise Blocked([])
