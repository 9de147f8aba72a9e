"""The adapter contract: what the core asks of a storage backend.

A backend owns three things: finding its migration files (``discover``), its
bookkeeping (``applied``, ``stamp``, ``interrupted``) and running one migration
atomically with its bookkeeping (``apply``).

Interrupted steps are reported by ``interrupted()`` (a method of its own, not a
field of ``applied()``'s records: an interrupted step's version is, by definition,
not one the line reached). SQL: a migration that runs outside a transaction
commits a marker row before its body and clears it in the transaction that
records (or, going down, deletes) its version; a marker left behind (kill -9,
or a failure migrator caught: its statements so far stay applied) blocks
``upgrade`` and ``rollback`` until ``stamp`` clears it. LanceDB: an open
``started`` row, which the next ``upgrade`` settles by itself.

Planning, ordering, validation, locking policy, events and output are the
core's. Modelled on golang-migrate's driver interface and Django's recorder:
small on purpose.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from migrator.model import AppliedMigration, Direction, InterruptedStep, Issue, Migration

Report = Callable[[str], None]
"""Adapters call this with progress lines ("rebuilding vector index on memos.vector")."""


@dataclass(frozen=True)
class Capabilities:
    reversible: bool           # rollback is possible (SQL: by `down` migrations; LanceDB: by Lance time travel)
    per_table_lines: bool      # one version line per table instead of one per database
    parallel_lines: bool       # independent lines may be applied concurrently (threads)
    transactional_ddl: bool    # a failed migration's schema changes roll back


@runtime_checkable
class Backend(Protocol):
    name: str                  # the config's backend name ("sqlite", "vectors")
    type: str                  # the registry type ("sql", "lancedb")
    location: str              # masked URL / URI, safe to print
    capabilities: Capabilities

    def discover(self) -> Sequence[Migration]:
        """Every migration in the backend's folder. Raises LoaderError naming the file."""
        ...

    def load(self, migrations: Sequence[Migration]) -> Sequence[Migration]:
        """The same migrations made ready to run (Python files imported, SQL read).

        ``discover`` stays cheap (``status`` must not import 5,000 files); the
        runner calls ``load`` on a whole plan before the first step, so a file
        with a syntax error or no ``up`` fails before anything changes. The
        returned migrations carry the true ``reversible`` / ``transactional``.
        """
        ...

    def check_plan(self, migrations: Sequence[Migration], direction: Direction, *, backup: bool = False) -> None:
        """Raise now, changing nothing, every refusal ``apply`` (or ``backup``, when asked) would raise for this plan.

        Called on the loaded plan, under the lock, before the first step and by ``--dry-run`` (which then stops),
        so a dry run refuses what the real run refuses. LanceDB: a rollback over a table whose rows changed since;
        SQL: ``backup`` where it is not available.
        """
        ...

    def applied(self) -> Sequence[AppliedMigration]:
        """Every bookkeeping row, oldest first. Creates nothing: [] for a fresh database."""
        ...

    def interrupted(self) -> Sequence[InterruptedStep]:
        """Steps that started and never finished (or are still running), oldest first. Creates nothing.

        ``settled_by`` says who settles each: ``"stamp"`` (an operator; the core refuses ``upgrade`` and
        ``rollback`` until then) or ``"upgrade"`` (the adapter's own crash recovery). Adapters fill in the
        pid and host of the process that started the step where they know them; the core decides whether
        that process is still running (``running``).
        """
        ...

    def lock(self, timeout: float, waiting: Report | None = None) -> AbstractContextManager[None]:
        """Exclusive right to migrate this database across processes; LockTimeout after ``timeout`` s.

        When another process holds it, ``waiting`` is told once, in one line naming the holder where the lock
        knows it (``backends.locking.waiting_line``), before the wait begins.
        """
        ...

    def prepare(self) -> None:
        """Create the bookkeeping if missing (called under the lock, before the first apply)."""
        ...

    def apply(self, migration: Migration, direction: Direction, report: Report) -> AppliedMigration | None:
        """Run one step and record it atomically; return the row written (None for DOWN).

        On failure raise MigrationFailed (or let the error propagate) with the
        database left at the previous version, bookkeeping included.
        """
        ...

    def drift(self, migrations: Sequence[Migration], applied: Sequence[AppliedMigration]) -> Sequence[Issue]:
        """Lines whose stored data disagrees with ``applied`` (``ISSUE_DRIFT``), read-only; () when it cannot.

        LanceDB: a table whose version stamp is below its recorded version
        (restored by hand), or missing while its bookkeeping says it exists.
        Data merely ahead because a crash came between its commit and its
        bookkeeping is not drift: ``apply`` settles it. SQL: none.
        """
        ...

    def stamp(self, migrations: Sequence[Migration]) -> None:
        """Record ``migrations`` as applied without running them (baseline).

        Also clears every interrupted step that ``stamp`` settles (``settled_by == "stamp"``): the operator has
        said what state the database is in. Called with ``[]`` only for that.
        """
        ...

    def unstamp(self, migrations: Sequence[Migration]) -> None:
        """Remove the bookkeeping rows of ``migrations`` without running anything."""
        ...

    def record_checksums(self, migrations: Sequence[Migration]) -> None:
        """Store these applied migrations' current checksums (``validate --repair`` after a deliberate edit)."""
        ...

    def backup(self, report: Report) -> str:
        """Take a consistent backup before a run; return where it is (a file path, a tag name).

        SQLite: the online backup API to a timestamped file beside the database.
        LanceDB: a tag on every table's current version. Others: raise UsageError
        saying the operator's own backups apply.
        """
        ...

    def close(self) -> None:
        ...


@dataclass(frozen=True)
class TableChanges:
    """One LanceDB table's migration (``target_schemas``): one file per changed table."""

    table: str
    version: int                # the table's next version (its newest declared one + 1)
    changes: tuple[str, ...]    # one line per difference, without the table's name
    preamble: str               # module-level code before the function (schema constants, a transform stub)
    body: str                   # the body of the migration function, the first line unindented, the rest by 4
    indices: tuple[str, ...]    # ``Index(...)`` sources for the decorator's ``indices=[...]``
    imports: tuple[str, ...]    # the import lines the file needs


@dataclass(frozen=True)
class ModelChanges:
    """What would bring a database to its models (``target_metadata``, ``target_schemas``):
    ``migrator new --autogenerate``, ``check``."""

    changes: tuple[str, ...]    # one line per difference ("add table users"), for messages
    up: str                     # the body of ``up(db)``: Python statements, the first unindented, the rest by 4
    down: str                   # the body of ``down(db)``, the same way
    imports: tuple[str, ...]    # the import lines the bodies need
    tables: tuple[TableChanges, ...] = ()   # LanceDB: one migration per changed table (``up``/``down`` unused)


@runtime_checkable
class ComparesModels(Protocol):
    """A backend that compares the application's models with its live database (SQL: a SQLAlchemy MetaData;
    LanceDB: a dict of table name -> pyarrow.Schema)."""

    def compare_models(self, target: object, *, where: str, root: Path | None) -> ModelChanges | None:
        """The changes from the database to ``target`` (None: they match); reads only.

        ``target``: the config's ``target_metadata`` / ``target_schemas`` (``"package.module:attribute"``, imported with
        ``root`` searched first) or the object itself; ``where`` names the config section in errors.
        """
        ...


@runtime_checkable
class WritesSql(Protocol):
    """A backend that can write a plan as a SQL script instead of running it (``upgrade --sql``)."""

    def offline_sql(self, migrations: Sequence[Migration], direction: Direction) -> str:
        """The SQL that running ``migrations`` in ``direction`` would execute, bookkeeping included.

        Never connects. UsageError naming the migration when one cannot be written without a live database.
        """
        ...


BackendFactory = Callable[..., Backend]


@dataclass(frozen=True)
class Seed:
    """One unit of seed data found in a backend's ``seeds`` folder, loaded and ready to run (``migrator seed``)."""

    label: str                  # what output and errors name: "02_users.sql", "memos.py: memos by id"
    path: Path
    payload: object             # the adapter's own (split statements, a function)


@dataclass(frozen=True)
class Seeded:
    """What one seed did (or, in a dry run, would do): ``detail`` like "3 statements", "2 inserted, 1 updated"."""

    label: str
    detail: str


@runtime_checkable
class LoadsSeeds(Protocol):
    """A backend that loads seed data (``seeds = "folder"`` in its config; ``migrator seed``)."""

    def load_seeds(self, folder: Path) -> Sequence[Seed]:
        """Every seed in ``folder``, in file-name order, loaded (Python imported, SQL split); changes nothing.

        LoaderError naming the file for one that cannot run.
        """
        ...

    def apply_seeds(self, seeds: Sequence[Seed], report: Report, *, dry_run: bool = False) -> Sequence[Seeded]:
        """Load ``seeds`` into the database (the migration lock held, no migration pending); idempotent.

        SQL: every seed in one transaction. LanceDB: every seed's rows computed and checked first, then
        upserted by key. On failure raise MigrationFailed naming the seed's file. ``dry_run``: every check
        that needs no write, then stop.
        """
        ...
