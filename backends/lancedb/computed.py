"""Authoring helpers that say what they rewrite: a computed column, one column's values, a native cast.

``add_computed_column`` and ``replace_column_values`` write only their column
(:mod:`.colwrite`: ``merge_columns`` per fragment, rows appended meanwhile
caught up, one ``Merge`` commit guarded against other writers); every other
column and its indices stay as they are (same index ids). ``cast_column`` is
Lance's own ``alter_columns(data_type=...)``: it rewrites that column only.

Like the native evolution helpers (:mod:`.evolve`) they do not stamp: inside
a migration the adapter writes the stamp after the migration function
returned, so a migration may call several of them; a kill before that stamp
makes the next run restore the table's version from before the migration and
run it again (nothing applied twice). Each returns the table's new Lance version.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from migrator.errors import UsageError
from migrator.lancedb import ConcurrentWriteError

from .colwrite import Blocked, ColumnWrite, Dropped, commit_columns, write_columns
from .common import CURRENT, TX_OP, Report, metadata_of, no_report, open_table, prefixed, recorded_indices, retry
from .indices import column_fits, ensure, existing_specs, record
from .schema_edit import edit_schema

__all__ = ["add_computed_column", "cast_column", "replace_column_values"]

STAGE = "__migrator_replace_"
ROUNDS = 3            # starts from the latest version after another writer deleted or rewrote rows meanwhile
BATCH_SIZE = 4096


def _say(name: str) -> Report:
    ctx = CURRENT.get()
    if ctx is not None and ctx.table == name:
        return ctx.report
    return prefixed(ctx.report if ctx is not None else no_report, name)


def _table(db: Any, name: str, where: str) -> Any:
    table = open_table(db, name)
    if table is None:
        raise UsageError(f"{where}: table {name!r} does not exist")
    return table


def _read_columns(table: Any, read_columns: Sequence[str] | None, where: str) -> list[str]:
    names = list(table.schema.names)
    if read_columns is None:
        return names
    if isinstance(read_columns, str) or not all(isinstance(c, str) for c in read_columns):
        raise UsageError(f"{where}: read_columns must be a list of column names (got {read_columns!r})")
    missing = [c for c in read_columns if c not in names]
    if missing:
        raise UsageError(f"{where}: read column {missing[0]!r} does not exist (the table has {', '.join(names)})")
    return list(read_columns)


def _values(compute: Callable[[Any], Any], batch: Any, field: Any, where: str) -> Any:
    """``compute(batch)`` as one array of ``field``'s type, as long as the batch, without nulls if non-null."""
    import pyarrow as pa

    result = compute(batch)
    if isinstance(result, pa.ChunkedArray):
        result = result.combine_chunks()
    if not isinstance(result, pa.Array):
        try:
            result = pa.array(result, type=field.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
            raise ValueError(f"{where}: compute returned {type(result).__name__}, not an array of {field.type}: "
                             f"{exc}") from exc
    if len(result) != batch.num_rows:
        raise ValueError(f"{where}: compute returned {len(result):,} values for a batch of {batch.num_rows:,} rows")
    if not result.type.equals(field.type):
        try:
            result = result.cast(field.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ValueError(f"{where}: compute returned {result.type}, which cannot become {field.type}: "
                             f"{exc}") from exc
    if not field.nullable and result.null_count:
        raise ValueError(f"{where}: compute returned {result.null_count:,} null(s) for the non-null column "
                         f"{field.name}")
    return result


def _write(db: Any, name: str, field: Any, compute: Callable[[Any], Any], read_columns: list[str], where: str,
           finish: Callable[[Any], Any], say: Report) -> Any:
    """Write ``field`` (a staging field) computed per batch, commit with the schema ``finish(lance_schema)`` gives."""
    import pyarrow as pa

    output = pa.schema([field])
    for round_no in range(1, ROUNDS + 1):
        table = _table(db, name, where)
        dataset = table.to_lance()

        def run(batch: Any) -> Any:
            return pa.RecordBatch.from_arrays([_values(compute, batch, field, where)], schema=output)

        write = ColumnWrite(run, output, read_columns, BATCH_SIZE)
        try:
            write_columns(dataset, write)
            return commit_columns(db, name, write, finish, what=where,
                                  properties={TX_OP: where, "migrator.table": name}, say=say)
        except Blocked as exc:
            if round_no < ROUNDS:
                say(f"another writer committed {exc} meanwhile (not only appends): starting again from the latest "
                    "version")
                continue
            raise ConcurrentWriteError(
                f"{name}: other writers committed {exc} (deletes, updates or rewrites, not only appends) during "
                f"{where}, {ROUNDS} time(s); nothing was committed — retry later", line=name, restored=True) from None
        except Dropped as exc:
            raise ConcurrentWriteError(str(exc), line=name, restored=True) from None
    raise AssertionError("unreachable")  # pragma: no cover


def add_computed_column(db: Any, name: str, field: Any, compute: Callable[[Any], Any], *,
                        read_columns: Sequence[str] | None = None) -> int:
    """See :func:`migrator.lancedb.add_computed_column`."""
    import pyarrow as pa

    where = f"add_computed_column({name!r}, {getattr(field, 'name', field)!r})"
    if not isinstance(field, pa.Field):
        raise UsageError(f"{where}: field must be a pyarrow.Field (got {type(field).__name__})")
    if not callable(compute):
        raise UsageError(f"{where}: compute must be a function batch -> array")
    table = _table(db, name, where)
    if field.name in table.schema.names:
        raise UsageError(f"{where}: column {field.name!r} already exists (replace_column_values changes its values)")
    columns = _read_columns(table, read_columns, where)
    say = _say(name)
    dataset = table.to_lance()
    if not dataset.get_fragments():  # an empty table: only the schema changes
        import lance

        empty = pa.schema([field])
        udf = lance.batch_udf(output_schema=empty)(lambda batch: pa.RecordBatch.from_arrays(
            [_values(compute, batch, field, where)], schema=empty))
        retry(lambda: _table(db, name, where).to_lance().add_columns(udf, read_columns=columns), attempts=30)
        say(f"added column {field.name} to the empty table")
        return int(_table(db, name, where).version)
    present = len(dataset.list_indices())
    say(f"adding column {field.name} (no rewrite, {present} ind{'ices' if present != 1 else 'ex'} kept)")

    def finish(schema: Any) -> Any:
        return schema

    new = _write(db, name, field, compute, columns, where, finish, say)
    return int(new.version)


def replace_column_values(db: Any, name: str, column: str, compute: Callable[[Any], Any], *,
                          read_columns: Sequence[str] | None = None) -> int:
    """See :func:`migrator.lancedb.replace_column_values`."""
    where = f"replace_column_values({name!r}, {column!r})"
    if not callable(compute):
        raise UsageError(f"{where}: compute must be a function batch -> array")
    table = _table(db, name, where)
    names = list(table.schema.names)
    if column not in names:
        raise UsageError(f"{where}: column {column!r} does not exist (the table has {', '.join(names)})")
    columns = _read_columns(table, read_columns, where)
    say = _say(name)
    old = table.schema.field(column)
    stage = f"{STAGE}{column}"
    field = old.with_name(stage)
    recorded = recorded_indices(metadata_of(table.schema))
    present = existing_specs(table, recorded)
    known = {s.index_name: s for s in recorded}
    for spec in present:
        known.setdefault(spec.index_name, spec)
    rebuild = [s for s in known.values() if s.column == column and column_fits(s, old)]
    others = len([s for s in present if s.column != column])
    say(f"replacing the values of {column} (only {column} is written; "
        + (f"{', '.join(s.index_name for s in rebuild)} rebuilt, " if rebuild else "")
        + f"{others} other ind{'ices' if others != 1 else 'ex'} kept)")
    if not table.to_lance().get_fragments():
        return int(table.version)  # no rows: nothing to replace

    def finish(schema: Any) -> Any:
        return edit_schema(schema, drop=[column], rename={stage: column}, order=names)

    new = _write(db, name, field, compute, columns, where, finish, say)
    table = _table(db, name, where)
    ensure(table, name, rebuild, say, replace=[s.index_name for s in rebuild], rows=int(new.count_rows()),
           verb="rebuilding")
    table.checkout_latest()
    return int(table.version)


def cast_column(db: Any, name: str, column: str, type: Any) -> int:
    """See :func:`migrator.lancedb.cast_column`."""
    import pyarrow as pa

    where = f"cast_column({name!r}, {column!r})"
    if not isinstance(type, pa.DataType):
        raise UsageError(f"{where}: type must be a pyarrow.DataType (got {type!r})")
    table = _table(db, name, where)
    names = list(table.schema.names)
    if column not in names:
        raise UsageError(f"{where}: column {column!r} does not exist (the table has {', '.join(names)})")
    old = table.schema.field(column)
    say = _say(name)
    if old.type.equals(type):
        say(f"{column} is already {type}: nothing to cast")
        return int(table.version)
    refused = _castable(old, type)
    if refused is not None:
        raise UsageError(f"{where}: Lance cannot cast {column} from {old.type} to {type} natively ({refused}); use "
                         "recreate_table with a transform that converts the values")
    recorded = recorded_indices(metadata_of(table.schema))
    on_column = [s for s in existing_specs(table, recorded) if s.column == column]
    known = {s.index_name: s for s in recorded if s.column == column}
    for spec in on_column:
        known.setdefault(spec.index_name, spec)
    new_field = old.with_type(type)
    rebuild = [s for s in known.values() if column_fits(s, new_field)]
    lost = [s.index_name for s in known.values() if s not in rebuild]
    say(f"casting {column} from {old.type} to {type} (Lance rewrites only {column}"
        + (f"; {', '.join(s.index_name for s in rebuild)} rebuilt" if rebuild else "") + ")")
    if lost:
        say(f"ind{'ices' if len(lost) > 1 else 'ex'} {', '.join(lost)} dropped: not possible on {type}")
    for spec in on_column:  # Lance refuses to cast a column with an index attached
        _drop_index(db, name, spec.index_name, where)

    def cast() -> None:
        _table(db, name, where).alter_columns({"path": column, "data_type": type})

    try:
        retry(cast, attempts=30, what="cast")
    except Exception as exc:  # a value that does not fit (an overflowing downcast): put the indices back
        table = _table(db, name, where)
        ensure(table, name, on_column, say, verb="rebuilding")
        text = str(exc).split(", /home/")[0].split(", src/")[0]
        raise UsageError(f"{where}: Lance could not cast {column} from {old.type} to {type}: {text}; the column "
                         "was not changed") from None
    table = _table(db, name, where)
    if lost:
        record(table, [s for s in recorded if s.index_name not in lost])
    ensure(table, name, rebuild, say, rows=int(table.count_rows()), verb="rebuilding")
    table.checkout_latest()
    return int(table.version)


def _drop_index(db: Any, name: str, index_name: str, where: str) -> None:
    def drop() -> None:
        _table(db, name, where).drop_index(index_name)

    retry(drop, what="drop index")


def castable_natively(field: Any, type: Any) -> bool:
    """Whether Lance's native cast (``alter_columns(data_type=...)``) takes ``field`` to ``type``."""
    return _castable(field, type) is None


def _castable(field: Any, type: Any) -> str | None:
    """Lance's refusal to cast ``field`` to ``type`` (asked of an empty scratch dataset), or None."""
    import tempfile

    import lance
    import pyarrow as pa

    with tempfile.TemporaryDirectory(prefix="migrator-cast-") as folder:
        scratch: Any = lance.write_dataset(pa.table({"c": pa.array([], field.type)}), f"{folder}/cast.lance")
        try:
            scratch.alter_columns({"path": "c", "data_type": type})
        except Exception as exc:  # Lance raises ValueError / OSError variants
            return str(exc).split(", /home/")[0].split(", src/")[0].replace('column "c" ', "")
    return None
