"""memos v2: a `tags` list<string> column, filled with empty lists.

Done by a streamed recreation (the table is rewritten batch by batch, its
indices rebuilt with their parameters) rather than `add_columns`, because the
new column is non-null with a value for every existing row.
"""

import pyarrow as pa

from migrator.lancedb import migration, recreate_table

TAGS = pa.field("tags", pa.list_(pa.string()), nullable=False)


def add_empty_tags(batch: pa.RecordBatch) -> pa.RecordBatch:
    empty = pa.array([[]] * batch.num_rows, type=TAGS.type)
    return batch.append_column(TAGS, empty)


@migration(table="memos", version=2, description="add tags to memos")
def add_tags(db):
    memos = db.open_table("memos")
    recreate_table(db, "memos", schema=memos.schema.append(TAGS), transform=add_empty_tags)
