"""A tiny notes app that keeps its rows in SQLite and their vectors in LanceDB, migrated on start-up.

    python examples/notes_app/app.py --data /tmp/notes add "Groceries" "Buy milk. Buy bread."
    python examples/notes_app/app.py --data /tmp/notes search "bread"

On start-up (:meth:`NotesApp.open`) the app builds its own SQLAlchemy Engine and lancedb connection,
hands both to ``Migrator.from_dict`` and upgrades every backend in one plan (the migrations declare
cross-backend ``requires``), then opens its tables: migrator never disposes the engine nor closes the
connection, and the app opens its LanceDB tables only after the migration (a table handle opened
before an overwrite would be stale). migrator logs each step through the standard ``logging`` module
(logger ``migrator``); ``main`` shows those records with ``logging.basicConfig``.

The embeddings are stand-ins (hashed words) so the example needs no model download: ``note_chunks`` v1 was
made with the 384-d ``hashed-words-384``; its v2 migration switches the table to the 768-d ``hashed-words-768``
with ``reembed``, which records the model in a per-row tag (``vector_model``) and in the table's schema metadata
(``migrator.embedding.vector``). The app embeds queries and new chunks with the model the table records, and
its searches keep to rows tagged with it, so a 768-d table is never searched with a 384-d query.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import re
import sys
from pathlib import Path
from typing import Any

import lancedb
import sqlalchemy as sa
from sqlalchemy.engine import URL

from migrator import Migrator
from migrator.lancedb import Index, ensure_indices

HERE = Path(__file__).resolve().parent
MODELS = {"hashed-words-384": 384, "hashed-words-768": 768}
"""The stand-in embedding models and their dimensions."""
FIRST_MODEL = "hashed-words-384"
"""The model of ``note_chunks`` v1, which records none (it predates the switch)."""
VECTOR = "vector"
MODEL_TAG = "vector_model"
EMBEDDING_META = b"migrator.embedding." + VECTOR.encode()
_WORD = re.compile(r"\w+")


def embed(text: str, model: str = FIRST_MODEL) -> list[float]:
    """A deterministic bag of hashed words, unit length (texts sharing words are near); ``model`` sets the
    dimension and the hash key, so the two models give different vectors, not just longer ones."""
    dim = MODELS[model]
    vector = [0.0] * dim
    for word in _WORD.findall(text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=4, key=b"" if dim == 384 else model.encode()).digest()
        vector[int.from_bytes(digest, "big") % dim] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def recorded_model(chunks: Any) -> str:
    """The embedding model ``note_chunks`` records (``reembed``'s ``migrator.embedding.vector``), else v1's."""
    meta = chunks.schema.metadata or {}
    if EMBEDDING_META in meta:
        return str(json.loads(meta[EMBEDDING_META])["model"])
    return FIRST_MODEL


def chunks_of(body: str) -> list[str]:
    """The body split into sentences (the whole body when it has none)."""
    parts = [p.strip() for p in re.split(r"(?<=[.!?])\s+", body) if p.strip()]
    return parts or [body]


def migrator_for(engine: sa.Engine, vectors: Any, **options: Any) -> Migrator:
    """The app's migrations, configured without a file: its own Engine and lancedb connection stand in for URLs."""
    return Migrator.from_dict({
        "backends": {
            "sqlite": {"type": "sql", "url": engine, "migrations": "migrations/sqlite"},
            "vectors": {"type": "lancedb", "uri": vectors, "migrations": "migrations/vectors"},
        },
    }, base=HERE, **options)


def build_deferred_indices(vectors: Any) -> None:
    """Build the indices ``note_chunks`` records but lacks (a vector index deferred until there were rows to
    train it on) once the table has the rows; cheap when there is nothing to build."""
    chunks = vectors.open_table("note_chunks")
    meta = chunks.schema.metadata or {}
    recorded = [Index.from_dict(spec) for spec in json.loads(meta.get(b"migrator.indices", b"[]"))]
    present = {index.name for index in chunks.list_indices()}
    missing = [spec for spec in recorded if spec.index_name not in present]
    if missing and chunks.count_rows() >= max(spec.train_rows for spec in missing):
        ensure_indices(vectors, "note_chunks", report=logging.getLogger("notes_app").info)


class NotesApp:
    def __init__(self, engine: sa.Engine, vectors: Any) -> None:
        self.engine = engine
        self.vectors = vectors
        self.chunks = vectors.open_table("note_chunks")
        self.model = recorded_model(self.chunks)
        self.tagged = MODEL_TAG in self.chunks.schema.names  # rows carry their model (since the switch)

    @classmethod
    def open(cls, data: Path) -> NotesApp:
        """Start-up: connect, migrate every backend, open the tables."""
        data.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(URL.create("sqlite", database=str(data / "notes.db")))
        vectors = lancedb.connect(data / "lancedb")
        try:
            migrator_for(engine, vectors).upgrade()
            build_deferred_indices(vectors)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, vectors)

    def add_note(self, title: str, body: str) -> int:
        parts = chunks_of(body)
        with self.engine.begin() as conn:
            result = conn.execute(sa.text("INSERT INTO notes (title, body, chunk_count) VALUES (:t, :b, :n)"),
                                  {"t": title, "b": body, "n": len(parts)})
            note_id = int(result.lastrowid)
        tag = {MODEL_TAG: self.model} if self.tagged else {}
        self.chunks.add([{"id": f"{note_id}-{n}", "note_id": note_id, "text": part,
                          VECTOR: embed(part, self.model), **tag} for n, part in enumerate(parts)])
        return note_id

    def notes(self) -> list[tuple[int, str, int]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, title, chunk_count FROM notes ORDER BY id"))
            return [(int(r[0]), str(r[1]), int(r[2])) for r in rows]

    def search(self, query: str, limit: int = 3) -> list[tuple[int, str, str]]:
        """The notes whose chunks are nearest to ``query``: (note id, title, the matching chunk).

        The query is embedded with the table's recorded model and only rows tagged with that model are searched.
        """
        search = self.chunks.search(embed(query, self.model), vector_column_name=VECTOR).distance_type("cosine")
        if self.tagged:
            search = search.where(f"{MODEL_TAG} = '{self.model}'", prefilter=True)
        hits = search.limit(limit).to_list()
        with self.engine.connect() as conn:
            titles = {int(r[0]): str(r[1]) for r in conn.execute(sa.text("SELECT id, title FROM notes"))}
        return [(int(h["note_id"]), titles.get(int(h["note_id"]), "?"), str(h["text"])) for h in hits]

    def close(self) -> None:
        self.engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("notes-data"), help="folder for notes.db and lancedb/")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add")
    add.add_argument("title")
    add.add_argument("body")
    search = commands.add_parser("search")
    search.add_argument("query")
    commands.add_parser("list")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)

    app = NotesApp.open(args.data)
    try:
        if args.command == "add":
            print(f"note {app.add_note(args.title, args.body)}")
        elif args.command == "search":
            for note_id, title, text in app.search(args.query):
                print(f"{note_id}\t{title}\t{text}")
        else:
            for note_id, title, count in app.notes():
                print(f"{note_id}\t{title}\t{count} chunk(s)")
    finally:
        app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
