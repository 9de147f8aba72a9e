"""Seed data of a LanceDB backend (``migrator seed``): ``@seed(table=..., key=...)`` functions, upserted by key.

The shape, documented in :mod:`migrator.lancedb`: every seed's rows are computed and checked first
(table exists, columns and types fit, key present and unique); then, seed by seed, the rows not
already stored with equal values go through one
``merge_insert(key).when_matched_update_all().when_not_matched_insert_all()`` commit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrator.errors import LoaderError, MigrationFailed
from migrator.lancedb import seed_spec_of
from migrator.loader import import_file, seed_folder_names

from ..base import Report, Seed, Seeded
from .common import open_table

_NAMESPACE = "migrator_lancedb_seeds"


@dataclass(frozen=True)
class LanceSeed:
    """The payload of a LanceDB :class:`Seed`: one ``@seed`` function."""

    function: Callable[..., Any]
    takes_db: bool
    table: str
    key: tuple[str, ...]
    function_name: str


@dataclass(frozen=True)
class _Rows:
    """A seed's rows, cast to its table's types, and how they compare with what is stored."""

    data: Any                 # pyarrow.Table: the rows to write (new or changed)
    inserted: int
    updated: int
    unchanged: int


class _Refused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def load(folder: Path) -> list[Seed]:
    """Every ``@seed`` function of the folder's ``.py`` files, in file-name then definition order."""
    names = seed_folder_names(folder)
    seeds: list[Seed] = []
    for name in names:
        path = folder / name
        if name.startswith((".", "_")):
            continue
        if name.endswith(".sql"):
            raise LoaderError(f"{path}: LanceDB seeds are .py files with @seed(table=..., key=...) functions")
        if not name.endswith(".py"):
            continue
        if not path.is_file():
            raise LoaderError(f"{path}: is not a regular file (seed files are .py files)")
        seeds.extend(_load_file(path))
    return seeds


def _load_file(path: Path) -> list[Seed]:
    module = import_file(path, _NAMESPACE)
    found: list[Seed] = []
    for attr, obj in list(vars(module).items()):
        spec = seed_spec_of(obj)
        if spec is None or getattr(obj, "__module__", None) != module.__name__:
            continue
        function_name = str(getattr(obj, "__qualname__", attr))
        if spec.problems:
            raise LoaderError(f"{path}: {function_name}: {spec.problems[0]}")
        step = LanceSeed(spec.function, spec.takes_db, spec.table, spec.key, function_name)
        found.append(Seed(f"{path.name}: {function_name} -> {spec.table} by {', '.join(spec.key)}", path, step))
    if not found:
        raise LoaderError(f"{path}: defines no @seed function (from migrator.lancedb import seed)")
    return found


def apply(db: Any, seeds: Sequence[Seed], report: Report, *, dry_run: bool, backend: str,
          scrub: Callable[[str], str]) -> list[Seeded]:
    """Check every seed, then (unless ``dry_run``) write each; MigrationFailed naming the file and the function."""
    computed: list[tuple[Seed, Any]] = []
    results: list[Seeded] = []
    for seed in seeds:  # every seed computed and checked before the first write
        step = _step(seed)
        with _failing(seed, backend, scrub, "nothing was seeded", doing="reading"):
            table = open_table(db, step.table)
            if table is None:
                raise _Refused(f"table {step.table!r} does not exist (seeds load into tables the migrations "
                               "create)")
            try:
                produced = step.function(db) if step.takes_db else step.function()
            except Exception as exc:
                raise _Refused(f"{step.function_name}() failed: {type(exc).__name__}: {exc}") from exc
            data = _as_table(produced, table.schema, step)
            rows = _compare(table, data, step)
        computed.append((seed, data))
        results.append(Seeded(seed.label, _detail(rows, dry_run)))
    if dry_run:
        return results
    results = []
    for number, (seed, data) in enumerate(computed):
        step = _step(seed)
        kept = "nothing was seeded" if number == 0 else \
            "the seeds before it were loaded; running `migrator seed` again is safe"
        with _failing(seed, backend, scrub, kept, doing="writing"):
            table = open_table(db, step.table)
            if table is None:
                raise _Refused(f"table {step.table!r} does not exist any more")
            rows = _compare(table, data, step)  # again: an earlier seed may have written the same rows
            if rows.inserted or rows.updated:
                (table.merge_insert(list(step.key)).when_matched_update_all().when_not_matched_insert_all()
                 .execute(rows.data))
        results.append(Seeded(seed.label, _detail(rows, dry_run=False)))
    return results


def _step(seed: Seed) -> LanceSeed:
    step = seed.payload
    assert isinstance(step, LanceSeed)
    return step


class _failing:
    """Turn a seed's failure into MigrationFailed naming its file, function and table."""

    def __init__(self, seed: Seed, backend: str, scrub: Callable[[str], str], kept: str, *, doing: str) -> None:
        self._seed, self._backend, self._scrub, self._kept, self._doing = seed, backend, scrub, kept, doing

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None or not isinstance(exc, Exception) or isinstance(exc, MigrationFailed):
            return
        step = _step(self._seed)
        why = exc.message if isinstance(exc, _Refused) else \
            f"{self._doing} {step.table} failed: {type(exc).__name__}: {exc}"
        raise MigrationFailed(self._scrub(f"{self._backend}: seed {self._seed.path}: {step.function_name}: {why}; "
                                          f"{self._kept}"), backend=self._backend, line=step.table) from exc


def _as_table(produced: Any, schema: Any, step: LanceSeed) -> Any:
    """The rows as a pyarrow Table of the table's own types, with only the columns the seed gives."""
    import pyarrow as pa

    if isinstance(produced, pa.RecordBatch):
        produced = pa.Table.from_batches([produced])
    if isinstance(produced, pa.Table):
        columns = list(produced.column_names)
    elif isinstance(produced, Sequence) and not isinstance(produced, (str, bytes)) and \
            all(isinstance(row, Mapping) for row in produced):
        given = {str(name) for row in produced for name in row}
        columns = [name for name in schema.names if name in given] + sorted(given - set(schema.names))
    else:
        raise _Refused(f"{step.function_name}() returned {type(produced).__name__}; return a list of dicts or a "
                       "pyarrow Table")
    unknown = [name for name in columns if name not in schema.names]
    if unknown:
        raise _Refused(f"column {unknown[0]!r} is not in table {step.table!r}")
    missing = [name for name in step.key if name not in columns]
    if missing:
        raise _Refused(f"the rows have no key column {missing[0]!r}")
    target = pa.schema([schema.field(name) for name in columns])
    try:
        if isinstance(produced, pa.Table):
            return produced.select(columns).cast(target)
        return pa.Table.from_pylist([dict(row) for row in produced], schema=target)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise _Refused(f"the rows do not fit table {step.table!r}: {exc}") from exc


def _compare(table: Any, data: Any, step: LanceSeed) -> _Rows:
    """Which rows are new, which differ from what is stored (by key), which are already there as they are."""
    import pyarrow as pa
    import pyarrow.compute as pc

    keys = [tuple(row[k] for k in step.key) for row in data.select(list(step.key)).to_pylist()]
    for key in keys:
        if any(value is None for value in key):
            raise _Refused(f"a row has no value for its key {', '.join(step.key)}")
    seen: set[tuple[Any, ...]] = set()
    for key in keys:
        if key in seen:
            shown = key[0] if len(key) == 1 else key
            raise _Refused(f"key {shown!r} is given twice")
        seen.add(key)
    stored: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    if keys:
        condition = None
        for number, name in enumerate(step.key):
            values = pa.array([key[number] for key in keys], type=data.schema.field(name).type)
            test = pc.field(name).isin(values)
            condition = test if condition is None else condition & test
        found = table.to_lance().to_table(columns=data.column_names, filter=condition)
        for row in found.to_pylist():
            stored.setdefault(tuple(row[k] for k in step.key), []).append(row)
    rows = data.to_pylist()
    write = [index for index, (key, row) in enumerate(zip(keys, rows, strict=True))
             if stored.get(key) is None or any(old != row for old in stored[key])]
    inserted = sum(1 for index in write if keys[index] not in stored)
    schema = table.schema
    required = [f.name for f in schema if not f.nullable and f.name not in data.column_names]
    if inserted and required:
        raise _Refused(f"{inserted} new row{'' if inserted == 1 else 's'} would have no value for the non-null "
                       f"column {required[0]!r}")
    return _Rows(data.take(pa.array(write, type=pa.int64())), inserted, len(write) - inserted, len(rows) - len(write))


def _detail(rows: _Rows, dry_run: bool) -> str:
    parts = [f"{rows.inserted} {'to insert' if dry_run else 'inserted'}",
             f"{rows.updated} {'to update' if dry_run else 'updated'}", f"{rows.unchanged} unchanged"]
    return ", ".join(parts)
