"""Autogenerate for LanceDB backends: the application's ``target_schemas`` compared with the live tables.

``target_schemas = "app.schemas:SCHEMAS"`` names a dict of table name -> ``pyarrow.Schema``. The module that
holds it may define ``INDICES``, a dict of table name -> list of :class:`migrator.lancedb.Index`: for the tables
it names, the indices are compared too (tables it does not name keep whatever indices they have).

What each difference becomes (one migration per changed table, see :func:`helper_for`):

* a table in SCHEMAS and not in the database: ``db.create_table(name, schema=...)``, its INDICES on the decorator;
* a nullable column added: ``add_columns`` (O(1), all null);
* a column dropped: ``drop_columns``;
* a column renamed: ``rename_column``, only when the target field's metadata says
  ``{"migrator.renamed_from": "<old name>"}`` (otherwise it is a drop and an add);
* a column made nullable: ``make_nullable``;
* a new non-null column: ``add_computed_column`` (writes that column only) with a compute stub that raises until
  it is edited;
* a type Lance can cast natively (asked of an empty scratch dataset): ``cast_column`` (rewrites that column only);
* a type Lance cannot cast (a vector's dimension), a column made non-null: ``recreate_table`` with the target
  schema and a ``transform`` stub that raises until it is edited, its comments naming what must be computed;
* field or schema metadata changed (keys of the target schema): ``recreate_table`` with the target schema
  (no computation: the values are copied);
* an index declared in INDICES and not on the table, or on it with other parameters: the decorator's
  ``indices=[...]`` (created, or rebuilt, after the function).

Tables in the database that SCHEMAS does not name are reported, never dropped. Column order is not compared
(Lance adds columns at the end). Lance does not keep the non-null flag of list items, so it is not compared.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from migrator.errors import ConfigError
from migrator.importing import load_attribute
from migrator.lancedb import TABLE_NAME, Index
from migrator.scaffold import literal

from ..base import ModelChanges, TableChanges
from .common import MIGRATOR_PREFIX, metadata_of, open_table, recorded_indices
from .indices import same_index

KEY = "target_schemas"
INDICES_ATTRIBUTE = "INDICES"
RENAMED_FROM = "migrator.renamed_from"

# the order the helpers run in inside one migration: recreate_table last (its commit carries the version stamp)
LINE = 120  # the longest generated line where a shorter form exists (ruff's E501 at this project's length)
HELPER_ORDER = ("rename_column", "drop_columns", "make_nullable", "add_columns", "add_computed_column",
                "cast_column", "recreate_table")


# -- loading the target ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What ``target_schemas`` names: the schemas, and the indices declared beside them (None: not compared)."""

    source: str                                     # for the generated file's comment
    schemas: dict[str, pa.Schema]
    indices: dict[str, list[Index]] = field(default_factory=dict)


def load_target(target: object, where: str, root: Path | None) -> Target:
    """The schemas (and ``INDICES``) that ``target_schemas`` names, or ``target`` itself when it is a dict.

    Every failure is one ``ConfigError`` naming ``where`` (the config file and section) and the key, and the
    LanceDB table when one value is at fault.
    """
    if isinstance(target, Mapping):
        return Target(KEY, _schemas(target, where, KEY), {})
    module, found = load_attribute(target, KEY, where, root)
    schemas = _schemas(found, where, f"{KEY} {target!r}")
    indices = _indices(getattr(module, INDICES_ATTRIBUTE, None), schemas, where,
                       f"{module.__name__}.{INDICES_ATTRIBUTE}")
    return Target(str(target), schemas, indices)


def _schemas(found: Any, where: str, what: str) -> dict[str, pa.Schema]:
    if not isinstance(found, Mapping):
        raise ConfigError(f"{where}: {what} is a {type(found).__name__}, not a dict of table name -> pyarrow.Schema")
    schemas: dict[str, pa.Schema] = {}
    for name, schema in found.items():
        if not isinstance(name, str) or not TABLE_NAME.fullmatch(name):
            raise ConfigError(f"{where}: {what}: {name!r} is not a LanceDB table name (letters, digits, _ - .)")
        if not isinstance(schema, pa.Schema):
            raise ConfigError(f"{where}: {what}: table {name!r} maps to a {type(schema).__name__}, "
                              "not a pyarrow.Schema")
        names = schema.names
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ConfigError(f"{where}: {what}: table {name!r} has the column {twice[0]!r} twice")
        for item in schema:
            old = _renamed_from(item)
            if old is not None and (not old or old == item.name):
                raise ConfigError(f"{where}: {what}: table {name!r} column {item.name!r}: {RENAMED_FROM} "
                                  f"must name the column's old name (got {old!r})")
        schemas[name] = schema
    return schemas


def _indices(found: Any, schemas: Mapping[str, pa.Schema], where: str, what: str) -> dict[str, list[Index]]:
    if found is None:
        return {}
    if not isinstance(found, Mapping):
        raise ConfigError(f"{where}: {what} is a {type(found).__name__}, not a dict of table name -> [Index(...)]")
    indices: dict[str, list[Index]] = {}
    for name, specs in found.items():
        if name not in schemas:
            raise ConfigError(f"{where}: {what}: table {name!r} is not in {KEY}")
        if isinstance(specs, (str, bytes, Index)) or not isinstance(specs, Sequence):
            raise ConfigError(f"{where}: {what}: table {name!r} must map to a list of Index(...)")
        for spec in specs:
            if not isinstance(spec, Index):
                raise ConfigError(f"{where}: {what}: table {name!r} holds {spec!r}, not an Index(...)")
            problems = spec.problems()
            if spec.column not in schemas[name].names:
                problems.append(f"column {spec.column!r} is not in its schema")
            if problems:
                raise ConfigError(f"{where}: {what}: table {name!r} index {spec.index_name!r}: {problems[0]}")
        names = [s.index_name for s in specs]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ConfigError(f"{where}: {what}: table {name!r} names the index {twice[0]!r} twice")
        indices[name] = list(specs)
    return indices


# -- comparing ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One difference of a column: ``kind`` is add, drop, rename, nullable, not_null, type or metadata."""

    kind: str
    column: str                        # the column's name in the target (drop: in the database)
    target: pa.Field | None = None     # the field as SCHEMAS declares it (None: drop)
    live: pa.Field | None = None       # the field in the database (None: add)

    @property
    def old_name(self) -> str:
        """The column's name in the database."""
        return self.live.name if self.live is not None else self.column

    def describe(self) -> str:
        if self.kind == "add":
            assert self.target is not None
            null = "" if self.target.nullable else ", not null"
            return f"add column {self.column} ({self.target.type}{null})"
        if self.kind == "drop":
            return f"drop column {self.column}"
        if self.kind == "rename":
            assert self.live is not None
            return f"rename column {self.live.name} -> {self.column}"
        if self.kind == "nullable":
            return f"make {self.column} nullable"
        if self.kind == "not_null":
            return f"make {self.column} not null"
        if self.kind == "type":
            assert self.live is not None and self.target is not None
            return f"change the type of {self.column}: {self.live.type} -> {self.target.type}"
        return f"change the field metadata of {self.column}"

    @property
    def computes(self) -> str | None:
        """What a transform must compute for this change (None: nothing, the values are copied)."""
        if self.kind == "add":
            assert self.target is not None
            return f"{self.column!r} ({self.target.type}, not null, new): compute its value for every row"
        if self.kind == "type":
            assert self.live is not None and self.target is not None
            return f"{self.column!r}: convert every value from {self.live.type} to {self.target.type}"
        if self.kind == "not_null":
            return f"{self.column!r} (not null now): replace its nulls"
        return None


def helper_for(change: Change) -> str:
    """The ``migrator.lancedb`` helper that makes one change: the one place that picks it.

    Native evolution where Lance can (O(1)); a new non-null column by ``add_computed_column`` (writes that column
    only, with a compute function to fill in); a type Lance can cast natively by ``cast_column`` (rewrites that
    column only); ``recreate_table`` (a streamed rewrite, with a transform to fill in where values must be
    computed) for the rest: a type Lance cannot cast (a vector's dimension), a column made non-null, metadata.
    """
    if change.kind == "add":
        assert change.target is not None
        return "add_columns" if change.target.nullable else "add_computed_column"
    if change.kind == "type":
        assert change.live is not None and change.target is not None
        from .computed import castable_natively

        return "cast_column" if castable_natively(change.live, change.target.type) else "recreate_table"
    return {"drop": "drop_columns", "rename": "rename_column", "nullable": "make_nullable"}.get(
        change.kind, "recreate_table")


def _renamed_from(item: pa.Field) -> str | None:
    meta = item.metadata or {}
    raw = meta.get(RENAMED_FROM.encode())
    return raw.decode("utf-8", "replace") if raw is not None else None


def _field_meta(item: pa.Field) -> dict[str, str]:
    return {k: v for k, v in metadata_of(item).items() if not k.startswith(MIGRATOR_PREFIX)}


def storable(kind: pa.DataType) -> pa.DataType:
    """``kind`` as Lance stores it: list items nullable (Lance does not keep their non-null flag)."""
    if pa.types.is_fixed_size_list(kind):
        return pa.list_(_value(kind.value_field), kind.list_size)
    if pa.types.is_large_list(kind):
        return pa.large_list(_value(kind.value_field))
    if pa.types.is_list(kind):
        return pa.list_(_value(kind.value_field))
    if pa.types.is_struct(kind):
        return pa.struct([kind.field(i).with_type(storable(kind.field(i).type)) for i in range(kind.num_fields)])
    return kind


def _value(item: pa.Field) -> pa.Field:
    return item.with_type(storable(item.type)).with_nullable(True)


def column_changes(live: pa.Schema, target: pa.Schema) -> list[Change]:
    """The column changes from ``live`` to ``target``."""
    changes: list[Change] = []
    live_names = set(live.names)
    matched: dict[str, pa.Field] = {}  # target name -> live field
    for item in target:
        old = _renamed_from(item)
        if item.name in live_names:
            matched[item.name] = live.field(item.name)
        elif old is not None and old in live_names and old not in target.names:
            matched[item.name] = live.field(old)
            changes.append(Change("rename", item.name, item, live.field(old)))
    kept = {f.name for f in matched.values()}
    changes.extend(Change("drop", f.name, None, f) for f in live if f.name not in kept)
    for item in target:
        now = matched.get(item.name)
        if now is None:
            changes.append(Change("add", item.name, item, None))
            continue
        if not storable(item.type).equals(storable(now.type)):
            changes.append(Change("type", item.name, item, now))
        if item.nullable and not now.nullable:
            changes.append(Change("nullable", item.name, item, now))
        elif not item.nullable and now.nullable:
            changes.append(Change("not_null", item.name, item, now))
        wanted = _field_meta(item)
        if any(_field_meta(now).get(k) != v for k, v in wanted.items() if k != RENAMED_FROM):
            changes.append(Change("metadata", item.name, item, now))
    return changes


def schema_metadata_differs(live: pa.Schema, target: pa.Schema) -> bool:
    """Whether the target's own schema metadata keys are missing or different in the database."""
    have = metadata_of(live)
    return any(have.get(k) != v for k, v in metadata_of(target).items() if not k.startswith(MIGRATOR_PREFIX))


def index_changes(table: Any, declared: Sequence[Index]) -> tuple[list[Index], list[str]]:
    """The declared indices to create or rebuild, and one line per index difference (undeclared ones included)."""
    recorded = {s.index_name: s for s in recorded_indices(metadata_of(table.schema))}
    present = {info.name for info in table.list_indices()}
    wanted: list[Index] = []
    lines: list[str] = []
    for spec in declared:
        known = recorded.get(spec.index_name)
        if known is None and spec.index_name not in present:
            wanted.append(spec)
            lines.append(f"add index {spec.index_name} ({spec.kind} on {spec.column})")
        elif known is None or not same_index(known, spec):
            wanted.append(spec)
            before = f"{index_code(known)}" if known is not None else "parameters unknown (not created by migrator)"
            lines.append(f"change index {spec.index_name}: {before} -> {index_code(spec)}")
    names = {s.index_name for s in declared}
    lines.extend(f"index {name} is not declared in {INDICES_ATTRIBUTE} (left alone)"
                 for name in sorted((present | set(recorded)) - names))
    return wanted, lines


def compare(db: Any, target: Target, *, versions: Mapping[str, int], ignore: Sequence[str],
            live_tables: Sequence[str], where: str) -> ModelChanges | None:
    """What would bring the database ``db`` to ``target``; None when they match.

    ``versions``: the newest declared version of each table (its migrations' line), for the next one;
    ``ignore``: migrator's own tables; ``live_tables``: every table in the database; ``where`` names the config
    section in errors.
    """
    tables: list[TableChanges] = []
    lines: list[str] = []
    for name in target.schemas:
        if name in ignore:
            raise ConfigError(f"{where}: {KEY}: table {name!r} is migrator's own bookkeeping table; "
                              "name your table otherwise (or set version_table)")
    for name, schema in target.schemas.items():
        table = open_table(db, name) if name in live_tables else None
        declared = target.indices.get(name)
        version = versions.get(name, 0) + 1
        found: TableChanges | tuple[None, list[str]] | None
        try:
            if table is None:
                found = render_create(name, schema, declared or [], version)
            else:
                found = render_changes(name, table, schema, declared, version)
        except Unrenderable as exc:
            raise ConfigError(f"{where}: {KEY}: table {name!r}: {exc}") from None
        if isinstance(found, TableChanges):
            tables.append(found)
            lines.extend(f"{name}: {line}" for line in found.changes)
        elif found is not None:
            lines.extend(f"{name}: {line}" for line in found[1])
    for name in sorted(set(live_tables) - set(target.schemas) - set(ignore)):
        lines.append(f"table {name} is in the database but not in {KEY} (left alone, never dropped)")
    if not lines:
        return None
    imports = sorted({line for t in tables for line in t.imports})
    return ModelChanges(changes=tuple(lines), up="", down="", imports=tuple(imports), tables=tuple(tables))


# -- rendering ------------------------------------------------------------------------------------------------------


def render_create(name: str, schema: pa.Schema, declared: Sequence[Index], version: int) -> TableChanges:
    constant = _constant(name)
    lines = [f"create table {name} ({len(schema)} column{'' if len(schema) == 1 else 's'})"]
    lines.extend(f"add index {s.index_name} ({s.kind} on {s.column})" for s in declared)
    return TableChanges(
        table=name, version=version, changes=tuple(lines),
        preamble=f"{constant} = {schema_code(schema)}",
        body=f"db.create_table({literal(name)}, schema={constant})",
        indices=tuple(index_code(s) for s in declared),
        imports=_imports(["migration"], declared))


def render_changes(name: str, table: Any, schema: pa.Schema, declared: Sequence[Index] | None,
                   version: int) -> TableChanges | tuple[None, list[str]] | None:
    """The table's migration; ``(None, lines)`` when the only differences are ones left alone (undeclared
    indices); None when it matches."""
    live = table.schema
    changes = column_changes(live, schema)
    lines = [c.describe() for c in changes]
    if schema_metadata_differs(live, schema):
        lines.append("change the schema metadata")
    wanted, index_lines = index_changes(table, declared) if declared is not None else ([], [])
    lines.extend(index_lines)
    if not changes and not wanted and not schema_metadata_differs(live, schema):
        return (None, lines) if lines else None  # only what is left alone: reported, no file
    by_helper: dict[str, list[Change]] = {}
    for change in changes:
        by_helper.setdefault(helper_for(change), []).append(change)
    if schema_metadata_differs(live, schema):
        by_helper.setdefault("recreate_table", [])
    last = HELPER_ORDER.index("recreate_table")  # a helper not in the order runs before the recreation
    helpers = sorted(by_helper, key=lambda h: HELPER_ORDER.index(h) if h in HELPER_ORDER else last - 0.5)
    statements: list[str] = []
    preamble: list[str] = []
    for helper in helpers:
        code, before = RENDERERS[helper](name, by_helper[helper], schema, version)
        statements.extend(code)
        preamble.extend(before)
    if not statements:
        statements = ["pass  # nothing to change in the rows: the indices below are created after this function"]
    used = [h for h in helpers if h in RENDERERS]
    if "recreate_table" in used and declared:
        wanted = list(declared)  # a recreation drops the indices of retyped columns: every declared one is ensured
    module_code = "\n\n\n".join(preamble)
    if module_code.startswith("def "):
        module_code = "\n" + module_code  # two blank lines after the imports before a function (a constant: one)
    return TableChanges(table=name, version=version, changes=tuple(lines), preamble=module_code,
                        body="\n    ".join(statements), indices=tuple(index_code(s) for s in wanted),
                        imports=_imports(["migration", *used], wanted,
                                         pyarrow=bool(preamble) or bool({"add_columns", "cast_column"} & set(used))))


def _rename(name: str, changes: list[Change], schema: pa.Schema, version: int) -> tuple[list[str], list[str]]:
    return [f"rename_column(db, {literal(name)}, {literal(c.old_name)}, {literal(c.column)})" for c in changes], []


def _drop(name: str, changes: list[Change], schema: pa.Schema, version: int) -> tuple[list[str], list[str]]:
    return [f"drop_columns(db, {literal(name)}, [{', '.join(literal(c.column) for c in changes)}])"], []


def _nullable(name: str, changes: list[Change], schema: pa.Schema, version: int) -> tuple[list[str], list[str]]:
    return [f"make_nullable(db, {literal(name)}, {literal(c.column)})" for c in changes], []


def _add(name: str, changes: list[Change], schema: pa.Schema, version: int) -> tuple[list[str], list[str]]:
    fields = ", ".join(field_code(c.target) for c in changes if c.target is not None)
    return [f"add_columns(db, {literal(name)}, [{fields}])"], []


def _computed(name: str, changes: list[Change], schema: pa.Schema, version: int) -> tuple[list[str], list[str]]:
    """A new non-null column: ``add_computed_column`` with a compute stub that raises until edited."""
    statements: list[str] = []
    preamble: list[str] = []
    taken: set[str] = set()
    for change in changes:
        assert change.target is not None
        func = _compute_name(change.column, taken)
        raised = f"    raise NotImplementedError({literal(f'fill in {func} of {name} v{version}')})"
        if len(raised) > LINE:
            raised = f"    raise NotImplementedError({literal(f'fill in {func} of v{version}')})"
        preamble.append(
            f"def {func}(batch: pa.RecordBatch) -> pa.Array:\n"
            f"    \"\"\"The new column's value for every row of the batch: one per row, no nulls.\"\"\"\n"
            f"    # Must be computed here (then delete the raise): {textwrap.shorten(change.describe(), 80)}\n"
            f"{raised}")
        statements.append(f"add_computed_column(db, {literal(name)}, {field_code(change.target)}, {func})")
    return statements, preamble


def _compute_name(column: str, taken: set[str]) -> str:
    """``compute_<column>`` as a Python identifier, distinct from the others of the file."""
    base = "compute_" + (re.sub(r"[^0-9A-Za-z_]", "_", column) or "column")
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def _cast(name: str, changes: list[Change], schema: pa.Schema, version: int) -> tuple[list[str], list[str]]:
    statements = []
    for change in changes:
        assert change.target is not None
        column, kind = literal(change.column), type_code(change.target.type)
        statements.append(f"cast_column(db, {literal(name)}, {column}, {kind})")
    return statements, []


def _recreate(name: str, changes: list[Change], schema: pa.Schema, version: int) -> tuple[list[str], list[str]]:
    """The target schema as a constant; a transform stub that raises until edited when values must be computed."""
    constant = _constant(name)
    preamble = [f"{constant} = {schema_code(schema)}"]
    todo = [c.computes for c in changes if c.computes is not None]
    if not todo:
        return [f"recreate_table(db, {literal(name)}, schema={constant})  # the values are copied"], preamble
    comments = "\n".join(textwrap.fill(line, width=116, initial_indent="    # - ", subsequent_indent="    #   ",
                                      break_long_words=False, break_on_hyphens=False) for line in todo)
    raised = f"    raise NotImplementedError({literal(f'fill in the transform of {name} v{version}')})"
    if len(raised) > LINE:
        raised = f"    raise NotImplementedError({literal(f'fill in the transform of v{version}')})"
    doc = f'    """A batch of {name} -> the same rows with exactly {constant}\'s columns (cast to its types)."""'
    if len(doc) > LINE:
        doc = '    """A batch -> the same rows with exactly the new schema\'s columns (cast to its types)."""'
    preamble.append(
        f"def transform(batch: pa.RecordBatch) -> pa.RecordBatch:\n{doc}\n"
        f"    # Must be computed here (then delete the raise):\n{comments}\n{raised}")
    return [f"recreate_table(db, {literal(name)}, schema={constant}, transform=transform)"], preamble


RENDERERS = {
    "rename_column": _rename,
    "drop_columns": _drop,
    "make_nullable": _nullable,
    "add_columns": _add,
    "add_computed_column": _computed,
    "cast_column": _cast,
    "recreate_table": _recreate,
}


def _imports(helpers: Sequence[str], indices: Sequence[Index], *, pyarrow: bool = True) -> tuple[str, ...]:
    names = sorted({*helpers, *(["Index"] if indices else [])}, key=lambda n: (not n[0].isupper(), n))
    found = [f"from migrator.lancedb import {', '.join(names)}"]
    if pyarrow:
        found.insert(0, "import pyarrow as pa")
    return tuple(found)


def _constant(name: str) -> str:
    """``DOCS_SCHEMA`` for ``docs``; ``T2024_SCHEMA`` for ``2024``; ``MY_DOCS_V2_SCHEMA`` for ``my-docs.v2``."""
    cleaned = "".join(c if c.isascii() and c.isalnum() else "_" for c in name.upper()).strip("_") or "TABLE"
    return f"{'T' if cleaned[0].isdigit() else ''}{cleaned}_SCHEMA"


def index_code(spec: Index) -> str:
    """``Index(...)`` source for ``spec`` (only the keywords that differ from the defaults)."""
    parts = [literal(spec.column)]
    if spec.kind != "BTREE":
        parts.append(f"kind={literal(spec.kind)}")
    if spec.name is not None and spec.name != f"{spec.column}_idx":
        parts.append(f"name={literal(spec.name)}")
    if spec.metric is not None:
        parts.append(f"metric={literal(spec.metric)}")
    for key in ("num_partitions", "num_sub_vectors", "num_bits", "min_rows"):
        value = getattr(spec, key)
        if value is not None:
            parts.append(f"{key}={value!r}")
    if spec.options:
        parts.append(f"options={dict(spec.options)!r}")
    return f"Index({', '.join(parts)})"


# -- pyarrow literals (checked to round-trip) -----------------------------------------------------------------------

_SIMPLE = {
    "null": "pa.null()", "bool": "pa.bool_()",
    "int8": "pa.int8()", "int16": "pa.int16()", "int32": "pa.int32()", "int64": "pa.int64()",
    "uint8": "pa.uint8()", "uint16": "pa.uint16()", "uint32": "pa.uint32()", "uint64": "pa.uint64()",
    "halffloat": "pa.float16()", "float": "pa.float32()", "double": "pa.float64()",
    "string": "pa.string()", "large_string": "pa.large_string()", "string_view": "pa.string_view()",
    "binary": "pa.binary()", "large_binary": "pa.large_binary()", "binary_view": "pa.binary_view()",
    "date32[day]": "pa.date32()", "date64[ms]": "pa.date64()",
}


class Unrenderable(ValueError):
    """A pyarrow type migrator cannot write as source."""


def type_code(kind: pa.DataType) -> str:
    simple = _SIMPLE.get(str(kind))
    if simple is not None:
        return simple  # the whole schema's literal is checked to round-trip (schema_code)
    t = pa.types
    if t.is_timestamp(kind):
        tz = f", tz={literal(kind.tz)}" if kind.tz is not None else ""
        return f"pa.timestamp({literal(kind.unit)}{tz})"
    if t.is_time32(kind):
        return f"pa.time32({literal(kind.unit)})"
    if t.is_time64(kind):
        return f"pa.time64({literal(kind.unit)})"
    if t.is_duration(kind):
        return f"pa.duration({literal(kind.unit)})"
    if t.is_decimal128(kind):
        return f"pa.decimal128({kind.precision}, {kind.scale})"
    if t.is_decimal256(kind):
        return f"pa.decimal256({kind.precision}, {kind.scale})"
    if t.is_fixed_size_binary(kind):
        return f"pa.binary({kind.byte_width})"
    if t.is_fixed_size_list(kind):
        return f"pa.list_({_item_code(kind.value_field)}, {kind.list_size})"
    if t.is_large_list(kind):
        return f"pa.large_list({_item_code(kind.value_field)})"
    if t.is_list(kind):
        return f"pa.list_({_item_code(kind.value_field)})"
    if t.is_map(kind):
        sorted_keys = ", keys_sorted=True" if kind.keys_sorted else ""
        return f"pa.map_({_item_code(kind.key_field)}, {_item_code(kind.item_field)}{sorted_keys})"
    if t.is_struct(kind):
        return f"pa.struct([{', '.join(field_code(kind.field(i)) for i in range(kind.num_fields))}])"
    if t.is_dictionary(kind):
        ordered = ", ordered=True" if kind.ordered else ""
        return f"pa.dictionary({type_code(kind.index_type)}, {type_code(kind.value_type)}{ordered})"
    raise Unrenderable(f"cannot write the pyarrow type {kind} as source")


def _item_code(item: pa.Field) -> str:
    """A list's or map's child: the bare type when it is the default field (nullable, no metadata)."""
    if item.nullable and not item.metadata and item.name in ("item", "element", "key", "value"):
        return type_code(item.type)
    return field_code(item)


def field_code(item: pa.Field) -> str:
    parts = [literal(item.name), type_code(item.type)]
    if not item.nullable:
        parts.append("nullable=False")
    if item.metadata:
        parts.append(f"metadata={_metadata_code(item.metadata)}")
    return f"pa.field({', '.join(parts)})"


def _metadata_code(meta: Mapping[bytes, bytes]) -> str:
    def text(value: bytes) -> str:
        try:
            return literal(value.decode("utf-8"))
        except UnicodeDecodeError:
            return repr(value)

    return "{" + ", ".join(f"{text(k)}: {text(v)}" for k, v in meta.items()) + "}"


def schema_code(schema: pa.Schema) -> str:
    """``pa.schema([...])`` source that evaluates to exactly ``schema`` (types, nullability, metadata), or
    :class:`Unrenderable`. migrator's own schema metadata keys are left out."""
    meta = {k: v for k, v in (schema.metadata or {}).items() if not k.startswith(MIGRATOR_PREFIX.encode())}
    fields = "".join(f"\n    {field_code(item)}," for item in schema)
    extra = f", metadata={_metadata_code(meta)}" if meta else ""
    code = f"pa.schema([{fields}\n]{extra})"
    wanted = pa.schema(list(schema), metadata=meta or None)
    made = eval(code, {"pa": pa})  # our own literal, checked to round-trip
    if not made.equals(wanted, check_metadata=True):
        raise Unrenderable(f"the generated schema literal does not round-trip: {code}")
    return code
