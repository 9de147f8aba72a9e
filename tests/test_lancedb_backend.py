"""The LanceDB adapter through the Backend protocol: discovery, bookkeeping, adoption, failures, threads, locks.

What every adapter must do (a fresh read creates nothing, prepare, stamp/unstamp, checksums, a failure keeps
everything, an interrupted step is reported, the lock, backup, close) is tested once for all adapters, on a folder
and on S3, in tests/contract; this file keeps what is specific to LanceDB.
"""

from __future__ import annotations

import threading
from pathlib import Path

import lancedb
import pyarrow as pa
import pytest
from lance_scripts.testlib import (
    assert_seed_view_true,
    backend,
    by_line,
    index_names,
    pending,
    seed_view,
    upgrade,
    write_files,
)

from migrator.backends.base import Backend
from migrator.backends.lancedb import LanceBackend, LanceStep, create
from migrator.backends.lancedb.bookkeeping import EVENT_STARTED, Bookkeeping, Row, now_ms
from migrator.backends.lancedb.lock import LOCK_NAME
from migrator.config import BackendConfig
from migrator.errors import LoaderError, MigrationFailed
from migrator.lancedb import table_stamp
from migrator.loader import checksum
from migrator.model import Direction

pytestmark = pytest.mark.lancedb

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "migrations" / "lancedb"

TWO_TABLES = {
    "001_init.py": '''
        import pyarrow as pa
        from migrator.lancedb import Index, migration

        @migration(table="notes", version=1, description="create notes", indices=[Index("id")])
        def create_notes(db):
            db.create_table("notes", schema=pa.schema([pa.field("id", pa.int64()), pa.field("text", pa.string())]))

        @migration(table="people", version=1, description="create people")
        def create_people(db):
            db.create_table("people", schema=pa.schema([pa.field("id", pa.int64()), pa.field("name", pa.string())]))
    ''',
    "002_more.py": '''
        import pyarrow as pa
        from migrator.lancedb import add_columns, migration

        @migration(table="notes", version=2, description="add notes.summary")
        def add_summary(db):
            add_columns(db, "notes", pa.field("summary", pa.string()))

        @migration(table="people", version=2, description="add people.email")
        def add_email(db):
            db.open_table("people").add_columns(pa.field("email", pa.string()))
    ''',
}


def make(tmp_path: Path, files: dict[str, str]) -> LanceBackend:
    return backend(tmp_path / "db", write_files(tmp_path / "migrations", files))


# -- discovery ----------------------------------------------------------------------------------------------------


def test_discovers_the_demo_migrations_as_per_table_lines() -> None:
    b = LanceBackend("lancedb", "/nonexistent/db", DEMO)
    assert isinstance(b, Backend)
    found = b.discover()
    assert [(m.line, m.version) for m in found][:7] == [
        ("users", 1), ("notebooks", 1), ("memos", 1), ("tags", 1), ("attachments", 1), ("chunks", 1),
        ("conversations", 1)]
    assert (found[-1].line, found[-1].version, found[-1].name) == ("memos", 2, "add tags to memos")
    init = DEMO / "001_init.py"
    assert all(m.checksum == checksum(m.path) for m in found)
    assert {m.checksum for m in found if m.path == init} == {checksum(init)}
    assert all(m.reversible for m in found)  # by Lance time travel (test_lancedb_rollback.py)
    assert all(isinstance(m.payload, LanceStep) for m in found)
    assert list(b.load(found)) == list(found)
    assert b.applied() == []
    assert not Path("/nonexistent/db").exists()


def test_backend_attributes_and_create_from_config(tmp_path: Path) -> None:
    cfg = BackendConfig(name="vec", type="lancedb", location="s3://user:secret@bucket/prefix", migrations=DEMO,
                        source="test", lock_timeout=3.0, options={"storage_options": {"region": "x"}})
    b = create(cfg)
    assert (b.name, b.type, b.lock_timeout) == ("vec", "lancedb", 3.0)
    assert "secret" not in b.location
    assert b.capabilities.per_table_lines and b.capabilities.parallel_lines
    assert b.capabilities.reversible and not b.capabilities.transactional_ddl
    assert b.storage_options == {"region": "x"}
    assert b.lock_lease == 30.0 and b._db is None  # nothing connects before it is needed


@pytest.mark.parametrize(
    ("files", "needles"),
    [
        ({"001_a.py": '''
            from migrator.lancedb import migration
            @migration(table="t", version=1)
            def first(db): pass
          ''',
          "002_b.py": '''
            from migrator.lancedb import migration
            @migration(table="t", version=1)
            def second(db): pass
          '''}, ["002_b.py", "second", "001_a.py", "first", "declared twice"]),
        ({"001_a.py": '''
            from migrator.lancedb import migration
            @migration(table="t", version=1)
            def one(db): pass
            @migration(table="t", version=1)
            def again(db): pass
          '''}, ["001_a.py", "again", "declared twice"]),
        ({"001_a.py": '''
            from migrator.lancedb import migration
            @migration(table="t", version="2")
            def stringy(db): pass
          '''}, ["001_a.py", "stringy", "positive integer"]),
        ({"001_a.py": '''
            from migrator.lancedb import migration
            @migration(table="t", version=0)
            def zero(db): pass
          '''}, ["001_a.py", "zero", "positive integer"]),
        ({"001_a.py": '''
            from migrator.lancedb import migration
            @migration(version=1, description="no table")
            def tableless(db): pass
          '''}, ["001_a.py", "tableless", "table="]),
        ({"001_a.py": '''
            from migrator.lancedb import migration
            @migration
            def bare(db): pass
          '''}, ["001_a.py", "bare", "@migration(table=..."]),
        ({"001_a.py": '''
            from migrator.lancedb import Index, migration
            @migration(table="t", version=1, indices=[Index("v", kind="IVF_NOPE")])
            def badindex(db): pass
          '''}, ["001_a.py", "badindex", "IVF_NOPE"]),
        ({"001_a.py": '''
            from migrator.lancedb import migration
            @migration(table="t", version=1)
            def no_args(): pass
          '''}, ["001_a.py", "no_args", "one argument"]),
        ({"001_a.py": '''
            from migrator.lancedb import migration
            @migration(table="table_migrations", version=1)
            def reserved(db): pass
          '''}, ["001_a.py", "reserved", "bookkeeping"]),
        ({"001_a.py": "X = 1\n"}, ["001_a.py", "no @migration"]),
        ({"001_a.py": "def broken(:\n"}, ["001_a.py", "syntax error"]),
    ],
    ids=["dup-files", "dup-file", "version-str", "version-0", "no-table", "bare", "bad-index", "no-arg",
         "reserved", "empty-file", "syntax"],
)
def test_loader_errors_name_the_file_and_the_function(tmp_path: Path, files: dict[str, str],
                                                      needles: list[str]) -> None:
    b = make(tmp_path, files)
    with pytest.raises(LoaderError) as err:
        b.discover()
    for needle in needles:
        assert needle in str(err.value)


# -- fresh database, resume, idempotence --------------------------------------------------------------------------


def test_fresh_database_runs_the_demo(tmp_path: Path) -> None:
    b = LanceBackend("lancedb", str(tmp_path / "db"), DEMO)
    assert b.applied() == []
    assert not (tmp_path / "db").exists()  # applied() creates nothing
    lines: list[str] = []
    done = upgrade(b, report=lines.append)
    assert len(done) == 8
    applied = b.applied()
    assert by_line(applied) == {"users": [1], "notebooks": [1], "memos": [1, 2], "tags": [1], "attachments": [1],
                                "chunks": [1], "conversations": [1]}
    assert [a.version for a in applied if a.line == "memos"] == [1, 2]  # oldest first
    assert all(a.checksum and a.duration_ms is not None and a.applied_at for a in applied)
    assert all(isinstance(a.extra["lance_version"], int) for a in applied)
    db = lancedb.connect(str(tmp_path / "db"))
    assert sorted(db.list_tables().tables) == sorted(
        ["users", "notebooks", "memos", "tags", "attachments", "chunks", "conversations", "table_migrations",
         "table_migrations_history"])
    memos = db.open_table("memos")
    assert memos.schema.field("tags").type == pa.list_(pa.string())
    assert pa.types.is_fixed_size_list(memos.schema.field("vector").type)
    assert table_stamp(db, "memos") == 2 and table_stamp(db, "users") == 1
    assert {"id_idx", "user_id_idx"} <= index_names(memos)
    assert any("vector_idx" in line and "deferred" in line for line in lines)
    assert assert_seed_view_true(tmp_path / "db") == {"users": 1, "notebooks": 1, "memos": 2, "tags": 1,
                                                      "attachments": 1, "chunks": 1, "conversations": 1}
    history = db.open_table("table_migrations_history").schema.names
    assert {"lanceVersion", "checksum", "durationMs", "description", "event", "attempt"} <= set(history)
    # a new app row: memos at v2 accepts a tagged memo
    memos.add([{"id": "m1", "user_id": "u1", "content": "hello", "created_at": 1, "updated_at": 1,
                "tags": ["a"]}])
    assert memos.count_rows() == 1


def test_resume_after_partial_run_and_idempotent_rerun(tmp_path: Path) -> None:
    b = make(tmp_path, TWO_TABLES)
    assert len(upgrade(b, to=1)) == 2
    assert by_line(b.applied()) == {"notes": [1], "people": [1]}
    assert [(m.line, m.version) for m in pending(b)] == [("notes", 2), ("people", 2)]
    upgrade(b, line="people")
    assert by_line(b.applied()) == {"notes": [1], "people": [1, 2]}
    fresh = make(tmp_path, TWO_TABLES)  # a new process
    upgrade(fresh)
    assert by_line(fresh.applied()) == {"notes": [1, 2], "people": [1, 2]}
    db = lancedb.connect(str(tmp_path / "db"))
    versions = {name: db.open_table(name).version for name in ("notes", "people", "table_migrations")}
    assert upgrade(fresh) == []  # nothing pending: nothing runs, nothing is written
    assert {name: db.open_table(name).version for name in versions} == versions
    assert "summary" in db.open_table("notes").schema.names
    assert table_stamp(db, "notes") == 2 and table_stamp(db, "people") == 2


def test_runner_applies_lines_in_parallel_and_is_idempotent(tmp_path: Path) -> None:
    from migrator.runner import Runner

    b = make(tmp_path, TWO_TABLES)
    runner = Runner(b)
    result = runner.upgrade(jobs=2)
    assert result.ok, result.failures
    assert len(result.steps) == 4
    status = runner.status()
    assert {line.line: line.current for line in status.lines} == {"notes": 2, "people": 2}
    assert status.pending_count == 0 and not status.issues
    again = runner.upgrade(jobs=2)
    assert again.ok and again.steps == []


# -- adoption of the TypeScript seed's table_migrations -----------------------------------------------------------


def seed_database(uri: Path) -> None:
    """What the TypeScript seed tool leaves: data tables and a three-column table_migrations."""
    db = lancedb.connect(str(uri))
    db.create_table("notes", data=pa.table({"id": pa.array([1, 2], pa.int64()), "text": ["a", "b"],
                                            "summary": pa.array([None, None], pa.string())}))
    db.create_table("people", data=pa.table({"id": pa.array([1], pa.int64()), "name": ["ann"]}))
    db.create_table("table_migrations", data=pa.table({
        "tableName": ["notes", "people"],
        "currentVersion": pa.array([2, 1], pa.int64()),
        "lastMigratedAt": pa.array([1_700_000_000_000, 1_700_000_000_500], pa.int64()),
    }))


def test_adopts_a_seed_table_migrations(tmp_path: Path) -> None:
    seed_database(tmp_path / "db")
    b = make(tmp_path, TWO_TABLES)
    applied = b.applied()
    assert by_line(applied) == {"notes": [2], "people": [1]}  # one baseline per table, not one row per version
    assert all(a.checksum is None and a.extra.get("adopted") and a.baseline for a in applied)
    db = lancedb.connect(str(tmp_path / "db"))
    assert db.open_table("table_migrations").schema.names == ["tableName", "currentVersion", "lastMigratedAt"]
    lines: list[str] = []
    done = upgrade(b, report=lines.append)
    assert [(a.line, a.version) for a in done] == [("people", 2)]  # nothing adopted re-runs
    assert db.open_table("notes").count_rows() == 2
    assert seed_view(tmp_path / "db") == {"notes": 2, "people": 2}  # still three columns, one row per table
    history = db.open_table("table_migrations_history").to_arrow().to_pylist()
    assert [(h["tableName"], h["version"], h["event"]) for h in history] == [
        ("notes", 2, "adopted"), ("people", 1, "adopted"), ("people", 2, "started"), ("people", 2, "applied")]
    applied = b.applied()
    assert by_line(applied) == {"notes": [2], "people": [1, 2]}
    people2 = next(a for a in applied if (a.line, a.version) == ("people", 2))
    assert people2.checksum == checksum(tmp_path / "migrations" / "002_more.py")
    # unstamping an adopted version lowers the baseline to the file below it: the rest stays adopted
    b.unstamp([m for m in b.discover() if (m.line, m.version) == ("notes", 2)])
    assert by_line(b.applied()) == {"notes": [1], "people": [1, 2]}
    assert seed_view(tmp_path / "db") == {"notes": 1, "people": 2}


# -- failures -----------------------------------------------------------------------------------------------------

FAILING = {
    "001_t.py": '''
        import pyarrow as pa
        from migrator.lancedb import migration

        @migration(table="t", version=1, description="create t")
        def create_t(db):
            db.create_table("t", data=pa.table({"id": pa.array([1, 2, 3], pa.int64())}))

        @migration(table="u", version=1, description="create u")
        def create_u(db):
            db.create_table("u", data=pa.table({"id": pa.array([1], pa.int64())}))
    ''',
    "002_t.py": '''
        import pyarrow as pa
        from migrator.lancedb import migration

        @migration(table="t", version=2, description="half-done change")
        def half(db):
            t = db.open_table("t")
            t.add_columns(pa.field("extra", pa.string()))
            t.delete("id = 1")  # (an append would be taken as another writer's and kept)
            raise RuntimeError("boom in the middle")

        @migration(table="u", version=2, description="add u.name")
        def add_name(db):
            db.open_table("u").add_columns(pa.field("name", pa.string()))
    ''',
    "003_t.py": '''
        from migrator.lancedb import migration

        @migration(table="t", version=3, description="never reached")
        def never(db):
            raise AssertionError("must not run")
    ''',
}


def test_failure_in_the_middle_of_a_line_restores_that_table_only(tmp_path: Path) -> None:
    from migrator.runner import Runner

    b = make(tmp_path, FAILING)
    db = lancedb.connect(str(tmp_path / "db"))
    result = Runner(b).upgrade(jobs=2)
    assert [(m.line, m.version) for m, _ in result.failures] == [("t", 2)]
    message = result.failures[0][1]
    assert "t v2" in message and "boom in the middle" in message and "restored" in message
    assert by_line(b.applied()) == {"t": [1], "u": [1, 2]}
    t = db.open_table("t")
    assert t.schema.names == ["id"] and t.count_rows() == 3  # data back at v1 ...
    assert table_stamp(db, "t") == 1  # ... and the stamp agrees
    assert "name" in db.open_table("u").schema.names and table_stamp(db, "u") == 2
    events = db.open_table("table_migrations_history").to_arrow().to_pylist()
    failed = [e for e in events if e["event"] == "failed"]
    assert len(failed) == 1 and "boom" in failed[0]["detail"]
    assert assert_seed_view_true(tmp_path / "db") == {"t": 1, "u": 2}  # not the version that failed


def test_a_failed_creation_drops_the_table_it_created(tmp_path: Path) -> None:
    b = make(tmp_path, {"001_x.py": '''
        import pyarrow as pa
        from migrator.lancedb import migration

        @migration(table="x", version=1)
        def create_x(db):
            db.create_table("x", data=pa.table({"id": [1]}))
            raise ValueError("no")
    '''})
    with pytest.raises(MigrationFailed, match="ValueError: no"):
        upgrade(b)
    db = lancedb.connect(str(tmp_path / "db"))
    assert "x" not in db.list_tables().tables
    assert b.applied() == []


# -- threads, stamps, locks ---------------------------------------------------------------------------------------


def test_parallel_apply_from_two_threads_on_different_tables(tmp_path: Path) -> None:
    files = {}
    for name in ("alpha", "beta"):
        body = [f'''
            import pyarrow as pa
            from migrator.lancedb import Index, migration

            @migration(table="{name}", version=1, indices=[Index("id")])
            def create(db):
                db.create_table("{name}", data=pa.table({{"id": pa.array(range(300), pa.int64())}}))
        ''']
        for v in range(2, 6):
            body.append(f'''
            @migration(table="{name}", version={v})
            def add_{v}(db):
                db.open_table("{name}").add_columns(pa.field("c{v}", pa.int64()))
            ''')
        files[f"00{len(files) + 1}_{name}.py"] = "".join(body)
    b = make(tmp_path, files)
    b.prepare()
    steps = list(b.discover())
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run_line(line: str) -> None:
        try:
            barrier.wait()
            for m in [m for m in steps if m.line == line]:
                b.apply(m, Direction.UP, lambda message: None)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run_line, args=(line,)) for line in ("alpha", "beta")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert by_line(b.applied()) == {"alpha": [1, 2, 3, 4, 5], "beta": [1, 2, 3, 4, 5]}
    db = lancedb.connect(str(tmp_path / "db"))
    events = db.open_table("table_migrations_history").to_arrow().to_pylist()
    assert sorted(e["event"] for e in events) == ["applied"] * 10 + ["started"] * 10
    assert seed_view(tmp_path / "db") == {"alpha": 5, "beta": 5}


def test_the_lock_is_a_file_in_the_folder_and_creates_no_bookkeeping(tmp_path: Path) -> None:
    """Exclusion, the timeout naming the holder and the release: tests/contract (every adapter)."""
    with make(tmp_path, TWO_TABLES).lock(1):
        assert (tmp_path / "db" / LOCK_NAME).exists()
    assert "table_migrations" not in lancedb.connect(str(tmp_path / "db")).list_tables().tables


def test_interrupted_ordinary_migration_is_undone_then_rerun(tmp_path: Path) -> None:
    """A process died after the function's commit but before the stamp: the next run restores and re-runs."""
    b = make(tmp_path, TWO_TABLES)
    upgrade(b, to=1)
    db = lancedb.connect(str(tmp_path / "db"))
    notes = db.open_table("notes")
    before = notes.version
    Bookkeeping("table_migrations").append(db, [Row("notes", 2, now_ms(), EVENT_STARTED, lance_version=before,
                                                    attempt="dead")])
    notes.add_columns(pa.field("summary", pa.string()))  # what the dead run committed
    lines: list[str] = []
    upgrade(make(tmp_path, TWO_TABLES), line="notes", report=lines.append)  # add_columns again would fail
    assert any("interrupted" in line and f"restored Lance version {before}" in line for line in lines)
    assert by_line(b.applied())["notes"] == [1, 2]
    assert table_stamp(db, "notes") == 2


def test_interrupted_migration_keeps_rows_other_writers_appended(tmp_path: Path) -> None:
    b = make(tmp_path, TWO_TABLES)
    upgrade(b, to=1)
    db = lancedb.connect(str(tmp_path / "db"))
    notes = db.open_table("notes")
    Bookkeeping("table_migrations").append(db, [Row("notes", 2, now_ms(), EVENT_STARTED,
                                                    lance_version=notes.version, attempt="dead")])
    notes.add([{"id": 7, "text": "written by the app meanwhile"}])
    lines: list[str] = []
    upgrade(make(tmp_path, TWO_TABLES), line="notes", report=lines.append)
    assert any("kept" in line for line in lines)
    assert db.open_table("notes").count_rows() == 1


def test_deferred_vector_index_is_built_by_the_next_migration(tmp_path: Path) -> None:
    b = make(tmp_path, {
        "001_m.py": '''
            from migrator.lancedb import Index, migration
            from lance_scripts.testlib import memo_rows

            @migration(table="m", version=1, indices=[Index("vector", kind="IVF_FLAT", num_partitions=2)])
            def create(db):
                db.create_table("m", data=memo_rows(10))
        ''',
        "002_m.py": '''
            from migrator.lancedb import migration
            from lance_scripts.testlib import memo_rows

            @migration(table="m", version=2, description="bulk load")
            def load(db):
                db.open_table("m").add(memo_rows(400, start=10))
        ''',
    })
    lines: list[str] = []
    upgrade(b, to=1, report=lines.append)
    db = lancedb.connect(str(tmp_path / "db"))
    assert "vector_idx" not in index_names(db.open_table("m"))
    assert any("deferred" in line and "10 rows" in line for line in lines)
    upgrade(b, report=lines.append)
    assert "vector_idx" in index_names(db.open_table("m"))
    assert db.open_table("m").index_stats("vector_idx").index_type == "IVF_FLAT"


# -- backup, validate --repair, light import ----------------------------------------------------------------------


def test_backup_tags_every_table_and_a_tag_restores_it(tmp_path: Path) -> None:
    b = make(tmp_path, TWO_TABLES)
    lines: list[str] = []
    assert "nothing to back up" in (b.backup(lines.append) and lines[0])
    upgrade(b, to=1)
    db = lancedb.connect(str(tmp_path / "db"))
    db.open_table("notes").add([{"id": 1, "text": "kept by the backup"}])
    where = b.backup(lines.append)
    tag = where.split()[1]
    assert tag.startswith("migrator-backup-") and "4 table(s)" in where
    for name in ("notes", "people", "table_migrations", "table_migrations_history"):
        table = db.open_table(name)
        assert table.tags.list()[tag]["version"] == table.version
    upgrade(b)
    notes = db.open_table("notes")
    notes.delete("id = 1")
    notes.restore(tag)
    assert notes.count_rows() == 1 and "summary" not in notes.schema.names


def test_record_checksums_after_a_deliberate_edit(tmp_path: Path) -> None:
    from migrator.runner import Runner

    b = make(tmp_path, TWO_TABLES)
    upgrade(b)
    before = {(a.line, a.version): a for a in b.applied()}
    runner = Runner(make(tmp_path, {"002_more.py": TWO_TABLES["002_more.py"] + "        # an edit\n"}))
    assert {i.kind for i in runner.validate()} == {"changed"}
    repaired = runner.repair()
    assert sorted((r.migration.line, r.migration.version) for r in repaired) == [("notes", 2), ("people", 2)]
    assert runner.validate() == []
    after = {(a.line, a.version): a for a in b.applied()}
    assert after.keys() == before.keys()
    assert after[("notes", 2)].checksum == checksum(tmp_path / "migrations" / "002_more.py")
    assert after[("notes", 2)].applied_at == before[("notes", 2)].applied_at  # history does not move
    assert after[("notes", 1)].checksum == before[("notes", 1)].checksum


def test_the_public_module_imports_neither_lancedb_nor_pyarrow() -> None:
    import subprocess
    import sys

    probe = ("import sys, migrator.lancedb as m; m.migration; m.Index('id'); "
             "print(sorted(x for x in ('lancedb', 'pyarrow', 'lance') if x in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_an_out_of_order_migration_runs_and_never_lowers_the_stamp(tmp_path: Path) -> None:
    files = {
        "001_t.py": '''
            import pyarrow as pa
            from migrator.lancedb import migration

            @migration(table="t", version=1)
            def create(db):
                db.create_table("t", schema=pa.schema([pa.field("id", pa.int64())]))

            @migration(table="t", version=3)
            def three(db):
                db.open_table("t").add_columns(pa.field("c3", pa.int64()))
        ''',
    }
    b = make(tmp_path, files)
    upgrade(b)
    late = make(tmp_path, {"002_t.py": '''
        import pyarrow as pa
        from migrator.lancedb import migration

        @migration(table="t", version=2, description="merged late")
        def two(db):
            db.open_table("t").add_columns(pa.field("c2", pa.int64()))
    '''})
    upgrade(late)  # the plan would refuse without --allow-out-of-order; the adapter runs what it is given
    db = lancedb.connect(str(tmp_path / "db"))
    assert "c2" in db.open_table("t").schema.names  # it ran: a higher stamp is not "already done"
    assert table_stamp(db, "t") == 3 and by_line(late.applied()) == {"t": [1, 2, 3]}
