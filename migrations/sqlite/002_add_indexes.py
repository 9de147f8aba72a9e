"""Indexes for listing documents by date and title."""

import sqlalchemy as sa


def up(db):
    db.execute("CREATE INDEX idx_documents_created ON documents(created_at)")
    db.op.add_column("documents", sa.Column("updated_at", sa.DateTime(), nullable=True))
    db.op.create_index("idx_documents_title", "documents", ["title"])


def down(db):
    db.op.drop_index("idx_documents_title", table_name="documents")
    db.op.drop_column("documents", "updated_at")  # SQLite's own DROP COLUMN; indices, triggers, views kept
    db.execute("DROP INDEX idx_documents_created")
