"""Progress of long LanceDB steps: one record type through the report callback, drawn by the CLI.

A recreation and a re-embedding report :class:`RowsProgress` (rows done, rows/s, ETA); an index build an
:class:`Activity`. On a terminal (a real pty here) the CLI draws a bar or a spinner with the elapsed time; off a
terminal it prints plain lines, a rows line only every few seconds (the notable ones).
"""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from ptyrun import on_a_pty
from rich.console import Console

from migrator import progress
from migrator.events import MigrationDone, MigrationProgress, MigrationStarted, PlanReady
from migrator.model import Direction, Migration
from migrator.progress import Activity, RowsProgress, RowsTracker, format_duration
from migrator.render import EventRenderer

SPINNER_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"   # rich's default "dots" spinner


@pytest.mark.parametrize(("seconds", "shown"), [
    (0.0, "0 ms"), (0.0004, "0 ms"), (0.031, "31 ms"), (0.999, "999 ms"), (1.0, "1.0 s"), (2.46, "2.4 s"),
    (59.99, "59.9 s"), (65, "1 min 05 s"), (3725, "1 h 02 min"),
])
def test_durations_are_ms_below_a_second_and_seconds_above(seconds: float, shown: str) -> None:
    assert format_duration(seconds) == shown


def test_a_rows_record_is_the_line_and_carries_its_numbers() -> None:
    record = RowsProgress("copied", 250, 1000, 50.0, notable=False)
    assert record == "copied 250 of 1,000 rows (50 rows/s, ETA 15.0 s)"
    assert (record.done, record.total, record.rate, record.eta_s, record.notable) == (250, 1000, 50.0, 15.0, False)
    final = RowsProgress("copied", 1000, 1000, 80.0, final=True)
    assert final.eta_s is None and final.notable and "ETA" not in final


def test_a_table_prefix_keeps_a_record_a_record() -> None:
    from migrator.backends.lancedb.common import prefixed

    seen: list[str] = []
    prefixed(seen.append, "docs")(RowsProgress("embedded", 5, 10, 1.0))
    prefixed(seen.append, "docs")(Activity("building BTREE index id_idx on id"))
    rows, activity = seen
    assert isinstance(rows, RowsProgress) and rows.startswith("docs: embedded 5 of 10 rows") and rows.done == 5
    assert isinstance(activity, Activity) and activity == "docs: building BTREE index id_idx on id"


def test_the_tracker_counts_from_the_checkpoint_and_rates_only_this_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "TICK_S", 0.0)
    seen: list[str] = []
    tracker = RowsTracker(seen.append, "embedded", 1000, done=400)
    tracker.add(100)
    last = seen[-1]
    assert isinstance(last, RowsProgress) and last.done == 500 and last.total == 1000
    assert last.eta_s is not None and last.eta_s == pytest.approx(500 / last.rate)
    assert tracker.line().final and tracker.line().done == 500


def _events(records: list[str]) -> list[object]:
    migration = Migration(version=2, name="add_flag", path=Path("002_add_flag.py"), checksum="x", line="docs")
    return [PlanReady("vec", Direction.UP, [migration], dry_run=False),
            MigrationStarted("vec", migration, Direction.UP),
            *(MigrationProgress("vec", migration, r) for r in records),
            MigrationDone("vec", migration, Direction.UP, 2400)]


def test_on_a_terminal_a_rows_step_is_a_bar_with_rate_and_eta() -> None:
    out = io.StringIO()
    renderer = EventRenderer(Console(file=out, force_terminal=True, width=150, color_system=None))
    for event in _events([RowsProgress("copied", 300, 1000, 150.0, notable=False)]):
        renderer(event)  # type: ignore[arg-type]
    renderer.close()
    text = out.getvalue()
    assert "vec: docs v2 (add_flag): copied" in text and "300/1,000 rows, 150 rows/s, ETA 4.6 s" in text
    assert "applied docs v2 (add_flag) (2.4 s)" in text


def test_on_a_terminal_an_index_build_is_a_spinner_with_the_elapsed_time() -> None:
    out = io.StringIO()
    renderer = EventRenderer(Console(file=out, force_terminal=True, width=150, color_system=None))
    for event in _events([Activity("building IVF_PQ index vector_idx on vector (slow)")]):
        renderer(event)  # type: ignore[arg-type]
    text = out.getvalue()
    assert "vec: docs v2 (add_flag): building IVF_PQ index vector_idx on vector (slow)" in text
    assert any(frame in text for frame in SPINNER_FRAMES) and "0:00:0" in text


def test_off_a_terminal_only_the_notable_rows_lines_are_printed() -> None:
    out = io.StringIO()
    renderer = EventRenderer(Console(file=out, force_terminal=False))
    records = [RowsProgress("copied", n, 1000, 100.0, notable=n == 500) for n in range(100, 1000, 100)]
    for event in _events([*records, Activity("building BTREE index id_idx on id")]):
        renderer(event)  # type: ignore[arg-type]
    lines = out.getvalue().splitlines()
    assert [line for line in lines if "rows" in line] == ["vec: docs v2 (add_flag): copied 500 of 1,000 rows "
                                                          "(100 rows/s, ETA 5.0 s)"]
    assert "vec: docs v2 (add_flag): building BTREE index id_idx on id" in lines
    assert "\x1b" not in out.getvalue()


def test_quiet_prints_no_progress() -> None:
    out = io.StringIO()
    renderer = EventRenderer(Console(file=out, force_terminal=False), quiet=True)
    for event in _events([RowsProgress("copied", 500, 1000, 100.0), Activity("building BTREE index id_idx on id")]):
        renderer(event)  # type: ignore[arg-type]
    assert out.getvalue() == ""


# -- end to end: the real CLI, a real LanceDB folder, on a pty and off it ---------------------------------------------

CREATE = '''\
import time
import pyarrow as pa
from migrator.lancedb import Index, migration, recreate_table, reembed

INDICES = [Index("vector", kind="IVF_PQ", num_partitions=2, num_sub_vectors=2)]


def vectors(rows, dim, scale=0.1):
    return pa.FixedSizeListArray.from_arrays(pa.array([scale * (i % 97) for i in range(rows * dim)], pa.float32()),
                                             dim)


@migration(table="docs", version=1, description="create docs", indices=INDICES)
def create_docs(db):
    db.create_table("docs", data=pa.table({"id": list(range(600)), "text": [f"t{i}" for i in range(600)],
                                           "vector": vectors(600, 8)}))
'''

SLOW_STEP = {
    "recreate": '''
def slow(batch):
    time.sleep(0.25)  # long enough for the tracker's ticks (every 0.5 s): a bar to draw
    text = pa.array([t + "!" for t in batch.column("text").to_pylist()])  # a changed column: the overwrite
    return batch.set_column(1, "text", text).append_column("flag", pa.array([True] * batch.num_rows))


@migration(table="docs", version=2, description="add a flag", indices=INDICES)
def add_flag(db):
    recreate_table(db, "docs", transform=slow, batch_size=100)
''',
    "columns": '''
def slow(batch):
    time.sleep(0.25)
    return batch.append_column("flag", pa.array([True] * batch.num_rows))


@migration(table="docs", version=2, description="add a flag", indices=INDICES)
def add_flag(db):
    recreate_table(db, "docs", transform=slow, batch_size=100)
''',
    "reembed": '''
def slow(batch):
    time.sleep(0.25)
    return vectors(batch.num_rows, 8, scale=0.2)


@migration(table="docs", version=2, description="embed again", indices=INDICES)
def embed_again(db):
    reembed(db, "docs", embed=slow, model="m2", dim=8, batch_size=100, index=INDICES[0])
''',
}
ACTION = {"recreate": "copied", "columns": "computed", "reembed": "embedded"}


def _lance_project(root: Path, step: str) -> Path:
    (root / "migrations").mkdir(parents=True)
    (root / "migrations" / "001_docs.py").write_text(CREATE + textwrap.dedent(SLOW_STEP[step]))
    (root / "migrator.toml").write_text('[backends.vec]\ntype = "lancedb"\nuri = "data/lance"\n'
                                        'migrations = "migrations"\n')
    return root


def _on_a_pty(args: list[str], cwd: Path, **env: str) -> str:
    return on_a_pty(args, cwd, columns=160, timeout=300, **env)


@pytest.mark.lancedb
@pytest.mark.parametrize("step", ["recreate", "reembed"])
def test_a_long_lancedb_step_shows_rows_rate_and_eta_then_an_index_spinner_on_a_terminal(
        tmp_path: Path, step: str) -> None:
    root = _lance_project(tmp_path / "proj", step)
    text = _on_a_pty(["upgrade"], root)
    assert f"vec: docs v2 ({'add a flag' if step == 'recreate' else 'embed again'}): {ACTION[step]}" in text
    assert " rows/s, ETA " in text and "/600 rows" in text           # the bar's detail column
    assert "index vector_idx on vector (slow)" in text
    assert any(frame in text for frame in SPINNER_FRAMES) and "0:00:0" in text  # spinner and elapsed time


@pytest.mark.lancedb
def test_a_recreation_that_only_adds_a_column_reports_its_path_and_the_rows_computed(tmp_path: Path) -> None:
    root = _lance_project(tmp_path / "proj", "columns")
    proc = subprocess.run([sys.executable, "-m", "migrator", "upgrade"], cwd=root, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "vec: docs v2 (add a flag): adding column flag (no rewrite, 1 index kept)" in lines, lines
    assert any(line.startswith("vec: docs v2 (add a flag): computed 600 of 600 rows (") for line in lines), lines


@pytest.mark.lancedb
def test_off_a_terminal_a_recreation_prints_plain_lines_without_escape_codes(tmp_path: Path) -> None:
    root = _lance_project(tmp_path / "proj", "recreate")
    proc = subprocess.run([sys.executable, "-m", "migrator", "upgrade"], cwd=root, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout
    lines = proc.stdout.splitlines()
    assert any(line.startswith("vec: docs v2 (add a flag): copied 600 rows in ") for line in lines), lines
    assert "vec: docs v2 (add a flag): rebuilding IVF_PQ index vector_idx on vector (slow)" in lines
    rows_lines = [line for line in lines if " rows/s" in line]
    assert len(rows_lines) <= 1, rows_lines       # 1.5 s of copying: at most one line per 5 s, not one per tick
