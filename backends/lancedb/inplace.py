"""``recreate_table``'s cheap path: when the transform only adds, drops, renames or re-orders columns.

Decided while writing, never by a second pass (see :mod:`.recreate`, which
falls back to its streamed overwrite when this raises :class:`Differs`):

* **Plan** (from the schemas and the transform's output for the first batch,
  which the overwrite path computes anyway): a column of the new schema that
  the table has with the same name, type, nullability and field metadata is
  *kept*; a new column whose values equal, on the first batch, those of a column the new
  schema drops (same type and nullability) is that column *renamed*; every
  other new column is *written*. A column that keeps its name but changes
  type, nullability or field metadata means a rewrite at once.
* **Write** (:mod:`.colwrite`): each fragment's batches go through the
  transform once; the kept and renamed columns of its output are compared
  with the batch read, and only the written columns are stored. The first
  batch where one differs (or where the row count changes) raises
  :class:`Differs` naming the column and the batch: nothing was committed.
* **Commit**: one guarded ``Merge`` (:mod:`.colwrite`): the written columns,
  the dropped ones gone, the renames and the order of the new schema, and
  its metadata with migrator's stamp (``migrator.version`` inside a migration
  of this table, ``migrator.indices`` with the kept specs under their new
  column names). Indices on kept and renamed columns keep their ids; the
  stamp travels with the data commit as with the overwrite.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from migrator.lancedb import Index
from migrator.progress import RowsTracker

from .colwrite import ColumnWrite, commit_columns, write_columns
from .common import META_ATTEMPT, META_INDICES, META_SOURCE, TX_ATTEMPT, TX_OP, Report, indices_json
from .schema_edit import edit_schema

__all__ = ["Differs", "Plan", "add_in_place", "plan"]

STAGE = "__migrator_new_"


class Differs(Exception):
    """The transform changes an existing column (or the row count): the table must be rewritten."""


@dataclass(frozen=True)
class Plan:
    kept: dict[str, str]            # column of the new schema -> the table's column holding its values
    written: tuple[Any, ...]        # pyarrow fields of the new schema to write
    drop: tuple[str, ...]           # the table's columns the new schema does not keep
    target: Any                     # the new pyarrow schema (with migrator's metadata)
    source_names: tuple[str, ...] = ()

    @property
    def renames(self) -> dict[str, str]:
        return {source: new for new, source in self.kept.items() if source != new}

    @property
    def staging(self) -> dict[str, str]:
        return {f"{STAGE}{i}": f.name for i, f in enumerate(self.written)}

    def describe(self, kept_indices: int) -> str:
        parts = []
        if self.written:
            names = ", ".join(f.name for f in self.written)
            parts.append(f"adding column{'s' if len(self.written) > 1 else ''} {names}")
        if self.drop:
            parts.append(f"dropping {', '.join(self.drop)}")
        if self.renames:
            parts.append("renaming " + ", ".join(f"{a} to {b}" for a, b in self.renames.items()))
        if not parts:
            parts.append("re-ordering columns" if self.reorders else "checking that no column changes")
        kept = f"{kept_indices} ind{'ices' if kept_indices != 1 else 'ex'} kept"
        return f"{', '.join(parts)} (no rewrite, {kept})"

    @property
    def reorders(self) -> bool:
        kept = set(self.kept.values())
        return list(self.kept.values()) != [n for n in self.source_names if n in kept]


def plan(source: Any, target: Any, first: Any, first_out: Any) -> Plan:
    """The plan for rewriting ``source`` into ``target``; raises :class:`Differs` when a column changes type."""
    names = set(source.names)
    target_names = set(target.names)
    kept: dict[str, str] = {}
    fresh = []
    for f in target:
        if f.name in names:
            old = source.field(f.name)
            if not old.type.equals(f.type):
                raise Differs(f"column {f.name} changes type ({old.type} to {f.type})")
            if old.nullable != f.nullable:
                raise Differs(f"column {f.name} becomes {'nullable' if f.nullable else 'non-null'}")
            if (old.metadata or {}) != (f.metadata or {}):
                raise Differs(f"column {f.name}'s field metadata changes")  # kept columns keep the table's field
            kept[f.name] = f.name
        else:
            fresh.append(f)
    free = [f for f in source if f.name not in target_names]
    written = []
    for f in fresh:
        match = next((old for old in free if old.type.equals(f.type) and old.nullable == f.nullable
                      and (old.metadata or {}) == (f.metadata or {})
                      and first.num_rows and first_out.num_rows == first.num_rows
                      and first_out.column(f.name).equals(first.column(old.name))), None)
        if match is not None:
            kept[f.name] = match.name
            free.remove(match)
        else:
            written.append(f)
    drop = tuple(f.name for f in source if f.name not in kept.values())
    return Plan(kept, tuple(written), drop, target, tuple(source.names))


def compare(plan: Plan, batch: Any, out: Any, number: int) -> None:
    """Raise :class:`Differs` unless ``out`` keeps ``batch``'s rows and the values of every kept column."""
    if out.num_rows != batch.num_rows:
        raise Differs(f"the transform turns {batch.num_rows:,} rows into {out.num_rows:,} (batch {number})")
    for new, old in plan.kept.items():
        if not out.column(new).equals(batch.column(old)):
            raise Differs(f"column {old} changed (batch {number})")


def add_in_place(
    db: Any,
    name: str,
    dataset: Any,
    the_plan: Plan,
    transform_batch: Callable[[Any], Any],
    specs: Sequence[Index],
    *,
    batch_size: int,
    attempt: str,
    say: Report,
) -> tuple[Any, ColumnWrite, list[Index], list[str]]:
    """Write the plan's columns, commit them; (new dataset, the write, kept specs, dropped index names).

    ``transform_batch(batch) -> batch`` is the transform with its output conformed to the new schema.
    """
    import pyarrow as pa

    kept_specs = []
    dropped = []
    for spec in specs:
        new = next((n for n, old in the_plan.kept.items() if old == spec.column), None)
        if new is None:
            dropped.append(spec.index_name)
        else:
            kept_specs.append(Index.from_dict({**spec.to_dict(), "column": new}) if new != spec.column else spec)
    present = {str(i["name"]) for i in dataset.list_indices()}
    say(the_plan.describe(len([s for s in kept_specs if s.index_name in present])))
    for index_name in dropped:
        say(f"index {index_name} is dropped with its column")
    staging = the_plan.staging
    output = pa.schema([f.with_name(stage) for stage, f in zip(staging, the_plan.written, strict=True)])
    counter = [0]
    progress = RowsTracker(say, "computed", dataset.count_rows())

    def compute(batch: Any) -> Any:
        counter[0] += 1
        out = transform_batch(batch)
        compare(the_plan, batch, out, counter[0])
        progress.add(batch.num_rows)
        return pa.RecordBatch.from_arrays([out.column(f.name) for f in the_plan.written], schema=output)

    write = ColumnWrite(compute, output, list(dataset.schema.names), batch_size)
    write_columns(dataset, write)
    if progress.added:
        say(progress.line())
    meta = {k: v for k, v in (the_plan.target.metadata or {}).items()}
    meta = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in meta.items()}
    for key in (META_SOURCE, META_ATTEMPT, META_INDICES):
        meta.pop(key, None)
    if kept_specs:
        meta[META_INDICES] = indices_json(kept_specs)
    renames = {**the_plan.renames, **staging}

    def finish(lance_schema: Any) -> Any:
        return edit_schema(lance_schema, drop=the_plan.drop, rename=renames, metadata=meta,
                           order=the_plan.target.names)

    new = commit_columns(db, name, write, finish, what="recreate_table's column commit",
                         properties={TX_ATTEMPT: attempt, TX_OP: "recreate_table (columns)", "migrator.table": name},
                         say=say)
    return new, write, kept_specs, dropped
