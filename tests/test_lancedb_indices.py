"""Declared indices: a redeclared Index is the same index (not rebuilt); ensure_indices brings all up to date."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lancedb
import pytest
from lance_scripts.testlib import backend, memo_rows, upgrade, write_files

from migrator.lancedb import Index, ensure_indices

pytestmark = pytest.mark.lancedb

# the README's example: v1 declares the indices, v2 recreates the table declaring them again, v3 once more
README_LIKE = {
    "001_memos.py": '''
        from migrator.lancedb import Index, migration
        from lance_scripts.testlib import memo_rows

        @migration(table="memos", version=1, description="create memos",
                   indices=[Index("id"), Index("vector", kind="IVF_PQ", metric="cosine")])
        def create(db):
            db.create_table("memos", data=memo_rows(300))
    ''',
    "002_add_memo_tags.py": '''
        import pyarrow as pa
        from migrator.lancedb import Index, migration, recreate_table

        TAGS = pa.field("tags", pa.list_(pa.string()), nullable=False)

        def add_empty_tags(batch: pa.RecordBatch) -> pa.RecordBatch:
            return batch.append_column(TAGS, pa.array([[]] * batch.num_rows, type=TAGS.type))

        @migration(table="memos", version=2, description="add tags to memos",
                   indices=[Index("id"), Index("vector", kind="IVF_PQ", metric="cosine")])
        def add_tags(db):
            memos = db.open_table("memos")
            recreate_table(db, "memos", schema=memos.schema.append(TAGS), transform=add_empty_tags)
    ''',
    "003_add_summary.py": '''
        import pyarrow as pa
        from migrator.lancedb import Index, add_columns, migration

        @migration(table="memos", version=3, description="add memos.summary",
                   indices=[Index("id"), Index("vector", kind="IVF_PQ", metric="cosine")])
        def add_summary(db):
            add_columns(db, "memos", pa.field("summary", pa.string()))
    ''',
}


def index_ids(table: Any) -> dict[str, list[str]]:
    """Each index's segment uuids: a rebuild (or a merge of new rows) gives new ones."""
    return {d.name: sorted(str(s.uuid) for s in d.segments) for d in table.to_lance().describe_indices()}


def test_an_index_redeclared_by_a_later_migration_is_not_rebuilt(tmp_path: Path) -> None:
    b = backend(tmp_path / "db", write_files(tmp_path / "migrations", README_LIKE))
    upgrade(b, to=2)
    db = lancedb.connect(str(tmp_path / "db"))
    before = index_ids(db.open_table("memos"))
    assert set(before) == {"id_idx", "vector_idx"}
    lines: list[str] = []
    upgrade(b, report=lines.append)
    assert index_ids(db.open_table("memos")) == before
    assert not [line for line in lines if "index" in line], lines


def test_the_readme_recreation_example_keeps_its_vector_index(tmp_path: Path) -> None:
    b = backend(tmp_path / "db", write_files(tmp_path / "migrations", README_LIKE))
    upgrade(b, to=1)
    before = index_ids(lancedb.connect(str(tmp_path / "db")).open_table("memos"))
    lines: list[str] = []
    upgrade(b, to=2, report=lines.append)
    builds = [line for line in lines if "IVF_PQ index vector_idx" in line]
    assert builds == [], lines
    assert any("adding column tags (no rewrite, 2 indices kept)" in line for line in lines), lines
    assert index_ids(lancedb.connect(str(tmp_path / "db")).open_table("memos")) == before


def test_a_redeclared_index_with_other_parameters_is_rebuilt(tmp_path: Path) -> None:
    files = {**README_LIKE, "003_add_summary.py": README_LIKE["003_add_summary.py"].replace(
        'metric="cosine")]', 'metric="l2")]')}
    b = backend(tmp_path / "db", write_files(tmp_path / "migrations", files))
    upgrade(b, to=2)
    db = lancedb.connect(str(tmp_path / "db"))
    before = index_ids(db.open_table("memos"))
    upgrade(b)
    after = index_ids(db.open_table("memos"))
    assert after["id_idx"] == before["id_idx"]
    assert after["vector_idx"] != before["vector_idx"]
    assert db.open_table("memos").index_stats("vector_idx").distance_type == "l2"


BULK = {
    "001_chunks.py": '''
        from migrator.lancedb import Index, migration
        from lance_scripts.testlib import memo_rows

        @migration(table="chunks", version=1, description="create chunks",
                   indices=[Index("id"), Index("category", kind="BITMAP"),
                            Index("vector", kind="IVF_PQ", metric="cosine")])
        def create(db):
            db.create_table("chunks", schema=memo_rows(1).schema)
    ''',
}


def test_ensure_indices_after_a_bulk_load_brings_every_index_up_to_date(tmp_path: Path) -> None:
    b = backend(tmp_path / "db", write_files(tmp_path / "migrations", BULK))
    upgrade(b)
    db = lancedb.connect(str(tmp_path / "db"))
    table = db.open_table("chunks")
    assert {i.name for i in table.list_indices()} == {"id_idx", "category_idx"}  # vector deferred: no rows
    table.add(memo_rows(600))
    ensure_indices(db, "chunks")
    table = db.open_table("chunks")
    assert {i.name for i in table.list_indices()} == {"id_idx", "category_idx", "vector_idx"}
    rows = table.count_rows()
    for name in ("id_idx", "category_idx", "vector_idx"):
        stats = table.index_stats(name)
        assert (name, stats.num_indexed_rows, stats.num_unindexed_rows) == (name, rows, 0)


def test_ensure_indices_with_every_index_current_commits_nothing(tmp_path: Path) -> None:
    b = backend(tmp_path / "db", write_files(tmp_path / "migrations", BULK))
    upgrade(b)
    db = lancedb.connect(str(tmp_path / "db"))
    db.open_table("chunks").add(memo_rows(600))
    ensure_indices(db, "chunks")
    version = db.open_table("chunks").version
    assert ensure_indices(db, "chunks") == []
    assert db.open_table("chunks").version == version


def test_ensure_indices_reports_the_indices_it_brings_up_to_date(tmp_path: Path) -> None:
    b = backend(tmp_path / "db", write_files(tmp_path / "migrations", BULK))
    upgrade(b)
    db = lancedb.connect(str(tmp_path / "db"))
    db.open_table("chunks").add(memo_rows(600))
    lines: list[str] = []
    ensure_indices(db, "chunks", report=lines.append)
    assert any("id_idx" in line and "600" in line for line in lines), lines


def test_spec_equivalence_ignores_the_default_name_and_metric() -> None:
    from migrator.backends.lancedb.indices import same_index

    recorded = Index.from_dict(Index("vector", kind="ivf_pq").to_dict())
    assert same_index(recorded, Index("vector", kind="IVF_PQ", metric="l2"))
    assert same_index(Index("id"), Index("id", name="id_idx", min_rows=5))
    assert not same_index(Index("id"), Index("id", name="other"))
    assert not same_index(Index("vector", kind="IVF_PQ"), Index("vector", kind="IVF_PQ", num_sub_vectors=4))
    assert not same_index(Index("text", kind="FTS"), Index("text", kind="FTS", options={"with_position": True}))
