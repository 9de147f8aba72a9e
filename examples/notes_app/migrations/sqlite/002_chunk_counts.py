"""notes.chunk_count: how many vector chunks each note has, counted in LanceDB's ``note_chunks``.

A SQL backfill that reads a LanceDB table: ``requires`` makes the one upgrade plan run it once
``note_chunks`` has reached version 1 (on a fresh install: after the LanceDB migration that creates
the table, whichever backend the config lists first) and before a later version of that table runs.
The app keeps its LanceDB folder beside its SQLite file (``<data>/lancedb``).
"""

from pathlib import Path

import sqlalchemy as sa

requires = {"vectors": {"note_chunks": 1}}


def up(db):
    db.op.add_column("notes", sa.Column("chunk_count", sa.Integer(), nullable=False, server_default="0"))
    import lancedb

    folder = Path(db.connection.engine.url.database).parent / "lancedb"
    chunks = lancedb.connect(folder).open_table("note_chunks")
    note_ids = chunks.to_lance().to_table(columns=["note_id"]).column("note_id").to_pylist()
    counts: dict[int, int] = {}
    for note_id in note_ids:
        counts[note_id] = counts.get(note_id, 0) + 1
    for note_id, count in counts.items():
        db.execute("UPDATE notes SET chunk_count = :count WHERE id = :id", {"count": count, "id": note_id})


def down(db):
    db.op.drop_column("notes", "chunk_count")
