"""LanceDB on object storage (a real S3 API, moto's server): the demo, the leased migration lock, eight processes.

The lock on object storage is a leased object written only with conditional
puts (migrator/backends/lancedb/lock.py). These tests hold it from several
processes and threads, kill its holder with SIGKILL, and take it away from a
live holder, against the real S3 protocol.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import lancedb
import obstore
import pytest
from lance_scripts.testlib import by_line, upgrade
from s3 import SECRET, S3Bucket

from migrator.backends.lancedb import LanceBackend
from migrator.backends.lancedb.lock import LOCK_NAME, object_lock, object_store_for
from migrator.errors import BackendUnavailable, LockLost, LockTimeout, MigrationFailed
from migrator.lancedb import table_stamp
from migrator.model import Direction

pytestmark = pytest.mark.lancedb

DEMO = Path(__file__).resolve().parents[1] / "migrations" / "lancedb"
REPO = Path(__file__).resolve().parents[1]

# Each migration appends rows: running one twice would leave too many rows behind.
COUNTED = '''\
from migrator.lancedb import migration

@migration(table="notes", version=1, description="create notes")
def create_notes(db):
    db.create_table("notes", data=[{"id": i, "text": f"n{i}"} for i in range(50)])

@migration(table="notes", version=2, description="append ten")
def append_ten(db):
    db.open_table("notes").add([{"id": 100 + i, "text": "more"} for i in range(10)])

@migration(table="people", version=1, description="create people")
def create_people(db):
    db.create_table("people", data=[{"id": 1, "name": "ann"}])

@migration(table="people", version=2, description="append one")
def append_one(db):
    db.open_table("people").add([{"id": 2, "name": "bob"}])
'''


def backend(bucket: S3Bucket, migrations: Path = DEMO, **kwargs: float) -> LanceBackend:
    return LanceBackend("vectors", bucket.uri(), migrations, storage_options=bucket.storage_options, **kwargs)


def lock_body(bucket: S3Bucket) -> dict[str, object]:
    store = object_store_for(bucket.uri(), bucket.storage_options)
    return dict(json.loads(bytes(obstore.get(store, LOCK_NAME).bytes())))


def s3_project(tmp_path: Path, bucket: S3Bucket, lease: float = 30.0) -> Path:
    root = tmp_path / "proj"
    (root / "migrations" / "vec").mkdir(parents=True)
    (root / "migrations" / "vec" / "001_counted.py").write_text(COUNTED)
    options = ", ".join(f'{k} = "{v}"' for k, v in bucket.storage_options.items())
    (root / "migrator.toml").write_text(textwrap.dedent(f'''\
        default_backend = "vec"

        [backends.vec]
        type = "lancedb"
        uri = "{bucket.uri()}"
        migrations = "migrations/vec"
        lock_lease = {lease}
        storage_options = {{ {options} }}
        '''))
    return root


def migrator(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "migrator", *args], cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


# -- the demo ------------------------------------------------------------------------------------------------------


def test_the_demo_runs_on_s3(s3_bucket: S3Bucket) -> None:
    b = backend(s3_bucket)
    assert b.location == s3_bucket.uri() and b.local_path is None
    assert b.applied() == []
    upgrade(b)
    assert by_line(b.applied())["memos"] == [1, 2]
    assert upgrade(b) == []
    db = lancedb.connect(s3_bucket.uri(), storage_options=s3_bucket.storage_options)
    assert table_stamp(db, "memos") == 2
    assert "tags" in db.open_table("memos").schema.names
    assert SECRET not in repr(b) and SECRET in b._secrets  # scrubbed from messages


# -- the leased lock -----------------------------------------------------------------------------------------------


def test_the_lock_is_an_object_beside_the_tables_marked_free_on_release(s3_bucket: S3Bucket) -> None:
    b = backend(s3_bucket)
    with b.lock(5):
        held = lock_body(s3_bucket)
        assert held["state"] == "held" and f"pid {os.getpid()}" in str(held["holder"])
    assert lock_body(s3_bucket)["state"] == "free"


def test_a_second_holder_times_out_naming_the_first(s3_bucket: S3Bucket) -> None:
    first, second = backend(s3_bucket), backend(s3_bucket)
    with first.lock(5):
        started = time.monotonic()
        with pytest.raises(LockTimeout) as err, second.lock(0.5):
            pass
        assert time.monotonic() - started >= 0.5
    message = str(err.value)
    assert "vectors (lancedb at s3://" in message and LOCK_NAME in message and f"pid {os.getpid()}" in message
    assert SECRET not in message


def test_a_released_lock_is_taken_at_once(s3_bucket: S3Bucket) -> None:
    with backend(s3_bucket).lock(5):
        pass
    started = time.monotonic()
    with backend(s3_bucket).lock(0.1):
        assert lock_body(s3_bucket)["state"] == "held"
    assert time.monotonic() - started < 5  # no lease to wait out


def test_threads_racing_for_the_lock_hold_it_one_at_a_time(s3_bucket: S3Bucket) -> None:
    inside: list[int] = []
    overlaps: list[int] = []

    def worker(n: int) -> None:
        with backend(s3_bucket).lock(60):
            inside.append(n)
            if len(inside) > 1:
                overlaps.append(n)
            time.sleep(0.05)
            inside.remove(n)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert overlaps == [] and inside == []
    assert lock_body(s3_bucket)["state"] == "free"


def test_the_heartbeat_keeps_a_live_holders_lock_past_its_lease(s3_bucket: S3Bucket) -> None:
    with backend(s3_bucket, lock_lease=1.5).lock(5):
        beat = lock_body(s3_bucket)["beat"]
        with pytest.raises(LockTimeout), backend(s3_bucket, lock_lease=1.5).lock(4.0):
            pass  # waited well past a lease: the holder kept beating
        assert int(str(lock_body(s3_bucket)["beat"])) > int(str(beat))


def test_the_lock_of_a_killed_holder_is_taken_over_after_its_lease(s3_bucket: S3Bucket) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f'''
            import sys, time
            from pathlib import Path
            from migrator.backends.lancedb import LanceBackend
            b = LanceBackend("vectors", {s3_bucket.uri()!r}, Path({str(DEMO)!r}),
                             storage_options={s3_bucket.storage_options!r}, lock_lease=1.5)
            with b.lock(10):
                print("held", flush=True)
                time.sleep(600)
            ''')],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        assert lock_body(s3_bucket)["state"] == "held"  # the dead holder never released it
        with pytest.raises(LockTimeout) as err, backend(s3_bucket).lock(0.3):
            pass
        assert "1.5 s after its last heartbeat" in str(err.value)
        started = time.monotonic()
        with backend(s3_bucket).lock(10):
            waited = time.monotonic() - started
            assert f"pid {os.getpid()}" in str(lock_body(s3_bucket)["holder"])
        assert waited < 10
    finally:
        holder.kill()
        holder.wait()


def test_a_holder_whose_lock_was_taken_over_stops_before_the_next_migration(s3_bucket: S3Bucket) -> None:
    b = backend(s3_bucket, lock_lease=0.6)
    with pytest.raises(LockLost) as err, b.lock(5):
        store = object_store_for(s3_bucket.uri(), s3_bucket.storage_options)
        obstore.put(store, LOCK_NAME, b'{"state": "held", "holder": "someone else", "lease": 30}')
        deadline = time.monotonic() + 20
        while b._lease is not None and not b._lease.lost and time.monotonic() < deadline:
            time.sleep(0.05)  # the next heartbeat finds a stranger's etag
        (first, *_) = b.discover()
        b.apply(first, Direction.UP, lambda _: None)
    assert "lost the migration lock" in str(err.value) and "vectors (lancedb at s3://" in str(err.value)
    assert b.applied() == []  # nothing ran
    assert lock_body(s3_bucket)["holder"] == "someone else"  # not released over the new holder


def test_storage_options_reach_the_lock_under_lances_names_and_aliases(s3_bucket: S3Bucket) -> None:
    options = {"access_key_id": "test", "secret_access_key": SECRET, "endpoint": s3_bucket.endpoint,
               "region": "us-east-1", "allow_http": "true", "download_retry_count": "3"}  # the last: Lance's own
    with object_lock(object_store_for(s3_bucket.uri(), options), 5, "here"):
        assert lock_body(s3_bucket)["state"] == "held"


@pytest.mark.parametrize(
    ("uri", "options", "store"),
    [
        ("s3+ddb://b/p", {"region": "us-east-1", "endpoint": "http://127.0.0.1:9"}, 'S3Store(bucket="b", prefix="p")'),
        ("gcs://b/p", {"google_skip_signature": "true", "download_retry_count": "3"},
         'GCSStore(bucket="b", prefix="p")'),
        ("az://c/p", {"azure_storage_account_name": "acct", "account_key": "a2V5"},
         'AzureStore(container_name="c", account_name="acct", prefix="p")'),
    ],
    ids=["s3-ddb-aliases", "gcs", "azure"],
)
def test_each_object_store_scheme_gets_a_lock_store(uri: str, options: dict[str, str], store: str) -> None:
    assert repr(object_store_for(uri, options)) == store


def test_an_unreachable_store_is_one_masked_line(tmp_path: Path) -> None:
    options = {"aws_access_key_id": "test", "aws_secret_access_key": SECRET, "aws_endpoint": "http://127.0.0.1:9",
               "aws_region": "us-east-1", "allow_http": "true"}
    b = LanceBackend("vectors", "s3://bucket/prefix", DEMO, storage_options=options)
    with pytest.raises(BackendUnavailable) as err, b.lock(1):
        pass
    message = str(err.value)
    assert message.startswith("vectors (lancedb at s3://bucket/prefix): cannot write the migration lock")
    assert "\n" not in message and SECRET not in message


def test_a_storage_without_a_lock_is_refused_by_name() -> None:
    b = LanceBackend("vectors", "hf://datasets/x", DEMO)
    with pytest.raises(BackendUnavailable) as err, b.lock(1):
        pass
    assert "vectors" in str(err.value) and "hf://" in str(err.value)


# -- processes -----------------------------------------------------------------------------------------------------


@pytest.mark.slow  # nox -s slow; the default session runs the same race on a local folder (test_cli_lancedb.py)
@pytest.mark.timeout(900)
def test_eight_concurrent_upgrades_on_s3_apply_each_migration_once(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    root = s3_project(tmp_path, s3_bucket)
    config = root / "migrator.toml"   # waiting is not under test: a loaded machine must not time it out
    config.write_text("lock_timeout = 600\n" + config.read_text())
    procs = [migrator(root, "upgrade") for _ in range(8)]
    outcomes = [(p.wait(timeout=900), p.stderr.read() if p.stderr else "") for p in procs]
    assert all(code == 0 for code, _ in outcomes), outcomes
    history = json.loads(migrator(root, "history", "--json").communicate(timeout=120)[0])["backends"][0]["history"]
    assert sorted((h["line"], h["version"]) for h in history) == [("notes", 1), ("notes", 2), ("people", 1),
                                                                   ("people", 2)]
    db = lancedb.connect(s3_bucket.uri(), storage_options=s3_bucket.storage_options)
    assert db.open_table("notes").count_rows() == 60 and db.open_table("people").count_rows() == 2


def test_upgrade_after_a_killed_upgrade_continues_once_the_lease_runs_out(tmp_path: Path,
                                                                          s3_bucket: S3Bucket) -> None:
    root = s3_project(tmp_path, s3_bucket, lease=2.0)
    first = migrator(root, "upgrade")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and first.poll() is None:
        try:
            if lock_body(s3_bucket)["state"] == "held":
                break
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    first.kill()
    first.wait()
    second = migrator(root, "upgrade")
    _out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    db = lancedb.connect(s3_bucket.uri(), storage_options=s3_bucket.storage_options)
    assert db.open_table("notes").count_rows() == 60 and db.open_table("people").count_rows() == 2
    assert lock_body(s3_bucket)["state"] == "free"


def test_a_failed_migration_on_s3_is_undone_by_a_guarded_restore_that_keeps_appended_rows(
        tmp_path: Path, s3_bucket: S3Bucket) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "001_notes.py").write_text(textwrap.dedent('''\
        import pyarrow as pa
        from migrator.lancedb import add_columns, migration

        @migration(table="notes", version=1, description="create notes")
        def create_notes(db):
            db.create_table("notes", data=[{"id": i, "text": f"n{i}"} for i in range(50)])

        @migration(table="notes", version=2, description="half done")
        def half(db):
            add_columns(db, "notes", pa.field("note", pa.string()))
            db.open_table("notes").add([{"id": 900 + i, "text": "app", "note": None} for i in range(3)])
            raise RuntimeError("planned")
        '''))
    b = backend(s3_bucket, folder)
    upgrade(b, to=1)
    with pytest.raises(MigrationFailed, match="planned"):
        upgrade(b)
    db = lancedb.connect(s3_bucket.uri(), storage_options=s3_bucket.storage_options)
    notes = db.open_table("notes")
    assert sorted(notes.to_arrow().column("id").to_pylist()) == [*range(50), 900, 901, 902]
    assert notes.schema.names == ["id", "text"] and table_stamp(db, "notes") == 1
