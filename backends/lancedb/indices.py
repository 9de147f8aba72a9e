"""Indices of LanceDB tables: build them from :class:`migrator.lancedb.Index` specs, read back what exists.

``list_indices()`` tells an index's name, type and column but not its IVF/PQ
training parameters, so migrator records the specs it builds in the table's
schema metadata (``migrator.indices``, see :mod:`.common`). Indices that
someone else created are rebuilt from what Lance reports (type, metric, PQ
sub-vectors and bits, HNSW and FTS settings), with Lance defaults for the rest.

Vector indices are trained on the table's rows: below ``Index.min_rows``
(default 256) an index is *deferred* — reported, kept in the recorded specs and
built by the next migration of the table, the next recreation, or
:func:`migrator.lancedb.ensure_indices`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

from migrator.lancedb import Index
from migrator.progress import Activity, format_duration

from .common import (
    META_INDICES,
    Report,
    indices_json,
    metadata_of,
    no_report,
    open_table,
    prefixed,
    recorded_indices,
    retry,
)

KIND_OF_TYPE = {
    "BTree": "BTREE",
    "Bitmap": "BITMAP",
    "LabelList": "LABEL_LIST",
    "FTS": "FTS",
    "Inverted": "FTS",
    "IvfFlat": "IVF_FLAT",
    "IvfSq": "IVF_SQ",
    "IvfPq": "IVF_PQ",
    "IvfRq": "IVF_RQ",
    "IvfHnswFlat": "IVF_HNSW_FLAT",
    "IvfHnswSq": "IVF_HNSW_SQ",
    "IvfHnswPq": "IVF_HNSW_PQ",
}

_CONFIG_CLASS = {
    "BTREE": "BTree",
    "BITMAP": "Bitmap",
    "LABEL_LIST": "LabelList",
    "FTS": "FTS",
    "IVF_FLAT": "IvfFlat",
    "IVF_SQ": "IvfSq",
    "IVF_PQ": "IvfPq",
    "IVF_RQ": "IvfRq",
    "IVF_HNSW_FLAT": "HnswFlat",
    "IVF_HNSW_SQ": "HnswSq",
    "IVF_HNSW_PQ": "HnswPq",
}

# FTS settings as list_indices() reports them -> lancedb.index.FTS keyword
_FTS_DETAILS = {
    "with_position": "with_position",
    "base_tokenizer": "base_tokenizer",
    "language": "language",
    "max_token_length": "max_token_length",
    "lower_case": "lower_case",
    "stem": "stem",
    "remove_stop_words": "remove_stop_words",
    "ascii_folding": "ascii_folding",
    "min_ngram_length": "ngram_min_length",
    "max_ngram_length": "ngram_max_length",
    "prefix_only": "prefix_only",
    "custom_stop_words": "custom_stop_words",
}


def config_for(spec: Index) -> Any:
    """The ``lancedb.index`` config object that builds ``spec``."""
    import lancedb.index

    cls = getattr(lancedb.index, _CONFIG_CLASS[spec.kind])
    kwargs: dict[str, Any] = {}
    if spec.is_vector:
        kwargs["distance_type"] = spec.metric or "l2"
        if spec.num_partitions is not None:
            kwargs["num_partitions"] = spec.num_partitions
        if spec.num_sub_vectors is not None:
            kwargs["num_sub_vectors"] = spec.num_sub_vectors
        if spec.num_bits is not None:
            kwargs["num_bits"] = spec.num_bits
    kwargs.update(spec.options)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"index {spec.index_name}: {spec.kind} does not take these parameters: {exc}") from exc


def existing_specs(table: Any, recorded: Sequence[Index] = (), report: Report = no_report,
                   unsupported: list[str] | None = None) -> list[Index]:
    """Specs of the indices present on ``table`` (at its checked-out version), recorded parameters first.

    Indices migrator cannot rebuild (several columns, a type it does not know) are reported and left out.
    """
    by_name = {s.index_name: s for s in recorded}
    found: list[Index] = []
    for info in table.list_indices():
        columns = list(info.columns or [])
        kind = KIND_OF_TYPE.get(str(info.index_type))
        if len(columns) != 1 or kind is None:
            report(f"index {info.name} ({info.index_type} on {', '.join(columns)}) cannot be rebuilt by migrator; "
                   "recreate it by hand after the migration")
            if unsupported is not None:
                unsupported.append(str(info.name))
            continue
        known = by_name.get(info.name)
        if known is not None and known.column == columns[0] and known.kind == kind:
            found.append(known)
            continue
        found.append(_derive(info.name, columns[0], kind, info.index_details or {}))
    return found


def _derive(name: str, column: str, kind: str, details: dict[str, Any]) -> Index:
    metric = details.get("metric_type")
    compression = details.get("compression") or {}
    hnsw = details.get("hnsw") or {}
    options: dict[str, Any] = {}
    if hnsw.get("max_connections"):
        options["m"] = int(hnsw["max_connections"])
    if hnsw.get("construction_ef"):
        options["ef_construction"] = int(hnsw["construction_ef"])
    if kind == "FTS":
        import inspect

        import lancedb.index

        accepted = set(inspect.signature(lancedb.index.FTS).parameters)
        options = {kw: details[key] for key, kw in _FTS_DETAILS.items() if key in details and kw in accepted}
    vector = kind.startswith("IVF")
    return Index(
        column=column,
        kind=kind,
        name=name,
        metric=str(metric).lower() if vector and metric else None,
        num_sub_vectors=compression.get("num_sub_vectors") if vector and kind.endswith("PQ") else None,
        num_bits=compression.get("num_bits") if vector and compression.get("type") in ("pq", "rq") else None,
        options=options,
    )


def column_fits(spec: Index, field: Any) -> bool:
    """Whether an index of ``spec.kind`` can be built on a column of this pyarrow ``field``."""
    import pyarrow as pa

    kind = field.type
    if spec.is_vector:
        return bool(pa.types.is_fixed_size_list(kind) or pa.types.is_list(kind))
    if spec.kind == "LABEL_LIST":
        return bool(pa.types.is_list(kind) or pa.types.is_large_list(kind))
    if spec.kind == "FTS":
        return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_list(kind))
    return not pa.types.is_nested(kind)


def ensure(
    table: Any,
    name: str,
    specs: Iterable[Index],
    report: Report = no_report,
    *,
    replace: Iterable[str] = (),
    rows: int | None = None,
    verb: str = "building",
    reported: set[str] | None = None,
) -> tuple[list[str], list[str]]:
    """Build the specs whose index is missing (or named in ``replace``); returns (built, deferred) names.

    A spec whose column is gone is skipped with a report line. A vector spec on
    a table with fewer than ``spec.train_rows`` rows is deferred.
    """
    present = {info.name for info in table.list_indices()}
    forced = set(replace)
    fields = {f.name: f for f in table.schema}
    built: list[str] = []
    deferred: list[str] = []
    for spec in specs:
        index_name = spec.index_name
        if index_name in present and index_name not in forced:
            continue
        field = fields.get(spec.column)
        if field is None:
            report(f"index {index_name} skipped: column {spec.column} does not exist")
            continue
        if spec.train_rows:
            count = table.count_rows() if rows is None else rows
            if count < spec.train_rows:
                deferred.append(index_name)
                if reported is not None:
                    if index_name in reported:
                        continue
                    reported.add(index_name)
                report(f"{spec.kind} index {index_name} on {spec.column} deferred: {count} rows, needs "
                       f"{spec.train_rows} to train (built by the next migration of {name}, or call "
                       "migrator.lancedb.ensure_indices)")
                continue
        slow = " (slow)" if spec.is_vector else ""
        action = "rebuilding" if index_name in present else verb
        report(Activity(f"{action} {spec.kind} index {index_name} on {spec.column}{slow}"))
        started = time.perf_counter()
        _create(table, spec, config_for(spec))
        if spec.is_vector:
            report(f"{index_name} built in {format_duration(time.perf_counter() - started)}")
        built.append(index_name)
    return built, deferred


def _create(table: Any, spec: Index, config: Any) -> None:
    def build() -> None:
        table.create_index(spec.column, config=config, name=spec.index_name, replace=True)

    retry(build, what="create index")


def same_index(a: Index, b: Index) -> bool:
    """Whether two specs build the same index: column, kind, name, metric, parameters and options.

    A spec without a name means the default name (``<column>_idx``, as recorded), a vector spec without a
    metric means ``l2`` (what :func:`config_for` builds); ``min_rows`` only decides when an index is built.
    """
    return _meaning(a) == _meaning(b)


def _meaning(spec: Index) -> tuple[Any, ...]:
    metric = (spec.metric or "l2") if spec.is_vector else spec.metric
    options = json.dumps(dict(spec.options), sort_keys=True, default=str)  # as recorded: JSON, tuples as lists
    return (spec.column, spec.kind, spec.index_name, metric, spec.num_partitions, spec.num_sub_vectors,
            spec.num_bits, options)


def changed_specs(recorded: Sequence[Index], declared: Sequence[Index]) -> list[str]:
    """Names of the ``declared`` indices that ``recorded`` holds with another meaning (to rebuild)."""
    known = {s.index_name: s for s in recorded}
    return [s.index_name for s in declared if s.index_name in known and not same_index(known[s.index_name], s)]


def refresh(table: Any, specs: Iterable[Index], report: Report = no_report) -> list[str]:
    """Add the rows an existing index does not cover yet (``optimize_indices``); returns the names refreshed.

    An index built on an empty or smaller table (a BTREE created with the table,
    then a bulk load) covers only the rows it saw; Lance still answers queries
    by scanning the rest. This merges them in: one ``CreateIndex`` commit per
    index, no row changed, no retraining (a vector index keeps its centroids).
    """
    present = {info.name for info in table.list_indices()}
    stale: list[tuple[str, int]] = []
    for spec in specs:
        if spec.index_name not in present:
            continue
        stats = table.index_stats(spec.index_name)
        missing = int(getattr(stats, "num_unindexed_rows", 0) or 0) if stats is not None else 0
        if missing:
            stale.append((spec.index_name, missing))
    for index_name, missing in stale:
        report(f"index {index_name}: adding {missing} rows it does not cover yet")
        _optimize(table, index_name)
        table.checkout_latest()
    return [index_name for index_name, _ in stale]


def _optimize(table: Any, index_name: str) -> None:
    def merge() -> None:
        table.to_lance().optimize.optimize_indices(index_names=[index_name])

    retry(merge, what="optimize index")


def merge_specs(base: Sequence[Index], extra: Sequence[Index]) -> list[Index]:
    """``base`` with ``extra`` added; a spec in ``extra`` replaces the one of the same index name."""
    merged = {s.index_name: s for s in base}
    for spec in extra:
        merged[spec.index_name] = spec
    return list(merged.values())


def record(table: Any, specs: Sequence[Index], extra: dict[str, str | None] | None = None) -> bool:
    """Write ``specs`` (and ``extra`` keys) into the table's schema metadata if they differ; True if written."""
    meta = metadata_of(table.schema)
    wanted: dict[str, str | None] = {META_INDICES: indices_json(specs) if specs else None}
    wanted.update(extra or {})
    changes = {k: v for k, v in wanted.items() if meta.get(k) != v}
    if not changes:
        return False
    dataset = table.to_lance()
    retry(lambda: dataset.update_schema_metadata(changes), what="metadata update")
    table.checkout_latest()
    return True


def ensure_table_indices(db: Any, name: str, indices: Sequence[Index] | None, report: Report | None) -> list[str]:
    """Public helper behind :func:`migrator.lancedb.ensure_indices`."""
    table = open_table(db, name)
    if table is None:
        raise ValueError(f"table {name!r} does not exist")
    recorded = recorded_indices(metadata_of(table.schema))
    declared = list(indices or [])
    specs = merge_specs(recorded, declared)
    say = prefixed(report or no_report, name)
    built, _ = ensure(table, name, specs, say, replace=changed_specs(recorded, declared))
    table.checkout_latest()
    refresh(table, [s for s in specs if s.index_name not in built], say)
    record(table, specs)
    return built


def create_recorded_index(db: Any, name: str, index: Index, report: Report | None) -> None:
    """Public helper behind :func:`migrator.lancedb.create_index`."""
    problems = index.problems()
    if problems:
        raise ValueError(f"{name}: {problems[0]}")
    table = open_table(db, name)
    if table is None:
        raise ValueError(f"table {name!r} does not exist")
    specs = merge_specs(recorded_indices(metadata_of(table.schema)), [index])
    ensure(table, name, [index], prefixed(report or no_report, name), replace=[index.index_name])
    table.checkout_latest()
    record(table, specs)
