"""recreate_table and native evolution: rows kept, indices rebuilt, streamed, concurrent writers never lose rows."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import lance
import lancedb
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from lance_scripts.testlib import backend, by_line, index_names, memo_rows, upgrade, write_files

from migrator.backends.lancedb.common import (
    CURRENT,
    META_ATTEMPT,
    META_INDICES,
    META_SOURCE,
    META_VERSION,
    TX_ATTEMPT,
    MigrationContext,
    metadata_of,
)
from migrator.errors import MigrationFailed
from migrator.lancedb import (
    ConcurrentWriteError,
    Index,
    add_column_from_sql,
    add_columns,
    create_index,
    drop_columns,
    ensure_indices,
    make_nullable,
    recreate_table,
    rename_column,
    table_stamp,
)

pytestmark = pytest.mark.lancedb

SCRIPTS = Path(__file__).resolve().parent / "lance_scripts"
TAGS = pa.field("tags", pa.list_(pa.string()))


def add_tags(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The memos v2 transform: rev + 1 (shows a second run) and an empty tags list."""
    batch = batch.set_column(batch.schema.get_field_index("rev"), "rev", pc.add(batch.column("rev"), 1))
    return batch.append_column(TAGS, pa.array([[]] * batch.num_rows, TAGS.type))


@pytest.fixture
def db(tmp_path: Path) -> Any:
    return lancedb.connect(str(tmp_path / "db"))


@pytest.fixture
def memos(db: Any) -> Any:
    """1,000 memos with a BTREE, a BITMAP, a LABEL_LIST-free set and an IVF_PQ index with recorded parameters."""
    table = db.create_table("memos", data=memo_rows(1000))
    create_index(db, "memos", Index("id"))
    create_index(db, "memos", Index("category", kind="BITMAP"))
    create_index(db, "memos", Index("vector", kind="IVF_PQ", metric="cosine", num_partitions=4, num_sub_vectors=4))
    table.create_index("title", config=lancedb.index.FTS())  # made outside migrator: no recorded parameters
    return db.open_table("memos")


def test_recreate_keeps_rows_and_rebuilds_every_index_with_its_parameters(db: Any, memos: Any) -> None:
    before = memos.to_arrow().sort_by("id")
    lines: list[str] = []
    result = recreate_table(db, "memos", schema=memos.schema.append(TAGS), transform=add_tags, report=lines.append)
    table = db.open_table("memos")
    assert result.rows == 1000 and table.count_rows() == 1000
    after = table.to_arrow().sort_by("id")
    assert after.column("id").equals(before.column("id"))
    assert after.column("vector").equals(before.column("vector"))
    assert pc.all(pc.equal(after.column("rev"), 1)).as_py()
    assert after.column("tags").to_pylist() == [[]] * 1000
    assert index_names(table) == {"id_idx", "category_idx", "vector_idx", "title_idx"}
    stats = table.index_stats("vector_idx")
    assert (stats.index_type, stats.distance_type) == ("IVF_PQ", "cosine")
    assert table.index_stats("category_idx").index_type == "BITMAP"
    assert table.index_stats("title_idx").index_type == "FTS"
    recorded = {s["name"]: s for s in json.loads(metadata_of(table.schema)[META_INDICES])}
    assert recorded["vector_idx"]["num_partitions"] == 4 and recorded["vector_idx"]["num_sub_vectors"] == 4
    details = next(i for i in table.list_indices() if i.name == "vector_idx").index_details
    assert details["compression"]["num_sub_vectors"] == 4
    assert any("rebuilding IVF_PQ index vector_idx on vector (slow)" in line for line in lines)
    meta = metadata_of(table.schema)
    assert META_SOURCE not in meta and META_ATTEMPT not in meta  # standalone: nothing left unfinished
    assert table.search(after.column("vector")[0].values.to_numpy()).limit(3).to_arrow().num_rows == 3
    assert table.search("memo", query_type="fts").limit(3).to_arrow().num_rows == 3


def test_indices_on_dropped_columns_are_not_rebuilt(db: Any, memos: Any) -> None:
    lines: list[str] = []
    schema = pa.schema([f for f in memos.schema if f.name != "category"])
    result = recreate_table(db, "memos", schema=schema, transform=lambda b: b.drop_columns(["category"]),
                            report=lines.append)
    assert result.indices_dropped == ("category_idx",)
    assert index_names(db.open_table("memos")) == {"id_idx", "vector_idx", "title_idx"}
    assert any("category_idx is not rebuilt" in line for line in lines)


def test_an_index_migrator_cannot_rebuild_is_reported(db: Any) -> None:
    table = db.create_table("memos", data=memo_rows(100))
    table.to_lance().create_scalar_index("title", "NGRAM")
    lines: list[str] = []
    result = recreate_table(db, "memos", transform=lambda b: b.set_column(
        b.schema.get_field_index("rev"), "rev", pa.compute.add(b["rev"], 1)), report=lines.append)
    assert result.path == "overwrite"
    assert result.indices_dropped == ("title_idx",)
    assert any("title_idx (NGram on title) cannot be rebuilt" in line for line in lines)


def test_recreate_streams_batch_by_batch(db: Any) -> None:
    db.create_table("memos", data=memo_rows(2500))
    sizes: list[int] = []

    def spy(batch: pa.RecordBatch) -> pa.RecordBatch:
        sizes.append(batch.num_rows)
        return add_tags(batch)

    recreate_table(db, "memos", transform=spy, batch_size=300)  # schema taken from the transform's output
    assert sum(sizes) == 2500 and len(sizes) >= 9 and max(sizes) <= 300
    assert db.open_table("memos").schema.field("tags").type == TAGS.type


def test_a_failing_transform_commits_nothing(db: Any) -> None:
    table = db.create_table("memos", data=memo_rows(1000))
    version = table.version

    def fail_late(batch: pa.RecordBatch) -> pa.RecordBatch:
        if pc.max(batch.column("id")).as_py() >= 900:
            raise ValueError("bad row 900")
        return batch

    with pytest.raises(ValueError, match="bad row 900"):
        recreate_table(db, "memos", transform=fail_late, batch_size=100)
    assert db.open_table("memos").version == version and db.open_table("memos").count_rows() == 1000


def test_the_row_count_is_verified(db: Any) -> None:
    db.create_table("memos", data=memo_rows(100))
    version = db.open_table("memos").version
    drop_odd = lambda b: b.filter(pc.equal(pc.bit_wise_and(b.column("id"), 1), 0))  # noqa: E731
    with pytest.raises(RuntimeError, match="turned 100 rows into 50"):
        recreate_table(db, "memos", transform=drop_odd)
    assert db.open_table("memos").version == version
    result = recreate_table(db, "memos", transform=drop_odd, allow_row_count_change=True)
    assert result.rows == 50 == db.open_table("memos").count_rows()


class BlockingTransform:
    """A transform that, on its first call, waits until the test let another writer commit."""

    def __init__(self) -> None:
        self.reading = threading.Event()
        self.go_on = threading.Event()
        self.calls = 0

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        self.calls += 1
        if not self.reading.is_set():
            self.reading.set()
            assert self.go_on.wait(30), "the test never released the transform"
        return add_tags(batch)


def run_in_thread(target: Any) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def body() -> None:
        try:
            out["result"] = target()
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=body)
    thread.start()
    return thread, out


def append_from_child(uri: Path, start: int, count: int) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPTS / "append_rows.py"), str(uri), "memos", str(start),
                           str(count)], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr


def test_rows_appended_during_a_recreation_are_folded_in(tmp_path: Path, db: Any) -> None:
    db.create_table("memos", data=memo_rows(1000))
    transform = BlockingTransform()
    lines: list[str] = []
    thread, out = run_in_thread(lambda: recreate_table(db, "memos", schema=db.open_table("memos").schema.append(TAGS),
                                                       transform=transform, report=lines.append))
    assert transform.reading.wait(30)
    append_from_child(tmp_path / "db", start=5000, count=7)  # a real second writer, between read and commit
    transform.go_on.set()
    thread.join(60)
    assert "error" not in out, out.get("error")
    result = out["result"]
    assert result.attempts == 1 and result.rows_caught_up == 7  # caught up, not copied again
    table = db.open_table("memos")
    assert table.count_rows() == 1007
    ids = table.to_arrow().column("id").to_pylist()
    assert sorted(ids) == [*range(1000), *range(5000, 5007)]  # every row once
    assert pc.all(pc.equal(table.to_arrow().column("rev"), 1)).as_py()  # every row transformed exactly once
    assert "tags" in table.schema.names
    assert any("caught up with 7 row(s)" in line for line in lines)


def test_a_delete_during_the_copy_restarts_it_from_the_latest_version(tmp_path: Path, db: Any) -> None:
    db.create_table("memos", data=memo_rows(1000))
    transform = BlockingTransform()
    thread, out = run_in_thread(lambda: recreate_table(db, "memos", schema=db.open_table("memos").schema.append(TAGS),
                                                       transform=transform))
    assert transform.reading.wait(30)
    db.open_table("memos").delete("id < 10")  # a second writer in this process (another handle)
    transform.go_on.set()
    thread.join(60)
    assert "error" not in out, out.get("error")
    assert out["result"].attempts == 2
    table = db.open_table("memos")
    assert sorted(table.to_arrow().column("id").to_pylist()) == list(range(10, 1000))
    assert pc.all(pc.equal(table.to_arrow().column("rev"), 1)).as_py()


def test_without_retries_a_concurrent_delete_fails_loudly_and_commits_nothing(tmp_path: Path, db: Any) -> None:
    db.create_table("memos", data=memo_rows(1000))
    transform = BlockingTransform()
    thread, out = run_in_thread(lambda: recreate_table(db, "memos", schema=db.open_table("memos").schema.append(TAGS),
                                                       transform=transform, retries=0))
    assert transform.reading.wait(30)
    db.open_table("memos").delete("id >= 995")  # a second writer in this process (another handle)
    version = db.open_table("memos").version
    transform.go_on.set()
    thread.join(60)
    error = out.get("error")
    assert isinstance(error, ConcurrentWriteError) and error.restored
    assert "Delete" in str(error) and "nothing was committed" in str(error)
    table = db.open_table("memos")
    assert table.version == version  # as the other writer left it: migrator committed nothing
    assert table.count_rows() == 995 and "tags" not in table.schema.names


def test_concurrent_append_during_a_migration_through_the_backend(tmp_path: Path) -> None:
    """The whole path: runner-less apply, a child process appending mid-rewrite, bookkeeping consistent."""
    gate = tmp_path / "gate"
    migrations = write_files(tmp_path / "migrations", {
        "001_memos.py": '''
            from migrator.lancedb import Index, migration
            from lance_scripts.testlib import memo_rows

            @migration(table="memos", version=1, indices=[Index("id")])
            def create(db):
                db.create_table("memos", data=memo_rows(800))
        ''',
        "002_tags.py": f'''
            import os, time
            import pyarrow as pa
            from migrator.lancedb import migration, recreate_table

            TAGS = pa.field("tags", pa.list_(pa.string()))
            GATE = {str(gate)!r}

            def add_tags(batch):
                if not os.path.exists(GATE + ".reading"):
                    open(GATE + ".reading", "w").close()
                    while not os.path.exists(GATE + ".go"):
                        time.sleep(0.01)
                return batch.append_column(TAGS, pa.array([[]] * batch.num_rows, TAGS.type))

            @migration(table="memos", version=2)
            def tags(db):
                recreate_table(db, "memos", schema=db.open_table("memos").schema.append(TAGS), transform=add_tags)
        ''',
    })
    b = backend(tmp_path / "db", migrations)
    upgrade(b, to=1)
    thread, out = run_in_thread(lambda: upgrade(b))
    deadline = 30.0
    while not Path(f"{gate}.reading").exists() and deadline > 0:
        threading.Event().wait(0.02)
        deadline -= 0.02
    append_from_child(tmp_path / "db", start=10_000, count=3)
    Path(f"{gate}.go").touch()
    thread.join(60)
    assert "error" not in out, out.get("error")
    db = lancedb.connect(str(tmp_path / "db"))
    table = db.open_table("memos")
    assert table.count_rows() == 803 and "tags" in table.schema.names
    assert table_stamp(db, "memos") == 2 and by_line(b.applied()) == {"memos": [1, 2]}
    assert "id_idx" in index_names(table)


def test_a_crash_that_hid_an_append_is_caught_on_the_next_run(tmp_path: Path) -> None:
    """State after a kill between an overwrite that lost an append and its check: the next run restores, reruns."""
    migrations = write_files(tmp_path / "migrations", {
        "001_memos.py": '''
            import pyarrow as pa
            import pyarrow.compute as pc
            from migrator.lancedb import migration, recreate_table
            from lance_scripts.testlib import memo_rows

            @migration(table="memos", version=1)
            def create(db):
                db.create_table("memos", data=memo_rows(300))

            TAGS = pa.field("tags", pa.list_(pa.string()))

            def add_tags(batch):
                batch = batch.set_column(batch.schema.get_field_index("rev"), "rev", pc.add(batch.column("rev"), 1))
                return batch.append_column(TAGS, pa.array([[]] * batch.num_rows, TAGS.type))

            @migration(table="memos", version=2)
            def tags(db):
                recreate_table(db, "memos", schema=db.open_table("memos").schema.append(TAGS), transform=add_tags)
        ''',
    })
    b = backend(tmp_path / "db", migrations)
    upgrade(b, to=1)
    db = lancedb.connect(str(tmp_path / "db"))
    table = db.open_table("memos")
    dataset = table.to_lance()
    source = dataset.version
    db.open_table("memos").add(memo_rows(4, start=700))  # the append the dead run's overwrite hid
    new = dataset.schema.append(TAGS).with_metadata({META_VERSION: "2", META_SOURCE: str(source),
                                                     META_ATTEMPT: "dead-run"})
    lance.write_dataset(pa.Table.from_batches([add_tags(b) for b in dataset.to_batches()], schema=new),
                        dataset, schema=new, mode="overwrite", transaction_properties={TX_ATTEMPT: "dead-run"})
    assert db.open_table("memos").count_rows() == 300  # the 4 rows are hidden: this is the state a kill leaves
    lines: list[str] = []
    upgrade(b, report=lines.append)
    table = db.open_table("memos")
    assert table.count_rows() == 304
    assert pc.all(pc.equal(table.to_arrow().column("rev"), 1)).as_py()
    assert table_stamp(db, "memos") == 2 and by_line(b.applied()) == {"memos": [1, 2]}
    assert any("hidden rows" in line for line in lines)


def test_data_ahead_of_bookkeeping_is_finished_without_running_the_transform_again(tmp_path: Path) -> None:
    """A recreation committed (stamp v2 in the data) and the process died before indices and bookkeeping."""
    migrations = write_files(tmp_path / "migrations", {
        "001_memos.py": '''
            from migrator.lancedb import Index, migration
            from lance_scripts.testlib import memo_rows

            @migration(table="memos", version=1, indices=[Index("id"), Index("vector", kind="IVF_FLAT",
                       num_partitions=2)])
            def create(db):
                db.create_table("memos", data=memo_rows(400))

            @migration(table="memos", version=2)
            def tags(db):
                raise AssertionError("the transform must not run twice")
        ''',
    })
    b = backend(tmp_path / "db", migrations)
    upgrade(b, to=1)
    db = lancedb.connect(str(tmp_path / "db"))
    ctx = MigrationContext(table="memos", version=2, label="memos v2", report=lambda s: None, attempt="dead",
                           start_version=db.open_table("memos").version)
    token = CURRENT.set(ctx)
    try:
        recreate_table(db, "memos", schema=db.open_table("memos").schema.append(TAGS), transform=add_tags)
    finally:
        CURRENT.reset(token)
    table = db.open_table("memos")
    for name in index_names(table):  # the kill came before the index rebuild
        table.drop_index(name)
    assert table_stamp(db, "memos") == 2 and by_line(b.applied()) == {"memos": [1]}
    lines: list[str] = []
    upgrade(b, report=lines.append)
    assert by_line(b.applied()) == {"memos": [1, 2]}
    table = db.open_table("memos")
    assert index_names(table) == {"id_idx", "vector_idx"}
    assert pc.all(pc.equal(table.to_arrow().column("rev"), 1)).as_py()
    assert any("without running" in line for line in lines)
    applied = next(a for a in b.applied() if a.version == 2)
    assert applied.extra["lance_version"] == table.version


def test_a_failing_recreation_inside_a_migration_leaves_other_writers_rows(tmp_path: Path) -> None:
    migrations = write_files(tmp_path / "migrations", {
        "001_memos.py": '''
            import os, time
            from migrator.lancedb import migration, recreate_table
            from lance_scripts.testlib import memo_rows

            @migration(table="memos", version=1)
            def create(db):
                db.create_table("memos", data=memo_rows(300))

            def explode(batch):
                db = __import__("lancedb").connect(os.environ["MIGRATOR_TEST_DB"])
                db.open_table("memos").add(memo_rows(2, start=900))  # the app writes meanwhile
                raise ValueError("transform bug")

            @migration(table="memos", version=2)
            def tags(db):
                recreate_table(db, "memos", transform=explode)
        ''',
    })
    os.environ["MIGRATOR_TEST_DB"] = str(tmp_path / "db")
    try:
        b = backend(tmp_path / "db", migrations)
        upgrade(b, to=1)
        with pytest.raises(MigrationFailed) as err:
            upgrade(b)
    finally:
        del os.environ["MIGRATOR_TEST_DB"]
    assert "transform bug" in str(err.value) and "other writers" in str(err.value)
    db = lancedb.connect(str(tmp_path / "db"))
    assert db.open_table("memos").count_rows() == 302 and table_stamp(db, "memos") == 1


# -- native evolution ---------------------------------------------------------------------------------------------


def data_files(uri: Path, table: str) -> dict[str, tuple[int, int]]:
    files = glob.glob(str(uri / f"{table}.lance" / "data" / "*"))
    return {os.path.basename(p): (os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in files}


def test_adding_a_nullable_column_does_not_rewrite_data_files(tmp_path: Path, db: Any) -> None:
    db.create_table("memos", data=memo_rows(3000))
    db.open_table("memos").add(memo_rows(1000, start=3000))
    before = data_files(tmp_path / "db", "memos")
    assert len(before) == 2
    version = add_columns(db, "memos", pa.field("summary", pa.string(), nullable=False))
    assert data_files(tmp_path / "db", "memos") == before  # same files, same sizes, same mtimes
    table = db.open_table("memos")
    assert version == table.version and table.schema.field("summary").nullable
    assert table.to_arrow().column("summary").null_count == 4000


def test_evolution_helpers_keep_recorded_indices_in_step(db: Any) -> None:
    db.create_table("memos", data=memo_rows(200))
    create_index(db, "memos", Index("category", kind="BITMAP"))
    create_index(db, "memos", Index("rev"))
    add_column_from_sql(db, "memos", "id2", "id * 2")
    assert db.open_table("memos").to_arrow().column("id2").to_pylist()[:3] == [0, 2, 4]
    rename_column(db, "memos", "category", "kind")
    make_nullable(db, "memos", "title")
    drop_columns(db, "memos", ["rev"])
    table = db.open_table("memos")
    recorded = json.loads(metadata_of(table.schema)[META_INDICES])
    assert [(s["name"], s["column"]) for s in recorded] == [("category_idx", "kind")]
    result = recreate_table(db, "memos")  # nothing changes: what is left is kept, on the renamed column
    assert result.indices_kept == ("category_idx",)
    assert index_names(db.open_table("memos")) == {"category_idx"}


def test_ensure_indices_builds_a_deferred_vector_index(db: Any) -> None:
    db.create_table("memos", data=memo_rows(20))
    lines: list[str] = []
    create_index(db, "memos", Index("vector", kind="IVF_PQ", num_partitions=2, num_sub_vectors=4), lines.append)
    assert "vector_idx" not in index_names(db.open_table("memos")) and "deferred" in lines[-1]
    assert ensure_indices(db, "memos") == []
    db.open_table("memos").add(memo_rows(300, start=20))
    assert ensure_indices(db, "memos", report=lines.append) == ["vector_idx"]
    assert db.open_table("memos").index_stats("vector_idx").index_type == "IVF_PQ"
