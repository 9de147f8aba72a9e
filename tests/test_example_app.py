"""The example app (examples/notes_app): SQLite + LanceDB, migrated on start-up through ``Migrator.from_dict`` with
the app's own Engine and lancedb connection, a cross-backend requirement each way; then it writes and reads."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.lancedb

APP = Path(__file__).resolve().parents[1] / "examples" / "notes_app" / "app.py"
SWITCH = "002_note_chunks_768.py"
NEW_MODEL = "hashed-words-768"


def run_app(data: Path, *args: str, app: Path = APP) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, str(app), "--data", str(data), *args], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done


def load_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location("notes_app_example", APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def app_before_the_switch(tmp_path: Path) -> Path:
    """A copy of the app as released before the model switch: its migrations without the reembed file."""
    folder = tmp_path / "app before the switch"
    shutil.copytree(APP.parent, folder, ignore=shutil.ignore_patterns(SWITCH, "__pycache__"))
    assert (APP.parent / "migrations" / "vectors" / SWITCH).is_file()
    return folder / "app.py"


def applied(stderr: str) -> list[str]:
    return [line.split(": ", 2)[2].rsplit(" in ", 1)[0] for line in stderr.splitlines()
            if line.startswith("migrator.runner: ") and ": applied " in line]


def test_the_app_migrates_both_backends_on_start_up_then_writes_and_reads(tmp_path: Path) -> None:
    data = tmp_path / "notes data"
    first = run_app(data, "add", "Groceries", "Buy milk. Buy bread.")
    assert first.stdout == "note 1\n"
    # one plan across backends: the LanceDB table after the SQL table it requires, the SQL backfill after the
    # LanceDB table it reads and before that table's next version (the model switch)
    assert applied(first.stderr) == [
        "applied 001_notes", "applied note_chunks v1 (create note_chunks)", "applied 002_chunk_counts",
        f"applied note_chunks v2 (re-embed note_chunks with {NEW_MODEL})"]
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
    old.upgrade("vectors", to=1)
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


def test_an_install_from_before_the_model_switch_gets_768_d_vectors_and_the_new_tag_on_start_up(
        tmp_path: Path) -> None:
    import lancedb

    data = tmp_path / "data"
    old = app_before_the_switch(tmp_path)
    run_app(data, "add", "Groceries", "Buy milk. Buy bread.", app=old)
    run_app(data, "add", "Garden", "Water the tomatoes!", app=old)
    assert lancedb.connect(data / "lancedb").open_table("note_chunks").schema.field("vector").type.list_size == 384

    upgraded = run_app(data, "list")
    assert applied(upgraded.stderr) == [f"applied note_chunks v2 (re-embed note_chunks with {NEW_MODEL})"]
    app = load_app()
    chunks = lancedb.connect(data / "lancedb").open_table("note_chunks")
    rows = sorted(chunks.to_arrow().to_pylist(), key=lambda r: str(r["id"]))
    assert [(r["id"], r["text"]) for r in rows] == [("1-0", "Buy milk."), ("1-1", "Buy bread."),
                                                    ("2-0", "Water the tomatoes!")]
    for row in rows:
        assert row["vector_model"] == NEW_MODEL
        assert row["vector"] == pytest.approx(app.embed(row["text"], NEW_MODEL), abs=1e-6)
    assert app.recorded_model(chunks) == NEW_MODEL
    assert upgraded.stdout == "1\tGroceries\t2 chunk(s)\n2\tGarden\t1 chunk(s)\n"


@pytest.mark.slow  # nox -s slow; the default session keeps the start-up and the model switch
def test_search_after_the_model_switch_finds_the_right_note(tmp_path: Path) -> None:
    data = tmp_path / "data"
    old = app_before_the_switch(tmp_path)
    run_app(data, "add", "Groceries", "Buy milk. Buy bread.", app=old)
    run_app(data, "add", "Garden", "Water the tomatoes!", app=old)
    assert run_app(data, "search", "tomatoes", app=old).stdout.splitlines()[0] == "2\tGarden\tWater the tomatoes!"

    # the 768-d table is searched with a 768-d query (a 384-d one would be refused by LanceDB)
    found = run_app(data, "search", "tomatoes")
    assert "applied note_chunks v2" in found.stderr
    assert found.stdout.splitlines()[0] == "2\tGarden\tWater the tomatoes!"
    assert run_app(data, "search", "bread").stdout.splitlines()[0] == "1\tGroceries\tBuy bread."


@pytest.mark.slow  # nox -s slow; the default session keeps the start-up and the model switch
def test_a_note_added_after_the_switch_is_tagged_with_the_new_model_and_found(tmp_path: Path) -> None:
    import lancedb

    data = tmp_path / "data"
    run_app(data, "add", "Groceries", "Buy milk. Buy bread.", app=app_before_the_switch(tmp_path))
    assert run_app(data, "add", "Books", "Read Dune.").stdout == "note 2\n"
    table = lancedb.connect(data / "lancedb").open_table("note_chunks").to_arrow()
    assert dict(zip(table.column("id").to_pylist(), table.column("vector_model").to_pylist(), strict=True)) == {
        "1-0": NEW_MODEL, "1-1": NEW_MODEL, "2-0": NEW_MODEL}
    # searches keep to rows tagged with the table's model: an untagged row would not be found
    assert run_app(data, "search", "Dune").stdout.splitlines()[0] == "2\tBooks\tRead Dune."


def long_note(sentences: int) -> str:
    return " ".join(f"Sentence {n} is about topic{n}." for n in range(sentences))


@pytest.mark.slow  # nox -s slow; the default session keeps the start-up and the model switch
def test_the_switch_builds_the_declared_vector_index_when_the_table_has_rows_to_train_it(tmp_path: Path) -> None:
    import lancedb

    data = tmp_path / "data"
    run_app(data, "add", "Long", long_note(300), app=app_before_the_switch(tmp_path))
    run_app(data, "list")
    chunks = lancedb.connect(data / "lancedb").open_table("note_chunks")
    stats = chunks.index_stats("vector_idx")
    assert stats is not None and stats.distance_type == "cosine" and stats.num_indexed_rows == 300
    assert run_app(data, "search", "topic217").stdout.splitlines()[0] == "1\tLong\tSentence 217 is about topic217."


@pytest.mark.slow  # nox -s slow; the default session keeps the start-up and the model switch
def test_a_vector_index_deferred_on_a_fresh_install_is_built_on_the_start_up_after_enough_notes(
        tmp_path: Path) -> None:
    import lancedb

    data = tmp_path / "data"
    run_app(data, "add", "Long", long_note(300))
    assert "vector_idx" not in {i.name for i in lancedb.connect(data / "lancedb").open_table("note_chunks")
                                .list_indices()}  # deferred: the switch ran on an empty table
    run_app(data, "list")
    stats = lancedb.connect(data / "lancedb").open_table("note_chunks").index_stats("vector_idx")
    assert stats is not None and stats.distance_type == "cosine" and stats.num_indexed_rows == 300
