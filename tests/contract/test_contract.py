"""The adapter contract (``backends/base.py``), one suite for every adapter (golang-migrate's ``database/testing``).

Each case runs once per set-up of ``conftest.py`` (SQLite file, PostgreSQL, LanceDB folder, LanceDB on S3) through
the harness of ``harness.py``, and talks to the adapter only through the ``Backend`` protocol (the interrupted
step also through the ``Runner``, which is how an operator sees it). Adapter test files keep only what is
specific to one adapter.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from migrator.backends.base import Backend
from migrator.errors import LockTimeout, MigrationFailed, MigratorError, UsageError
from migrator.events import Event, MigrationFailedEvent, MigrationProgress
from migrator.model import AppliedMigration, Direction, Migration
from migrator.runner import Runner

from .harness import FAILURE, SIGNAL_ENV, Harness

TESTS = Path(__file__).resolve().parents[1]


def quiet(message: str) -> None:
    pass


def upgrade(backend: Backend) -> list[AppliedMigration]:
    """What a runner does, through the protocol only: lock, load what is pending, prepare, apply in order."""
    with backend.lock(30):
        done = {(a.line, a.version) for a in backend.applied()}
        steps = backend.load([m for m in backend.discover() if (m.line, m.version) not in done])
        backend.prepare()
        records = []
        for step in steps:
            record = backend.apply(step, Direction.UP, quiet)
            assert record is not None
            records.append(record)
    return records


def versions(applied: Sequence[AppliedMigration]) -> list[int]:
    return sorted(a.version for a in applied)


def by_version(migrations: Sequence[Migration], version: int) -> Migration:
    return next(m for m in migrations if m.version == version)


def child(harness: Harness, action: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "contract.child", harness.spec_json(), action], cwd=TESTS,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(TESTS), **env})


def hold_lock(harness: Harness) -> subprocess.Popen[str]:
    holder = child(harness, "hold")
    assert holder.stdout is not None
    line = holder.stdout.readline()
    if line.strip() != "locked":
        holder.kill()
        _, err = holder.communicate()
        raise AssertionError(f"the lock holder did not start: {line!r} {err}")
    return holder


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()


# -- reading ------------------------------------------------------------------------------------------------------


def test_the_backend_satisfies_the_protocol_and_its_location_hides_secrets(harness: Harness) -> None:
    backend = harness.backend()
    assert isinstance(backend, Backend)
    assert backend.name == "contract" and backend.type and backend.location
    assert not any(secret in backend.location for secret in harness.secrets)


def test_a_fresh_read_creates_nothing(harness: Harness) -> None:
    before = harness.footprint()
    assert list(harness.backend().applied()) == []
    assert harness.footprint() == before


def test_drift_is_empty_on_a_fresh_and_on_a_consistent_database(harness: Harness) -> None:
    harness.write_ok(1)
    harness.write_ok(2)
    backend = harness.backend()
    assert list(backend.drift(backend.discover(), backend.applied())) == []
    upgrade(backend)
    fresh = harness.backend()
    assert list(fresh.drift(fresh.discover(), fresh.applied())) == []


# -- bookkeeping --------------------------------------------------------------------------------------------------


def test_prepare_is_idempotent_and_keeps_the_rows(harness: Harness) -> None:
    harness.write_ok(1)
    backend = harness.backend()
    with backend.lock(30):
        backend.prepare()
        backend.prepare()
    assert list(backend.applied()) == []
    upgrade(backend)
    rows = harness.version_rows()
    again = harness.backend()
    with again.lock(30):
        again.prepare()
        again.prepare()
    assert versions(again.applied()) == [1]
    assert harness.version_rows() == rows


def test_stamp_records_without_running_anything(harness: Harness) -> None:
    harness.write_ok(1)
    harness.write_ok(2)
    backend = harness.backend()
    found = backend.discover()
    with backend.lock(30):
        backend.prepare()
        backend.stamp(found)
        backend.stamp(found[:1])  # already recorded: nothing new
    assert harness.user_data() == {}
    applied = harness.backend().applied()
    assert [(a.version, a.checksum, a.duration_ms) for a in sorted(applied, key=lambda a: a.version)] == [
        (m.version, m.checksum, None) for m in found  # nothing ran: no duration
    ]


def test_unstamp_removes_the_rows_without_running_anything(harness: Harness) -> None:
    harness.write_ok(1)
    harness.write_ok(2)
    backend = harness.backend()
    upgrade(backend)
    data = harness.user_data()
    found = backend.discover()
    with backend.lock(30):
        backend.unstamp([by_version(found, 2)])
    assert versions(harness.backend().applied()) == [1]
    assert harness.user_data() == data
    with backend.lock(30):
        backend.unstamp([by_version(found, 1)])
    assert list(harness.backend().applied()) == []
    assert harness.user_data() == data


def test_record_checksums_round_trips_an_edited_file(harness: Harness) -> None:
    path = harness.write_ok(1)
    harness.write_ok(2)
    backend = harness.backend()
    upgrade(backend)
    before = {a.version: a for a in backend.applied()}
    path.write_text(path.read_text(encoding="utf-8") + "# edited on purpose after it was applied\n", encoding="utf-8")
    edited = by_version(harness.backend().discover(), 1)
    assert edited.checksum != before[1].checksum
    with backend.lock(30):
        backend.record_checksums([edited])
    after = {a.version: a for a in harness.backend().applied()}
    assert after[1].checksum == edited.checksum
    assert after[1].applied_at == before[1].applied_at  # recording a checksum does not re-date the migration
    assert after[2].checksum == before[2].checksum


# -- applying -----------------------------------------------------------------------------------------------------


def test_a_failed_apply_keeps_the_data_the_version_and_the_bookkeeping(harness: Harness) -> None:
    harness.write_ok(1)
    backend = harness.backend()
    upgrade(backend)
    data, rows, applied = harness.user_data(), harness.version_rows(), backend.applied()
    path = harness.write_failing(2)
    with pytest.raises(MigrationFailed) as failed:
        upgrade(harness.backend())
    assert FAILURE in str(failed.value) and path.name in str(failed.value)
    assert (failed.value.backend, failed.value.line, failed.value.version) == ("contract", harness.line, 2)
    assert harness.user_data() == data
    assert harness.version_rows() == rows
    assert harness.backend().applied() == applied


def test_a_failed_migration_applies_once_its_file_is_fixed(harness: Harness) -> None:
    harness.write_ok(1)
    upgrade(harness.backend())
    broken = harness.write_failing(2)
    with pytest.raises(MigrationFailed):
        upgrade(harness.backend())
    broken.unlink()  # the failed attempt left nothing behind that stops the fixed file
    harness.write_ok(2)
    upgrade(harness.backend())
    assert versions(harness.backend().applied()) == [1, 2]
    assert list(harness.user_data()["items"][1]) == [(1,), (2,)]


def test_a_step_killed_half_way_is_reported_by_the_next_run(harness: Harness, tmp_path: Path) -> None:
    harness.write_ok(1)
    upgrade(harness.backend())
    slow = harness.write_interruptible(2)
    signal_file = tmp_path / "in-the-step"
    running = child(harness, "upgrade", **{SIGNAL_ENV: str(signal_file)})
    try:
        deadline = time.monotonic() + 120
        while not signal_file.exists():
            assert running.poll() is None, f"the child ended before the step: {running.communicate()}"
            assert time.monotonic() < deadline, "the child never reached the step"
            time.sleep(0.05)
        running.send_signal(signal.SIGKILL)
    finally:
        stop(running)
    assert running.returncode == -signal.SIGKILL
    assert 2 not in versions(harness.backend().applied())

    events: list[Event] = []
    said: list[tuple[int | None, str]] = []
    try:
        result = Runner(harness.backend(), events.append, lock_timeout=30).upgrade()
    except MigratorError as exc:
        said.append((None, str(exc)))
    else:
        said += [(m.version, message) for m, message in result.failures]
    for event in events:
        if isinstance(event, MigrationProgress):
            said.append((event.migration.version, event.message))
        elif isinstance(event, MigrationFailedEvent):
            said.append((event.migration.version, event.error))
    assert any("interrupted" in text and (version == 2 or slow.stem in text) for version, text in said), said


# -- locking ------------------------------------------------------------------------------------------------------


def test_the_lock_excludes_another_process_and_names_it(harness: Harness) -> None:
    holder = hold_lock(harness)
    try:
        backend = harness.backend()
        with pytest.raises(LockTimeout) as timed_out, backend.lock(0.5):
            pass
    finally:
        stop(holder)
    message = str(timed_out.value)
    assert message.startswith(backend.name) and "\n" not in message  # the backend is named ...
    assert backend.location in message  # ... and its database ...
    assert f"pid {holder.pid}" in message  # ... and the holder
    assert not any(secret in message for secret in harness.secrets)


def test_a_wait_for_the_lock_is_told_once_naming_the_holder(harness: Harness) -> None:
    told: list[str] = []
    holder = hold_lock(harness)
    try:
        backend = harness.backend()
        with pytest.raises(LockTimeout), backend.lock(0.8, told.append):
            pass
    finally:
        stop(holder)
    assert len(told) == 1, told  # once, not once per try
    assert told[0].startswith("waiting for the migration lock (held by ") and told[0].endswith("up to 0.8 s")
    assert f"pid {holder.pid}" in told[0]
    assert "\n" not in told[0] and not any(secret in told[0] for secret in harness.secrets)


def test_a_lock_taken_at_the_first_try_tells_nothing(harness: Harness) -> None:
    told: list[str] = []
    with harness.backend().lock(5, told.append):
        pass
    assert told == []


def test_the_lock_is_free_again_once_its_holder_lets_go(harness: Harness) -> None:
    holder = hold_lock(harness)
    try:
        assert holder.stdin is not None
        holder.stdin.close()  # the holder releases the lock and exits
        assert holder.wait(60) == 0
    finally:
        stop(holder)
    backend = harness.backend()
    with backend.lock(5):
        pass
    with backend.lock(0):  # and this process's own release lets the next one in at once
        pass


# -- backup and closing -------------------------------------------------------------------------------------------


def test_backup_holds_the_data_or_is_refused_naming_the_backend(harness: Harness) -> None:
    harness.write_ok(1)
    backend = harness.backend()
    upgrade(backend)
    data = harness.user_data()
    lines: list[str] = []
    if not harness.backs_up:
        with pytest.raises(UsageError) as refused:
            backend.backup(lines.append)
        assert str(refused.value).startswith(backend.name) and "\n" not in str(refused.value)
        assert harness.user_data() == data
        return
    where = backend.backup(lines.append)
    assert where and lines
    harness.write_ok(2)
    upgrade(harness.backend())  # the data moves on; the backup does not
    assert harness.user_data() != data
    assert harness.backup_data(where) == data


def test_close_is_idempotent_and_the_backend_opens_again(harness: Harness) -> None:
    harness.write_ok(1)
    never_used = harness.backend()
    never_used.close()
    never_used.close()
    backend = harness.backend()
    upgrade(backend)
    backend.close()
    backend.close()
    assert versions(backend.applied()) == [1]
    backend.close()
