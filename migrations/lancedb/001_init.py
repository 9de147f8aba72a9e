"""The AI notes app's LanceDB tables at version 1.

Seven tables, each its own version line. Vectors are 384-dimensional float32
embeddings (fixed_size_list<float32>[384]), the size of common sentence
embedding models. Vector indices are declared here; on a fresh database they
are deferred until the table has enough rows to train them (see
migrator.lancedb.Index.min_rows) and built by a later migration of the table
or by migrator.lancedb.ensure_indices(db, table) after loading data.
"""

import pyarrow as pa

from migrator.lancedb import Index, migration

EMBEDDING_DIM = 384
VECTOR = pa.list_(pa.float32(), EMBEDDING_DIM)
MS = pa.int64()  # timestamps: ms since the epoch

USERS = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("email", pa.string(), nullable=False),
    pa.field("display_name", pa.string()),
    pa.field("created_at", MS, nullable=False),
])

NOTEBOOKS = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("user_id", pa.string(), nullable=False),
    pa.field("title", pa.string(), nullable=False),
    pa.field("created_at", MS, nullable=False),
    pa.field("updated_at", MS, nullable=False),
])

MEMOS_V1 = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("user_id", pa.string(), nullable=False),
    pa.field("notebook_id", pa.string()),
    pa.field("title", pa.string()),
    pa.field("content", pa.string(), nullable=False),
    pa.field("created_at", MS, nullable=False),
    pa.field("updated_at", MS, nullable=False),
    pa.field("vector", VECTOR),
])

TAGS = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("user_id", pa.string(), nullable=False),
    pa.field("name", pa.string(), nullable=False),
    pa.field("color", pa.string()),
])

ATTACHMENTS = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("memo_id", pa.string(), nullable=False),
    pa.field("filename", pa.string(), nullable=False),
    pa.field("mime_type", pa.string()),
    pa.field("size_bytes", pa.int64()),
    pa.field("uri", pa.string(), nullable=False),
])

CHUNKS = pa.schema([  # embeddings of memo and attachment text, for retrieval
    pa.field("id", pa.string(), nullable=False),
    pa.field("memo_id", pa.string(), nullable=False),
    pa.field("chunk_index", pa.int32(), nullable=False),
    pa.field("text", pa.string(), nullable=False),
    pa.field("model", pa.string()),
    pa.field("vector", VECTOR),
])

CONVERSATIONS = pa.schema([  # chats with the assistant, searchable by their summary
    pa.field("id", pa.string(), nullable=False),
    pa.field("user_id", pa.string(), nullable=False),
    pa.field("title", pa.string()),
    pa.field("summary", pa.string()),
    pa.field("messages_json", pa.string()),
    pa.field("created_at", MS, nullable=False),
    pa.field("updated_at", MS, nullable=False),
    pa.field("vector", VECTOR),
])


@migration(table="users", version=1, description="create users", indices=[Index("id"), Index("email")])
def create_users(db):
    db.create_table("users", schema=USERS)


@migration(table="notebooks", version=1, description="create notebooks", indices=[Index("user_id")])
def create_notebooks(db):
    db.create_table("notebooks", schema=NOTEBOOKS)


@migration(
    table="memos",
    version=1,
    description="create memos",
    indices=[
        Index("id"),
        Index("user_id"),
        Index("vector", kind="IVF_PQ", metric="cosine", num_sub_vectors=24),
    ],
)
def create_memos(db):
    db.create_table("memos", schema=MEMOS_V1)


@migration(table="tags", version=1, description="create tags", indices=[Index("user_id")])
def create_tags(db):
    db.create_table("tags", schema=TAGS)


@migration(table="attachments", version=1, description="create attachments", indices=[Index("memo_id")])
def create_attachments(db):
    db.create_table("attachments", schema=ATTACHMENTS)


@migration(
    table="chunks",
    version=1,
    description="create chunks (text embeddings)",
    indices=[Index("memo_id"), Index("vector", kind="IVF_PQ", metric="cosine", num_sub_vectors=24)],
)
def create_chunks(db):
    db.create_table("chunks", schema=CHUNKS)


@migration(
    table="conversations",
    version=1,
    description="create conversations",
    indices=[Index("user_id"), Index("vector", kind="IVF_HNSW_SQ", metric="cosine")],
)
def create_conversations(db):
    db.create_table("conversations", schema=CONVERSATIONS)
