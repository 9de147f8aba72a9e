"""LanceDB migrations: the ``@migration`` decorator, the ``Index`` spec and the schema helpers.

Migration files import from here::

    import pyarrow as pa
    from migrator.lancedb import Index, migration, recreate_table

    @migration(table="memos", version=1, description="create memos",
               indices=[Index("id"), Index("vector", kind="IVF_PQ", metric="cosine", num_sub_vectors=8)])
    def create_memos(db):                  # db: the lancedb connection
        db.create_table("memos", schema=MEMOS_V1)

    @migration(table="memos", version=2, description="add tags to memos")
    def add_tags(db):
        recreate_table(db, "memos", schema=MEMOS_V2, transform=add_empty_tags)

This module is light on purpose: importing it imports neither ``lancedb`` nor
``pyarrow`` (the core imports it to scaffold files and must stay fast). The
helpers below that need them import their implementation
(``migrator.backends.lancedb.*``) on first call.

Rules of a migration function
-----------------------------
* It changes its own table (``table=``) only; each table has its own version line.
* Prefer one write per migration: a ``create_table``, one native evolution call,
  or one ``recreate_table``. If ``recreate_table`` is used it should be the
  migration's last write to its table: the version stamp travels with its
  overwrite commit (see :mod:`migrator.backends.lancedb`), so after a crash
  right behind that commit migrator finishes the migration without running it
  again.
* Migrations have no ``down``: a failed migration's table is restored to its
  Lance version from before the migration (time travel), and ``migrator
  rollback`` undoes applied ones the same way (see
  :mod:`migrator.backends.lancedb.rollback`).

Indices
-------
``indices=[Index(...), ...]`` on the decorator are created when the table first
reaches that version (after the function ran) and rebuilt, with the same
parameters, after every ``recreate_table``. Their parameters are recorded in
the table's schema metadata (``migrator.indices``) because ``list_indices()``
does not report IVF/PQ training parameters. Vector indices need rows to train:
below ``min_rows`` (default 256) the index is *deferred* with a progress line,
stays recorded, and is built by the next migration of that table, by the next
``recreate_table``, or when the app calls :func:`ensure_indices` after loading
data.

Native schema evolution (no data rewrite unless noted)
------------------------------------------------------
* add a nullable column, all null, O(1), data files untouched::

      add_columns(db, "memos", pa.field("summary", pa.string()))
      # same as: db.open_table("memos").add_columns(pa.field("summary", pa.string()))

* add a column computed by an SQL expression (O(rows): writes one new data
  file per fragment for the new column only)::

      add_column_from_sql(db, "memos", "title_len", "length(title)")
      # same as: table.add_columns({"title_len": "length(title)"})

* rename a column (O(1); indices on it follow)::

      rename_column(db, "memos", "body", "content")
      # same as: table.alter_columns({"path": "body", "rename": "content"})

* make a column nullable (O(1))::

      make_nullable(db, "memos", "title")
      # same as: table.alter_columns({"path": "title", "nullable": True})

* drop columns (O(1); their indices go too)::

      drop_columns(db, "memos", ["legacy"])
      # same as: table.drop_columns(["legacy"])

* compute a vector column again with a new embedding model (O(rows) for the
  new column only; resumable; swapped in with the model tag and the stamp in
  one commit; vector index rebuilt)::

      reembed(db, "chunks", embed=embed, model="mpnet-768", dim=768, source=["text"])

* change a column's type: ``table.alter_columns({"path": "n", "data_type": pa.int32()})``
  rewrites the column (O(rows)); casts Lance refuses (timestamp->int64,
  int64->float64, int->string) need :func:`recreate_table` with a transform.

Seed data (``migrator seed``)
-----------------------------
A LanceDB backend with ``seeds = "seeds/lancedb"`` in its config takes every
``.py`` file of that folder (file-name order; hidden files and names starting
with ``_`` aside), and in each the functions decorated with ``@seed`` (in the
order they are defined)::

    # seeds/lancedb/memos.py
    from migrator.lancedb import seed

    @seed(table="memos", key="id")
    def welcome_memos():                   # or welcome_memos(db): the lancedb connection
        return [{"id": 1, "title": "Welcome", "vector": [0.0] * 8},
                {"id": 2, "title": "Read me", "vector": [0.1] * 8}]   # or a pyarrow Table / RecordBatch

The exact shape: the rows are cast to the table's own types (only the columns
they give: a missing column keeps its stored value on rows that exist, and is
null on new ones); the rows that already exist with equal values are left out;
the rest is written in one commit::

    table.merge_insert(key).when_matched_update_all().when_not_matched_insert_all().execute(rows)

so a row whose key is new is inserted, a row whose key exists is updated, no
row is duplicated and no other row is touched, and a second ``migrator seed``
commits nothing (the table's Lance version does not move). ``key`` is a column
or a list of columns; the table must exist (seeds run after the migrations,
and are refused while one is pending). Every seed's rows are computed and
checked (table, columns, types, key present, no key twice) before the first
is written: a seed that raises or does not fit writes nothing. Each seed is
then one commit on its table, so a storage failure midway keeps the seeds
before it; running ``migrator seed`` again is safe.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from migrator.errors import MigrationFailed

__all__ = [
    "DEFAULT_VERSION_TABLE",
    "ConcurrentWriteError",
    "Index",
    "MigrationSpec",
    "RecreateResult",
    "ReembedResult",
    "SeedSpec",
    "add_column_from_sql",
    "add_columns",
    "add_computed_column",
    "cast_column",
    "create_index",
    "drop_columns",
    "ensure_indices",
    "make_nullable",
    "migration",
    "recreate_table",
    "reembed",
    "rename_column",
    "replace_column_values",
    "seed",
    "table_stamp",
]

F = TypeVar("F", bound=Callable[..., Any])

Report = Callable[[str], None]
"""A progress callback, as in ``migrator.backends.base.Report``."""

MIGRATION_ATTR = "__migrator_lancedb__"
"""Attribute the decorator sets on a function: a tuple of :class:`MigrationSpec`."""

DEFAULT_VERSION_TABLE = "table_migrations"
MAX_VERSION = 2**63 - 1
TABLE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")

SCALAR_KINDS = frozenset({"BTREE", "BITMAP", "LABEL_LIST", "FTS"})
VECTOR_KINDS = frozenset(
    {"IVF_FLAT", "IVF_SQ", "IVF_PQ", "IVF_RQ", "IVF_HNSW_FLAT", "IVF_HNSW_SQ", "IVF_HNSW_PQ"}
)
METRICS = frozenset({"l2", "cosine", "dot", "hamming"})
DEFAULT_MIN_TRAIN_ROWS = 256


@dataclass(frozen=True)
class Index:
    """A declarative index: what migrator creates, records and rebuilds after a recreation.

    ``kind`` is one of BTREE, BITMAP, LABEL_LIST, FTS (scalar / full text) or
    IVF_FLAT, IVF_SQ, IVF_PQ, IVF_RQ, IVF_HNSW_FLAT, IVF_HNSW_SQ, IVF_HNSW_PQ
    (vector). ``metric`` (l2, cosine, dot, hamming), ``num_partitions``,
    ``num_sub_vectors`` and ``num_bits`` are the vector parameters; ``options``
    holds any other keyword of the matching ``lancedb.index`` config class
    (``m``, ``ef_construction``, ``sample_rate``, FTS's ``with_position`` ...).
    ``name`` defaults to ``<column>_idx`` (LanceDB's default). ``min_rows``: a
    vector index is deferred while the table has fewer rows (default 256).
    """

    column: str
    kind: str = "BTREE"
    name: str | None = None
    metric: str | None = None
    num_partitions: int | None = None
    num_sub_vectors: int | None = None
    num_bits: int | None = None
    min_rows: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if isinstance(self.kind, str):
            object.__setattr__(self, "kind", self.kind.strip().upper().replace("-", "_"))
        if isinstance(self.metric, str):
            object.__setattr__(self, "metric", self.metric.strip().lower())

    @property
    def index_name(self) -> str:
        return self.name or f"{self.column}_idx"

    @property
    def is_vector(self) -> bool:
        return self.kind in VECTOR_KINDS

    @property
    def train_rows(self) -> int:
        """Rows the table needs before this index is built (0 for scalar indices)."""
        if self.min_rows is not None:
            return self.min_rows
        return DEFAULT_MIN_TRAIN_ROWS if self.is_vector else 0

    def problems(self) -> list[str]:
        """What is wrong with this spec, as sentences (empty when it is usable)."""
        found: list[str] = []
        if not isinstance(self.column, str) or not self.column:
            found.append("Index column must be a non-empty string")
        if self.kind not in SCALAR_KINDS | VECTOR_KINDS:
            known = ", ".join(sorted(SCALAR_KINDS | VECTOR_KINDS))
            found.append(f"Index kind {self.kind!r} is not one of {known}")
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            found.append("Index name must be a non-empty string")
        if self.metric is not None:
            if not self.is_vector:
                found.append(f"Index metric applies to vector indices, not {self.kind}")
            elif self.metric not in METRICS:
                found.append(f"Index metric {self.metric!r} is not one of {', '.join(sorted(METRICS))}")
        for key in ("num_partitions", "num_sub_vectors", "num_bits", "min_rows"):
            value = getattr(self, key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "min_rows" else 1):
                found.append(f"Index {key} must be a positive integer (got {value!r})")
            elif key != "min_rows" and not self.is_vector:
                found.append(f"Index {key} applies to vector indices, not {self.kind}")
        if not isinstance(self.options, Mapping):
            found.append("Index options must be a mapping")
        return found

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form, as recorded in the table's schema metadata."""
        data: dict[str, Any] = {"column": self.column, "kind": self.kind, "name": self.index_name}
        for key in ("metric", "num_partitions", "num_sub_vectors", "num_bits", "min_rows"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        if self.options:
            data["options"] = dict(self.options)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Index:
        return cls(
            column=str(data["column"]),
            kind=str(data.get("kind", "BTREE")),
            name=data.get("name"),
            metric=data.get("metric"),
            num_partitions=data.get("num_partitions"),
            num_sub_vectors=data.get("num_sub_vectors"),
            num_bits=data.get("num_bits"),
            min_rows=data.get("min_rows"),
            options=dict(data.get("options") or {}),
        )


@dataclass(frozen=True)
class MigrationSpec:
    """What one ``@migration(...)`` said, checked lazily: ``problems`` are reported by discovery.

    Errors are collected instead of raised so that the loader can name the
    file *and* the function (a bad decorator call runs before the function
    exists).
    """

    table: Any
    version: Any
    description: str
    indices: tuple[Index, ...]
    function: Callable[..., Any]
    problems: tuple[str, ...] = ()
    requires: Any = None  # the raw ``requires=`` mapping; the adapter parses it (migrator.requirements)


class ConcurrentWriteError(MigrationFailed):
    """Another writer changed a table while ``recreate_table`` was rewriting it.

    Raised when other writers deleted, updated or rewrote rows during every
    copy (appends are caught up with), or slipped a commit in before every
    cut-over attempt. Nothing was committed: the table is as the other writers
    left it, no row is lost.
    """

    def __init__(self, message: str, *, backend: str = "", line: str = "", version: int | None = None,
                 restored: bool = True) -> None:
        super().__init__(message, backend=backend, line=line, version=version)
        self.restored = restored


@dataclass(frozen=True)
class RecreateResult:
    """What :func:`recreate_table` did."""

    table: str
    rows: int                      # rows written (== rows read unless allow_row_count_change)
    source_version: int            # the Lance version that was read
    data_version: int              # the Lance version of the overwrite commit
    version: int                   # the table's Lance version after the indices were rebuilt
    indices_rebuilt: tuple[str, ...] = ()
    indices_deferred: tuple[str, ...] = ()
    indices_dropped: tuple[str, ...] = ()
    attempts: int = 1
    rows_caught_up: int = 0        # rows other writers appended during the copy, transformed and included
    path: str = "overwrite"        # "overwrite": every row rewritten; "columns": only new columns written
    indices_kept: tuple[str, ...] = ()     # indices left as they were (same index ids), on the "columns" path
    columns_written: tuple[str, ...] = ()  # the columns written on the "columns" path


@dataclass(frozen=True)
class ReembedResult:
    """What :func:`reembed` did."""

    table: str
    column: str
    model: str
    dim: int
    rows: int                      # rows in the table after the swap
    rows_embedded: int             # rows the embed function computed in this call
    rows_resumed: int              # about how many rows an interrupted run had embedded (taken from its checkpoint)
    rows_caught_up: int            # rows other writers appended after the new column was added, embedded too
    data_version: int              # the Lance version of the swap (the stamped commit)
    version: int                   # the table's Lance version after the vector index was built
    indices_built: tuple[str, ...] = ()
    indices_deferred: tuple[str, ...] = ()
    embed_attempts: int = 1        # add_columns runs (another writer's append makes Lance refuse one)
    seconds: float = 0.0


# -- the decorator ------------------------------------------------------------------------------------------------


@overload
def migration(function: F, /) -> F: ...


@overload
def migration(
    *,
    table: str,
    version: int,
    description: str | None = None,
    indices: Sequence[Index] | None = None,
    requires: Mapping[str, int | Mapping[str, int]] | None = None,
) -> Callable[[F], F]: ...


def migration(
    function: Any = None,
    /,
    *,
    table: Any = None,
    version: Any = None,
    description: Any = None,
    indices: Any = None,
    requires: Any = None,
) -> Any:
    """Declare a LanceDB migration: ``@migration(table="memos", version=2, description="add tags")``.

    ``requires={"sqlite": 3}`` (or ``{"vectors": {"chunks": 2}}``): what it needs from another backend's line;
    ``migrator upgrade`` runs it once that is reached and before that line moves past it.

    The function receives the lancedb connection. Mistakes (no table, a
    version that is not a positive integer, bare ``@migration``) are reported
    by discovery as a LoaderError naming the file and the function.
    """
    if function is not None:  # bare @migration or @migration(fn): a misuse, reported at discovery
        if callable(function):
            _attach(function, table, version, description, indices, requires,
                    extra=["use @migration(table=..., version=..., description=...) with arguments"])
            return function
        return _decorator(table, version, description, indices, requires,
                          extra=[f"@migration takes keyword arguments only (got positional {function!r})"])
    return _decorator(table, version, description, indices, requires, extra=[])


def _decorator(table: Any, version: Any, description: Any, indices: Any, requires: Any,
               extra: list[str]) -> Callable[[F], F]:
    def wrap(fn: F) -> F:
        _attach(fn, table, version, description, indices, requires, extra)
        return fn

    return wrap


def _attach(fn: Any, table: Any, version: Any, description: Any, indices: Any, requires: Any,
            extra: list[str]) -> None:
    problems = list(extra)
    if not callable(fn):
        problems.append(f"@migration decorates functions, not {type(fn).__name__}")
    if table is None:
        problems.append("@migration needs table=\"<table name>\"")
    elif not isinstance(table, str) or not TABLE_NAME.fullmatch(table):
        problems.append(f"table={table!r} is not a table name (letters, digits, _ - .)")
    if version is None:
        problems.append("@migration needs version=<positive integer>")
    elif isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        problems.append(f"version={version!r} is not a positive integer")
    if description is not None and not isinstance(description, str):
        problems.append(f"description={description!r} must be a string")
    specs: list[Index] = []
    if indices is not None:
        if isinstance(indices, (str, bytes, Index)) or not isinstance(indices, Sequence):
            problems.append("indices= must be a list of Index(...)")
        else:
            for item in indices:
                if not isinstance(item, Index):
                    problems.append(f"indices= holds {item!r}, not an Index(...)")
                    continue
                problems.extend(item.problems())
                specs.append(item)
            names = [s.index_name for s in specs]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                problems.append(f"indices= names {dupes[0]!r} twice")
    if callable(fn):
        try:
            inspect.signature(fn).bind(object())
        except TypeError:
            problems.append("the function must take one argument (the lancedb connection)")
        except ValueError:  # no signature (builtins): let it run
            pass
    text = description if isinstance(description, str) and description.strip() else _describe(fn)
    spec = MigrationSpec(table=table, version=version, description=text.strip(), indices=tuple(specs),
                         function=fn, problems=tuple(problems), requires=requires)
    previous = getattr(fn, MIGRATION_ATTR, ())
    with contextlib.suppress(AttributeError, TypeError):  # an object without attributes: discovery misses it
        setattr(fn, MIGRATION_ATTR, (*previous, spec))


def _describe(fn: Any) -> str:
    doc = inspect.getdoc(fn) if callable(fn) else None
    if doc:
        return doc.strip().splitlines()[0]
    return str(getattr(fn, "__name__", "migration")).replace("_", " ")


def specs_of(obj: Any) -> tuple[MigrationSpec, ...]:
    """The ``@migration`` specs attached to ``obj`` (empty for anything else)."""
    specs = getattr(obj, MIGRATION_ATTR, ())
    return tuple(s for s in specs if isinstance(s, MigrationSpec)) if isinstance(specs, tuple) else ()


# -- seed data (`migrator seed`) -----------------------------------------------------------------------------------

SEED_ATTR = "__migrator_lancedb_seed__"
"""Attribute :func:`seed` sets on a function: its :class:`SeedSpec`."""


@dataclass(frozen=True)
class SeedSpec:
    """What ``@seed(table=..., key=...)`` declared; ``problems``: mistakes reported by ``migrator seed``."""

    table: str
    key: tuple[str, ...]
    function: Callable[..., Any]
    takes_db: bool
    problems: tuple[str, ...] = ()


def seed(*, table: str, key: str | Sequence[str]) -> Callable[[F], F]:
    """Declare seed rows for a LanceDB table: ``@seed(table="memos", key="id")`` (see the module's docstring).

    The function takes no argument (or one: the lancedb connection) and returns the rows: a list of dicts, a
    ``pyarrow.Table`` or a ``pyarrow.RecordBatch``. ``migrator seed`` upserts them by ``key`` (a column, or a list
    of columns). Mistakes are reported by ``migrator seed`` naming the file and the function.
    """

    def wrap(fn: F) -> F:
        problems: list[str] = []
        if not isinstance(table, str) or not TABLE_NAME.fullmatch(table):
            problems.append(f"table={table!r} is not a table name (letters, digits, _ - .)")
        keys = (key,) if isinstance(key, str) else tuple(key) if isinstance(key, Sequence) else ()
        if not keys or not all(isinstance(k, str) and k for k in keys):
            problems.append(f"key={key!r} must name a column (or be a list of columns)")
        takes_db = False
        if not callable(fn):
            problems.append(f"@seed decorates functions, not {type(fn).__name__}")
        else:
            try:
                inspect.signature(fn).bind()
            except TypeError:
                try:
                    inspect.signature(fn).bind(object())
                    takes_db = True
                except TypeError:
                    problems.append("the function must take no argument (or one: the lancedb connection)")
            except ValueError:  # no signature (builtins): called without arguments
                pass
        spec = SeedSpec(table=table, key=keys, function=fn, takes_db=takes_db, problems=tuple(problems))
        with contextlib.suppress(AttributeError, TypeError):
            setattr(fn, SEED_ATTR, spec)
        return fn

    return wrap


def seed_spec_of(obj: Any) -> SeedSpec | None:
    """The ``@seed`` spec attached to ``obj`` (None for anything else)."""
    spec = getattr(obj, SEED_ATTR, None)
    return spec if isinstance(spec, SeedSpec) else None


# -- helpers whose implementation needs lancedb / pyarrow (imported on first call) ------------------------------


def _impl(module: str) -> Any:
    return importlib.import_module(f"migrator.backends.{module}")


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
    """Rewrite table ``name`` in place, streaming, into ``schema`` through ``transform(batch) -> batch``.

    Reads the current version batch by batch (memory flat in table size) and
    commits one overwrite; rebuilds every index whose columns survive with its
    old parameters; verifies the row count (a transform that drops or adds rows
    needs ``allow_row_count_change=True``); never loses rows another writer
    committed meanwhile and never makes it pause: rows appended during the copy
    are transformed and included (catch-up), and the overwrite commits only on
    the version caught up to. Deletes, updates or rewrites by another writer
    during the copy restart it from the latest version (``retries`` times),
    then :class:`ConcurrentWriteError`, nothing committed. ``schema=None``
    keeps the old schema (or takes the transform's output schema).

    ``engine="ray"`` runs the copy on a Ray cluster (``RAY_ADDRESS``, or a local
    Ray), one task per fragment, with the same catch-up, guarded commit and
    stamp (``pip install 'migrator[ray]'``); ``None`` takes the backend's
    ``engine`` key inside a migration, else ``"local"``.
    """
    result: RecreateResult = _impl("lancedb.recreate").recreate_table(
        db, name, schema=schema, transform=transform, batch_size=batch_size, retries=retries,
        allow_row_count_change=allow_row_count_change, report=report, engine=engine)
    return result


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
    checkpoint_dir: str | None = None,
    report: Report | None = None,
) -> ReembedResult:
    """Compute ``column`` of table ``name`` again with a new embedding model, resumably, as one stamped change.

    ``embed(batch) -> vectors`` receives a ``pyarrow.RecordBatch`` of the ``source`` columns and returns
    ``batch.num_rows`` vectors of ``dim`` floats (a 2-D numpy array, a list of lists or a pyarrow list array).
    The new vectors are computed with Lance's ``add_columns`` batch UDF into a staging column (no other column
    is rewritten; scalar indices stay), resumably (``checkpoint="batch"``: a re-run after a kill embeds no
    finished batch again, each batch's vectors are written twice, to an Arrow IPC file and to the data file;
    ``"fragment"``: no finished fragment, and the vectors are written once; ``"auto"``, the default:
    ``"fragment"`` when no fragment holds more than a fifth of the rows, so a kill at half way costs at most
    1.2x the rows, else ``"batch"``), rows appended meanwhile are embedded too, then one guarded commit swaps
    the staging column in for ``column``, sets the per-row model tag ``<column>_model`` and, inside a migration
    of ``name``, stamps the version; then the vector index is built: ``index`` or, when None, the one ``column``
    had, with its parameters. Search with ``.where("<column>_model = '<model>'")`` to never mix models.
    ``engine``: "local", or "ray" (one Ray task per fragment through Lance's ``merge_columns``, a fragment-level
    checkpoint; ``pip install 'migrator[ray]'``); None takes the backend's ``engine`` key inside a migration,
    else "local". See :mod:`migrator.backends.lancedb.reembed`.
    """
    result: ReembedResult = _impl("lancedb.reembed").reembed(
        db, name, embed=embed, model=model, dim=dim, source=source, column=column, batch_size=batch_size,
        index=index, engine=engine, checkpoint=checkpoint, checkpoint_dir=checkpoint_dir, report=report)
    return result


def ensure_indices(db: Any, name: str, indices: Sequence[Index] | None = None,
                   report: Report | None = None) -> list[str]:
    """Bring the recorded (and given) indices of ``name`` up to date; returns the names built.

    Missing indices are built (a given index whose parameters differ from the
    recorded ones is rebuilt); existing ones that do not cover every row (a
    BTREE created on the empty table) get the rows they miss added
    (``optimize_indices``, reported). Call it after bulk-loading a table whose
    vector index was deferred for lack of training rows.
    """
    built: list[str] = _impl("lancedb.indices").ensure_table_indices(db, name, indices, report)
    return built


def create_index(db: Any, name: str, index: Index, report: Report | None = None) -> None:
    """Create (or replace) ``index`` on table ``name`` now and record its parameters for rebuilds."""
    _impl("lancedb.indices").create_recorded_index(db, name, index, report)


def add_columns(db: Any, name: str, fields: Any) -> int:
    """Add nullable all-null column(s) (a ``pa.Field``, list of fields or ``pa.Schema``): O(1), no rewrite.

    Returns the table's new Lance version.
    """
    version: int = _impl("lancedb.evolve").add_columns(db, name, fields)
    return version


def add_column_from_sql(db: Any, name: str, column: str, expression: str) -> int:
    """Add ``column`` computed by an SQL ``expression`` over the row (O(rows), new column only)."""
    version: int = _impl("lancedb.evolve").add_column_from_sql(db, name, column, expression)
    return version


def rename_column(db: Any, name: str, old: str, new: str) -> int:
    """Rename a column (O(1)); recorded index specs follow the new name."""
    version: int = _impl("lancedb.evolve").rename_column(db, name, old, new)
    return version


def make_nullable(db: Any, name: str, column: str) -> int:
    """Let ``column`` hold nulls (O(1))."""
    version: int = _impl("lancedb.evolve").make_nullable(db, name, column)
    return version


def drop_columns(db: Any, name: str, columns: Sequence[str]) -> int:
    """Drop columns (O(1)); their recorded index specs are forgotten."""
    version: int = _impl("lancedb.evolve").drop_columns(db, name, list(columns))
    return version


def add_computed_column(db: Any, table: str, field: Any, compute: Callable[[Any], Any], *,
                        read_columns: Sequence[str] | None = None) -> int:
    """Add column ``field`` (a ``pa.Field``, may be non-null), computed by ``compute(batch) -> array``, writing
    only that column.

    ``compute`` receives a ``pyarrow.RecordBatch`` of ``read_columns`` (default: every column) and returns
    one value per row (a pyarrow array, or anything ``pa.array`` takes). No other column is rewritten and every
    index stays as it is; rows other writers append meanwhile are computed too, and one guarded commit adds the
    column. Returns the table's new Lance version.
    """
    version: int = _impl("lancedb.computed").add_computed_column(db, table, field, compute,
                                                                 read_columns=read_columns)
    return version


def replace_column_values(db: Any, table: str, column: str, compute: Callable[[Any], Any], *,
                          read_columns: Sequence[str] | None = None) -> int:
    """Give ``column`` the values ``compute(batch) -> array`` returns: only that column is written.

    Same type, nullability and place as before; ``column``'s indices are rebuilt with their recorded
    parameters, the other indices are kept. Returns the table's new Lance version.
    """
    version: int = _impl("lancedb.computed").replace_column_values(db, table, column, compute,
                                                                   read_columns=read_columns)
    return version


def cast_column(db: Any, table: str, column: str, type: Any) -> int:
    """Cast ``column`` to ``type`` (a ``pa.DataType``) with Lance's native cast: only that column is rewritten.

    Casts Lance cannot do (timestamp to int64, int to string, ...) are refused with the table, column and types
    named, nothing changed: use :func:`recreate_table` with a transform. The column's indices are rebuilt where
    the new type allows them. Returns the table's new Lance version.
    """
    version: int = _impl("lancedb.computed").cast_column(db, table, column, type)
    return version


def table_stamp(db: Any, name: str) -> int | None:
    """The migration version stamped in table ``name``'s schema metadata (None: no stamp or no table)."""
    stamp: int | None = _impl("lancedb.common").stamp_of_table(db, name)
    return stamp


_LAZY = {"LanceBackend": "lancedb", "create": "lancedb"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'migrator.lancedb' has no attribute {name!r}")
    return getattr(_impl(module), name)
