"""An application keeps writing while migrator restores: no commit migrator did not make is ever discarded."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import lancedb
import pytest
from lance_scripts.testlib import backend, by_line, memo_rows, rollback, upgrade, write_files
from lancedb.index import BTree

from migrator.backends.lancedb import guard
from migrator.backends.lancedb.bookkeeping import Bookkeeping
from migrator.errors import MigrationFailed
from migrator.lancedb import table_stamp

pytestmark = pytest.mark.lancedb

SCRIPTS = Path(__file__).resolve().parent / "lance_scripts"


def app_appends(uri: Path, start: int, count: int, table: str = "memos") -> None:
    """A real second writer: a child process that opens the table and appends ``count`` memo rows."""
    proc = subprocess.run([sys.executable, str(SCRIPTS / "append_rows.py"), str(uri), table, str(start), str(count)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr


def wait_for(path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


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


def ids(db: Any, table: str = "memos") -> list[int]:
    return sorted(db.open_table(table).to_arrow().column("id").to_pylist())


# -- the guard ------------------------------------------------------------------------------------------------------


def test_a_guarded_restore_is_refused_when_another_writer_committed_after_the_checked_version(tmp_path: Path) -> None:
    db = lancedb.connect(str(tmp_path / "db"))
    table = db.create_table("memos", data=memo_rows(10))
    table.add(memo_rows(5, start=10))
    checked = table.to_lance()
    app_appends(tmp_path / "db", start=100, count=3)
    with pytest.raises(guard.TableMoved):
        guard.restore(checked, 1, read_version=int(checked.version), table="memos")
    assert ids(db) == [*range(15), 100, 101, 102]


def test_a_guarded_restore_commits_on_the_version_it_checked(tmp_path: Path) -> None:
    db = lancedb.connect(str(tmp_path / "db"))
    table = db.create_table("memos", data=memo_rows(10))
    table.add(memo_rows(5, start=10))
    checked = table.to_lance()
    new = guard.restore(checked, 1, read_version=int(checked.version), table="memos")
    assert int(new.version) == int(checked.version) + 1 and ids(db) == list(range(10))


def test_a_restore_lance_rebases_over_an_application_commit_is_taken_back_keeping_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app commits between migrator's check and its commit: Lance would land the restore on top, hiding it."""
    import lance

    db = lancedb.connect(str(tmp_path / "db"))
    table = db.create_table("memos", data=memo_rows(10))
    table.add(memo_rows(5, start=10))
    checked = table.to_lance()
    real = lance.LanceDataset.commit
    calls: list[int] = []

    def app_first(*args: Any, **kwargs: Any) -> Any:
        if not calls:
            app_appends(tmp_path / "db", start=100, count=3)  # after the check, before the commit
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(lance.LanceDataset, "commit", staticmethod(app_first))
    with pytest.raises(guard.TableMoved):
        guard.restore(checked, 1, read_version=int(checked.version), table="memos")
    assert ids(db) == [*range(15), 100, 101, 102]


@pytest.mark.crash
@pytest.mark.parametrize("kind", ["restore", "overwrite"])
def test_guarded_commits_never_replace_a_commit_of_an_application_appending_back_to_back(
        tmp_path: Path, kind: str) -> None:
    """150 guarded commits against a live appender (lance_scripts/guard_stress.py); without the fix: 1 to 3 lost."""
    proc = subprocess.run([sys.executable, str(SCRIPTS / "guard_stress.py"), str(tmp_path), "150", kind,
                           "0" if kind == "restore" else "0.01"], capture_output=True, text=True, timeout=900,
                          check=False)
    summary = next((line for line in proc.stdout.splitlines() if line.startswith("rounds ")), proc.stderr[-2000:])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    words = summary.split()
    assert int(words[3]) > 0 and words[-1] == "0", summary  # some commits made it, no app batch lost


# -- a failed migration while the application appends ---------------------------------------------------------------

SLOW_FAILURE = '''
    import os, time
    import pyarrow as pa
    from migrator.lancedb import add_columns, migration
    from lance_scripts.testlib import memo_rows

    GATE = {gate!r}

    @migration(table="memos", version=1)
    def create(db):
        db.create_table("memos", data=memo_rows(100))

    @migration(table="memos", version=2)
    def slow_failure(db):
        {change}
        open(GATE + ".waiting", "w").close()  # "sleeps" until the app has appended
        while not os.path.exists(GATE + ".go"):
            time.sleep(0.01)
        raise RuntimeError("migration bug after a while")
'''

CHANGES = {
    "no-commit": "pass",
    "after-add-columns": 'add_columns(db, "memos", pa.field("note", pa.string()))',
    "after-a-delete": 'db.open_table("memos").delete("id < 10")',
}


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_a_failed_migration_keeps_the_rows_an_application_appended_meanwhile(tmp_path: Path, change: str) -> None:
    gate = tmp_path / "gate"
    migrations = write_files(tmp_path / "migrations", {
        "001_memos.py": SLOW_FAILURE.format(gate=str(gate), change=CHANGES[change])})
    b = backend(tmp_path / "db", migrations)
    upgrade(b, to=1)
    thread, out = run_in_thread(lambda: upgrade(b))
    wait_for(Path(f"{gate}.waiting"))
    app_appends(tmp_path / "db", start=5000, count=2)  # the app: 4 rows in two commits
    app_appends(tmp_path / "db", start=5002, count=2)
    Path(f"{gate}.go").touch()
    thread.join(120)
    error = out.get("error")
    assert isinstance(error, MigrationFailed) and "migration bug after a while" in str(error)
    db = lancedb.connect(str(tmp_path / "db"))
    assert ids(db) == [*range(100), 5000, 5001, 5002, 5003]  # every app row, once; the migration undone
    assert db.open_table("memos").schema.names == memo_rows(1).schema.names
    assert table_stamp(db, "memos") == 1 and by_line(b.applied()) == {"memos": [1]}
    assert "kept" in str(error)  # the message says what happened to the app's rows


def test_appended_rows_that_cannot_take_the_old_schema_leave_the_table_as_it_is_and_say_so(tmp_path: Path) -> None:
    migrations = write_files(tmp_path / "migrations", {"001_memos.py": '''
        import pyarrow as pa
        from migrator.lancedb import migration, recreate_table
        from lance_scripts.testlib import memo_rows

        @migration(table="memos", version=1)
        def create(db):
            db.create_table("memos", data=memo_rows(20))

        def stringify(batch):
            return batch.set_column(0, "id", batch.column("id").cast(pa.string()))

        @migration(table="memos", version=2)
        def string_ids(db):
            table = db.open_table("memos")
            schema = table.schema.set(0, pa.field("id", pa.string()))
            recreate_table(db, "memos", schema=schema, transform=stringify)
            db.open_table("memos").add(pa.table({"id": ["app-1"], "title": ["t"], "category": ["c"],
                                                 "rev": pa.array([0], pa.int64()),
                                                 "vector": memo_rows(1).column("vector")}))
            raise RuntimeError("fails after the app wrote a new-schema row")
    '''})
    b = backend(tmp_path / "db", migrations)
    upgrade(b, to=1)
    with pytest.raises(MigrationFailed) as err:
        upgrade(b)
    message = str(err.value)
    assert "left as it is" in message and "cannot be kept" in message and "Append" in message
    db = lancedb.connect(str(tmp_path / "db"))
    assert "app-1" in db.open_table("memos").to_arrow().column("id").to_pylist()


# -- rollback racing an append ----------------------------------------------------------------------------------------

ROLLBACK = '''
    import pyarrow as pa
    from migrator.lancedb import add_columns, migration
    from lance_scripts.testlib import memo_rows

    @migration(table="memos", version=1)
    def create(db):
        db.create_table("memos", data=memo_rows(50))

    @migration(table="memos", version=2)
    def note(db):
        add_columns(db, "memos", pa.field("note", pa.string()))
'''


def test_a_rollback_racing_an_application_append_refuses_and_keeps_the_row(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    migrations = write_files(tmp_path / "migrations", {"001_memos.py": ROLLBACK})
    b = backend(tmp_path / "db", migrations)
    upgrade(b)
    real = Bookkeeping.reverting

    def append_in_the_window(self: Bookkeeping, *args: Any, **kwargs: Any) -> Any:
        app_appends(tmp_path / "db", start=900, count=1)  # after the check, before the restore
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Bookkeeping, "reverting", append_in_the_window)
    with pytest.raises(MigrationFailed) as err:
        rollback(b, "memos", 1)
    assert "during the rollback" in str(err.value) and "Append" in str(err.value)
    db = lancedb.connect(str(tmp_path / "db"))
    assert ids(db) == [*range(50), 900] and "note" in db.open_table("memos").schema.names
    assert by_line(b.applied()) == {"memos": [1, 2]} and table_stamp(db, "memos") == 2


SLOW_SUCCESS = '''
    import os, time
    import pyarrow as pa
    import pyarrow.compute as pc
    from migrator.lancedb import Index, add_columns, migration, recreate_table
    from lance_scripts.testlib import memo_rows

    GATE = {gate!r}

    @migration(table="memos", version=1)
    def create(db):
        db.create_table("memos", data=memo_rows(50))

    def bump(batch):
        return batch.set_column(batch.schema.get_field_index("rev"), "rev", pc.add(batch.column("rev"), 1))

    @migration(table="memos", version=2, indices=[Index("id")])
    def slow(db):
        open(GATE + ".waiting", "w").close()  # works a while; the app appends meanwhile
        while not os.path.exists(GATE + ".go"):
            time.sleep(0.01)
        {change}
'''

SUCCESSES = {
    "add-columns": 'add_columns(db, "memos", pa.field("note", pa.string()))',
    "recreate-table": 'recreate_table(db, "memos", schema=db.open_table("memos").schema, transform=bump)',
}


@pytest.mark.parametrize("change", list(SUCCESSES), ids=list(SUCCESSES))
def test_a_rollback_of_a_migration_the_application_appended_during_refuses_and_keeps_the_rows(
        tmp_path: Path, change: str) -> None:
    gate = tmp_path / "gate"
    migrations = write_files(tmp_path / "migrations", {
        "001_memos.py": SLOW_SUCCESS.format(gate=str(gate), change=SUCCESSES[change])})
    b = backend(tmp_path / "db", migrations)
    upgrade(b, to=1)
    thread, out = run_in_thread(lambda: upgrade(b))
    wait_for(Path(f"{gate}.waiting"))
    app_appends(tmp_path / "db", start=700, count=2)  # while v2 runs: its rows are in v2's result
    Path(f"{gate}.go").touch()
    thread.join(120)
    assert "error" not in out, out.get("error")
    db = lancedb.connect(str(tmp_path / "db"))
    before = (db.open_table("memos").version, ids(db))
    with pytest.raises(MigrationFailed) as err:
        rollback(b, "memos", 1)  # restoring v1's Lance version would discard rows 700 and 701
    assert "appended while" in str(err.value) and "(Append)" in str(err.value)
    assert "nothing was changed" in str(err.value)
    assert (db.open_table("memos").version, ids(db)) == before and {700, 701} <= set(before[1])
    assert by_line(b.applied()) == {"memos": [1, 2]} and table_stamp(db, "memos") == 2


def test_a_rollback_racing_an_index_build_still_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    migrations = write_files(tmp_path / "migrations", {"001_memos.py": ROLLBACK})
    b = backend(tmp_path / "db", migrations)
    upgrade(b)
    real = Bookkeeping.reverting

    def index_in_the_window(self: Bookkeeping, *args: Any, **kwargs: Any) -> Any:
        lancedb.connect(str(tmp_path / "db")).open_table("memos").create_index("id", config=BTree())  # changes no rows
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Bookkeeping, "reverting", index_in_the_window)
    rollback(b, "memos", 1)
    db = lancedb.connect(str(tmp_path / "db"))
    assert "note" not in db.open_table("memos").schema.names and by_line(b.applied()) == {"memos": [1]}


def test_undo_writes_are_guarded_for_interrupted_runs_too(tmp_path: Path) -> None:
    """A dead run's commits mixed with app appends: restored, the app's rows appended again, the run repeated."""
    migrations = write_files(tmp_path / "migrations", {"001_memos.py": ROLLBACK})
    b = backend(tmp_path / "db", migrations)
    upgrade(b, to=1)
    from migrator.backends.lancedb.bookkeeping import EVENT_STARTED, Row, now_ms

    db = lancedb.connect(str(tmp_path / "db"))
    before = db.open_table("memos").version
    Bookkeeping("table_migrations").append(db, [Row("memos", 2, now_ms(), EVENT_STARTED, lance_version=before,
                                                    attempt="dead")])
    db.open_table("memos").delete("id < 5")  # what the dead run committed
    app_appends(tmp_path / "db", start=700, count=3)  # the app, meanwhile
    lines: list[str] = []
    upgrade(b, report=lines.append)
    assert ids(db) == [*range(50), 700, 701, 702]
    assert by_line(b.applied()) == {"memos": [1, 2]} and table_stamp(db, "memos") == 2
    assert any("appended again" in line for line in lines)



# -- recreation under a live writer (copy, catch up, cut over) -------------------------------------------------------

RECREATE = '''
    import os, time
    import pyarrow as pa
    import pyarrow.compute as pc
    from migrator.lancedb import Index, migration, recreate_table
    from lance_scripts.testlib import memo_rows

    GATE = {gate!r}
    TAGS = pa.field("tags", pa.list_(pa.string()))

    @migration(table="memos", version=1,
               indices=[Index("id"), Index("vector", kind={kind!r}, num_partitions=4{extra})])
    def create(db):
        db.create_table("memos", data=memo_rows({rows}))

    COPIES = []

    def add_tags(batch):
        if batch.num_rows and batch.column("id")[0].as_py() == 0:  # a copy of the whole table starts
            COPIES.append(1)
            n = len(COPIES)
            open(f"{{GATE}}.copying.{{n}}", "w").close()  # the test lets the app append twice meanwhile
            while not os.path.exists(f"{{GATE}}.go.{{n}}"):
                time.sleep(0.01)
        batch = batch.set_column(batch.schema.get_field_index("rev"), "rev", pc.add(batch.column("rev"), 1))
        return batch.append_column(TAGS, pa.array([[]] * batch.num_rows, TAGS.type))

    @migration(table="memos", version=2, description="tags")
    def tags(db):
        recreate_table(db, "memos", schema=db.open_table("memos").schema.append(TAGS), transform=add_tags,
                       batch_size=2048)
'''


class Writer:
    """The application: a child process appending 100 rows every 0.3 s (tests/lance_scripts/append_loop.py)."""

    def __init__(self, uri: Path, stop: Path, first: int) -> None:
        self.stop = stop
        self.errors = stop.with_suffix(".stderr")
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, str(SCRIPTS / "append_loop.py"), str(uri), "memos", str(first), "100", "0.3", str(stop)],
            stdout=subprocess.PIPE, stderr=self.errors.open("w"), text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def commits(self, stamp: int | None = None) -> list[tuple[int, int]]:
        out = []
        for line in list(self.lines):
            parts = line.split()
            if parts[0] == "committed" and (stamp is None or parts[3] == str(stamp)):
                out.append((int(parts[1]), int(parts[2])))
        return out

    def wait_commits(self, n: int, stamp: int | None = None, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.commits(stamp)) < n:
            assert self.proc.poll() is None, self.errors.read_text()
            assert time.monotonic() < deadline, f"the writer committed {len(self.commits(stamp))} of {n}"
            time.sleep(0.05)

    def finish(self) -> list[int]:
        self.stop.touch()
        self.proc.wait(timeout=120)
        self.reader.join(30)  # every line it printed, read by one reader only
        assert self.proc.returncode == 0, self.errors.read_text()
        assert self.lines and self.lines[-1] == "stopped", self.lines[-3:]
        return [i for first, count in self.commits() for i in range(first, first + count)]


def recreate_under_a_live_writer(tmp_path: Path, rows: int, kind: str) -> None:
    gate = tmp_path / "gate"
    migrations = write_files(tmp_path / "migrations", {
        "001_memos.py": RECREATE.format(gate=str(gate), rows=rows, kind=kind,
                                        extra=", num_sub_vectors=4" if kind == "IVF_PQ" else "")})
    b = backend(tmp_path / "db", migrations)
    upgrade(b, to=1)
    writer = Writer(tmp_path / "db", tmp_path / "stop", first=10_000_000)
    try:
        writer.wait_commits(1)
        lines: list[str] = []
        thread, out = run_in_thread(lambda: upgrade(b, report=lines.append))
        copies = 0
        while thread.is_alive():  # each copy of the whole table takes longer than the app waits between appends
            if Path(f"{gate}.copying.{copies + 1}").exists():
                copies += 1
                writer.wait_commits(len(writer.commits()) + 2)
                Path(f"{gate}.go.{copies}").touch()
            thread.join(0.05)
        assert "error" not in out, out.get("error")
        assert copies == 1  # copied once, then caught up: the writer never had to pause
        writer.wait_commits(2, stamp=2)  # and the app goes on writing, in the new form, after the cut-over
    finally:
        appended = writer.finish()
    db = lancedb.connect(str(tmp_path / "db"))
    table = db.open_table("memos")
    data = table.to_arrow()
    ids_there = data.column("id").to_pylist()
    assert len(ids_there) == len(set(ids_there))  # every row once
    assert sorted(ids_there) == sorted([*range(rows), *appended])  # every row the app committed, nothing else
    assert set(data.column("rev").to_pylist()) == {1}  # every row transformed (or written new by the app)
    assert data.column("tags").null_count == 0
    assert table_stamp(db, "memos") == 2 and by_line(b.applied()) == {"memos": [1, 2]}
    assert {"id_idx", "vector_idx"} <= {i.name for i in table.list_indices()}
    assert any("caught up with" in line for line in lines)


def test_a_recreation_under_an_app_appending_every_300_ms_keeps_every_row_once_transformed(tmp_path: Path) -> None:
    recreate_under_a_live_writer(tmp_path, rows=20_000, kind="IVF_FLAT")


@pytest.mark.slow
def test_a_200k_row_recreation_with_a_vector_index_under_a_live_writer(tmp_path: Path) -> None:
    recreate_under_a_live_writer(tmp_path, rows=200_000, kind="IVF_PQ")


def test_an_undo_run_again_after_its_append_commit_appends_nothing_twice(tmp_path: Path) -> None:
    """A kill after an undo's commits but before its bookkeeping: the next run's undo starts from that state."""
    from migrator.backends.lancedb.undo import undo_since

    db = lancedb.connect(str(tmp_path / "db"))
    table = db.create_table("memos", data=memo_rows(20))
    start = int(table.version)
    table.delete("id < 5")                      # the migration's change
    app_appends(tmp_path / "db", start=300, count=2)
    first = undo_since(db, "memos", start, lambda line: None)
    assert first.safe and ids(db) == [*range(20), 300, 301]
    again = undo_since(db, "memos", start, lambda line: None)  # what the next run does with the same intent
    assert again.safe and ids(db) == [*range(20), 300, 301]
