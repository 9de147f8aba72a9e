"""kill -9 of a child process in the middle of LanceDB migrations: every table ends at a version it really reached.

A few seeded trials run in the default suite; ``-m crash`` runs many more
(``nox -s crash``). Each trial copies a prepared database, starts a child that
migrates it, kills it with SIGKILL at a random moment within the calibrated
duration of the run, checks the state it left, then re-runs in-process and
checks that the job was finished without migrating anything twice. The fresh
demo run is also killed on object storage (moto's S3 server): there the killed
child leaves its leased lock behind, and the re-run takes it over.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lancedb
import pyarrow.compute as pc
import pytest
from lance_scripts.testlib import (
    assert_seed_view_true,
    backend,
    by_line,
    index_names,
    rollback,
    seed_view,
    upgrade,
    write_files,
)
from s3 import S3Bucket, new_bucket

from migrator.backends.lancedb.common import open_table
from migrator.lancedb import table_stamp

pytestmark = pytest.mark.lancedb

SCRIPTS = Path(__file__).resolve().parent / "lance_scripts"
ROWS = 6000
DEMO = Path(__file__).resolve().parents[1] / "migrations" / "lancedb"

MEMOS = {
    "001_memos.py": f'''
        from migrator.lancedb import Index, migration
        from lance_scripts.testlib import memo_rows

        @migration(table="memos", version=1, description="create memos", indices=[
            Index("id"), Index("category", kind="BITMAP"),
            Index("vector", kind="IVF_PQ", metric="cosine", num_partitions=8, num_sub_vectors=4)])
        def create(db):
            db.create_table("memos", data=memo_rows({ROWS}, dim=32))
    ''',
    "002_tags.py": '''
        import pyarrow as pa
        import pyarrow.compute as pc
        from migrator.lancedb import migration, recreate_table

        TAGS = pa.field("tags", pa.list_(pa.string()))

        def add_tags(batch):  # rev + 1 shows a transform that ran twice
            batch = batch.set_column(batch.schema.get_field_index("rev"), "rev", pc.add(batch.column("rev"), 1))
            return batch.append_column(TAGS, pa.array([[]] * batch.num_rows, TAGS.type))

        @migration(table="memos", version=2, description="add tags")
        def tags(db):
            recreate_table(db, "memos", schema=db.open_table("memos").schema.append(TAGS), transform=add_tags,
                           batch_size=500)
    ''',
}


@dataclass
class Prepared:
    db: Path
    migrations: Path
    duration: float       # seconds from the child's "ready" to its exit, unkilled (the kill window)




@dataclass(frozen=True)
class Kill:
    """When to SIGKILL the child: ``delay`` s after it printed a line containing ``after`` ("ready": the start)."""

    after: str
    delay: float

    def __str__(self) -> str:
        return f"{self.after!r}+{self.delay * 1000:.0f}ms"


def run_child(db: Path | str, migrations: Path, kill: Kill | None,
              storage_options: dict[str, str] | None = None, rollback_to: str = "") -> tuple[list[str], bool, float]:
    """Start the child and kill it as told. Returns its lines, whether it was killed, seconds since "ready"."""
    extra = [json.dumps(storage_options)] if storage_options else []
    env = {**os.environ, "CRASH_ROLLBACK": rollback_to}
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / "crash_child.py"), str(db), str(migrations), *extra],
                            env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
    assert proc.stdout is not None
    lines = [proc.stdout.readline().strip()]
    assert lines == ["ready"], lines
    ready = time.monotonic()
    killed = False
    if kill is not None:
        line = lines[0]
        while kill.after not in line:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
        else:
            time.sleep(kill.delay)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed = True
    out, _ = proc.communicate(timeout=120)
    elapsed = time.monotonic() - ready
    lines += out.splitlines()
    if killed:
        lines.append(f"-- killed ({kill}) --")
    return lines, killed, elapsed


def prepare(root: Path, files: dict[str, str], to: int | None, rollback_to: str = "") -> Prepared:
    migrations = write_files(root / "migrations", files)
    db = root / "base"
    if to is not None:
        upgrade(backend(db, migrations), to=to)
    calibration = root / "calibration"
    if db.exists():
        shutil.copytree(db, calibration)
    lines, _, duration = run_child(calibration, migrations, None, rollback_to=rollback_to)
    assert lines[-1] == "done", lines
    return Prepared(db, migrations, duration)


@pytest.fixture(scope="module")
def memos_v1(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    return prepare(tmp_path_factory.mktemp("crash-memos"), MEMOS, to=1)


@pytest.fixture(scope="module")
def memos_v2(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    return prepare(tmp_path_factory.mktemp("crash-rollback"), MEMOS, to=2, rollback_to="memos:0")


@pytest.fixture(scope="module")
def fresh_demo(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    return prepare(tmp_path_factory.mktemp("crash-demo"), {p.name: p.read_text() for p in DEMO.glob("*.py")},
                   to=None)


def trial(prepared: Prepared, tmp_path: Path, kill: Kill, rollback_to: str = "") -> tuple[Path, list[str], bool]:
    db = tmp_path / "db"
    if prepared.db.exists():
        shutil.copytree(prepared.db, db)
    lines, killed, _ = run_child(db, prepared.migrations, kill, rollback_to=rollback_to)
    return db, lines, killed


# The windows of a recreation: reading/writing, right after the data commit, during the vector index
# rebuild, and after it (stamp + bookkeeping). Delays are small: the rewrite of 6,000 rows takes ~10 ms.
RECREATION_WINDOWS = ("rewriting", "wrote", "rebuilding IVF_PQ", "built in")


def random_kills(seed: int, count: int, windows: tuple[str, ...], spread: float) -> list[Kill]:
    rng = random.Random(seed)
    kills = [Kill(windows[i % len(windows)], rng.uniform(0.0, 0.02)) for i in range(count // 2)]
    kills += [Kill("ready", rng.uniform(0.0, spread)) for _ in range(count - len(kills))]
    return kills


def check_memos(db_path: Path, prepared: Prepared, lines: list[str]) -> None:
    db = lancedb.connect(str(db_path))
    table = db.open_table("memos")  # opens
    assert table.count_rows() == ROWS, lines  # has all its rows
    data = table.to_arrow()
    stamp = table_stamp(db, "memos")
    if "tags" in table.schema.names:  # new version, stamped by the same commit
        assert stamp == 2, lines
        assert pc.all(pc.equal(data.column("rev"), 1)).as_py(), lines
    else:  # old version
        assert stamp == 1, lines
        assert pc.all(pc.equal(data.column("rev"), 0)).as_py(), lines
    b = backend(db_path, prepared.migrations)
    recorded = by_line(b.applied())["memos"]
    assert recorded in ([1], [1, 2]) and max(recorded) <= (stamp or 0), lines  # bookkeeping never ahead
    assert seed_view(db_path).get("memos", 0) <= (stamp or 0), lines  # nor the seed-shaped row
    rerun: list[str] = []
    upgrade(b, report=rerun.append)  # finishes the job
    assert by_line(b.applied()) == {"memos": [1, 2]}, rerun
    assert assert_seed_view_true(db_path) == {"memos": 2}, rerun
    table = db.open_table("memos")
    assert table.count_rows() == ROWS and table_stamp(db, "memos") == 2
    assert pc.all(pc.equal(table.to_arrow().column("rev"), 1)).as_py(), rerun  # the transform ran once
    assert index_names(table) == {"id_idx", "category_idx", "vector_idx"}, rerun
    assert table.index_stats("vector_idx").distance_type == "cosine"
    assert upgrade(b) == []


def check_rollback(db_path: Path, prepared: Prepared, lines: list[str]) -> None:
    """After a rollback of memos to 0 was killed: each step undone whole or not at all; the next run finishes."""
    db = lancedb.connect(str(db_path))
    b = backend(db_path, prepared.migrations)
    recorded = by_line(b.applied()).get("memos", [])
    stamp = table_stamp(db, "memos")
    assert recorded == list(range(1, (stamp or 0) + 1)), (recorded, stamp, lines)  # the log agrees with the data
    if stamp:
        table = db.open_table("memos")
        assert table.count_rows() == ROWS, lines
        assert ("tags" in table.schema.names) == (stamp == 2), lines
        assert pc.all(pc.equal(table.to_arrow().column("rev"), stamp - 1)).as_py(), lines
    again: list[str] = []
    rollback(b, "memos", 0, report=again.append)  # finishes the job
    assert "memos" not in by_line(b.applied()) and "memos" not in db.list_tables().tables, again
    assert assert_seed_view_true(db_path).get("memos", 0) == 0, again
    upgrade(b)
    table = db.open_table("memos")
    assert by_line(b.applied())["memos"] == [1, 2] and table.count_rows() == ROWS
    assert assert_seed_view_true(db_path) == {"memos": 2}
    assert pc.all(pc.equal(table.to_arrow().column("rev"), 1)).as_py()


def check_demo(db_path: Path | str, prepared: Prepared, lines: list[str],
               storage_options: dict[str, str] | None = None) -> None:
    b = backend(db_path, prepared.migrations, storage_options=storage_options)
    exists = isinstance(db_path, str) or db_path.exists()  # connecting would create a local folder
    db = lancedb.connect(str(db_path), storage_options=storage_options)
    applied = by_line(b.applied()) if exists else {}
    for name in ("users", "notebooks", "memos", "tags", "attachments", "chunks", "conversations"):
        recorded = applied.get(name, [])
        stamp = table_stamp(db, name) if exists else None
        assert max(recorded, default=0) <= (stamp or 0), (name, lines)  # bookkeeping never ahead of the data
    # A kill during the bookkeeping table's creation can leave its folder listed (on S3: objects under its prefix)
    # with no version to open yet; the check reads the table only when it opens (the re-run below must then
    # create it as if it were absent).
    if exists and open_table(db, "table_migrations") is not None:
        view = seed_view(db_path, storage_options)
        assert all(v <= (table_stamp(db, t) or 0) for t, v in view.items()), (view, lines)  # the row neither
    upgrade(b)
    assert assert_seed_view_true(db_path, storage_options) == {
        "users": 1, "notebooks": 1, "memos": 2, "tags": 1, "attachments": 1, "chunks": 1, "conversations": 1}
    assert by_line(b.applied()) == {"users": [1], "notebooks": [1], "memos": [1, 2], "tags": [1],
                                    "attachments": [1], "chunks": [1], "conversations": [1]}
    memos: Any = db.open_table("memos")
    assert "tags" in memos.schema.names and table_stamp(db, "memos") == 2
    assert {"id_idx", "user_id_idx"} <= index_names(memos)


@pytest.mark.parametrize("kill", [Kill("ready", 0.0), Kill("restored", 0.0), Kill("ready", 0.05)], ids=str)
def test_kill_during_a_rollback(memos_v2: Prepared, tmp_path: Path, kill: Kill) -> None:
    db, lines, _ = trial(memos_v2, tmp_path, kill, rollback_to="memos:0")
    check_rollback(db, memos_v2, lines)


@pytest.fixture(scope="module")
def s3_demo(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[S3Bucket, Prepared]:
    bucket = new_bucket(s3_endpoint)
    root = tmp_path_factory.mktemp("crash-s3")
    migrations = write_files(root / "migrations", {p.name: p.read_text() for p in DEMO.glob("*.py")})
    lines, _, duration = run_child(bucket.uri("calibration"), migrations, None, bucket.storage_options)
    assert lines[-1] == "done", lines
    return bucket, Prepared(root / "unused", migrations, duration)


def s3_trial(s3_demo: tuple[S3Bucket, Prepared], kill: Kill) -> bool:
    """One kill on a fresh prefix; True if the child was killed before it finished."""
    bucket, prepared = s3_demo
    uri = bucket.uri(f"trial-{uuid.uuid4().hex[:10]}")
    lines, killed, _ = run_child(uri, prepared.migrations, kill, bucket.storage_options)
    check_demo(uri, prepared, lines, bucket.storage_options)
    return killed


@pytest.mark.parametrize("kill", [Kill("rewriting", 0.004), Kill("wrote", 0.0), Kill("rebuilding IVF_PQ", 0.05)],
                         ids=str)
def test_kill_during_recreation(memos_v1: Prepared, tmp_path: Path, kill: Kill) -> None:
    db, lines, _ = trial(memos_v1, tmp_path, kill)
    check_memos(db, memos_v1, lines)


@pytest.mark.parametrize("kill", [Kill("building BTREE index id_idx on id", 0.0), Kill("ready", 0.15)], ids=str)
def test_kill_during_a_fresh_run(fresh_demo: Prepared, tmp_path: Path, kill: Kill) -> None:
    db, lines, _ = trial(fresh_demo, tmp_path, kill)
    check_demo(db, fresh_demo, lines)


@pytest.mark.parametrize("kill", [Kill("building BTREE index id_idx on id", 0.0), Kill("ready", 0.4)], ids=str)
def test_kill_during_a_fresh_run_on_s3(s3_demo: tuple[S3Bucket, Prepared], kill: Kill) -> None:
    assert s3_trial(s3_demo, kill)


@pytest.mark.crash
@pytest.mark.parametrize("kill", random_kills(100, 40, RECREATION_WINDOWS, 0.6), ids=str)
def test_kill_during_recreation_many(memos_v1: Prepared, tmp_path: Path, kill: Kill) -> None:
    db, lines, _ = trial(memos_v1, tmp_path, kill)
    check_memos(db, memos_v1, lines)


@pytest.mark.crash
@pytest.mark.parametrize("kill", random_kills(200, 16, ("building", "deferred", "rewriting"), 0.5), ids=str)
def test_kill_during_a_fresh_run_many(fresh_demo: Prepared, tmp_path: Path, kill: Kill) -> None:
    db, lines, _ = trial(fresh_demo, tmp_path, kill)
    check_demo(db, fresh_demo, lines)


@pytest.mark.crash
@pytest.mark.parametrize("kill", random_kills(300, 24, ("building", "deferred", "rewriting", "wrote"), 1.0), ids=str)
def test_kill_during_a_fresh_run_on_s3_many(s3_demo: tuple[S3Bucket, Prepared], kill: Kill) -> None:
    s3_trial(s3_demo, kill)


@pytest.mark.crash
@pytest.mark.parametrize("kill", random_kills(400, 30, ("restored",), 0.3), ids=str)
def test_kill_during_a_rollback_many(memos_v2: Prepared, tmp_path: Path, kill: Kill) -> None:
    db, lines, _ = trial(memos_v2, tmp_path, kill, rollback_to="memos:0")
    check_rollback(db, memos_v2, lines)
