"""Issue 16: a LanceDB schema change writes only what changed and keeps the indices it did not touch.

Each path against real LanceDB folders: ``recreate_table`` choosing the
columns path (kept index ids, bytes of the new data files, drops/renames/order
as metadata) or the overwrite (the first differing batch, results identical
to the overwrite), a real second writer appending meanwhile, and the three
authoring helpers.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import lance
import lancedb
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from lance_scripts.testlib import backend, memo_rows, upgrade, write_files

from migrator.errors import UsageError
from migrator.lancedb import (
    Index,
    add_computed_column,
    cast_column,
    create_index,
    recreate_table,
    replace_column_values,
    table_stamp,
)

pytestmark = pytest.mark.lancedb

SCRIPTS = Path(__file__).resolve().parent / "lance_scripts"
ROWS = 3000
SCORE = pa.field("score", pa.int64(), nullable=False)


@pytest.fixture
def db(tmp_path: Path) -> Any:
    return lancedb.connect(str(tmp_path / "db"))


@pytest.fixture
def memos(db: Any) -> Any:
    table = db.create_table("memos", data=memo_rows(ROWS // 2))
    table.add(memo_rows(ROWS - ROWS // 2, start=ROWS // 2))  # two fragments
    create_index(db, "memos", Index("vector", kind="IVF_PQ", num_partitions=4, num_sub_vectors=4))
    create_index(db, "memos", Index("id"))
    create_index(db, "memos", Index("title"))
    return db.open_table("memos")


def index_ids(db: Any, name: str = "memos") -> dict[str, str]:
    return {str(i["name"]): str(i["uuid"]) for i in db.open_table(name).to_lance().list_indices()}


def data_files(db: Any, name: str = "memos") -> dict[str, int]:
    folder = Path(db.open_table(name).to_lance().uri) / "data"
    return {p.name: p.stat().st_size for p in folder.glob("*.lance")}


def add_score(batch: pa.RecordBatch) -> pa.RecordBatch:
    return batch.append_column(SCORE, pc.multiply(batch.column("id"), 3))


def with_score(db: Any) -> pa.Schema:
    schema: pa.Schema = db.open_table("memos").schema
    return schema.append(SCORE)


def app_appends(uri: Path, start: int, count: int) -> None:
    """A real second writer: a child process that appends ``count`` memo rows."""
    proc = subprocess.run([sys.executable, str(SCRIPTS / "append_rows.py"), str(uri), "memos", str(start), str(count)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr


# -- recreate_table: the columns path -------------------------------------------------------------------------------


def test_adding_a_computed_column_keeps_every_index_id(db: Any, memos: Any) -> None:
    before = index_ids(db)
    result = recreate_table(db, "memos", schema=with_score(db), transform=add_score, batch_size=500)
    assert result.path == "columns" and result.columns_written == ("score",)
    assert index_ids(db) == before
    assert result.indices_rebuilt == () and set(result.indices_kept) == set(before)


def test_adding_a_computed_column_writes_only_its_bytes(db: Any, memos: Any) -> None:
    before = data_files(db)
    recreate_table(db, "memos", schema=with_score(db), transform=add_score, batch_size=500)
    new = {k: v for k, v in data_files(db).items() if k not in before}
    column_bytes = ROWS * 8  # int64, non-null
    assert 0 < sum(new.values()) <= 1.2 * column_bytes + 4096 * len(new), new  # + each file's footer


def test_the_columns_path_gives_the_rows_the_overwrite_gives(tmp_path: Path) -> None:
    tables = []
    for path, changes_rev in (("columns", False), ("overwrite", True)):
        db = lancedb.connect(str(tmp_path / path))
        db.create_table("memos", data=memo_rows(ROWS))

        def transform(batch: pa.RecordBatch, bump: bool = changes_rev) -> pa.RecordBatch:
            out = add_score(batch)
            return out.set_column(3, "rev", pc.add(out.column("rev"), 1)) if bump else out

        result = recreate_table(db, "memos", schema=with_score(db), transform=transform, batch_size=500)
        assert result.path == path
        table = db.open_table("memos").to_arrow()
        tables.append(table.set_column(3, "rev", pc.subtract(table.column("rev"), 1)) if changes_rev else table)
    assert tables[0].schema.remove_metadata() == tables[1].schema.remove_metadata()
    assert tables[0].sort_by("id").equals(tables[1].sort_by("id"))


def test_drops_renames_and_order_are_metadata_and_keep_the_renamed_columns_index(db: Any, memos: Any) -> None:
    before = index_ids(db)
    target = pa.schema([pa.field("vector", memos.schema.field("vector").type), pa.field("key", pa.int64()),
                        SCORE, pa.field("name", pa.string()), pa.field("category", pa.string())])

    def transform(batch: pa.RecordBatch) -> pa.RecordBatch:
        return pa.RecordBatch.from_arrays([batch["vector"], batch["id"], pc.multiply(batch["id"], 3), batch["title"],
                                           batch["category"]], schema=target)

    lines: list[str] = []
    result = recreate_table(db, "memos", schema=target, transform=transform, report=lines.append)
    assert result.path == "columns" and result.columns_written == ("score",)
    table = db.open_table("memos")
    assert table.schema.names == ["vector", "key", "score", "name", "category"]
    assert index_ids(db) == before  # id_idx on key, title_idx on name: the same indices
    assert sorted(table.search().where("key = 7").to_arrow().column("name").to_pylist()) == ["memo 7"]
    assert any("adding column score, dropping rev, renaming id to key, title to name (no rewrite, 3 indices kept)"
               in line for line in lines), lines


def test_a_transform_that_changes_a_column_later_switches_to_the_overwrite_at_that_batch(db: Any, memos: Any) -> None:
    def transform(batch: pa.RecordBatch) -> pa.RecordBatch:
        out = add_score(batch)
        if batch.column("id")[0].as_py() >= 1000:
            out = out.set_column(1, "title", pc.utf8_upper(out.column("title")))
        return out

    lines: list[str] = []
    result = recreate_table(db, "memos", schema=with_score(db), transform=transform, batch_size=500,
                            report=lines.append)
    assert result.path == "overwrite"
    assert any(line.endswith("rewriting memos: column title changed (batch 3)") for line in lines), lines
    titles = db.open_table("memos").to_arrow().sort_by("id").column("title").to_pylist()
    assert titles[999] == "memo 999" and titles[1000] == "MEMO 1000"


def test_a_type_change_takes_the_overwrite_at_once(db: Any, memos: Any) -> None:
    schema = db.open_table("memos").schema
    target = schema.set(schema.get_field_index("rev"), pa.field("rev", pa.int32()))
    lines: list[str] = []
    result = recreate_table(db, "memos", schema=target, report=lines.append)
    assert result.path == "overwrite"
    assert any("rewriting memos: column rev changes type (int64 to int32)" in line for line in lines), lines


def test_a_field_metadata_change_takes_the_overwrite_and_lands_in_the_schema(db: Any, memos: Any) -> None:
    schema = db.open_table("memos").schema
    at = schema.get_field_index("rev")
    target = schema.set(at, schema.field(at).with_metadata({"doc": "the revision"}))
    result = recreate_table(db, "memos", schema=target)
    assert result.path == "overwrite"
    assert db.open_table("memos").schema.field("rev").metadata == {b"doc": b"the revision"}


def test_the_columns_path_carries_the_stamp_in_its_commit(tmp_path: Path) -> None:
    files = {
        "001_memos.py": '''
            from migrator.lancedb import migration
            from lance_scripts.testlib import memo_rows

            @migration(table="memos", version=1, description="create memos")
            def create(db):
                db.create_table("memos", data=memo_rows(500))
        ''',
        "002_score.py": '''
            import pyarrow as pa
            import pyarrow.compute as pc
            from migrator.lancedb import migration, recreate_table

            SCORE = pa.field("score", pa.int64(), nullable=False)

            @migration(table="memos", version=2, description="add score")
            def score(db):
                recreate_table(db, "memos", schema=db.open_table("memos").schema.append(SCORE),
                               transform=lambda b: b.append_column(SCORE, pc.multiply(b.column("id"), 3)))
        ''',
    }
    b = backend(tmp_path / "db", write_files(tmp_path / "migrations", files))
    upgrade(b, to=1)
    upgrade(b)
    dataset = lance.dataset(str(tmp_path / "db" / "memos.lance"))
    merge = next(v for v in range(int(dataset.version), 0, -1)
                 if type(dataset.read_transaction(v).operation).__name__ == "Merge")
    assert dataset.checkout_version(merge).schema.metadata[b"migrator.version"] == b"2"


def test_rows_a_live_writer_appends_during_the_column_write_get_the_column(tmp_path: Path) -> None:
    db = lancedb.connect(str(tmp_path / "db"))
    db.create_table("memos", data=memo_rows(ROWS))
    create_index(db, "memos", Index("vector", kind="IVF_PQ", num_partitions=4, num_sub_vectors=4))
    before = index_ids(db)
    calls = [0]

    def transform(batch: pa.RecordBatch) -> pa.RecordBatch:
        calls[0] += 1
        if calls[0] == 3:  # mid-write: another process appends 250 rows
            app_appends(tmp_path / "db", start=ROWS, count=250)
        return add_score(batch)

    result = recreate_table(db, "memos", schema=with_score(db), transform=transform, batch_size=500)
    assert result.path == "columns" and result.rows_caught_up == 250
    data = db.open_table("memos").to_arrow()
    assert sorted(data.column("id").to_pylist()) == list(range(ROWS + 250))
    assert pc.all(pc.equal(data.column("score"), pc.multiply(data.column("id"), 3))).as_py()
    assert index_ids(db) == before


def test_a_writer_committing_between_catch_up_and_commit_is_caught_up_not_lost(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = lancedb.connect(str(tmp_path / "db"))
    db.create_table("memos", data=memo_rows(ROWS))
    real = lance.LanceDataset.commit
    calls: list[int] = []

    def app_first(*args: Any, **kwargs: Any) -> Any:
        if not calls:
            app_appends(tmp_path / "db", start=ROWS, count=7)  # after the catch-up, before the Merge commit
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(lance.LanceDataset, "commit", staticmethod(app_first))
    result = recreate_table(db, "memos", schema=with_score(db), transform=add_score)
    assert result.path == "columns" and result.rows_caught_up == 7 and len(calls) == 2
    data = db.open_table("memos").to_arrow()
    assert data.num_rows == ROWS + 7
    assert pc.all(pc.equal(data.column("score"), pc.multiply(data.column("id"), 3))).as_py()


# -- the authoring helpers ------------------------------------------------------------------------------------------


def test_add_computed_column_writes_only_the_new_column_and_keeps_indices(db: Any, memos: Any) -> None:
    before_ids, before_files = index_ids(db), data_files(db)
    version = add_computed_column(db, "memos", SCORE, lambda b: pc.multiply(b["id"], 3), read_columns=["id"])
    table = db.open_table("memos")
    assert version == int(table.version) and table.schema.field("score") == SCORE
    assert index_ids(db) == before_ids
    new = {k: v for k, v in data_files(db).items() if k not in before_files}
    assert 0 < sum(new.values()) <= 1.2 * ROWS * 8 + 4096 * len(new)
    assert table.to_arrow().column("score").to_pylist()[:3] == [0, 3, 6]


def test_add_computed_column_refuses_nulls_in_a_non_null_column_leaving_the_table(db: Any, memos: Any) -> None:
    version = int(memos.version)
    with pytest.raises(ValueError, match=r"null.*non-null column score"):
        add_computed_column(db, "memos", SCORE, lambda b: pa.array([None] * b.num_rows, pa.int64()))
    assert int(db.open_table("memos").version) == version


def test_replace_column_values_rebuilds_only_that_columns_index(db: Any, memos: Any) -> None:
    before = index_ids(db)
    replace_column_values(db, "memos", "title", lambda b: pc.utf8_upper(b["title"]), read_columns=["title"])
    after = index_ids(db)
    assert after["title_idx"] != before["title_idx"]
    assert after["vector_idx"] == before["vector_idx"] and after["id_idx"] == before["id_idx"]
    table = db.open_table("memos")
    assert table.schema.names == memos.schema.names
    assert table.search().where("title = 'MEMO 5'").to_arrow().column("id").to_pylist() == [5]


def test_cast_column_casts_natively(db: Any, memos: Any) -> None:
    cast_column(db, "memos", "rev", pa.int32())
    assert db.open_table("memos").schema.field("rev").type == pa.int32()


def test_cast_column_names_table_column_and_types_when_lance_cannot_cast(db: Any, memos: Any) -> None:
    before, version = index_ids(db), int(memos.version)
    with pytest.raises(UsageError, match=r"cast_column\('memos', 'title'\): Lance cannot cast title from string "
                                         r"to int64"):
        cast_column(db, "memos", "title", pa.int64())
    assert int(db.open_table("memos").version) == version and index_ids(db) == before


def test_cast_column_rebuilds_the_index_of_the_cast_column(db: Any, memos: Any) -> None:
    before = index_ids(db)
    cast_column(db, "memos", "id", pa.int32())
    after = index_ids(db)
    assert set(after) == set(before) and after["id_idx"] != before["id_idx"]
    assert after["vector_idx"] == before["vector_idx"]
    assert table_stamp(db, "memos") is None  # a helper does not stamp outside a migration


def test_edit_schema_reorders_top_level_fields_with_their_children(tmp_path: Path) -> None:
    from migrator.backends.lancedb.schema_edit import edit_schema

    dataset = lance.write_dataset(pa.table({"a": [1], "s": pa.array([{"x": 1, "y": [1.0]}]), "t": ["q"]}),
                                  str(tmp_path / "x.lance"))
    edited = edit_schema(dataset.lance_schema, order=["t", "s"]).to_pyarrow()
    assert edited.names == ["t", "s", "a"]
    assert edited.field("s").type == dataset.schema.field("s").type
