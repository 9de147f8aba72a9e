"""LanceDB workloads: recreation vs the raw Lance floor, a nullable column at two sizes, --jobs 2 vs 1.

Every database state a timed run starts from is built once, untimed, by a real
``migrator upgrade`` of a *seed* project (``001_create_items.py``: the table,
streamed, with its BTREE and IVF_PQ indices declared on the decorator), and
kept as a snapshot folder. Before each timed run the snapshot is cloned with
hard links for data and index files (Lance never rewrites those, so the clone
is nearly free and the snapshot stays intact; manifests, hints and the lock
file are copied; a fingerprint check at the end proves the snapshot unchanged),
then ``sync`` so the timed run does not pay for anyone's write-back.

The migrator side runs ``migrator upgrade`` in a project whose ``migrations/``
holds the seed's file (same bytes, so the same checksum) plus one new file;
the floor runs ``lance_child.py`` on a clone of the same snapshot.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness import BIN, BenchError, Case, Contender, Ratio, Sample, clean_env, process_output, run_process

HERE = Path(__file__).resolve().parent
CHILD = HERE / "lance_child.py"
TABLE = "items"

CREATE_FILE = '''"""Seed: {tables} with {rows} rows each (benchmarks/lance_child.py), indices declared for migrator."""
import sys

sys.path.insert(0, {here!r})

import lance_child as lc  # noqa: E402
from migrator.lancedb import Index, migration  # noqa: E402

INDICES = [Index("id", kind="BTREE", name="id_idx"),
           Index("vector", kind="IVF_PQ", name="vector_idx", options=lc.VECTOR_OPTIONS, **lc.VECTOR_INDEX)]
{functions}'''

CREATE_FUNCTION = '''

@migration(table={table!r}, version=1, description="create {table}", indices=INDICES)
def create_{table}(db):
    lc.make(db, {table!r}, {rows}, indices=False)
'''

RECREATE_FILE = '''"""Recreate {tables}: cast ts timestamp -> int64 and add text_len, streamed, indices rebuilt."""
import sys

sys.path.insert(0, {here!r})

import lance_child as lc  # noqa: E402
from migrator.lancedb import migration, recreate_table  # noqa: E402
{functions}'''

RECREATE_FUNCTION = '''

@migration(table={table!r}, version=2, description="recreate {table}")
def recreate_{table}(db):
    recreate_table(db, {table!r}, schema=lc.SCHEMA_V2, transform=lc.transform)
'''

ADD_COLUMN_FILE = '''"""Add a nullable column: native evolution, no rewrite."""
import pyarrow as pa
from migrator.lancedb import add_columns, migration


@migration(table={table!r}, version=2, description="add note to {table}")
def add_note(db):
    add_columns(db, {table!r}, pa.field("note", pa.string()))
'''


def human(rows: int) -> str:
    if rows >= 1_000_000 and rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}M"
    if rows >= 1_000 and rows % 1_000 == 0:
        return f"{rows // 1_000}k"
    return str(rows)


def write_config(project: Path, uri: Path, jobs: int | None = None) -> None:
    extra = f"jobs = {jobs}\n" if jobs else ""
    (project / "migrator.toml").write_text(
        'default_backend = "vectors"\n\n[backends.vectors]\ntype = "lancedb"\n'
        f'uri = "{uri}"\nmigrations = "migrations"\n{extra}'
    )


def fingerprint(folder: Path) -> list[tuple[str, int, int]]:
    return sorted((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns)
                  for p in folder.rglob("*") if p.is_file())


IMMUTABLE_DIRS = frozenset({"data", "_indices"})
"""Lance writes a data or index file once and never touches it again: those are hard-linked, the rest copied."""


def clone(snapshot: Path, target: Path) -> None:
    """``target`` := a copy of ``snapshot`` (old target removed), data and index files hard-linked; then sync."""
    if target.exists():
        shutil.rmtree(target)
    for src in sorted(snapshot.rglob("*")):
        dst = target / src.relative_to(snapshot)
        if src.is_dir():
            dst.mkdir(parents=True, exist_ok=True)
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if IMMUTABLE_DIRS.intersection(src.relative_to(snapshot).parts[:-1]):
            os.link(src, dst)
        else:
            shutil.copy2(src, dst)
    os.sync()


@dataclass(frozen=True)
class Expect:
    """What a finished run must have left: ``tables`` tables of ``rows`` rows in state ``kind``."""

    rows: int
    kind: str  # lance_child.check: "recreated", "added", "created"
    tables: int = 1


class LanceWorkload:
    """Seeds and projects under ``root``, built lazily and shared by the cases."""

    def __init__(self, root: Path, log: Callable[[str], None]) -> None:
        self.root = root / "lance"
        self.root.mkdir(parents=True, exist_ok=True)
        self.env = clean_env()
        self.log = log
        self.seeds: dict[tuple[int, int], Path] = {}
        self.prints: dict[Path, list[tuple[str, int, int]]] = {}

    # -- seeds ---------------------------------------------------------------------------------------------------

    def _create_file(self, tables: list[str], rows: int) -> str:
        functions = "".join(CREATE_FUNCTION.format(table=t, rows=rows) for t in tables)
        return CREATE_FILE.format(tables=", ".join(tables), rows=rows, here=str(HERE), functions=functions)

    def seed(self, rows: int, tables: int = 1) -> Path:
        """A LanceDB folder where ``tables`` tables of ``rows`` rows are at migration v1 (built once)."""
        key = (rows, tables)
        if key in self.seeds:
            return self.seeds[key]
        name = f"seed-{human(rows)}x{tables}"
        project = self.root / name
        if project.exists():
            shutil.rmtree(project)
        (project / "migrations").mkdir(parents=True)
        (project / "migrations" / "001_create_items.py").write_text(self._create_file(self._tables(tables), rows))
        db = project / "db"
        write_config(project, db)
        self.log(f"  seeding {tables} x {rows:,} rows (untimed) ...")
        sample = run_process([BIN / "migrator", "upgrade"], cwd=project, env=self.env)
        self.log(f"  seeded {name} in {sample.seconds:.1f}s, peak RSS {sample.maxrss_mb:.0f} MB")
        self.seeds[key] = db
        self.prints[db] = fingerprint(db)
        return db

    def verify_seeds(self) -> None:
        for db, before in self.prints.items():
            if fingerprint(db) != before:
                raise BenchError(f"{db}: the snapshot changed under its hard-link clones; results are suspect")

    def _tables(self, n: int) -> list[str]:
        return [TABLE] if n == 1 else [f"{TABLE}_{i}" for i in range(n)]

    def _project(self, name: str, rows: int, tables: int, second: str, *, jobs: int | None = None) -> Path:
        """A project whose migrations are the seed's file plus ``second`` (002_...)."""
        project = self.root / name
        if project.exists():
            shutil.rmtree(project)
        mig = project / "migrations"
        mig.mkdir(parents=True)
        (mig / "001_create_items.py").write_text(self._create_file(self._tables(tables), rows))
        (mig / "002_change_items.py").write_text(second)
        write_config(project, project / "db", jobs)
        return project

    # -- contenders ----------------------------------------------------------------------------------------------

    def _migrator(self, name: str, project: Path, snapshot: Callable[[], Path], check: Expect,
                  args: tuple[str, ...] = ()) -> Contender:
        def run() -> Sample:
            sample = run_process([BIN / "migrator", "upgrade", *args], cwd=project, env=self.env)
            sample.inner.update(self._durations(project))
            return sample

        return Contender(name, run, setup=lambda: clone(snapshot(), project / "db"),
                         check=self._checker(project / "db", check))

    def _durations(self, project: Path) -> dict[str, float]:
        """The v2 migrations' own ``duration_ms`` (in-process time) from ``migrator history --json``."""
        done = process_output([BIN / "migrator", "history", "--json"], cwd=project, env=self.env)
        if done.returncode != 0:
            return {}
        rows = [h for b in json.loads(done.stdout)["backends"] for h in b["history"] if h.get("version") == 2]
        ms = [h["duration_ms"] for h in rows if h.get("duration_ms") is not None]
        return {"migrations_v2_ms_sum": float(sum(ms)), "migrations_v2_ms_max": float(max(ms))} if ms else {}

    def _floor(self, name: str, work: Path, snapshot: Callable[[], Path], cmd: str, check: Expect) -> Contender:
        def run() -> Sample:
            return run_process([sys.executable, CHILD, cmd, work, TABLE], env=self.env)

        return Contender(name, run, setup=lambda: clone(snapshot(), work), check=self._checker(work, check))

    def _checker(self, db: Path, expect: Expect) -> Callable[[], None]:
        def check() -> None:
            tables = ",".join(self._tables(expect.tables))
            done = process_output([sys.executable, CHILD, "check", db, tables, str(expect.rows), expect.kind],
                                  env=self.env)
            if done.returncode != 0:
                raise BenchError(f"check failed for {db}: {(done.stderr or done.stdout).strip()[-500:]}")
        return check

    # -- cases ---------------------------------------------------------------------------------------------------

    def recreate_case(self, rows: int, repeat: int, warmup: int = 0) -> Case:
        tag = human(rows)
        project = self._project(f"recreate-{tag}", rows, 1,
                                RECREATE_FILE.format(tables=TABLE, here=str(HERE),
                                                     functions=RECREATE_FUNCTION.format(table=TABLE)))

        def snapshot() -> Path:
            return self.seed(rows)

        contenders = [
            self._migrator("migrator", project, snapshot, Expect(rows, "recreated")),
            self._floor("floor", self.root / f"floor-recreate-{tag}", snapshot, "floor", Expect(rows, "recreated")),
        ]
        return Case(f"lance.recreate.{tag}", f"recreate a {rows:,}-row table (cast + new column, 2 indices rebuilt)",
                    contenders, repeat=repeat, warmup=warmup, ratios=[Ratio("migrator", "floor")],
                    params={"rows": rows}, prepare=snapshot)

    def add_column_case(self, rows: int, repeat: int, warmup: int = 1) -> Case:
        tag = human(rows)
        project = self._project(f"addcol-{tag}", rows, 1, ADD_COLUMN_FILE.format(table=TABLE))

        def snapshot() -> Path:
            return self.seed(rows)

        contenders = [
            self._migrator("migrator", project, snapshot, Expect(rows, "added")),
            self._floor("floor", self.root / f"floor-addcol-{tag}", snapshot, "addcol", Expect(rows, "added")),
        ]
        return Case(f"lance.addcol.{tag}", f"add a nullable column to a {rows:,}-row table", contenders,
                    repeat=repeat, warmup=warmup, ratios=[Ratio("migrator", "floor")], params={"rows": rows},
                    prepare=snapshot)

    def jobs_case(self, rows: int, tables: int, repeat: int, warmup: int = 0) -> Case:
        names = self._tables(tables)
        second = RECREATE_FILE.format(tables=", ".join(names), here=str(HERE),
                                      functions="".join(RECREATE_FUNCTION.format(table=t) for t in names))

        def snapshot() -> Path:
            return self.seed(rows, tables)

        contenders = []
        for jobs in (1, 2):
            project = self._project(f"jobs{jobs}-{tables}x{human(rows)}", rows, tables, second)
            contenders.append(self._migrator(f"--jobs {jobs}", project, snapshot,
                                             Expect(rows, "recreated", tables), args=("--jobs", str(jobs))))
        return Case(f"lance.jobs.{tables}x{human(rows)}",
                    f"{tables} tables of {rows:,} rows, each recreated by its own migration", contenders,
                    repeat=repeat, warmup=warmup, ratios=[Ratio("--jobs 2", "--jobs 1")],
                    params={"rows": rows, "tables": tables}, prepare=snapshot)
