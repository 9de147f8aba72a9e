"""note_chunks v2: the embedding model switches from the 384-d ``hashed-words-384`` to the 768-d ``hashed-words-768``.

``reembed`` computes the new vectors from ``text`` into a new column (the other columns are not rewritten),
resumably, then swaps it in for ``vector`` with a per-row model tag ``vector_model`` and the model recorded in
the schema metadata (``migrator.embedding.vector``), which the app reads to embed its queries with the same
model. The embedding function is the app's own (loaded from ``app.py``), so migration and queries agree.

The vector index: cosine (the vectors are unit length), IVF_PQ with 48 sub-vectors of 16 dimensions and a few
partitions, as fits a notes app. It needs rows to train: below 256 chunks it is deferred (a progress line) and
the app builds it on a later start-up once the table has that many (``NotesApp.open``).
"""

import importlib.util
from pathlib import Path

from migrator.lancedb import Index, migration, reembed

MODEL = "hashed-words-768"
VECTOR_INDEX = Index("vector", kind="IVF_PQ", metric="cosine", num_partitions=4, num_sub_vectors=48)


def _app():
    app = Path(__file__).resolve().parents[2] / "app.py"
    spec = importlib.util.spec_from_file_location("notes_app_embeddings", app)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@migration(table="note_chunks", version=2, description="re-embed note_chunks with hashed-words-768")
def switch_to_768(db):
    embed = _app().embed

    def embed_batch(batch):
        return [embed(text, MODEL) for text in batch.column("text").to_pylist()]

    reembed(db, "note_chunks", embed=embed_batch, model=MODEL, dim=768, source=["text"], index=VECTOR_INDEX)
