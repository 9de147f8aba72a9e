"""``reembed``: compute a vector column again with a new model, as one resumable, stamped migration step.

Lance's column-adding path does the heavy part (lancedb 0.40 / pylance 14,
DESIGN.md 8a); the other columns are never rewritten, so their data files
and their scalar indices stay as they are.

1. **Embed.** ``LanceDataset.add_columns`` with a ``lance.batch_udf`` reading
   only the ``source`` columns computes the new vectors and the per-row model
   tag into two staging columns, ``<column>__reembed_<key>`` and
   ``<column>_model__reembed_<key>`` (``key``: a hash of model, dimension and
   source), writing only their data files, one ``Merge`` commit. The UDF's
   checkpoint (:mod:`.checkpoint`) holds every finished batch and fragment:
   a re-run after a kill embeds neither again. A writer that appends while
   this runs makes Lance refuse the ``Merge`` ("preempted by concurrent
   transaction Append"): ``add_columns`` runs again on the latest version,
   the checkpoint answers for everything already embedded, only the new rows
   are embedded.
2. **Catch up.** Rows appended after that commit lack the staging columns
   (Lance reads them as null). Each such fragment gets the new columns'
   data file computed from its source columns (``LanceFragment.merge_columns``)
   and attached with one ``DataReplacement`` commit, guarded on the version
   read (:mod:`.guard`): a writer that slipped in means "read again, catch up
   again".
3. **Swap.** One ``Project`` commit, guarded the same way: the old ``column``
   and ``<column>_model`` are dropped, the staging columns renamed to them
   (both metadata: no data is rewritten, field ids kept; :mod:`.schema_edit`),
   and the schema metadata carries the stamp ``migrator.version`` (inside a
   migration of this table), the index specs ``migrator.indices`` (the old
   vector index's spec replaced by ``index``) and
   ``migrator.embedding.<column>`` (model, dimension, source). The stamp
   travels with the very commit that changes the data, as with
   ``recreate_table``'s overwrite.
4. **Index.** The vector index is built with its declared parameters
   (:func:`.indices.ensure`: a progress line, then its build time).

Kills: before 3 the table still has its old ``column`` and its old stamp (the
staging columns are extra; inside a migration the adapter's recovery
restores the version from before it, and the re-run takes every finished
fragment from the checkpoint; outside one, the re-run reuses the staging
columns it finds). After 3 the table is at the new version with the new stamp;
the adapter finishes the index and the bookkeeping without running the
migration again (:attr:`.recovery.Recovery.FINISH`).

Searching a table during or after a model switch: filter on the tag,
``table.search(q).where("vector_model = 'new-model'")``. Rows an application
appends after the swap without a tag carry a null tag and are not matched.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrator.engines import ENGINES
from migrator.engines import resolve as resolve_engine
from migrator.errors import UsageError
from migrator.lancedb import ConcurrentWriteError, Index, ReembedResult
from migrator.progress import RowsTracker

from .checkpoint import KeptCheckpoint, checkpoint_path, held_batches, prepare, remove_finished
from .common import (
    CURRENT,
    META_INDICES,
    META_VERSION,
    TX_OP,
    Report,
    indices_json,
    metadata_of,
    no_report,
    open_table,
    prefixed,
    recorded_indices,
    stamp_of,
)
from .guard import TableMoved, commit
from .indices import column_fits, ensure, existing_specs
from .schema_edit import edit_schema

__all__ = ["ENGINES", "reembed"]

META_EMBEDDING = "migrator.embedding."
STAGING = "__reembed_"
MAX_EMBED_ATTEMPTS = 50   # add_columns refused because a writer appended meanwhile: run again (cheap: checkpoint)
MAX_CUTOVERS = 200        # swap refused because a writer committed in between: catch up again
GRANULARITIES = ("auto", "batch", "fragment")
AUTO_FRAGMENT_SHARE = 0.2  # "auto" keeps fragments only when none holds more than this share of the rows


class _Progress(RowsTracker):
    """Rows embedded so far: rows, rows/s and ETA through the report callback (:mod:`migrator.progress`)."""

    def __init__(self, say: Report, total: int) -> None:
        super().__init__(say, "embedded", total)


@dataclass(frozen=True)
class _Plan:
    name: str
    column: str
    tag: str
    stage: str
    stage_tag: str
    model: str
    dim: int
    source: tuple[str, ...]
    output: Any                       # pyarrow schema of the staging columns
    batch_size: int


def reembed(
    db: Any,
    name: str,
    *,
    embed: Callable[[Any], Any],
    model: str,
    dim: int,
    source: Sequence[str] = ("text",),
    column: str = "vector",
    batch_size: int = 1024,
    index: Index | None = None,
    engine: str | None = None,
    checkpoint: str = "auto",
    checkpoint_dir: str | Path | None = None,
    report: Report | None = None,
) -> ReembedResult:
    """See :func:`migrator.lancedb.reembed`."""
    import pyarrow as pa

    _check_arguments(name, embed=embed, model=model, dim=dim, source=source, column=column, batch_size=batch_size,
                     index=index, engine=engine, checkpoint=checkpoint)
    ctx = CURRENT.get()
    engine = resolve_engine(engine, ctx.engine if ctx is not None else None, "reembed")
    own = ctx if ctx is not None and ctx.table == name else None  # the migration of this very table, if any
    migration_version = own.version if own is not None else None
    say = own.report if own is not None and report is None else \
        prefixed(report or (ctx.report if ctx is not None else no_report), name)
    table = open_table(db, name)
    if table is None:
        raise UsageError(f"reembed: table {name!r} does not exist")
    names = set(table.schema.names)
    missing = [c for c in source if c not in names]
    if missing:
        raise UsageError(f"reembed({name!r}): source column {missing[0]!r} does not exist "
                         f"(the table has {', '.join(sorted(names))})")
    tag = f"{column}_model"
    key = hashlib.sha256(json.dumps([model, dim, list(source)]).encode()).hexdigest()[:8]
    output = pa.schema([pa.field(f"{column}{STAGING}{key}", pa.list_(pa.float32(), dim)),
                        pa.field(f"{tag}{STAGING}{key}", pa.string())])
    plan = _Plan(name, column, tag, output.field(0).name, output.field(1).name, model, dim, tuple(source), output,
                 batch_size)
    dataset = table.to_lance()
    path = checkpoint_path(dataset.uri, table=name, key=json.dumps(
        [column, model, dim, list(source), migration_version]),
        directory=checkpoint_dir)
    started = time.perf_counter()
    for left in remove_finished(path.parent, name, dataset):
        say(f"removed the checkpoint {left.name}, left by a finished reembed")

    _drop_other_staging(table, plan, say)
    table.checkout_latest()
    dataset = table.to_lance()
    total = int(dataset.count_rows())
    progress = _Progress(say, total)
    resumed = 0
    attempts = 0
    if plan.stage in dataset.schema.names:
        say(f"an interrupted reembed left {plan.stage} in place: reusing it, embedding only the rows it lacks")
    else:
        resumed, attempts = _embed(db, dataset, plan, embed, path, checkpoint, progress, say, engine,
                                   version=migration_version)
    say(progress.line() if progress.added else f"embedded {total:,} rows (all from the checkpoint)")
    swapped, caught_up = _catch_up_and_swap(db, plan, embed, migration_version, index, say, progress)
    data_version = int(swapped.version)
    say(f"swapped {plan.stage} in as {column} (model {model}, {dim} dimensions) as Lance version {data_version}"
        + (f"; {caught_up:,} rows appended meanwhile were embedded too" if caught_up else ""))
    KeptCheckpoint(path).remove()

    table = open_table(db, name)
    assert table is not None
    specs = recorded_indices(metadata_of(table.schema))
    vector_specs = [s for s in specs if s.column == column]
    built, deferred = ensure(table, name, vector_specs, say, replace=[s.index_name for s in vector_specs],
                             rows=int(swapped.count_rows()),
                             reported=own.deferred_reported if own is not None else None)
    table.checkout_latest()
    return ReembedResult(
        table=name, column=column, model=model, dim=dim, rows=int(swapped.count_rows()),
        rows_embedded=progress.added, rows_resumed=resumed, rows_caught_up=caught_up,
        data_version=data_version, version=int(table.version), indices_built=tuple(built),
        indices_deferred=tuple(deferred), embed_attempts=attempts, seconds=time.perf_counter() - started)


def _check_arguments(name: str, *, embed: Any, model: Any, dim: Any, source: Any, column: Any, batch_size: Any,
                     index: Any, engine: Any, checkpoint: Any) -> None:
    where = f"reembed({name!r})"
    if engine is not None and engine not in ENGINES:
        raise UsageError(f"{where}: unknown engine {engine!r} (known: {', '.join(ENGINES)})")
    if not callable(embed):
        raise UsageError(f"{where}: embed must be a function batch -> vectors (got {type(embed).__name__})")
    if not isinstance(model, str) or not model.strip():
        raise UsageError(f"{where}: model must be a non-empty string naming the embedding model")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise UsageError(f"{where}: dim must be a positive integer (got {dim!r})")
    if isinstance(source, str) or not isinstance(source, Sequence) or not source or \
            not all(isinstance(c, str) and c for c in source):
        raise UsageError(f"{where}: source must be a non-empty list of column names (got {source!r})")
    if not isinstance(column, str) or not column or STAGING in column:
        raise UsageError(f"{where}: column must be a column name (got {column!r})")
    if column in source or f"{column}_model" in source:
        raise UsageError(f"{where}: column {column!r} cannot also be a source column")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"{where}: batch_size must be a positive integer (got {batch_size!r})")
    if checkpoint not in GRANULARITIES:
        raise UsageError(f"{where}: checkpoint must be one of {', '.join(map(repr, GRANULARITIES))} "
                         f"(got {checkpoint!r})")
    if index is not None:
        if not isinstance(index, Index):
            raise UsageError(f"{where}: index must be an Index(...) (got {type(index).__name__})")
        problems = index.problems()
        if problems:
            raise UsageError(f"{where}: {problems[0]}")
        if not index.is_vector or index.column != column:
            raise UsageError(f"{where}: index must be a vector index on {column!r} "
                             f"(got {index.kind} on {index.column!r})")


def _drop_other_staging(table: Any, plan: _Plan, say: Report) -> None:
    """Staging columns of another, abandoned re-embedding of this column (another model or dimension)."""
    stale = [n for n in table.schema.names
             if n.startswith((f"{plan.column}{STAGING}", f"{plan.tag}{STAGING}")) and n not in
             (plan.stage, plan.stage_tag)]
    if plan.stage in table.schema.names and plan.stage_tag not in table.schema.names:
        stale.append(plan.stage)
    if stale:
        say(f"dropping {', '.join(stale)}, left by an abandoned reembed")
        table.drop_columns(stale)


def _embed(db: Any, dataset: Any, plan: _Plan, embed: Callable[[Any], Any], path: Path, granularity: str,
           progress: _Progress, say: Report, engine: str = "local", *, version: int | None = None
           ) -> tuple[int, int]:
    """Step 1: add the staging columns, resuming from the checkpoint; returns (rows resumed, attempts)."""
    import lance

    resumed = 0
    granularity = choose_granularity(granularity, dataset, path)
    target = {"table": plan.name, "column": plan.column, "model": plan.model, "dim": plan.dim,
              "source": list(plan.source), "version": version}
    for attempt in range(1, MAX_EMBED_ATTEMPTS + 1):
        cache, held = prepare(path, dataset, batches=granularity == "batch", batch_size=plan.batch_size,
                              target=target)
        progress.total = int(dataset.count_rows())
        if attempt == 1:
            resumed = held
            progress.done = held
            say(f"embedding {progress.total:,} rows of {', '.join(plan.source)} with {plan.model} into {plan.column} "
                f"({plan.dim} dimensions, checkpoint per {granularity})"
                + (f"; about {held:,} are in the checkpoint of an interrupted run" if held else ""))
        udf = lance.batch_udf(output_schema=plan.output)(_udf(plan, embed, progress))
        udf.cache = cache
        try:
            if engine == "ray":  # the same columns, one Ray task per fragment not yet in the checkpoint
                from .ray_engine import add_columns as add_columns_on_ray

                add_columns_on_ray(dataset, functools.partial(_vectors, plan, embed), plan.output,
                                   read_columns=list(plan.source), batch_size=plan.batch_size, checkpoint=cache,
                                   progress=progress.add, name=plan.name, say=say)
            else:
                _add_vectors(dataset, udf, list(plan.source), plan.batch_size)
            return resumed, attempt
        except Exception as exc:
            if not _preempted(exc):
                raise _embed_failed(plan, exc) from exc
            say("another writer committed while the vectors were computed; computing the rows it added "
                "(the rest comes from the checkpoint)")
            table = open_table(db, plan.name)
            if table is None:
                raise ConcurrentWriteError(f"{plan.name}: the table was dropped during reembed", line=plan.name,
                                           restored=True) from exc
            dataset = table.to_lance()
    raise ConcurrentWriteError(
        f"{plan.name}: other writers committed during each of {MAX_EMBED_ATTEMPTS} attempts to add the new "
        f"vectors; nothing was swapped, the table is as they left it (the checkpoint keeps the work done) — run "
        "again when they write less often", line=plan.name, restored=True)


def choose_granularity(requested: str, dataset: Any, path: Path) -> str:
    """``"auto"``: per fragment when no fragment holds over :data:`AUTO_FRAGMENT_SHARE` of the rows, else per batch.

    A kill loses the fragment in progress with ``"fragment"`` (the vectors are written once) and one batch with
    ``"batch"`` (each batch's vectors are written twice: to the checkpoint, then to the data file). With every
    fragment at most a fifth of the rows, a kill at half way and a re-run embed at most 1.2x the rows, within
    the 1.25x target, for 1x the bytes; a larger fragment (a table written in one go is one fragment of up to
    1M rows) would lose more than the target allows, so it gets batches. An interrupted run that kept batches
    keeps its granularity, so its re-run uses them.
    """
    if requested != "auto":
        return requested
    if held_batches(path):
        return "batch"
    sizes = [int(f.metadata.physical_rows or 0) for f in dataset.get_fragments()]
    total = sum(sizes)
    return "fragment" if total and max(sizes) <= AUTO_FRAGMENT_SHARE * total else "batch"


def _preempted(exc: BaseException) -> bool:
    """Lance refused the ``Merge`` because another writer committed first (retryable, nothing committed)."""
    text = str(exc).lower()
    return "preempted by concurrent transaction" in text or "retryable commit conflict" in text


def _add_vectors(dataset: Any, udf: Any, read_columns: list[str], batch_size: int) -> None:
    """The one ``add_columns`` call: where another engine (Ray) computes the same columns instead."""
    dataset.add_columns(udf, read_columns=read_columns, batch_size=batch_size)


def _udf(plan: _Plan, embed: Callable[[Any], Any], progress: _Progress) -> Callable[[Any], Any]:
    def compute(batch: Any) -> Any:
        out = _vectors(plan, embed, batch)
        progress.add(batch.num_rows)
        return out

    return compute


def _vectors(plan: _Plan, embed: Callable[[Any], Any], batch: Any) -> Any:
    """``embed(batch)`` as the staging columns' record batch: vectors (float32, ``dim``) and the model tag."""
    import numpy as np
    import pyarrow as pa

    result = embed(batch)
    rows = batch.num_rows
    if isinstance(result, pa.ChunkedArray):
        result = result.combine_chunks()
    if isinstance(result, (pa.FixedSizeListArray, pa.ListArray, pa.LargeListArray)):
        flat = result.flatten()
        if len(result) != rows or len(flat) != rows * plan.dim or result.null_count:
            raise ValueError(f"{plan.name}: embed returned {len(result)} vectors of {len(flat) // max(len(result), 1)} "
                             f"dimensions for {rows} rows; expected {rows} of {plan.dim}")
        values = pa.compute.cast(flat, pa.float32())
    else:
        array = np.asarray(result, dtype=np.float32)
        if array.shape != (rows, plan.dim):
            raise ValueError(f"{plan.name}: embed returned an array of shape {array.shape} for {rows} rows; "
                             f"expected ({rows}, {plan.dim})")
        values = pa.array(array.reshape(-1))
    vectors = pa.FixedSizeListArray.from_arrays(values, plan.dim)
    tags = pa.array([plan.model] * rows, pa.string())
    return pa.RecordBatch.from_arrays([vectors, tags], schema=plan.output)


def _embed_failed(plan: _Plan, exc: BaseException) -> Exception:
    text = str(exc).split(", /home/")[0].split(", src/")[0].strip()
    return RuntimeError(f"{plan.name}: computing the new {plan.column} with {plan.model} failed: {text}; the table "
                        "was not changed (the checkpoint keeps the batches already embedded)")


def _catch_up_and_swap(db: Any, plan: _Plan, embed: Callable[[Any], Any], version: int | None,
                       index: Index | None, say: Report, progress: _Progress) -> tuple[Any, int]:
    """Steps 2 and 3; returns the swapped dataset and the number of rows caught up with."""
    import lance

    caught_up = 0
    for _ in range(MAX_CUTOVERS):
        table = open_table(db, plan.name)
        if table is None:
            raise ConcurrentWriteError(f"{plan.name}: the table was dropped during reembed; nothing was swapped",
                                       line=plan.name, restored=True)
        dataset = table.to_lance()
        if plan.stage not in dataset.schema.names:
            raise ConcurrentWriteError(f"{plan.name}: another writer removed {plan.stage} during reembed; nothing "
                                       "was swapped, run it again", line=plan.name, restored=True)
        read = int(dataset.version)
        groups, rows = _fill(dataset, plan, embed)
        if groups:
            try:
                commit(dataset, lance.LanceOperation.DataReplacement(groups), read_version=read, table=plan.name,
                       what="reembed's catch-up", properties={TX_OP: "reembed catch-up"})
            except TableMoved:
                continue
            progress.added += rows
            caught_up += rows
            say(f"embedded {rows:,} rows appended during the embedding")
            continue
        unfilled = int(dataset.count_rows(filter=f"`{plan.stage_tag}` IS NULL"))
        if unfilled:
            raise ConcurrentWriteError(
                f"{plan.name}: {unfilled:,} rows were written with an explicit null in {plan.stage_tag} while "
                f"reembed ran; nothing was swapped — delete or rewrite them, then run reembed again",
                line=plan.name, restored=True)
        schema = _swapped_schema(table, dataset, plan, version, index, say)
        try:
            swapped = commit(dataset, lance.LanceOperation.Project(schema), read_version=read, table=plan.name,
                             what="reembed's swap", properties={TX_OP: "reembed"})
        except TableMoved:
            continue
        return swapped, caught_up
    raise ConcurrentWriteError(
        f"{plan.name}: other writers committed before each of {MAX_CUTOVERS} swap attempts; nothing was swapped "
        f"(the new vectors stay in {plan.stage}) — run reembed again when they write less often",
        line=plan.name, restored=True)


def _fill(dataset: Any, plan: _Plan, embed: Callable[[Any], Any]) -> tuple[list[Any], int]:
    """Data files of the staging columns for fragments that lack them (rows appended after step 1)."""
    import lance
    import pyarrow as pa
    from lance.fragment import DataFile

    fields = {f.name(): f.id() for f in dataset.lance_schema.fields()}
    wanted = [fields[plan.stage], fields[plan.stage_tag]]
    groups: list[Any] = []
    rows = 0
    scratch = pa.schema([pa.field(f"_migrator_fill_{i}", f.type) for i, f in enumerate(plan.output)])
    for fragment in dataset.get_fragments():
        present = {i for data in fragment.metadata.files for i in data.fields}
        if set(wanted) <= present:
            continue
        if present & set(wanted):
            raise ConcurrentWriteError(f"{plan.name}: fragment {fragment.fragment_id} holds only part of the "
                                       "staging columns; nothing was swapped", line=plan.name, restored=True)

        def compute(batch: Any) -> Any:
            out = _vectors(plan, embed, batch)
            return pa.RecordBatch.from_arrays(out.columns, schema=scratch)

        udf = lance.batch_udf(output_schema=scratch)(compute)
        merged, _ = fragment.merge_columns(udf, columns=list(plan.source), batch_size=plan.batch_size)
        new = merged.files[-1]
        rows += int(fragment.metadata.physical_rows or 0)
        data = DataFile(new.path, wanted, list(new.column_indices), new.file_major_version, new.file_minor_version,
                        new.file_size_bytes, new.base_id)
        groups.append(lance.LanceOperation.DataReplacementGroup(fragment.fragment_id, data))
    return groups, rows


def _swapped_schema(table: Any, dataset: Any, plan: _Plan, version: int | None, index: Index | None,
                    say: Report) -> Any:
    """The ``Project`` schema: old column and tag dropped, staging renamed, stamp and index specs in metadata."""
    import pyarrow as pa

    meta = metadata_of(dataset.schema)
    names = set(dataset.schema.names)
    recorded = recorded_indices(meta)
    present = existing_specs(table, recorded, say)
    known = {s.index_name: s for s in recorded}
    for spec in present:
        known.setdefault(spec.index_name, spec)
    kept = [s for s in known.values() if s.column not in (plan.column, plan.tag)]
    vector = [s for s in known.values() if s.column == plan.column and s.is_vector]
    if index is not None:
        vector = [index]
    new_field = pa.field(plan.column, pa.list_(pa.float32(), plan.dim))
    vector = [s for s in vector if column_fits(s, new_field)]
    specs = kept + vector
    meta = {k: v for k, v in meta.items() if k != META_INDICES}
    if specs:
        meta[META_INDICES] = indices_json(specs)
    if version is not None:
        meta[META_VERSION] = str(max(version, stamp_of(meta) or 0))
    meta[META_EMBEDDING + plan.column] = json.dumps(
        {"model": plan.model, "dim": plan.dim, "source": list(plan.source), "tag": plan.tag}, sort_keys=True)
    drop = [n for n in (plan.column, plan.tag) if n in names]
    return edit_schema(dataset.lance_schema, drop=drop, rename={plan.stage: plan.column, plan.stage_tag: plan.tag},
                       metadata=meta)

