"""kill -9 of a child migrating a table on the column-writing paths (issue 16): old or new version, never between.

Two migrations v2 of the same table ``memos`` (6,000 rows, an IVF_PQ index):

* ``recreate_table`` whose transform only adds a non-null computed column: it
  takes the columns path (one ``Merge`` carrying the stamp, no index rebuilt);
* the authoring helpers ``add_computed_column`` then ``replace_column_values``
  (``rev`` + 1: a transform that ran twice shows), two commits and then the
  adapter's stamp.

Each trial copies the prepared v1 database, kills the child at a random moment
(or right after a given progress line), checks the state it left (old or new
schema, the stamp agreeing, every row, no value computed twice), then re-runs in
process and checks the job is finished once, with the vector index that was
never rebuilt still the same index (same id). A few trials run in the default
suite, ``-m crash`` runs more.
"""

from __future__ import annotations

from pathlib import Path

import lancedb
import pyarrow.compute as pc
import pytest
from lance_scripts.testlib import backend, by_line, upgrade
from test_lancedb_crash import Kill, Prepared, prepare, random_kills, trial

from migrator.lancedb import table_stamp

pytestmark = pytest.mark.lancedb

ROWS = 6000

CREATE = f'''
    from migrator.lancedb import Index, migration
    from lance_scripts.testlib import memo_rows

    @migration(table="memos", version=1, description="create memos", indices=[
        Index("id"), Index("vector", kind="IVF_PQ", metric="cosine", num_partitions=8, num_sub_vectors=4)])
    def create(db):
        db.create_table("memos", data=memo_rows({ROWS}, dim=32))
'''

RECREATE = {
    "001_memos.py": CREATE,
    "002_score.py": '''
        import pyarrow as pa
        import pyarrow.compute as pc
        from migrator.lancedb import migration, recreate_table

        SCORE = pa.field("score", pa.int64(), nullable=False)

        def add_score(batch):
            return batch.append_column(SCORE, pc.multiply(batch.column("id"), 3))

        @migration(table="memos", version=2, description="add score")
        def score(db):
            recreate_table(db, "memos", schema=db.open_table("memos").schema.append(SCORE), transform=add_score,
                           batch_size=500)
    ''',
}

HELPERS = {
    "001_memos.py": CREATE,
    "002_score.py": '''
        import pyarrow as pa
        import pyarrow.compute as pc
        from migrator.lancedb import add_computed_column, migration, replace_column_values

        @migration(table="memos", version=2, description="add score, bump rev")
        def score(db):
            add_computed_column(db, "memos", pa.field("score", pa.int64(), nullable=False),
                                lambda batch: pc.multiply(batch.column("id"), 3), read_columns=["id"])
            replace_column_values(db, "memos", "rev", lambda batch: pc.add(batch.column("rev"), 1))
    ''',
}

WINDOWS = ("adding column score", "wrote the new columns", "replacing the values", "ready")


def vector_index_id(db_path: Path) -> str:
    table = lancedb.connect(str(db_path)).open_table("memos")
    return next(str(i["uuid"]) for i in table.to_lance().list_indices() if i["name"] == "vector_idx")


@pytest.fixture(scope="module")
def recreate_v1(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    return prepare(tmp_path_factory.mktemp("addcols-recreate"), RECREATE, to=1)


@pytest.fixture(scope="module")
def helpers_v1(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    return prepare(tmp_path_factory.mktemp("addcols-helpers"), HELPERS, to=1)


def check(db_path: Path, prepared: Prepared, lines: list[str], bumps_rev: bool) -> None:
    kept = vector_index_id(prepared.db)
    db = lancedb.connect(str(db_path))
    table = db.open_table("memos")
    assert table.count_rows() == ROWS, lines
    data = table.to_arrow()
    stamp = table_stamp(db, "memos")
    if stamp == 2:  # the new version: every row has its score, rev bumped once
        assert pc.all(pc.equal(data.column("score"), pc.multiply(data.column("id"), 3))).as_py(), lines
        assert pc.all(pc.equal(data.column("rev"), 1 if bumps_rev else 0)).as_py(), lines
    else:  # the old version, or (helpers) a part of the migration the next run undoes
        assert stamp == 1, lines
        if not bumps_rev:
            assert "score" not in table.schema.names, lines
    b = backend(db_path, prepared.migrations)
    assert max(by_line(b.applied())["memos"]) <= (stamp or 0), lines  # the bookkeeping never ahead
    rerun: list[str] = []
    upgrade(b, report=rerun.append)
    assert by_line(b.applied()) == {"memos": [1, 2]}, rerun
    table = db.open_table("memos")
    data = table.to_arrow()
    assert table.count_rows() == ROWS and table_stamp(db, "memos") == 2, rerun
    assert pc.all(pc.equal(data.column("score"), pc.multiply(data.column("id"), 3))).as_py(), rerun
    assert pc.all(pc.equal(data.column("rev"), 1 if bumps_rev else 0)).as_py(), rerun  # the change ran once
    assert vector_index_id(db_path) == kept, rerun  # never rebuilt
    assert upgrade(b) == []


@pytest.mark.parametrize("kill", [Kill("adding column score", 0.0), Kill("wrote the new columns", 0.0),
                                  Kill("ready", 0.3)], ids=str)
def test_kill_while_recreate_adds_a_column(recreate_v1: Prepared, tmp_path: Path, kill: Kill) -> None:
    db, lines, _ = trial(recreate_v1, tmp_path, kill)
    check(db, recreate_v1, lines, bumps_rev=False)


@pytest.mark.parametrize("kill", [Kill("replacing the values", 0.0), Kill("ready", 0.3)], ids=str)
def test_kill_while_helpers_write_columns(helpers_v1: Prepared, tmp_path: Path, kill: Kill) -> None:
    db, lines, _ = trial(helpers_v1, tmp_path, kill)
    check(db, helpers_v1, lines, bumps_rev=True)


@pytest.mark.crash
@pytest.mark.parametrize("kill", random_kills(1600, 30, WINDOWS[:2], 0.8), ids=str)
def test_kill_while_recreate_adds_a_column_many(recreate_v1: Prepared, tmp_path: Path, kill: Kill) -> None:
    db, lines, _ = trial(recreate_v1, tmp_path, kill)
    check(db, recreate_v1, lines, bumps_rev=False)


@pytest.mark.crash
@pytest.mark.parametrize("kill", random_kills(1700, 30, WINDOWS[2:], 0.8), ids=str)
def test_kill_while_helpers_write_columns_many(helpers_v1: Prepared, tmp_path: Path, kill: Kill) -> None:
    db, lines, _ = trial(helpers_v1, tmp_path, kill)
    check(db, helpers_v1, lines, bumps_rev=True)
