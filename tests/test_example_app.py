"""The example app (examples/notes_app): SQLite + LanceDB, migrated on start-up through ``Migrator.from_dict`` with
the app's own Engine and lancedb connection, a cross-backend requirement each way; then it writes and reads."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.lancedb

APP = Path(__file__).resolve().parents[1] / "examples" / "notes_app" / "app.py"


def run_app(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, str(APP), "--data", str(data), *args], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done


def load_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location("notes_app_example", APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_app_migrates_both_backends_on_start_up_then_writes_and_reads(tmp_path: Path) -> None:
    data = tmp_path / "notes data"
    first = run_app(data, "add", "Groceries", "Buy milk. Buy bread.")
    assert first.stdout == "note 1\n"
    steps = [line.split(": ", 2)[2] for line in first.stderr.splitlines()
             if line.startswith("migrator.runner: ") and ": applied " in line]
    # one plan across backends: the LanceDB table after the SQL table it requires, the SQL backfill after the
    # LanceDB table it reads
    assert [s.rsplit(" in ", 1)[0] for s in steps] == [
        "applied 001_notes", "applied note_chunks v1 (create note_chunks)", "applied 002_chunk_counts"]
    assert "Will assume" not in first.stderr  # Alembic's context stays quiet (002 uses db.op)

    second = run_app(data, "search", "bread")
    assert second.stdout.splitlines()[0] == "1\tGroceries\tBuy bread."
    assert "sqlite: nothing to apply" in second.stderr and "vectors: nothing to apply" in second.stderr


def test_an_older_install_is_backfilled_from_lancedb_when_the_app_starts(tmp_path: Path) -> None:
    """An install from before 002: notes and chunks exist; the next start-up counts the chunks into SQL."""
    import lancedb
    import sqlalchemy as sa

    app = load_app()
    data = tmp_path / "data"
    data.mkdir()
    engine = sa.create_engine(f"sqlite:///{data / 'notes.db'}")
    vectors = lancedb.connect(data / "lancedb")
    old = app.migrator_for(engine, vectors)
    old.upgrade("sqlite", to=1)
    old.upgrade("vectors")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO notes (id, title, body) VALUES (1, 'a', 'x. y.'), (2, 'b', 'z')"))
    vectors.open_table("note_chunks").add([
        {"id": f"{note}-{n}", "note_id": note, "text": "t", "vector": app.embed("t")}
        for note, n in [(1, 0), (1, 1), (2, 0)]])
    engine.dispose()

    notes = app.NotesApp.open(data)
    try:
        assert notes.notes() == [(1, "a", 2), (2, "b", 1)]
        assert notes.add_note("c", "One. Two. Three.") == 3
        assert notes.search("Three")[0][:2] == (3, "c")
        assert notes.engine.pool.checkedout() == 0  # the engine is the app's: migrator left it usable
    finally:
        notes.close()
