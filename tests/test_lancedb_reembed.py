"""reembed: a vector column computed again with a new model, resumable, swapped in with one stamped commit.

The kill -9 trials start a real child process that runs the migrations (tests/lance_scripts/crash_child.py),
kill it at a random moment, check that the table is at the old or the new version with a stamp that agrees,
re-run, and count the rows the embedding function computed across both runs (REEMBED_COUNT_FILE).
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import lancedb
import numpy as np
import pyarrow as pa
import pytest
from lance_scripts.reembed_lib import OLD_DIM, doc_rows, embedded_rows, embedder, expected
from lance_scripts.testlib import backend, by_line, index_names, upgrade, write_files
from test_lancedb_crash import Kill, run_child

from migrator.backends.lancedb.common import META_INDICES, metadata_of
from migrator.errors import UsageError
from migrator.lancedb import ConcurrentWriteError, Index, create_index, recreate_table, reembed, table_stamp

pytestmark = pytest.mark.lancedb

SCRIPTS = Path(__file__).resolve().parent / "lance_scripts"
NEW_DIM = 32
VECTOR_INDEX = Index("vector", kind="IVF_PQ", metric="cosine", num_partitions=4, num_sub_vectors=8)


def make_docs(db: Any, rows: int = 3000, parts: int = 3, dim: int = OLD_DIM) -> Any:
    """Table docs in ``parts`` fragments, with a BTREE on id, a BITMAP on category and an IVF_PQ on vector."""
    step = rows // parts
    table = db.create_table("docs", data=doc_rows(step, 0, dim))
    for first in range(step, rows, step):
        table.add(doc_rows(min(step, rows - first), first, dim))
    create_index(db, "docs", Index("id"))
    create_index(db, "docs", Index("category", kind="BITMAP"))
    create_index(db, "docs", Index("vector", kind="IVF_PQ", metric="l2", num_partitions=2, num_sub_vectors=4))
    return db.open_table("docs")


@pytest.fixture
def db(tmp_path: Path) -> Any:
    return lancedb.connect(str(tmp_path / "db"))


def by_id(table: Any) -> pa.Table:
    data = table.to_arrow()
    return data.take(np.argsort(data.column("id").to_numpy()))


def assert_embedded(table: Any, dim: int, model: str = "m2") -> None:
    """Every row's vector is embed(text) and its tag is ``model``."""
    data = by_id(table)
    vectors = np.stack(data.column("vector").to_numpy(zero_copy_only=False))
    assert vectors.shape == (data.num_rows, dim)
    np.testing.assert_allclose(vectors, expected(data.column("id").to_numpy(), dim), rtol=1e-6)
    assert set(data.column("vector_model").to_pylist()) == {model}


def data_files(table: Any, names: set[str]) -> dict[int, set[str]]:
    """Per fragment, the data files that hold any of the columns ``names``."""
    dataset = table.to_lance()
    ids = {f.name(): f.id() for f in dataset.lance_schema.fields() if f.name() in names}
    out: dict[int, set[str]] = {}
    for fragment in dataset.get_fragments():
        out[fragment.fragment_id] = {d.path for d in fragment.metadata.files
                                     if set(d.fields) & set(ids.values())}
    return out


def test_reembed_gives_what_a_recreation_with_the_same_embedding_function_gives(tmp_path: Path) -> None:
    a = lancedb.connect(str(tmp_path / "a"))
    b = lancedb.connect(str(tmp_path / "b"))
    make_docs(a)
    make_docs(b)
    embed = embedder(NEW_DIM)
    reembed(a, "docs", embed=embed, model="m2", dim=NEW_DIM, batch_size=400)

    def transform(batch: pa.RecordBatch) -> pa.RecordBatch:
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(embed(batch).reshape(-1)), NEW_DIM)
        batch = batch.drop_columns(["vector"])
        return batch.append_column("vector", vectors).append_column(
            "vector_model", pa.array(["m2"] * batch.num_rows))

    recreate_table(b, "docs", transform=transform)
    left, right = by_id(a.open_table("docs")), by_id(b.open_table("docs"))
    assert left.schema.names == right.schema.names == ["id", "text", "category", "vector", "vector_model"]
    assert left.equals(right.cast(left.schema))


def test_other_columns_keep_their_data_files_and_scalar_indices(db: Any) -> None:
    table = make_docs(db)
    before_files = data_files(table, {"id", "text", "category"})
    before_indices = {i.name: i.index_uuid for i in table.list_indices() if i.name != "vector_idx"}
    reembed(db, "docs", embed=embedder(NEW_DIM), model="m2", dim=NEW_DIM)
    table = db.open_table("docs")
    assert data_files(table, {"id", "text", "category"}) == before_files
    after = {i.name: i.index_uuid for i in table.list_indices()}
    assert {k: after.get(k) for k in before_indices} == before_indices
    stats = table.index_stats("id_idx")
    assert stats is not None and stats.num_unindexed_rows == 0


def test_every_row_gets_the_model_tag_and_a_search_can_filter_by_it(db: Any) -> None:
    make_docs(db)
    reembed(db, "docs", embed=embedder(NEW_DIM), model="minilm-v2", dim=NEW_DIM)
    table = db.open_table("docs")
    assert_embedded(table, NEW_DIM, model="minilm-v2")
    table.add(doc_rows(5, 90_000, NEW_DIM))  # an app row without a tag
    query = expected(np.array([90_001]), NEW_DIM)[0]
    hits = table.search(query).where("vector_model = 'minilm-v2'", prefilter=True).limit(3).to_list()
    assert hits and all(h["vector_model"] == "minilm-v2" for h in hits)
    assert json.loads(metadata_of(table.schema)["migrator.embedding.vector"])["model"] == "minilm-v2"


def test_the_vector_index_is_built_with_its_declared_parameters_and_recorded(db: Any) -> None:
    make_docs(db)
    lines: list[str] = []
    result = reembed(db, "docs", embed=embedder(NEW_DIM), model="m2", dim=NEW_DIM, index=VECTOR_INDEX,
                     report=lines.append)
    table = db.open_table("docs")
    stats = table.index_stats("vector_idx")
    assert stats is not None and stats.distance_type == "cosine" and stats.num_indexed_rows == 3000
    info = next(i for i in table.list_indices() if i.name == "vector_idx")
    assert info.index_details["compression"]["num_sub_vectors"] == 8
    recorded = json.loads(metadata_of(table.schema)[META_INDICES])
    assert {"column": "vector", "kind": "IVF_PQ", "name": "vector_idx", "metric": "cosine", "num_partitions": 4,
            "num_sub_vectors": 8} in recorded
    assert result.indices_built == ("vector_idx",)
    assert any(line.startswith("docs: vector_idx built in") for line in lines), lines


def test_without_an_index_the_old_vector_index_is_rebuilt_with_its_parameters(db: Any) -> None:
    make_docs(db)
    reembed(db, "docs", embed=embedder(NEW_DIM), model="m2", dim=NEW_DIM)
    table = db.open_table("docs")
    assert index_names(table) == {"id_idx", "category_idx", "vector_idx"}
    info = next(i for i in table.list_indices() if i.name == "vector_idx")
    assert info.index_details["compression"]["num_sub_vectors"] == 4
    assert table.index_stats("vector_idx").distance_type == "l2"


def test_a_384_to_768_dimension_change(db: Any) -> None:
    make_docs(db, rows=600, parts=2, dim=384)
    result = reembed(db, "docs", embed=embedder(768), model="big", dim=768, batch_size=128,
                     index=Index("vector", kind="IVF_PQ", num_partitions=2, num_sub_vectors=16))
    table = db.open_table("docs")
    assert table.schema.field("vector").type == pa.list_(pa.float32(), 768)
    assert_embedded(table, 768, model="big")
    assert result.rows == result.rows_embedded == 600


def test_progress_reports_rows_rate_and_eta_then_the_index_build_time(db: Any,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import migrator.progress as module

    monkeypatch.setattr(module, "TICK_S", 0.0)
    make_docs(db)
    lines: list[str] = []
    reembed(db, "docs", embed=embedder(NEW_DIM), model="m2", dim=NEW_DIM, batch_size=500, index=VECTOR_INDEX,
            report=lines.append)
    progress = [line for line in lines if line.startswith("docs: embedded ") and " of 3,000 rows" in line]
    assert any("rows/s, ETA " in line for line in progress), lines
    assert progress[-1].startswith("docs: embedded 3,000 of 3,000 rows ("), lines
    assert lines.index(progress[-1]) < next(i for i, line in enumerate(lines) if "built in" in line)


def test_an_unknown_engine_is_a_usage_error_naming_it(db: Any) -> None:
    make_docs(db, rows=300, parts=1)
    with pytest.raises(UsageError, match=r"reembed\('docs'\): unknown engine 'spark' \(known: local, ray\)"):
        reembed(db, "docs", embed=embedder(NEW_DIM), model="m2", dim=NEW_DIM, engine="spark")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"model": ""}, "model must be a non-empty string"),
    ({"dim": 0}, "dim must be a positive integer"),
    ({"source": "text"}, "source must be a non-empty list"),
    ({"source": ["body"]}, "source column 'body' does not exist"),
    ({"index": Index("id")}, "index must be a vector index on 'vector'"),
    ({"checkpoint": "row"}, "checkpoint must be one of 'auto', 'batch', 'fragment'"),
])
def test_bad_arguments_are_one_line_usage_errors_and_change_nothing(db: Any, kwargs: dict[str, Any],
                                                                      message: str) -> None:
    table = make_docs(db, rows=300, parts=1)
    version = table.version
    arguments: dict[str, Any] = {"embed": embedder(NEW_DIM), "model": "m2", "dim": NEW_DIM, **kwargs}
    with pytest.raises(UsageError, match=message):
        reembed(db, "docs", **arguments)
    assert db.open_table("docs").version == version


def test_an_embedding_of_the_wrong_shape_fails_naming_the_table_and_changes_nothing(db: Any) -> None:
    table = make_docs(db, rows=300, parts=1)
    version = table.version
    with pytest.raises(RuntimeError, match=r"docs: computing the new vector with m2 failed: .*shape \(300, 16\)"):
        reembed(db, "docs", embed=embedder(16), model="m2", dim=NEW_DIM, batch_size=300)
    table = db.open_table("docs")
    assert table.version == version and table.schema.field("vector").type == pa.list_(pa.float32(), OLD_DIM)


def test_a_second_reembed_of_a_reembedded_table_works(db: Any) -> None:
    make_docs(db, rows=600, parts=2)
    reembed(db, "docs", embed=embedder(NEW_DIM), model="m2", dim=NEW_DIM)
    reembed(db, "docs", embed=embedder(24), model="m3", dim=24, index=Index("vector", kind="IVF_FLAT",
                                                                             num_partitions=2))
    table = db.open_table("docs")
    assert table.schema.names == ["id", "text", "category", "vector", "vector_model"]
    assert_embedded(table, 24, model="m3")


# -- other writers -----------------------------------------------------------------------------------------------


def test_rows_appended_during_the_embedding_and_before_the_swap_are_embedded_too(tmp_path: Path) -> None:
    uri = str(tmp_path / "db")
    db = lancedb.connect(uri)
    make_docs(db, rows=2000, parts=2)
    app = lancedb.connect(uri).open_table("docs")  # the application's own handle, opened before
    embed = embedder(NEW_DIM)
    calls = {"n": 0}

    def embed_and_race(batch: pa.RecordBatch) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:  # during add_columns: Lance refuses its commit, it runs again
            app.add(doc_rows(10, 50_000))
        return embed(batch)

    def report(line: str) -> None:
        if line.startswith("docs: embedded 2,010 of"):  # add_columns committed, the swap not yet
            app.add(doc_rows(7, 60_000))
        if line == "docs: embedded 7 rows appended during the embedding":
            app.add(doc_rows(3, 70_000))

    result = reembed(db, "docs", embed=embed_and_race, model="m2", dim=NEW_DIM, batch_size=500, report=report)
    table = db.open_table("docs")
    ids = table.to_arrow().column("id").to_pylist()
    assert len(ids) == len(set(ids)) == 2020
    assert_embedded(table, NEW_DIM)
    assert result.embed_attempts == 2 and result.rows_caught_up == 10


def test_a_live_writer_process_appending_throughout_loses_nothing(tmp_path: Path) -> None:
    """A real process appends every 50 ms. reembed either swaps with every row embedded, or (when the appends
    keep refusing its column commit: a loaded machine) gives up with nothing swapped; no row is lost either way."""
    uri = str(tmp_path / "db")
    db = lancedb.connect(uri)
    make_docs(db, rows=6000, parts=3)
    stop = tmp_path / "stop"
    writer = subprocess.Popen([sys.executable, str(SCRIPTS / "reembed_writer.py"), uri, "docs", "100000", str(stop)],
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
    result = None
    try:
        result = reembed(db, "docs", embed=embedder(NEW_DIM), model="m2", dim=NEW_DIM, batch_size=200)
    except ConcurrentWriteError as exc:
        assert "nothing was swapped" in str(exc)
    finally:
        stop.touch()
        out, _ = writer.communicate(timeout=120)
    committed = [line.split() for line in out.splitlines() if line.startswith("committed")]
    assert committed, out
    table = db.open_table("docs")
    data = by_id(table)
    ids = data.column("id").to_pylist()
    assert len(ids) == len(set(ids))
    written = {int(first) + k for _, first, count, _ in committed for k in range(int(count))}
    assert written <= set(ids) and len(ids) == 6000 + len(written)
    if result is None:  # refused: the old version, untouched
        assert table.schema.field("vector").type == pa.list_(pa.float32(), OLD_DIM)
        assert "vector_model" not in table.schema.names
        return
    before = {int(first) + k for _, first, count, version in committed if int(version) < result.data_version
              for k in range(int(count))}
    tagged = data.filter(pa.compute.equal(data.column("vector_model"), "m2"))
    assert set(range(6000)) | before <= set(tagged.column("id").to_pylist())  # every row from before the swap
    vectors = np.stack(tagged.column("vector").to_numpy(zero_copy_only=False))
    np.testing.assert_allclose(vectors, expected(tagged.column("id").to_numpy(), NEW_DIM), rtol=1e-6)


# -- resumability -------------------------------------------------------------------------------------------------


def test_a_failed_run_resumes_without_embedding_its_finished_batches_again(db: Any, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    counter = tmp_path / "count"
    monkeypatch.setenv("REEMBED_COUNT_FILE", str(counter))
    make_docs(db, rows=3000, parts=3)
    embed = embedder(NEW_DIM)
    calls = {"n": 0}

    def failing(batch: pa.RecordBatch) -> Any:
        calls["n"] += 1
        if calls["n"] == 8:
            raise ConnectionError("embedding service went away")
        return embed(batch)

    with pytest.raises(RuntimeError, match="embedding service went away"):
        reembed(db, "docs", embed=failing, model="m2", dim=NEW_DIM, batch_size=250)
    assert embedded_rows(str(counter)) == 7 * 250
    result = reembed(db, "docs", embed=embed, model="m2", dim=NEW_DIM, batch_size=250)
    assert embedded_rows(str(counter)) == 3000
    assert result.rows_embedded == 3000 - 7 * 250 and result.rows_resumed == 7 * 250
    assert_embedded(db.open_table("docs"), NEW_DIM)
    assert not list((tmp_path / ".migrator-reembed").glob("*.sqlite"))  # removed after the swap


def test_a_checkpoint_of_a_fragment_that_changed_since_is_not_used(db: Any, tmp_path: Path) -> None:
    make_docs(db, rows=2000, parts=2)
    embed = embedder(NEW_DIM)
    calls = {"n": 0}

    def failing(batch: pa.RecordBatch) -> Any:
        calls["n"] += 1
        if calls["n"] == 6:
            raise ConnectionError("stop")
        return embed(batch)

    with pytest.raises(RuntimeError):
        reembed(db, "docs", embed=failing, model="m2", dim=NEW_DIM, batch_size=200)
    table = db.open_table("docs")
    table.delete("id < 100")  # the first fragment gets a deletion file: its checkpoint entries are stale
    result = reembed(db, "docs", embed=embed, model="m2", dim=NEW_DIM, batch_size=200)
    table = db.open_table("docs")
    assert table.count_rows() == 1900 and result.rows_resumed == 0
    assert_embedded(table, NEW_DIM)


def one_table(db: Any, rows: int, parts: int, dim: int = OLD_DIM) -> Any:
    """Table docs in ``parts`` equal fragments, no index (what the tests below measure is the data path)."""
    step = rows // parts
    table = db.create_table("docs", data=doc_rows(step, 0, dim))
    for first in range(step, rows, step):
        table.add(doc_rows(min(step, rows - first), first, dim))
    assert len(table.to_lance().get_fragments()) == parts
    return table


def failing_after(calls: int, dim: int = NEW_DIM) -> Any:
    """An embedding function whose call number ``calls`` fails (the earlier ones finish their batches)."""
    embed = embedder(dim)
    seen = {"n": 0}

    def failing(batch: pa.RecordBatch) -> Any:
        seen["n"] += 1
        if seen["n"] == calls:
            raise ConnectionError("embedding service went away")
        return embed(batch)

    return failing


def wchar() -> int:
    with open("/proc/self/io", encoding="ascii") as f:
        return next(int(line.split(":")[1]) for line in f if line.startswith("wchar:"))


def new_column_bytes(table: Any) -> int:
    dataset = table.to_lance()
    ids = {f.id() for f in dataset.lance_schema.fields() if f.name() in ("vector", "vector_model")}
    return sum(int(d.file_size_bytes) for fragment in dataset.get_fragments() for d in fragment.metadata.files
               if set(d.fields) & ids)


def test_the_batch_checkpoint_writes_the_new_vectors_about_twice_not_four_times(db: Any) -> None:
    one_table(db, rows=4000, parts=1)
    before = wchar()
    reembed(db, "docs", embed=embedder(768), model="m2", dim=768, batch_size=250, checkpoint="batch")
    written = wchar() - before
    floor = new_column_bytes(db.open_table("docs"))
    assert floor > 4000 * 768 * 4
    # once to the checkpoint (an Arrow IPC file per batch), once to the data file; Lance's pickles in SQLite: ~4x
    assert written <= 2.3 * floor, written / floor
    assert_embedded(db.open_table("docs"), 768)


@pytest.mark.parametrize(("parts", "granularity", "resumed"), [(1, "batch", 700), (3, "batch", 700),
                                                               (10, "fragment", 600)])
def test_auto_keeps_fragments_when_none_holds_over_a_fifth_of_the_rows_else_batches(
        db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parts: int, granularity: str,
        resumed: int) -> None:
    counter = tmp_path / "count"
    monkeypatch.setenv("REEMBED_COUNT_FILE", str(counter))
    one_table(db, rows=3000, parts=parts)
    lines: list[str] = []
    with pytest.raises(RuntimeError, match="embedding service went away"):  # 7 batches of 100 rows finished
        reembed(db, "docs", embed=failing_after(8), model="m2", dim=NEW_DIM, batch_size=100, report=lines.append)
    assert any(f"checkpoint per {granularity}" in line for line in lines), lines
    batches = list((tmp_path / "db" / ".migrator-reembed").glob("*.batches/*.arrow"))
    assert len(batches) == (0 if granularity == "fragment" else 7 - 6 * (parts == 10))
    result = reembed(db, "docs", embed=embedder(NEW_DIM), model="m2", dim=NEW_DIM, batch_size=100)
    assert result.rows_resumed == resumed and embedded_rows(str(counter)) == 700 + 3000 - resumed
    assert_embedded(db.open_table("docs"), NEW_DIM)
    assert not list((tmp_path / "db" / ".migrator-reembed").iterdir())  # checkpoint and batch files removed


def test_a_torn_batch_file_and_a_half_written_one_are_computed_again(db: Any, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    counter = tmp_path / "count"
    monkeypatch.setenv("REEMBED_COUNT_FILE", str(counter))
    one_table(db, rows=2000, parts=1)
    with pytest.raises(RuntimeError):
        reembed(db, "docs", embed=failing_after(6), model="m2", dim=NEW_DIM, batch_size=200)
    folder = next((tmp_path / "db" / ".migrator-reembed").glob("*.batches"))
    files = sorted(folder.glob("*.arrow"))
    assert [f.name for f in files] == [f"0-{i}.arrow" for i in range(5)]
    files[2].write_bytes(files[2].read_bytes()[:300])  # torn (a disk fault, or someone else's file)
    (folder / "0-5.arrow.999.tmp").write_bytes(b"ARROW1 half")  # a write killed before its rename
    result = reembed(db, "docs", embed=embedder(NEW_DIM), model="m2", dim=NEW_DIM, batch_size=200)
    assert_embedded(db.open_table("docs"), NEW_DIM)
    assert result.rows_embedded == 2000 - 4 * 200 and embedded_rows(str(counter)) == 1000 + 1200


def test_a_rerun_with_another_batch_size_does_not_take_the_old_batches(db: Any, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    counter = tmp_path / "count"
    monkeypatch.setenv("REEMBED_COUNT_FILE", str(counter))
    one_table(db, rows=2000, parts=1)
    with pytest.raises(RuntimeError):
        reembed(db, "docs", embed=failing_after(6), model="m2", dim=NEW_DIM, batch_size=200)
    result = reembed(db, "docs", embed=embedder(NEW_DIM), model="m2", dim=NEW_DIM, batch_size=300)
    assert result.rows_resumed == 0 and result.rows_embedded == 2000  # batch i of 300 rows is not batch i of 200
    assert_embedded(db.open_table("docs"), NEW_DIM)


def test_a_checkpoint_left_after_the_swap_is_removed_by_the_next_reembed_of_the_table(db: Any,
                                                                                      tmp_path: Path) -> None:
    one_table(db, rows=1000, parts=1)

    def stop_after_the_swap(line: str) -> None:
        if line.startswith("docs: swapped"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        reembed(db, "docs", embed=embedder(NEW_DIM), model="m2", dim=NEW_DIM, batch_size=200,
                report=stop_after_the_swap)
    folder = tmp_path / "db" / ".migrator-reembed"
    left = list(folder.glob("*.sqlite"))
    assert len(left) == 1
    lines: list[str] = []
    reembed(db, "docs", embed=embedder(8), model="m3", dim=8, batch_size=200, report=lines.append)
    assert not left[0].exists() and not list(folder.iterdir()), lines
    assert any(f"removed the checkpoint {left[0].name}" in line for line in lines), lines


def test_a_checkpoint_of_a_reembed_still_to_finish_is_kept_by_the_next_reembed(db: Any, tmp_path: Path) -> None:
    one_table(db, rows=1000, parts=1)
    with pytest.raises(RuntimeError):
        reembed(db, "docs", embed=failing_after(3), model="m2", dim=NEW_DIM, batch_size=200)
    folder = tmp_path / "db" / ".migrator-reembed"
    unfinished = list(folder.glob("*.sqlite"))
    reembed(db, "docs", embed=embedder(8), model="m3", dim=8, batch_size=200)  # another model meanwhile
    assert len(unfinished) == 1 and unfinished[0].exists()


MIGRATIONS = {
    "001_docs.py": '''
        from migrator.lancedb import Index, migration
        from lance_scripts.reembed_lib import doc_rows

        @migration(table="docs", version=1, description="create docs", indices=[
            Index("id"), Index("vector", kind="IVF_PQ", metric="cosine", num_partitions=4, num_sub_vectors=4)])
        def create(db):
            table = db.create_table("docs", data=doc_rows(2000, 0))
            table.add(doc_rows(2000, 2000))
            table.add(doc_rows(2000, 4000))
    ''',
    "002_model.py": f'''
        from migrator.lancedb import Index, migration, reembed
        from lance_scripts.reembed_lib import embedder, report

        @migration(table="docs", version=2, description="switch to m2")
        def switch(db):
            reembed(db, "docs", embed=embedder({NEW_DIM}), model="m2", dim={NEW_DIM}, batch_size=200, report=report,
                    index=Index("vector", kind="IVF_PQ", metric="cosine", num_partitions=4, num_sub_vectors=8))
    ''',
}
ROWS = 6000


@pytest.fixture(scope="module")
def docs_v1(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("reembed-crash")
    migrations = write_files(root / "migrations", MIGRATIONS)
    upgrade(backend(root / "base", migrations), to=1)
    return root / "base", migrations


def kill_trial(docs_v1: tuple[Path, Path], tmp_path: Path, kill: Kill,
               monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[str], int]:
    base, migrations = docs_v1
    db_path = tmp_path / "db"
    shutil.copytree(base, db_path)
    counter = tmp_path / "count"
    monkeypatch.setenv("REEMBED_COUNT_FILE", str(counter))
    lines, _, _ = run_child(db_path, migrations, kill)
    db = lancedb.connect(str(db_path))
    table = db.open_table("docs")
    stamp = table_stamp(db, "docs")
    assert table.count_rows() == ROWS, lines
    if table.schema.field("vector").type == pa.list_(pa.float32(), NEW_DIM):  # the new version, stamped with it
        assert stamp == 2, lines
        assert_embedded(table, NEW_DIM)
    else:  # the old version, old stamp
        assert stamp == 1 and "vector_model" not in table.schema.names, lines
    b = backend(db_path, migrations)
    assert max(by_line(b.applied())["docs"]) <= (stamp or 0), lines
    rerun: list[str] = []
    upgrade(b, report=rerun.append)
    table = db.open_table("docs")
    assert by_line(b.applied()) == {"docs": [1, 2]} and table_stamp(db, "docs") == 2, rerun
    assert_embedded(table, NEW_DIM)
    assert index_names(table) == {"id_idx", "vector_idx"}, rerun
    stats = table.index_stats("vector_idx")
    assert stats is not None and stats.distance_type == "cosine" and stats.num_indexed_rows == ROWS
    total = embedded_rows(str(counter))
    assert total <= 1.25 * ROWS, (total, lines, rerun)
    return lines, rerun, total


WINDOWS = ("embedding 6,000", "embedded 6,000 of", "swapped", "building IVF_PQ", "built in")


def random_kills(seed: int, count: int) -> list[Kill]:
    rng = random.Random(seed)
    kills = [Kill(WINDOWS[i % len(WINDOWS)], rng.uniform(0.0, 0.02)) for i in range(count // 2)]
    kills += [Kill("embedding 6,000", rng.uniform(0.0, 1.0)) for _ in range(count - len(kills))]
    return kills


@pytest.mark.parametrize("kill", [Kill("embedding 6,000", 0.3), Kill("swapped", 0.0), Kill("built in", 0.0),
                                  *random_kills(7, 2)], ids=str)
def test_a_killed_reembed_leaves_old_or_new_with_its_stamp_and_the_rerun_embeds_little_again(
        docs_v1: tuple[Path, Path], tmp_path: Path, kill: Kill, monkeypatch: pytest.MonkeyPatch) -> None:
    kill_trial(docs_v1, tmp_path, kill, monkeypatch)


def test_a_reembed_killed_after_the_new_column_commit_is_restored_and_its_rerun_embeds_nothing_again(
        docs_v1: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REEMBED_PAUSE_AT", "embedded 6,000 of 6,000")  # the child waits there: killed in the window
    lines, rerun, total = kill_trial(docs_v1, tmp_path, Kill("embedded 6,000 of 6,000", 0.2), monkeypatch)
    assert not any(line.startswith("swapped") for line in lines), lines
    assert any("restored Lance version" in line for line in rerun), rerun
    assert total == ROWS, (total, rerun)  # the re-run took every fragment from the kept checkpoint


def test_a_checkpoint_left_by_a_kill_between_the_swap_and_its_removal_is_removed_by_the_next_run(
        docs_v1: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REEMBED_PAUSE_AT", "swapped")  # the child waits there: killed after the swap
    lines, rerun, total = kill_trial(docs_v1, tmp_path, Kill("swapped", 0.2), monkeypatch)
    assert any("swapped" in line for line in lines) and total == ROWS, (lines, rerun)
    assert any("removed" in line and "the checkpoint of a reembed interrupted after its swap" in line
               for line in rerun), rerun
    assert not list((tmp_path / "db" / ".migrator-reembed").iterdir())


@pytest.mark.crash
@pytest.mark.parametrize("kill", random_kills(1000, 30), ids=str)
def test_a_killed_reembed_many(docs_v1: tuple[Path, Path], tmp_path: Path, kill: Kill,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    kill_trial(docs_v1, tmp_path, kill, monkeypatch)



def test_on_object_storage_the_checkpoint_lives_in_a_local_cache_folder(s3_bucket: Any, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    db = lancedb.connect(s3_bucket.uri(), storage_options=s3_bucket.storage_options)
    make_docs(db, rows=1000, parts=2)
    embed = embedder(NEW_DIM)
    calls = {"n": 0}

    def failing(batch: pa.RecordBatch) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise ConnectionError("stop")
        return embed(batch)

    with pytest.raises(RuntimeError):
        reembed(db, "docs", embed=failing, model="m2", dim=NEW_DIM, batch_size=250)
    kept = list((tmp_path / "cache" / "migrator" / "reembed").glob("*/docs.*.sqlite"))
    assert len(kept) == 1
    result = reembed(db, "docs", embed=embed, model="m2", dim=NEW_DIM, batch_size=250)
    assert result.rows_resumed == 500 and result.rows_embedded == 500
    assert_embedded(db.open_table("docs"), NEW_DIM)
    assert not kept[0].exists()


def test_a_run_stopped_after_the_new_column_commit_reuses_it_and_embeds_nothing_again(db: Any, tmp_path: Path,
                                                                                      monkeypatch: pytest.MonkeyPatch
                                                                                      ) -> None:
    counter = tmp_path / "count"
    monkeypatch.setenv("REEMBED_COUNT_FILE", str(counter))
    make_docs(db, rows=1000, parts=2)

    def stop_before_the_swap(line: str) -> None:
        if line.startswith("docs: embedded 1,000 of 1,000"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        reembed(db, "docs", embed=embedder(NEW_DIM), model="m2", dim=NEW_DIM, report=stop_before_the_swap)
    table = db.open_table("docs")
    assert table.schema.field("vector").type == pa.list_(pa.float32(), OLD_DIM)  # still the old version
    db.open_table("docs").add(doc_rows(5, 80_000))  # and an app appends meanwhile
    lines: list[str] = []
    result = reembed(db, "docs", embed=embedder(NEW_DIM), model="m2", dim=NEW_DIM, report=lines.append)
    assert any("an interrupted reembed left vector__reembed_" in line for line in lines), lines
    assert result.rows_embedded == 5 and embedded_rows(str(counter)) == 1005
    assert_embedded(db.open_table("docs"), NEW_DIM)
