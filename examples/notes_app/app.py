"""A tiny notes app that keeps its rows in SQLite and their vectors in LanceDB, migrated on start-up.

    python examples/notes_app/app.py --data /tmp/notes add "Groceries" "Buy milk. Buy bread."
    python examples/notes_app/app.py --data /tmp/notes search "bread"

On start-up (:meth:`NotesApp.open`) the app builds its own SQLAlchemy Engine and lancedb connection,
hands both to ``Migrator.from_dict`` and upgrades every backend in one plan (the migrations declare
cross-backend ``requires``), then opens its tables: migrator never disposes the engine nor closes the
connection, and the app opens its LanceDB tables only after the migration (a table handle opened
before an overwrite would be stale). migrator logs each step through the standard ``logging`` module
(logger ``migrator``); ``main`` shows those records with ``logging.basicConfig``.

The embedding is a stand-in (hashed words, 384 dimensions) so the example needs no model download.
"""

from __future__ import annotations

import argparse
import hashlib
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

HERE = Path(__file__).resolve().parent
DIM = 384
_WORD = re.compile(r"\w+")


def embed(text: str) -> list[float]:
    """A deterministic 384-d bag of hashed words, unit length (texts sharing words are near)."""
    vector = [0.0] * DIM
    for word in _WORD.findall(text.lower()):
        slot = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big") % DIM
        vector[slot] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


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


class NotesApp:
    def __init__(self, engine: sa.Engine, vectors: Any) -> None:
        self.engine = engine
        self.vectors = vectors
        self.chunks = vectors.open_table("note_chunks")

    @classmethod
    def open(cls, data: Path) -> NotesApp:
        """Start-up: connect, migrate every backend, open the tables."""
        data.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(URL.create("sqlite", database=str(data / "notes.db")))
        vectors = lancedb.connect(data / "lancedb")
        try:
            migrator_for(engine, vectors).upgrade()
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
        self.chunks.add([{"id": f"{note_id}-{n}", "note_id": note_id, "text": part, "vector": embed(part)}
                         for n, part in enumerate(parts)])
        return note_id

    def notes(self) -> list[tuple[int, str, int]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, title, chunk_count FROM notes ORDER BY id"))
            return [(int(r[0]), str(r[1]), int(r[2])) for r in rows]

    def search(self, query: str, limit: int = 3) -> list[tuple[int, str, str]]:
        """The notes whose chunks are nearest to ``query``: (note id, title, the matching chunk)."""
        hits = self.chunks.search(embed(query)).limit(limit).to_list()
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
