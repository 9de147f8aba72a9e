"""``recreate_table``: rewrite a LanceDB table in place, streamed, atomic, indices rebuilt, no silent loss.

How it works (lancedb 0.40 / pylance 14, see DESIGN.md section 8a):

1. Open the table and pin its current version ``v`` (``table.to_lance()``);
   note its indices and their parameters (recorded specs from the schema
   metadata ``migrator.indices``, what Lance reports for the others).
2. Stream ``dataset.scanner(batch_size=...).to_reader()`` through
   ``transform(batch) -> batch`` into ``lance.write_dataset(..., mode="overwrite")``:
   one atomic commit, history kept, memory flat in table size. If the
   transform or the row-count check raises, nothing is committed.
3. The new schema's metadata carries ``migrator.version`` (when called inside
   a migration of this table), ``migrator.indices`` (the specs to rebuild),
   ``migrator.source_version`` = ``v`` and ``migrator.attempt``; the commit's
   transaction properties carry the same attempt id. The stamp is therefore
   written by the very commit that changes the data.
4. Lance lets an overwrite win over appends committed after ``v`` — their rows
   would be gone without an error. So after the commit at version ``c`` the
   commits ``v+1 .. c-1`` are read back; if any of them changed rows (Append,
   Update, Delete, Merge, ...), the other writer's version ``c-1`` is
   restored (unless someone wrote again after ``c``: then nothing is touched
   and the error says which versions hold what) and the rewrite is retried
   from there, ``retries`` times, then :class:`ConcurrentWriteError`.
5. Verify the committed row count, then rebuild each surviving index with its
   old kind and parameters (a progress line per index; vector ones say "slow").

A crash between 3 and the end of the migration leaves the table in the new
schema, stamped, maybe with indices missing; the adapter finishes the
indices and the bookkeeping on the next run and re-checks step 4 from the
recorded source version and attempt (:func:`audit_overwrite`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from migrator.lancedb import ConcurrentWriteError, Index, RecreateResult

from .common import (
    CURRENT,
    META_ATTEMPT,
    META_INDICES,
    META_SOURCE,
    META_VERSION,
    MIGRATOR_PREFIX,
    TX_ATTEMPT,
    TX_OP,
    Commit,
    Report,
    commits,
    describe,
    indices_json,
    metadata_of,
    no_report,
    open_table,
    prefixed,
    recorded_indices,
    stamp_of,
)
from .indices import column_fits, ensure, existing_specs, record

READ_AHEAD_BYTES = 64 * 1024 * 1024

PROGRESS_EVERY_S = 10.0


class RowCountMismatch(RuntimeError):
    pass


@dataclass
class _Counts:
    read: int = 0
    written: int = 0
    error: BaseException | None = None
    last_report: float = field(default_factory=time.monotonic)


def recreate_table(
    db: Any,
    name: str,
    *,
    schema: Any = None,
    transform: Callable[[Any], Any] | None = None,
    batch_size: int = 4096,
    retries: int = 2,
    allow_row_count_change: bool = False,
    report: Report | None = None,
) -> RecreateResult:
    """See :func:`migrator.lancedb.recreate_table`."""
    import lance
    import pyarrow as pa

    if batch_size < 1:
        raise ValueError("recreate_table: batch_size must be at least 1")
    if retries < 0:
        raise ValueError("recreate_table: retries must be 0 or more")
    if schema is not None and not isinstance(schema, pa.Schema):
        raise TypeError(f"recreate_table: schema must be a pyarrow.Schema (got {type(schema).__name__})")
    ctx = CURRENT.get()
    in_migration = ctx is not None and ctx.table == name
    say = ctx.report if ctx is not None and in_migration and report is None else \
        prefixed(report or (ctx.report if ctx is not None else no_report), name)
    attempt = ctx.attempt if ctx is not None and in_migration else uuid.uuid4().hex
    rounds = retries + 1
    for round_no in range(1, rounds + 1):
        table = open_table(db, name)
        if table is None:
            raise ValueError(f"recreate_table: table {name!r} does not exist")
        dataset = table.to_lance()
        source_version = int(dataset.version)
        if ctx is not None and in_migration:
            ctx.recreate_reading = source_version  # until the overwrite commits, nothing here is ours
        old_meta = metadata_of(dataset.schema)
        recorded = recorded_indices(old_meta)
        dropped: list[str] = []
        present = existing_specs(table, recorded, say, dropped)
        present_names = {s.index_name for s in present}
        specs = present + [s for s in recorded if s.index_name not in present_names]  # deferred ones too
        total = int(dataset.count_rows())

        # a small read-ahead buffer: Lance's default (2 GiB) made peak memory grow with table size
        batches: Iterator[Any] = iter(dataset.scanner(batch_size=batch_size, io_buffer_size=READ_AHEAD_BYTES)
                                      .to_reader())
        first = next(batches, None)
        if first is None:
            first = pa.RecordBatch.from_pylist([], schema=dataset.schema)
        first_out = _apply(transform, first)
        target = schema if schema is not None else (first_out[0].schema if first_out else dataset.schema)

        surviving: list[Index] = []
        for spec in specs:
            index = target.get_field_index(spec.column)
            if index >= 0 and column_fits(spec, target.field(index)):
                surviving.append(spec)
            else:
                dropped.append(spec.index_name)
                say(f"index {spec.index_name} is not rebuilt: column {spec.column} is gone or changed type")

        meta = {k: v for k, v in old_meta.items() if not k.startswith(MIGRATOR_PREFIX)}
        meta.update({k: v for k, v in metadata_of(target).items() if not k.startswith(MIGRATOR_PREFIX)})
        if surviving:
            meta[META_INDICES] = indices_json(surviving)
        meta[META_SOURCE] = str(source_version)
        meta[META_ATTEMPT] = attempt
        if ctx is not None and in_migration:  # never lower it (an out-of-order migration)
            meta[META_VERSION] = str(max(ctx.version, stamp_of(old_meta) or 0))
        elif META_VERSION in old_meta:
            meta[META_VERSION] = old_meta[META_VERSION]
        target = pa.schema(list(target), metadata=meta)

        counts = _Counts()
        stream = _stream(name, first, first_out, batches, transform, target, total, counts, say,
                         allow_row_count_change)
        reader = pa.RecordBatchReader.from_batches(target, stream)
        say(f"rewriting {total:,} rows of Lance version {source_version}"
            + (f" (attempt {round_no} of {rounds})" if round_no > 1 else ""))
        started = time.perf_counter()
        try:
            written = lance.write_dataset(
                reader, dataset, schema=target, mode="overwrite",
                data_storage_version=dataset.data_storage_version,
                transaction_properties={TX_ATTEMPT: attempt, TX_OP: "recreate_table", "migrator.table": name},
            )
        except BaseException as exc:
            if counts.error is not None:  # the transform or the row check raised inside the stream
                raise counts.error from None
            raise RuntimeError(f"{name}: rewriting the table failed, nothing was committed: {exc}") from exc
        data_version = int(written.version)
        if ctx is not None and in_migration:
            ctx.recreate_reading = None
        say(f"wrote {counts.written:,} rows as Lance version {data_version} "
            f"in {time.perf_counter() - started:.1f} s")

        foreign = [c for c in commits(written, source_version + 1, data_version - 1) if c.changes_rows]
        if foreign:
            if ctx is not None and in_migration:
                ctx.left_for_other_writer = True  # from here on, a failure must not roll the table back
            _undo_lost_writes(db, name, data_version, foreign, say)
            if round_no < rounds:
                say("retrying the recreation on top of their rows")
                continue
            raise ConcurrentWriteError(
                f"{name}: other writers committed {describe(foreign)} while the table was being rewritten "
                f"{rounds} time(s); their version was restored (no rows lost) and the recreation gave up — "
                "stop the writers or retry later",
                line=name, version=ctx.version if ctx is not None and in_migration else None, restored=True)

        stored = int(written.count_rows())
        if stored != counts.written:
            table = open_table(db, name)
            if table is not None:
                table.restore(source_version)
            raise RuntimeError(f"{name}: the rewrite committed {stored:,} rows but {counts.written:,} were written; "
                               f"restored Lance version {source_version}")
        if ctx is not None and in_migration:
            ctx.left_for_other_writer = False

        table = open_table(db, name)
        assert table is not None
        built, deferred = ensure(table, name, surviving, say, rows=stored, verb="rebuilding",
                                 reported=ctx.deferred_reported if ctx is not None and in_migration else None)
        table.checkout_latest()
        if not in_migration:  # inside a migration the adapter clears these with its own stamp commit
            record(table, surviving, {META_SOURCE: None, META_ATTEMPT: None})
        return RecreateResult(
            table=name, rows=stored, source_version=source_version, data_version=data_version,
            version=int(table.version), indices_rebuilt=tuple(built), indices_deferred=tuple(deferred),
            indices_dropped=tuple(dropped), attempts=round_no)
    raise AssertionError("unreachable")  # pragma: no cover


def _apply(transform: Callable[[Any], Any] | None, batch: Any) -> list[Any]:
    """The transform's output for one batch, as a list of record batches."""
    import pyarrow as pa

    if transform is None:
        return [batch]
    out = transform(batch)
    if isinstance(out, pa.RecordBatch):
        return [out]
    if isinstance(out, pa.Table):
        return list(out.to_batches())
    raise TypeError(f"recreate_table: transform must return a pyarrow RecordBatch (got {type(out).__name__})")


def _conform(batch: Any, target: Any, name: str) -> Any:
    """``batch`` with exactly ``target``'s columns, in order, cast to its types."""
    import pyarrow as pa

    names = batch.schema.names
    missing = [f.name for f in target if f.name not in names]
    if missing:
        raise ValueError(f"recreate_table({name!r}): the transform's output lacks column(s) {', '.join(missing)}")
    extra = [n for n in names if target.get_field_index(n) < 0]
    if extra:
        raise ValueError(f"recreate_table({name!r}): the transform's output has column(s) {', '.join(extra)} that "
                         "are not in the new schema")
    columns = []
    for f in target:
        column = batch.column(f.name)
        if not column.type.equals(f.type):
            try:
                column = column.cast(f.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ValueError(f"recreate_table({name!r}): column {f.name} is {column.type} in the transform's "
                                 f"output and cannot become {f.type}: {exc}") from exc
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=target)


def _stream(
    name: str,
    first: Any,
    first_out: list[Any],
    rest: Iterator[Any],
    transform: Callable[[Any], Any] | None,
    target: Any,
    total: int,
    counts: _Counts,
    say: Report,
    allow_row_count_change: bool,
) -> Iterator[Any]:
    """The rewritten batches; an error is kept in ``counts.error`` (Lance wraps what a stream raises)."""
    try:
        counts.read += first.num_rows
        for out in first_out:
            counts.written += out.num_rows
            yield _conform(out, target, name)
        for batch in rest:
            counts.read += batch.num_rows
            for out in _apply(transform, batch):
                counts.written += out.num_rows
                yield _conform(out, target, name)
            now = time.monotonic()
            if now - counts.last_report >= PROGRESS_EVERY_S:
                counts.last_report = now
                say(f"{counts.read:,} of {total:,} rows rewritten")
        if counts.read != total:
            raise RowCountMismatch(f"{name}: read {counts.read:,} rows from a version that holds {total:,}")
        if counts.written != counts.read and not allow_row_count_change:
            raise RowCountMismatch(
                f"recreate_table({name!r}): the transform turned {counts.read:,} rows into {counts.written:,}; "
                "nothing was committed (pass allow_row_count_change=True if that is intended)")
    except BaseException as exc:
        counts.error = exc
        raise


def _undo_lost_writes(db: Any, name: str, data_version: int, foreign: list[Commit],
                      say: Report) -> None:
    """Our overwrite at ``data_version`` hid ``foreign`` commits: restore their version if nothing came after."""
    table = open_table(db, name)
    assert table is not None
    latest = int(table.version)
    after = [c for c in commits(table.to_lance(), data_version + 1, latest) if c.changes_rows]
    if after:
        raise ConcurrentWriteError(
            f"{name}: other writers committed {describe(foreign)} while the table was being rewritten, and "
            f"{describe(after)} after the rewrite (version {data_version}); nothing was restored automatically. "
            f"The rows of {describe(foreign)} are in the table's history at version {data_version - 1}: "
            "stop the writers, check, and restore by hand (table.restore(version))",
            line=name, restored=False)
    table.restore(data_version - 1)
    say(f"another writer committed {describe(foreign)} during the rewrite; the overwrite would have lost "
        f"their rows, so their version {data_version - 1} was restored")


@dataclass(frozen=True)
class Audit:
    """Where an unfinished recreation's overwrite stands against other writers."""

    data_version: int | None          # the overwrite commit (None: not found in the history)
    lost: tuple[Commit, ...]          # row-changing commits between the read and the overwrite
    after: tuple[Commit, ...]         # row-changing commits after the overwrite


def audit_overwrite(table: Any, meta: dict[str, str]) -> Audit | None:
    """For a table whose metadata says a recreation committed but its migration did not finish: check it.

    None when the metadata holds no unfinished recreation.
    """
    source = meta.get(META_SOURCE)
    attempt = meta.get(META_ATTEMPT)
    if source is None or attempt is None:
        return None
    try:
        source_version = int(source)
    except ValueError:
        return None
    dataset = table.to_lance()
    latest = int(table.version)
    history = commits(dataset, source_version + 1, latest)
    ours = next((c for c in history if c.properties.get(TX_ATTEMPT) == attempt and c.operation == "Overwrite"),
                None)
    if ours is None:
        return Audit(None, (), ())
    lost = tuple(c for c in history if c.version < ours.version and c.changes_rows)
    after = tuple(c for c in history if c.version > ours.version and c.changes_rows)
    return Audit(ours.version, lost, after)
