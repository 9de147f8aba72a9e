"""The LanceDB adapter: one version line per table, forward-only, crash-safe bookkeeping.

Files
    ``migrations/lancedb/NNN_name.py`` holding functions decorated with
    ``@migration(table=..., version=..., description=..., indices=[...])``
    (:mod:`migrator.lancedb`). ``discover`` imports every file (the versions
    live inside them); files run in file-number order, each table's
    migrations in version order. A function receives the lancedb connection.

Bookkeeping
    ``table_migrations`` (or the configured ``version_table``): exactly the
    seed's three columns, one row per table, the version it really is at;
    ``table_migrations_history`` (``<version_table>_history``): every event.
    Layout, write order, other tools' rows and the adoption of seed databases:
    :mod:`migrator.backends.lancedb.bookkeeping` (written through its verbs:
    ``started``, ``applied``, ``failed``, ``stamped``, ``reverting``, ``rolled_back``);
    the conversion of 0.1's event log: :mod:`migrator.backends.lancedb.legacy`.

Stamps
    Each data table carries the migration version its data is at in its
    schema metadata (``migrator.version``), with the specs of the indices
    migrator keeps on it (``migrator.indices``); see
    :mod:`migrator.backends.lancedb.common`. :meth:`LanceBackend.drift`
    compares each table's stamp with the bookkeeping (:mod:`.drift`: a table
    restored or dropped by hand); ``stamp`` raises a table's stamp to the
    version it records, never lowers one.

Applying one migration (table T, version N)
    1. Read the bookkeeping and T's stamp.
    (Steps 2 and 3 are :mod:`.recovery`'s named cases: ``classify`` picks one, ``_apply`` acts on it.)
    2. If T's stamp is already N, the data got there before the bookkeeping
       did (a crash after ``recreate_table``'s overwrite, whose commit
       carries the stamp, or after the stamp commit; or an unstamp): check the unfinished
       recreation against other writers (:func:`.recreate.audit_overwrite`),
       build the missing indices, write the stamp and the ``applied`` row —
       **without running the function (or the transform) again**.
    3. If an earlier run of T vN left a ``started`` row and no end (a crash
       during the function or between its commits and the stamp), undo what
       it committed: restore T's Lance version from before it (drop T if it
       created it). When the commits since then are only appends they are
       kept (they are most likely the app's rows written during a long
       rewrite that never committed); when they mix with the run's other
       commits, the appended rows are kept the way a failed migration keeps
       them (:mod:`.undo`: restore, append them again; or stop with an error
       naming them when they cannot take the old schema).
    4. Append a ``started`` row (T's Lance version before the function), run
       the function, build the indices the decorator declares (and deferred
       ones), write the stamp ``migrator.version = N`` (a metadata commit; a
       ``recreate_table`` already wrote it with the data) and append the
       ``applied`` row with T's resulting Lance version.
    5. If the function (or the index build) raises: undo its commits on T
       without discarding other writers' (:mod:`.undo`): appends since the
       start are taken as the application's; T is restored to its Lance
       version from before the migration with a guarded commit
       (:mod:`.guard`) and those rows are appended again, or T is left as it
       is when the migration changed no rows (drop it if the migration
       created it); append a ``failed`` row; raise MigrationFailed naming the
       table, the version, the cause and what happened to the other writers'
       rows. Other tables are not touched.

Crash windows of ordinary (non-recreate) migrations
    Between the function's commit and the stamp commit: step 3 on the next
    run (restore and run again). Between the stamp and the ``applied`` row:
    step 2 (record without running). History rows are single appends and the
    ``table_migrations`` row one guarded overwrite, so neither is ever
    half-written; a row left one step behind is repaired when the next run
    takes the lock.

Concurrency
    ``apply`` runs in parallel threads for different tables (the runner's
    ``--jobs``); bookkeeping writes are serialised by a lock in this process,
    history appends retried on Lance commit conflicts, ``table_migrations``
    overwrites committed only on the version they read. Across processes,
    :meth:`LanceBackend.lock` holds ``<uri>/.migrator-lock`` for the whole run:
    an ``fcntl.flock`` in a local folder, a leased object written with
    conditional puts on object storage (``s3://``, ``gs://``, ``az://``); see
    :mod:`migrator.backends.lancedb.lock`. Lance's conditional commits guard each
    single commit underneath; restores and overwrites, which Lance lets win
    over other writers' appends, are committed only on the version migrator
    checked (:mod:`.guard`), so writers that do not take the lock (the
    application) lose nothing.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrator import requirements
from migrator.engines import DEFAULT_ENGINE
from migrator.errors import (
    BackendUnavailable,
    ConfigError,
    LoaderError,
    MigrationFailed,
    MigratorError,
)
from migrator.extras import install_command
from migrator.lancedb import DEFAULT_VERSION_TABLE, Index, specs_of
from migrator.loader import SourceFile, checksum, import_file, scan
from migrator.model import AppliedMigration, Direction, InterruptedStep, Issue, Migration
from migrator.redact import mask_url, scrub, secrets_in

from ..base import Capabilities, ModelChanges, Report, Seed, Seeded
from ..locking import Waiting
from .bookkeeping import (
    Bookkeeping,
    Intent,
    appended,
    derive_applied,
    open_intents,
    open_reverts,
)
from .common import (
    CURRENT,
    META_ATTEMPT,
    META_SOURCE,
    META_VERSION,
    MigrationContext,
    describe,
    metadata_of,
    open_table,
    recorded_indices,
    stamp_of,
    table_names,
)
from .drift import Seen
from .drift import find as find_drift
from .folder import unreadable, unwritable
from .guard import HiddenCommits, TableMoved, restore
from .indices import changed_specs, ensure, merge_specs, record
from .interrupted import interrupted_steps
from .lock import DEFAULT_LEASE, Lease, folder_lock, object_lock, object_store_for
from .recovery import Recovery, Situation, classify, observe
from .rollback import check_revert, closing_row, revert, settle
from .undo import undo_since

if TYPE_CHECKING:
    from migrator.config import BackendConfig

__all__ = ["LanceBackend", "LanceStep", "create"]

_NAMESPACE = "migrator_lancedb_migrations"
_SECRET_KEY = re.compile(r"secret|key|token|password|credential|session", re.IGNORECASE)


@dataclass(frozen=True)
class LanceStep:
    """The payload of a LanceDB :class:`Migration`: the function and what its decorator said."""

    function: Callable[[Any], Any]
    table: str
    version: int
    description: str
    indices: tuple[Index, ...]
    function_name: str


def create(config: BackendConfig) -> LanceBackend:
    """Open the adapter for a ``type = "lancedb"`` backend of the configuration (connects lazily)."""
    options = dict(config.options)
    storage = options.get("storage_options")
    if options.get("engine") == "ray":
        from .ray_engine import missing_modules

        missing = missing_modules()
        if missing:
            raise ConfigError(f"{config.source}: backend {config.name!r} has engine = \"ray\", which needs "
                              f"`{install_command('ray')}` ({', '.join(missing)} not installed)")
    return LanceBackend(
        config.name,
        config.location,
        config.migrations,
        storage_options=dict(storage) if isinstance(storage, dict) else None,
        lock_timeout=config.lock_timeout,
        version_table=config.version_table or DEFAULT_VERSION_TABLE,
        lock_lease=DEFAULT_LEASE if config.lock_lease is None else config.lock_lease,
        source=config.source,
        connection=config.handle,
        engine=str(options.get("engine", DEFAULT_ENGINE)),
    )


class LanceBackend:
    """A LanceDB database (local folder or object storage) and its folder of migrations."""

    type = "lancedb"
    capabilities = Capabilities(reversible=True, per_table_lines=True, parallel_lines=True, transactional_ddl=False)

    def __init__(
        self,
        name: str,
        uri: str,
        migrations_dir: Path,
        storage_options: dict[str, str] | None = None,
        lock_timeout: float = 60.0,
        *,
        version_table: str = DEFAULT_VERSION_TABLE,
        lock_lease: float = DEFAULT_LEASE,
        source: str | None = None,
        connection: Any = None,
        engine: str = DEFAULT_ENGINE,
    ) -> None:
        """``connection``: the application's own lancedb connection, used instead of connecting to ``uri`` (its
        URI and storage options are taken from it) and never closed or dropped by migrator."""
        self.name = name
        if connection is not None:
            uri = connection.uri
            storage_options = storage_options or getattr(connection, "storage_options", None)
        self.engine = engine  # where recreate_table runs unless the call says (migrator.engines)
        self.uri = str(uri)
        self.migrations_dir = Path(migrations_dir)
        self.storage_options = {str(k): str(v) for k, v in (storage_options or {}).items()}
        self.lock_timeout = lock_timeout
        self.lock_lease = lock_lease
        self.version_table = version_table
        self.location = mask_url(self.uri)
        self.source = source or f"{name} (lancedb)"  # where messages say the uri comes from
        self._secrets = secrets_in(self.uri) + [
            v for k, v in self.storage_options.items() if v and _SECRET_KEY.search(k)
        ]
        self._db: Any = connection
        self._borrowed = connection is not None
        self._connect_lock = threading.Lock()
        self._table_locks: dict[str, threading.Lock] = {}
        self._books = Bookkeeping(version_table)
        self._lease: Lease | None = None

    def __repr__(self) -> str:
        return f"LanceBackend({self.name!r}, {self.location!r})"

    # -- files ---------------------------------------------------------------------------------------------------

    def discover(self) -> Sequence[Migration]:
        found: list[Migration] = []
        where: dict[tuple[str, int], str] = {}
        for source in scan(self.migrations_dir, [".py"]):
            for migration in self._import(source):
                step = migration.payload
                key = (migration.line, migration.version)
                here = f"{source.path}: {step.function_name}"
                if key in where:
                    raise LoaderError(f"{here}: {migration.line} v{migration.version} is declared twice "
                                      f"(also by {where[key]})")
                where[key] = here
                found.append(migration)
        return found

    def load(self, migrations: Sequence[Migration]) -> Sequence[Migration]:
        ready: list[Migration] = []
        files: dict[Path, dict[tuple[str, int], Migration]] = {}
        for migration in migrations:
            if isinstance(migration.payload, LanceStep):
                ready.append(migration)
                continue
            if migration.path not in files:
                from migrator.loader import parse_name

                version, title = parse_name(migration.path, ".py")
                source = SourceFile(path=migration.path, version=version, name=title, kind=".py")
                files[migration.path] = {(m.line, m.version): m for m in self._import(source)}
            fresh = files[migration.path].get((migration.line, migration.version))
            if fresh is None:
                raise LoaderError(f"{migration.path}: no @migration(table={migration.line!r}, "
                                  f"version={migration.version}) in this file any more")
            ready.append(fresh)
        return ready

    def check_plan(self, migrations: Sequence[Migration], direction: Direction, *, backup: bool = False) -> None:
        """A rollback's time-travel refusals (rows changed since, out of order, table gone), before any step.

        ``backup`` (tags) needs no check.
        """
        if direction is Direction.DOWN and migrations and self.applied():
            with self._unavailable(f"cannot read {self.version_table}"):
                check_revert(self._connect(), self._books, migrations, self.name)

    def _import(self, source: SourceFile) -> list[Migration]:
        module = import_file(source.path, _NAMESPACE)
        digest = checksum(source.path)
        migrations: list[Migration] = []
        seen: set[int] = set()
        for attr, obj in list(vars(module).items()):
            specs = specs_of(obj)
            if not specs or id(obj) in seen or getattr(obj, "__module__", None) != module.__name__:
                continue
            seen.add(id(obj))
            function_name = str(getattr(obj, "__qualname__", attr))
            here = f"{source.path}: {function_name}"
            for spec in specs:
                if spec.problems:
                    raise LoaderError(f"{here}: {spec.problems[0]}")
                if spec.table in (self.version_table, self._books.history):
                    raise LoaderError(f"{here}: table {spec.table!r} is migrator's bookkeeping table")
                step = LanceStep(function=spec.function, table=spec.table, version=spec.version,
                                 description=spec.description, indices=spec.indices, function_name=function_name)
                if any(m.line == step.table and m.version == step.version for m in migrations):
                    raise LoaderError(f"{here}: {step.table} v{step.version} is declared twice in this file")
                migrations.append(Migration(
                    version=step.version, name=step.description, path=source.path, checksum=digest,
                    line=step.table, reversible=True, transactional=False, payload=step,
                    requires=requirements.from_mapping(spec.requires, here) if spec.requires is not None else ()))
        if not migrations:
            raise LoaderError(f"{source.path}: defines no @migration function "
                              "(from migrator.lancedb import migration)")
        return migrations

    # -- connection ----------------------------------------------------------------------------------------------

    @property
    def local_path(self) -> Path | None:
        """The database folder for a local URI; None for object storage."""
        if self.uri.startswith("file://"):
            return Path(self.uri[len("file://"):])
        if "://" in self.uri:
            return None
        return Path(self.uri)

    def _folder(self, *, write: bool) -> Path | None:
        """:attr:`local_path`, refused (ConfigError, naming the backend, ``uri`` and the path) when unusable.

        A file, or a path under one, is refused for every command; a folder
        migrator cannot write in only for the commands that write (see :mod:`.folder`).
        """
        local = self.local_path
        if local is None:
            return None
        problem = unwritable(local) if write else unreadable(local)
        if problem is not None:
            raise ConfigError(f"{self.source}: uri {local} {problem}")
        return local

    def _lancedb(self) -> Any:
        """The ``lancedb`` module; BackendUnavailable naming the extra when it (or pyarrow, lance) is missing."""
        try:
            import lancedb
        except ImportError as exc:
            raise BackendUnavailable(
                f"{self.name}: the lancedb backend needs `{install_command('lancedb')}`: {exc}") from exc
        return lancedb

    def _connect(self) -> Any:
        with self._connect_lock:
            if self._db is None:
                lancedb = self._lancedb()
                try:
                    self._db = lancedb.connect(self.uri, storage_options=self.storage_options or None)
                except Exception as exc:
                    raise BackendUnavailable(self._scrub(
                        f"{self.name}: cannot open LanceDB at {self.location}: {exc}")) from exc
            return self._db

    def _scrub(self, text: str) -> str:
        return scrub(text, self._secrets)

    def close(self) -> None:
        with self._connect_lock:
            if not self._borrowed:
                self._db = None

    # -- models (autogenerate, check) ----------------------------------------------------------------------------

    def compare_models(self, target: object, *, where: str, root: Path | None) -> ModelChanges | None:
        """The changes from the live tables to ``target_schemas`` (see :mod:`.autogen`); reads only, creates
        nothing (a folder that does not exist yet is compared as an empty database)."""
        from . import autogen

        wanted = autogen.load_target(target, where, root)
        newest: dict[str, int] = {}
        for migration in self.discover():
            newest[migration.line] = max(newest.get(migration.line, 0), migration.version)
        with self._reading() as db:
            live = [] if db is None else table_names(db)
            return autogen.compare(db, wanted, versions=newest, live_tables=live, where=where,
                                   ignore=(self.version_table, self._books.history))

    # -- bookkeeping ---------------------------------------------------------------------------------------------

    def applied(self) -> Sequence[AppliedMigration]:
        with self._reading() as db:
            rows = None if db is None else self._books.read(db)
            if rows is None:
                return []
            # a rollback interrupted between its restore and its row: the table's stamp says which way it went
            rows = appended(rows, [closing_row(db, intent) for intent in open_reverts(rows)])
        return derive_applied(rows)

    def interrupted(self) -> Sequence[InterruptedStep]:
        """Open ``started`` rows: steps whose process died (the next ``upgrade`` settles them) or still runs."""
        with self._reading() as db:
            rows = None if db is None else self._books.read(db)
        return [] if rows is None else interrupted_steps(rows)

    @contextmanager
    def _reading(self) -> Iterator[Any]:
        """The connection to read the bookkeeping with, or None for a local folder that does not exist
        (connecting would create it); errors inside name the version table."""
        local = self._folder(write=False)
        if local is not None and not local.is_dir():
            yield None
            return
        db = self._connect()
        with self._unavailable(f"cannot read {self.version_table}"):
            yield db

    def prepare(self) -> None:
        local = self._folder(write=True)
        if local is not None:
            local.mkdir(parents=True, exist_ok=True)
        db = self._connect()
        with self._unavailable(f"cannot create {self.version_table}"):
            self._books.ensure(db)

    @contextmanager
    def _unavailable(self, what: str) -> Iterator[None]:
        """Storage errors (unreachable bucket, bad credentials) as one masked BackendUnavailable line."""
        try:
            yield
        except MigratorError:
            raise
        except Exception as exc:
            raise BackendUnavailable(self._scrub(f"{self.name}: {what} at {self.location}: {exc}")) from exc

    def stamp(self, migrations: Sequence[Migration]) -> None:
        if not migrations:
            return
        self.prepare()
        db = self._connect()
        tops: dict[str, int] = {}
        for migration in migrations:
            tops[migration.line] = max(tops.get(migration.line, 0), migration.version)
        versions: dict[str, int | None] = {}
        for name, top in tops.items():
            # the table's stamp first (it never goes down): a crash before the rows is data ahead, settled by apply
            table = open_table(db, name)
            if table is not None:
                meta = metadata_of(table.schema)
                if (stamp_of(meta) or 0) < top:
                    with self._unavailable(f"cannot write the stamp of {name}"):
                        record(table, recorded_indices(meta), {META_VERSION: str(top)})
            versions[name] = int(table.version) if table is not None else None
        self._books.stamped(db, [(m, versions[m.line]) for m in migrations])

    def drift(self, migrations: Sequence[Migration], applied: Sequence[AppliedMigration]) -> Sequence[Issue]:
        """Tables whose stamp disagrees with the bookkeeping, or missing while it says they exist (:mod:`.drift`)."""
        local = self._folder(write=False)
        if local is not None and not local.is_dir():
            return []  # connecting would create the folder
        names = {m.line for m in migrations} | {r.line for r in applied}
        if not names:
            return []
        db = self._connect()
        seen: dict[str, Seen] = {}
        with self._unavailable("cannot read the tables' version stamps"):
            for name in names:
                table = open_table(db, name)
                seen[name] = Seen(False) if table is None else Seen(True, stamp_of(metadata_of(table.schema)))
        return find_drift(migrations, applied, seen, self.version_table)

    def unstamp(self, migrations: Sequence[Migration]) -> None:
        """``unstamped`` events (nothing deleted); under an adopted baseline, it is lowered to the next file below."""
        if not migrations or not self.applied():
            return
        db = self._connect()
        files: dict[str, list[int]] = {}
        for m in self.discover():
            files.setdefault(m.line, []).append(m.version)

        def below(table: str, version: int) -> int:
            return max((v for v in files.get(table, []) if v < version), default=0)

        self._books.forget(db, migrations, below=below)
        # a table without a stamp (restored to before migrator stamped it) takes the version it is now recorded at;
        # a stamp above it stays: the data is ahead, and the next upgrade finishes that version without running it
        tops: dict[str, int] = {}
        for row in self.applied():
            tops[row.line] = max(tops.get(row.line, 0), row.version)
        for name in {m.line for m in migrations}:
            found = open_table(db, name)
            meta = metadata_of(found.schema) if found is not None else {}
            if found is not None and tops.get(name) and stamp_of(meta) is None:
                with self._unavailable(f"cannot write the stamp of {name}"):
                    record(found, recorded_indices(meta), {META_VERSION: str(tops[name])})

    def record_checksums(self, migrations: Sequence[Migration]) -> None:
        """Store the current checksums of these applied migrations (appends a corrected copy of each record)."""
        if not migrations or not self.applied():
            return
        self._books.rechecksum(self._connect(), {(m.line, m.version): m.checksum for m in migrations})

    def backup(self, report: Report) -> str:
        """Tag every table's current Lance version ``migrator-backup-<UTC time>``; returns the tag name.

        Lance keeps tagged versions through ``cleanup_old_versions``; restore a
        table with ``table.restore("<tag>")``.
        """
        tag = f"migrator-backup-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        local = self._folder(write=True)
        if local is not None and not local.is_dir():
            report("nothing to back up: the database does not exist yet")
            return tag
        db = self._connect()
        names = table_names(db)
        for name in names:
            table = open_table(db, name)
            if table is None:
                continue
            table.tags.create(tag, int(table.version))
            report(f"{name}: tagged Lance version {table.version} as {tag}")
        return f"tag {tag} on {len(names)} table(s) of {self.location}"

    # -- seed data (migrator seed) -------------------------------------------------------------------------------

    def load_seeds(self, folder: Path) -> list[Seed]:
        """The ``@seed`` functions of ``folder``'s ``.py`` files (see :mod:`.seeds`)."""
        from . import seeds

        return seeds.load(folder)

    def apply_seeds(self, seeds: Sequence[Seed], report: Report, *, dry_run: bool = False) -> list[Seeded]:
        """Every seed's rows checked, then upserted by key (:mod:`.seeds`); under the lock, nothing pending."""
        from . import seeds as seeding

        if self._lease is not None:
            self._lease.check()
        local = self._folder(write=not dry_run)
        if local is not None and not local.is_dir():  # connecting would create it; no table exists there
            first = seeds[0].payload
            assert isinstance(first, seeding.LanceSeed)
            raise MigrationFailed(f"{self.name}: seed {seeds[0].path}: {first.function_name}: table "
                                  f"{first.table!r} does not exist (the database {self.location} does not exist "
                                  "yet); nothing was seeded", backend=self.name, line=first.table)
        with self._unavailable("cannot load the seeds"):
            return seeding.apply(self._connect(), seeds, report, dry_run=dry_run, backend=self.name,
                                 scrub=self._scrub)

    # -- locking -------------------------------------------------------------------------------------------------

    @contextmanager
    def lock(self, timeout: float, waiting: Waiting | None = None) -> Iterator[None]:
        """Hold the database's migration lock: a flock in a local folder, a leased object on object storage.

        See :mod:`migrator.backends.lancedb.lock`. On object storage, :meth:`apply` checks before each migration that
        the lease was not lost.
        """
        self._lancedb()  # a missing extra is reported before the lock creates the database folder
        where = f"{self.name} (lancedb at {self.location})"
        local = self._folder(write=True)
        taking: AbstractContextManager[Lease]
        if local is not None:
            taking = folder_lock(local, timeout, where, waiting)
        elif self.uri.startswith("memory://"):
            taking = nullcontext(Lease(where))  # one process by construction
        else:
            with self._unavailable("cannot open the object store for the migration lock"):
                store = object_store_for(self.uri, self.storage_options, where)
            taking = object_lock(store, timeout, where, self.lock_lease, scrub=self._scrub, waiting=waiting)
        with taking as lease:
            self._lease = lease
            try:
                self._settle()
                yield
            finally:
                self._lease = None

    def _settle(self) -> None:
        """Finish what a killed run left half done that must not wait for its table's next migration."""
        local = self.local_path
        if local is not None and not any((local / f"{name}.lance").is_dir()
                                         for name in (self.version_table, self._books.history)):
            return  # no bookkeeping yet: nothing to settle, and nothing to connect to
        db = self._connect()
        with self._unavailable(f"cannot settle the bookkeeping in {self.version_table}"):
            self._books.ensure(db)  # converts a 0.1 event log
            self._books.sync(db)    # other tools' rows into the history; rows one step behind after a crash
            settle(db, self._books, lambda message: None)
            self._books.compact(db)

    # -- applying ------------------------------------------------------------------------------------------------

    def apply(self, migration: Migration, direction: Direction, report: Report) -> AppliedMigration | None:
        if self._lease is not None:
            self._lease.check()
        step = self._step(migration)
        db = self._connect()
        self._books.ensure(db)
        with self._table_lock(step.table):
            if direction is Direction.DOWN:
                revert(db, self._books, migration, report, self.name, self._scrub)
                return None
            return self._apply(db, migration, step, report)

    def _step(self, migration: Migration) -> LanceStep:
        if not isinstance(migration.payload, LanceStep):
            migration = self.load([migration])[0]
        step = migration.payload
        assert isinstance(step, LanceStep)
        return step

    def _table_lock(self, table: str) -> threading.Lock:
        with self._connect_lock:
            return self._table_locks.setdefault(table, threading.Lock())

    def _apply(self, db: Any, migration: Migration, step: LanceStep, report: Report) -> AppliedMigration:
        """Recover what an earlier run left half done (:mod:`.recovery`), then run the migration."""
        started = time.perf_counter()
        rows = self._books.read(db) or []
        intent = open_intents(rows).get((step.table, step.version))
        table = open_table(db, step.table)
        seen = observe(table, step.version, intent)
        name, label, version = step.table, migration.label, step.version
        start = intent.start_version if intent is not None else None
        match classify(seen):
            case Recovery.FINISH | Recovery.FINISH_UNCHECKED as how:
                if how is Recovery.FINISH_UNCHECKED:
                    report("the interrupted recreation's commit is no longer in the table's history; "
                           "cannot check it against other writers")
                return self._finish_committed(db, migration, step, seen.stamp, intent, report, started)
            case Recovery.REFUSE_HIDDEN:
                assert seen.audit is not None
                raise MigrationFailed(
                    f"{label}: an interrupted recreation (Lance version {seen.audit.data_version}) had hidden "
                    f"rows committed by another writer ({describe(seen.audit.lost)}), and the table changed again "
                    f"since ({describe(seen.audit.after)}); restore by hand (table.restore(version)) and run again",
                    backend=self.name, line=name, version=version)
            case Recovery.RESTORE_HIDDEN:
                assert table is not None and seen.audit is not None and seen.audit.data_version is not None
                self._restore(table, seen.audit.data_version - 1, seen, label, step)
                report(f"an interrupted recreation had hidden rows another writer committed "
                       f"({describe(seen.audit.lost)}); restored their version {seen.audit.data_version - 1}, "
                       f"running {label} again")
            case Recovery.RERUN_NO_TABLE:
                report(f"an interrupted run of {label} left no table (it had Lance version {start}); "
                       "running it again")
            case Recovery.REFUSE_CREATED:
                raise MigrationFailed(
                    f"{label}: an interrupted run created {name}, and rows were appended to it since "
                    f"({describe(seen.appends)}); migrator cannot tell its writes from other writers' — check the "
                    f"table, drop it or stamp the migration by hand, and run again",
                    backend=self.name, line=name, version=version)
            case Recovery.DROP_THEN_RUN:
                db.drop_table(name)
                report(f"an interrupted run of {label} had created the table; dropped it to run again")
            case Recovery.RERUN_UNCHANGED:
                report(f"an earlier run of {label} was interrupted before it changed the table; running it "
                       "again")
            case Recovery.RERUN_KEEP_APPENDS:
                report(f"an earlier run of {label} was interrupted; the commits since it started only "
                       f"add rows ({describe(seen.appends)}) and are kept; running it again")
            case Recovery.RESTORE_THEN_RUN | Recovery.RESTORE_KEEP_APPENDS:
                assert start is not None
                undone = undo_since(db, name, start, report)
                if not undone.safe:
                    raise MigrationFailed(f"{label}: an earlier run was interrupted after committing "
                                          f"{describe(seen.changes)}; {undone.note}",
                                          backend=self.name, line=name, version=version)
                report(f"an earlier run of {label} was interrupted after committing {describe(seen.changes)}; "
                       f"restored Lance version {start} to run it again ({undone.note})")
            case Recovery.RUN:
                pass
        return self._run(db, migration, step, report, started)

    def _restore(self, table: Any, version: int, seen: Situation, label: str, step: LanceStep) -> None:
        """Restore ``version`` guarded on the Lance version :func:`.recovery.observe` saw (nothing else lost)."""
        assert seen.current is not None
        try:
            restore(table.to_lance(), version, read_version=seen.current, table=step.table)
        except TableMoved as exc:
            raise MigrationFailed(
                f"{label}: another writer committed to {step.table} after Lance version {seen.current} while an "
                f"interrupted run was being undone; nothing was changed, run again", backend=self.name,
                line=step.table, version=step.version) from exc

    def _run(self, db: Any, migration: Migration, step: LanceStep, report: Report, started: float) -> AppliedMigration:
        table = open_table(db, step.table)
        start_version = int(table.version) if table is not None else None
        attempt = uuid.uuid4().hex
        self._books.started(db, migration, lance_version=start_version, attempt=attempt)
        ctx = MigrationContext(table=step.table, version=step.version, label=migration.label, report=report,
                               attempt=attempt, start_version=start_version, engine=self.engine)
        try:
            token = CURRENT.set(ctx)
            try:
                step.function(db)
            finally:
                CURRENT.reset(token)
            final_version = self._finalize(db, step, report, ctx.deferred_reported)
        except BaseException as exc:
            note = self._rollback(db, step, ctx, report)
            self._record_failure(db, migration, step, attempt, exc, started)
            if isinstance(exc, (KeyboardInterrupt, GeneratorExit)):
                raise
            cause = exc.message if isinstance(exc, MigrationFailed) else f"{type(exc).__name__}: {exc}"
            raise MigrationFailed(
                self._scrub(f"{migration.path.name}: {migration.label} failed: {cause}; {note}"),
                backend=self.name, line=step.table, version=step.version) from exc
        return self._record(db, migration, step, attempt, started, final_version)

    def _record(self, db: Any, migration: Migration, step: LanceStep, attempt: str, started: float,
                lance_version: int | None, detail: str | None = None) -> AppliedMigration:
        duration = int((time.perf_counter() - started) * 1000)
        try:
            row = self._books.applied(db, migration, duration_ms=duration, lance_version=lance_version,
                                      attempt=attempt, detail=detail)
        except Exception as exc:
            raise MigrationFailed(self._scrub(
                f"{migration.label}: the data reached v{step.version} (stamped in {step.table}'s schema metadata) "
                f"but writing {self.version_table} failed: {exc}; the next run records it without running "
                "the migration again"), backend=self.name, line=step.table, version=step.version) from exc
        return derive_applied([row])[0]

    def _finalize(self, db: Any, step: LanceStep, report: Report, reported: set[str] | None = None) -> int | None:
        """Indices (declared + recorded), then the stamp: one metadata commit. The table's Lance version after.

        The stamp never goes down: an out-of-order migration (``--allow-out-of-order``) leaves a higher one.
        """
        table = open_table(db, step.table)
        if table is None:
            return None  # the migration dropped its table: nothing to stamp
        meta = metadata_of(table.schema)
        stamp = max(stamp_of(meta) or 0, step.version)
        recorded = recorded_indices(meta)
        specs = merge_specs(recorded, step.indices)
        changed = changed_specs(recorded, step.indices)
        ensure(table, step.table, specs, report, replace=changed, reported=reported)
        table.checkout_latest()
        record(table, specs, {META_VERSION: str(stamp), META_SOURCE: None, META_ATTEMPT: None})
        table.checkout_latest()
        return int(table.version)

    def _finish_committed(self, db: Any, migration: Migration, step: LanceStep, stamp: int | None,
                          intent: Intent | None, report: Report, started: float) -> AppliedMigration:
        """The data is already at ``step.version`` (:attr:`.Recovery.FINISH`): finish without running."""
        report(f"data already at v{stamp} (stamped with its commit), bookkeeping behind; finishing the "
               f"indices and the bookkeeping without running {migration.label} again")
        self._remove_finished_checkpoints(db, step.table, report)
        try:
            final_version = self._finalize(db, step, report)
        except Exception as exc:
            raise MigrationFailed(self._scrub(
                f"{migration.label}: the data is at v{stamp} but finishing its indices failed: "
                f"{type(exc).__name__}: {exc}"), backend=self.name, line=step.table, version=step.version) from exc
        attempt = intent.attempt if intent is not None else uuid.uuid4().hex
        return self._record(db, migration, step, attempt, started, final_version,
                            detail="completed after an interrupted run; the data commit was already stamped")

    def _remove_finished_checkpoints(self, db: Any, name: str, report: Report) -> None:
        """A ``reembed`` killed between its swap and removing its checkpoint left the file: remove it now."""
        from .checkpoint import checkpoint_folder, remove_finished

        table = open_table(db, name)
        if table is None:
            return
        dataset = table.to_lance()
        try:
            removed = remove_finished(checkpoint_folder(dataset.uri), name, dataset)
        except OSError as exc:  # a leftover file is not worth failing the bookkeeping for: say it
            report(f"could not remove a finished reembed checkpoint of {name}: {exc}")
            return
        for path in removed:
            report(f"removed {path.name}, the checkpoint of a reembed interrupted after its swap")

    def _rollback(self, db: Any, step: LanceStep, ctx: MigrationContext, report: Report) -> str:
        """Undo a failed migration's commits on its table, keeping other writers' appends; a note for the error."""
        name = step.table
        start = ctx.start_version
        try:
            if start is None:
                if open_table(db, name) is None:
                    return f"{name} was not created"
                db.drop_table(name)
                report("dropped the table the failed migration had created")
                return f"{name} did not exist before and was dropped again"
            return undo_since(db, name, start, report).note
        except HiddenCommits as exc:  # the one case where another writer's commits are out of sight: say where
            return self._scrub(f"restoring {name} to Lance version {start} failed too: {exc}")
        except Exception as exc:
            return self._scrub(f"restoring {name} to Lance version {start} failed too: {type(exc).__name__}: {exc}; "
                               "nothing of another writer was discarded (every restore is guarded)")

    def _record_failure(self, db: Any, migration: Migration, step: LanceStep, attempt: str, exc: BaseException,
                        started: float) -> None:
        try:
            table = open_table(db, step.table)
            self._books.failed(db, migration, duration_ms=int((time.perf_counter() - started) * 1000),
                               lance_version=int(table.version) if table is not None else None, attempt=attempt,
                               detail=self._scrub(f"{type(exc).__name__}: {exc}")[:2000])
        except Exception:
            pass


