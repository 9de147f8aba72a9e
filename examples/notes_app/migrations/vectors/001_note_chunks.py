"""note_chunks v1: one row per chunk of a note's body, with its 384-d embedding.

``requires={"sqlite": 1}``: the chunks point at ``notes.id``, so this table is created once the
SQL side has its ``notes`` table.
"""

import pyarrow as pa

from migrator.lancedb import migration

DIM = 384
NOTE_CHUNKS = pa.schema([
    pa.field("id", pa.string(), nullable=False),          # "<note id>-<chunk number>"
    pa.field("note_id", pa.int64(), nullable=False),      # notes.id in SQLite
    pa.field("text", pa.string(), nullable=False),
    pa.field("vector", pa.list_(pa.float32(), DIM), nullable=False),
])


@migration(table="note_chunks", version=1, description="create note_chunks", requires={"sqlite": 1})
def create_note_chunks(db):
    db.create_table("note_chunks", schema=NOTE_CHUNKS)
