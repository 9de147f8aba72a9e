"""``recreate_table``: rewrite a LanceDB table in place under a live writer, streamed, atomic, indices rebuilt.

The model is the online schema-change tools for MySQL (gh-ost,
pt-online-schema-change): copy, catch up, cut over; the application never
pauses (lancedb 0.40 / pylance 14, see DESIGN.md section 8a).

1. **Copy.** Pin the table's current version ``v`` (``table.to_lance()``);
   note its indices and their parameters (recorded specs from the schema
   metadata ``migrator.indices``, what Lance reports for the others). Stream
   ``dataset.scanner(batch_size=...).to_reader()`` through
   ``transform(batch) -> batch`` into new data files
   (``lance.fragment.write_fragments``): nothing is committed yet, memory
   stays flat in table size.
2. **Catch up.** Read the table's latest version ``L``. If the commits after
   the version copied are only ``Append`` (and commits that change no
   fragment: index builds, config), the rows they added are the fragments
   ``L`` has and the copied version had not: stream them through the same
   transform into more data files, and repeat from ``L``. Any other
   row-changing commit (a delete, an update, a merge-insert, a compaction,
   a schema change, an overwrite or restore) cannot be replayed row by row
   onto transformed data: the copy is discarded (never committed) and
   started again from the latest version, ``retries`` times, then
   :class:`ConcurrentWriteError` with the table untouched.
3. **Cut over.** Commit one ``Overwrite`` holding every copied and caught-up
   fragment, guarded on ``L`` (:mod:`.guard`: Lance refuses it if anyone
   committed after ``L``). Refused: catch up again (step 2) and retry the
   commit. The new schema's metadata carries ``migrator.version`` (inside a
   migration of this table), ``migrator.indices`` (the specs to rebuild),
   ``migrator.source_version`` = ``L`` and ``migrator.attempt``; the commit's
   transaction properties carry the same attempt id: the stamp is written by
   the very commit that changes the data, and no commit of another writer is
   hidden by it.
4. Verify the committed row count, then rebuild each surviving index with its
   old kind and parameters (a progress line per index; vector ones say "slow").
   Writers keep appending meanwhile; their new rows are in the new table.

From the cut-over on the table is in the new schema: a writer that still
holds the old table appends with the old schema and Lance refuses it
("incompatible with concurrent transaction Overwrite"); it must reopen the
table (``migrator.lancedb.table_stamp`` tells the version it is at).

A crash between 3 and the end of the migration leaves the table in the new
schema, stamped, maybe with indices missing; the adapter finishes the
indices and the bookkeeping on the next run and re-checks the overwrite
against other writers from the recorded source version and attempt
(:func:`audit_overwrite`). A crash before 3 leaves only unreferenced data
files (see DESIGN.md 8a on ``cleanup_old_versions``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from migrator.engines import resolve as resolve_engine
from migrator.lancedb import ConcurrentWriteError, Index, RecreateResult
from migrator.progress import RowsTracker, format_duration

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
from .guard import TableMoved, commit
from .indices import column_fits, ensure, existing_specs, record

READ_AHEAD_BYTES = 64 * 1024 * 1024

# commits a catch-up can follow: appends (their rows are new fragments) and commits that change no fragment
CATCH_UP_OPS = frozenset({"Append", "CreateIndex", "UpdateConfig"})

# how many times the cut-over may be refused (a writer slipped in again) before the recreation gives up
MAX_CUTOVERS = 200


class RowCountMismatch(RuntimeError):
    pass


def check_counts(counts: Any, total: int, name: str, allow_row_count_change: bool) -> None:
    """Raise RowCountMismatch unless the copy read every row of the pinned version and (unless allowed) the
    transform kept their number; ``counts`` has ``read`` and ``written``."""
    if counts.read != total:
        raise RowCountMismatch(f"{name}: read {counts.read:,} rows from a version that holds {total:,}")
    if counts.written != counts.read and not allow_row_count_change:
        raise RowCountMismatch(
            f"recreate_table({name!r}): the transform turned {counts.read:,} rows into {counts.written:,}; "
            "nothing was committed (pass allow_row_count_change=True if that is intended)")


class _Restart(Exception):
    """Another writer deleted, updated or rewrote rows during the copy: start again from the latest version."""

    def __init__(self, blocking: list[Commit]) -> None:
        super().__init__(describe(blocking))
        self.blocking = blocking


@dataclass
class _Counts:
    read: int = 0
    written: int = 0
    error: BaseException | None = None


@dataclass
class _Copy:
    """The new table's data files written so far (not committed) and the version they are caught up to."""

    fragments: list[Any]
    caught_up: int
    counts: _Counts
    allow_row_count_change: bool
    caught_up_rows: int = 0


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
    engine: str | None = None,
) -> RecreateResult:
    """See :func:`migrator.lancedb.recreate_table`."""
    import pyarrow as pa

    if batch_size < 1:
        raise ValueError("recreate_table: batch_size must be at least 1")
    if retries < 0:
        raise ValueError("recreate_table: retries must be 0 or more")
    if schema is not None and not isinstance(schema, pa.Schema):
        raise TypeError(f"recreate_table: schema must be a pyarrow.Schema (got {type(schema).__name__})")
    ctx = CURRENT.get()
    engine = resolve_engine(engine, ctx.engine if ctx is not None else None, "recreate_table")
    own = ctx if ctx is not None and ctx.table == name else None  # the migration of this very table, if any
    in_migration = own is not None
    migration_version = own.version if own is not None else None
    deferred_reported = own.deferred_reported if own is not None else None
    say = own.report if own is not None and report is None else \
        prefixed(report or (ctx.report if ctx is not None else no_report), name)
    attempt = own.attempt if own is not None else uuid.uuid4().hex
    rounds = retries + 1
    for round_no in range(1, rounds + 1):
        table = open_table(db, name)
        if table is None:
            raise ValueError(f"recreate_table: table {name!r} does not exist")
        dataset = table.to_lance()
        source_version = int(dataset.version)
        old_meta = metadata_of(dataset.schema)
        recorded = recorded_indices(old_meta)
        dropped: list[str] = []
        notes: list[str] = []  # indices migrator cannot rebuild: said only if the table is rewritten
        present = existing_specs(table, recorded, notes.append, dropped)
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
        meta[META_ATTEMPT] = attempt
        if migration_version is not None:  # never lower it (an out-of-order migration)
            meta[META_VERSION] = str(max(migration_version, stamp_of(old_meta) or 0))
        elif META_VERSION in old_meta:
            meta[META_VERSION] = old_meta[META_VERSION]
        target = pa.schema(list(target), metadata=meta)

        if engine == "local" and total > 0 and first.num_rows:
            try:
                fast = _in_place(db, name, dataset, first, first_out, target, transform, specs, batch_size, attempt,
                                 say, round_no, deferred_reported,
                                 in_migration, total)
            except _Restart as restart:
                _next_round(restart, round_no, rounds, say, name, migration_version,
                            "while the columns were written (not only appends): starting again from the latest version")
                continue
            if fast is not None:
                return fast
        for note in notes:
            say(note)

        counts = _Counts()
        stream = _stream(name, first, first_out, batches, transform, target, total, counts, say,
                         allow_row_count_change)
        say(f"copying {total:,} rows of Lance version {source_version}"
            + (f" (attempt {round_no} of {rounds})" if round_no > 1 else ""))
        started = time.perf_counter()
        if engine == "ray":  # the same copy, one Ray task per fragment; catch-up and cut-over below are shared
            from .ray_engine import copy_table

            fragments = copy_table(dataset, target, transform, total=total, batch_size=batch_size, counts=counts,
                                   name=name, say=say, allow_row_count_change=allow_row_count_change)
        else:
            fragments = _write(dataset, target, stream, counts, name)
        copy = _Copy(fragments, source_version, counts, allow_row_count_change)
        say(f"copied {counts.written:,} rows in {format_duration(time.perf_counter() - started)}; catching up with the "
            "rows other writers appended meanwhile")
        try:
            written = _cut_over(db, name, copy, target, transform, batch_size, attempt, say)
        except _Restart as restart:
            _next_round(restart, round_no, rounds, say, name, migration_version,
                        "during the copy (not only appends): copying again from the latest version")
            continue
        data_version = int(written.version)
        say(f"wrote {counts.written:,} rows as Lance version {data_version}"
            + (f" ({copy.caught_up_rows:,} of them appended by other writers during the copy)"
               if copy.caught_up_rows else ""))
        stored = int(written.count_rows())
        if stored != counts.written:
            raise RuntimeError(f"{name}: the rewrite committed {stored:,} rows but {counts.written:,} were written "
                               f"(Lance version {data_version}); check the table, the version before it is "
                               f"{data_version - 1}")

        table = open_table(db, name)
        assert table is not None
        built, deferred = ensure(table, name, surviving, say, rows=stored, verb="rebuilding",
                                 reported=deferred_reported)
        table.checkout_latest()
        if not in_migration:  # inside a migration the adapter clears these with its own stamp commit
            record(table, surviving, {META_SOURCE: None, META_ATTEMPT: None})
        return RecreateResult(
            table=name, rows=stored, source_version=source_version, data_version=data_version,
            version=int(table.version), indices_rebuilt=tuple(built), indices_deferred=tuple(deferred),
            indices_dropped=tuple(dropped), attempts=round_no, rows_caught_up=copy.caught_up_rows)
    raise AssertionError("unreachable")  # pragma: no cover


def _next_round(restart: _Restart, round_no: int, rounds: int, say: Report, name: str, version: int | None,
                during: str) -> None:
    """Say why another round starts (``during``: when and what next), or give up after the last round."""
    if round_no >= rounds:
        raise _gave_up(name, restart, rounds, version) from None
    say(f"another writer committed {restart} {during}")


def _gave_up(name: str, restart: _Restart, rounds: int, version: int | None) -> ConcurrentWriteError:
    return ConcurrentWriteError(
        f"{name}: other writers committed {restart} (deletes, updates or rewrites, not only appends) "
        f"while the table was being copied, {rounds} time(s); nothing was committed, the table is as they "
        "left it — retry later, or pause the writers' deletes and updates", line=name, version=version,
        restored=True)


def _in_place(db: Any, name: str, dataset: Any, first: Any, first_out: list[Any], target: Any,
              transform: Callable[[Any], Any] | None, specs: list[Index], batch_size: int, attempt: str,
              say: Report, round_no: int, reported: set[str] | None, in_migration: bool,
              total: int) -> RecreateResult | None:
    """The cheap path (:mod:`.inplace`): None, after a progress line saying why, when the table must be rewritten."""
    from .colwrite import Blocked, Dropped
    from .inplace import Differs, add_in_place, compare, plan

    def transform_batch(batch: Any) -> Any:
        return _single(_apply(transform, batch), target, name)

    try:
        probe = _single(first_out, target, name)
        the_plan = plan(dataset.schema, target, first, probe)
        compare(the_plan, first, probe, 1)
        new, write, kept, dropped = add_in_place(db, name, dataset, the_plan, transform_batch, specs,
                                                 batch_size=batch_size, attempt=attempt, say=say)
    except Differs as exc:
        say(f"rewriting {name}: {exc}")
        return None
    except Blocked as exc:
        raise _Restart(exc.blocking) from None
    except Dropped as exc:
        raise ConcurrentWriteError(str(exc), line=name, restored=True) from None
    data_version = int(new.version)
    stored = int(new.count_rows())
    if stored != total + write.rows_caught_up:
        raise RuntimeError(f"{name}: the column commit holds {stored:,} rows but {total + write.rows_caught_up:,} "
                           f"were read (Lance version {data_version}); check the table, the version before it is "
                           f"{data_version - 1}")
    say(f"wrote the new columns of {stored:,} rows as Lance version {data_version}"
        + (f" ({write.rows_caught_up:,} of them appended by other writers meanwhile)" if write.rows_caught_up
           else ""))
    table = open_table(db, name)
    assert table is not None
    built, deferred = ensure(table, name, kept, say, rows=stored, reported=reported)
    table.checkout_latest()
    if not in_migration:
        record(table, kept, {META_SOURCE: None, META_ATTEMPT: None})
    present = {info.name for info in table.list_indices()}
    return RecreateResult(
        table=name, rows=stored, source_version=int(dataset.version), data_version=data_version,
        version=int(table.version), indices_rebuilt=tuple(built), indices_deferred=tuple(deferred),
        indices_dropped=tuple(dropped), attempts=round_no, rows_caught_up=write.rows_caught_up,
        path="columns", indices_kept=tuple(s.index_name for s in kept if s.index_name in present
                                           and s.index_name not in built),
        columns_written=tuple(f.name for f in the_plan.written))


def _single(outs: list[Any], target: Any, name: str) -> Any:
    """The transform's output for one batch as one record batch conformed to ``target``."""
    import pyarrow as pa

    if len(outs) == 1:
        return _conform(outs[0], target, name)
    joined = pa.Table.from_batches([_conform(out, target, name) for out in outs], schema=target).combine_chunks()
    batches = joined.to_batches()
    return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=target)


def _write(dataset: Any, target: Any, stream: Iterator[Any], counts: _Counts, name: str) -> list[Any]:
    """Stream ``stream`` into new data files of ``dataset`` (nothing committed): their fragment metadata."""
    import pyarrow as pa
    from lance.fragment import write_fragments

    reader = pa.RecordBatchReader.from_batches(target, stream)
    try:
        fragments: list[Any] = write_fragments(reader, dataset, target, mode="overwrite",
                                               data_storage_version=dataset.data_storage_version)
    except BaseException as exc:
        if counts.error is not None:  # the transform or the row check raised inside the stream
            raise counts.error from None
        raise RuntimeError(f"{name}: rewriting the table failed, nothing was committed: {exc}") from exc
    return fragments


def _cut_over(db: Any, name: str, copy: _Copy, target: Any, transform: Callable[[Any], Any] | None,
              batch_size: int, attempt: str, say: Report) -> Any:
    """Catch up with the appends since the copy, then commit the overwrite guarded on that version; repeat."""
    import lance
    import pyarrow as pa

    for _ in range(MAX_CUTOVERS):
        table = open_table(db, name)
        if table is None:
            raise ConcurrentWriteError(f"{name}: the table was dropped while it was being copied; nothing was "
                                       "committed", line=name, restored=True)
        latest = table.to_lance()
        _catch_up(latest, copy, target, transform, batch_size, name, say)
        meta = dict(metadata_of(target))
        meta[META_SOURCE] = str(copy.caught_up)
        schema = pa.schema(list(target), metadata=meta)
        try:
            return commit(latest, lance.LanceOperation.Overwrite(schema, copy.fragments),
                          read_version=copy.caught_up, table=name, what="recreate_table's overwrite",
                          properties={TX_ATTEMPT: attempt, TX_OP: "recreate_table", "migrator.table": name})
        except TableMoved:
            continue  # a writer slipped in between the catch-up and the commit: catch up again
    raise ConcurrentWriteError(
        f"{name}: other writers committed before each of {MAX_CUTOVERS} cut-over attempts; nothing was committed, "
        "the table is as they left it — retry when they write less often", line=name, restored=True)


def _catch_up(latest: Any, copy: _Copy, target: Any, transform: Callable[[Any], Any] | None, batch_size: int,
              name: str, say: Report) -> None:
    """Transform the rows appended between ``copy.caught_up`` and ``latest`` into more data files."""
    version = int(latest.version)
    if version == copy.caught_up:
        return
    since = commits(latest, copy.caught_up + 1, version)
    blocking = [c for c in since if c.operation not in CATCH_UP_OPS]
    if blocking:
        raise _Restart(blocking)
    known = {f.fragment_id for f in latest.checkout_version(copy.caught_up).get_fragments()}
    new = [f for f in latest.get_fragments() if f.fragment_id not in known]
    if new:
        counts = copy.counts
        before, read_before = counts.written, counts.read

        def stream() -> Iterator[Any]:
            try:
                for batch in latest.scanner(fragments=new, batch_size=batch_size,
                                            io_buffer_size=READ_AHEAD_BYTES).to_batches():
                    counts.read += batch.num_rows
                    for out in _apply(transform, batch):
                        counts.written += out.num_rows
                        yield _conform(out, target, name)
                if counts.written - before != counts.read - read_before and not copy.allow_row_count_change:
                    raise RowCountMismatch(
                        f"recreate_table({name!r}): the transform turned {counts.read - read_before:,} appended "
                        f"rows into {counts.written - before:,}; nothing was committed (pass "
                        "allow_row_count_change=True if that is intended)")
            except BaseException as exc:
                counts.error = exc
                raise

        copy.fragments.extend(_write(latest, target, stream(), counts, name))
        copy.caught_up_rows += counts.written - before
        say(f"caught up with {counts.written - before:,} row(s) appended by {describe(since)}")
    copy.caught_up = version


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
    progress = RowsTracker(say, "copied", total)
    try:
        counts.read += first.num_rows
        progress.add(first.num_rows)
        for out in first_out:
            counts.written += out.num_rows
            yield _conform(out, target, name)
        for batch in rest:
            counts.read += batch.num_rows
            for out in _apply(transform, batch):
                counts.written += out.num_rows
                yield _conform(out, target, name)
            progress.add(batch.num_rows)
        check_counts(counts, total, name, allow_row_count_change)
    except BaseException as exc:
        counts.error = exc
        raise


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
