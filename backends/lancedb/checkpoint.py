"""The checkpoint of a ``reembed``: Lance's own batch UDF checkpoint, kept until the swap and checked before use.

``lance.batch_udf(checkpoint_file=...)`` makes ``add_columns`` resumable: the
checkpoint (a local SQLite file) holds each finished batch's results, and
each finished fragment's new data file, so a re-run after a kill computes
neither again (DESIGN.md 8a). Two things are added here:

* **Kept until the swap.** Lance deletes the file as soon as ``add_columns``
  commits. ``reembed`` commits more after that (catch-up, the swap); a kill in
  between makes the migration's recovery restore the table to its version
  before the migration and run it again, and the re-run must still find every
  fragment finished. :class:`KeptCheckpoint` ignores Lance's cleanup;
  ``reembed`` removes the file after the swap.
* **Checked before use.** An entry is reused only for the very fragment it was
  computed from: a table ``migrator_fragments`` in the same file records each
  fragment's metadata (data files, deletion file, row count) and the
  table's schema when the run started; an entry whose fragment changed since
  (rewritten by a compaction, rows deleted) or a checkpoint written against
  another schema is discarded before Lance reads it.

Where it lives: beside the table, ``<database folder>/.migrator-reembed/``,
for a local database; for object storage (``s3://`` ...) in a local cache
folder, ``$XDG_CACHE_HOME/migrator/reembed/`` (``~/.cache/...``), under a hash
of the table's URI, or in ``checkpoint_dir`` when given. The file name holds
a hash of the table URI, the column, the model, the dimension, the source
columns and the migration version, so two re-embeddings never share one.
``granularity="fragment"`` keeps only finished fragments (no batch results):
the new vectors are written once instead of twice, and a kill loses the
fragment in progress.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from lance.udf import BatchUDFCheckpoint

__all__ = ["KeptCheckpoint", "checkpoint_path", "prepare"]

FOLDER = ".migrator-reembed"


class KeptCheckpoint(BatchUDFCheckpoint):
    """Lance's SQLite checkpoint that survives the ``add_columns`` commit (removed by :meth:`remove`)."""

    def __init__(self, path: Path, *, batches: bool = True) -> None:
        super().__init__(str(path))  # type: ignore[no-untyped-call]
        self.batches = batches

    def cleanup(self) -> None:  # called by Lance right after the add_columns commit: keep it for the swap
        pass

    def get_batch(self, info: Any) -> Any:
        return super().get_batch(info) if self.batches else None

    def insert_batch(self, info: Any, batch: Any) -> None:
        if self.batches:
            super().insert_batch(info, batch)

    def remove(self) -> None:
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)


def checkpoint_path(uri: str, *, table: str, key: str, directory: str | os.PathLike[str] | None) -> Path:
    """Where the checkpoint of one re-embedding lives (see the module doc); the folder is created."""
    digest = hashlib.sha256(f"{uri}\0{key}".encode()).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in table)[:64]
    if directory is not None:
        folder = Path(directory)
    elif "://" not in uri or uri.startswith("file://"):
        local = Path(uri[len("file://"):] if uri.startswith("file://") else uri)
        folder = local.parent / FOLDER
    else:
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        folder = Path(cache) / "migrator" / "reembed" / hashlib.sha256(uri.encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{safe}.{digest}.sqlite"


def prepare(path: Path, dataset: Any, *, batches: bool, batch_size: int) -> tuple[KeptCheckpoint, int]:
    """Open the checkpoint at ``path`` for ``dataset``, discarding entries it cannot vouch for.

    Returns the checkpoint and about how many rows it already holds (finished fragments' rows plus
    ``batch_size`` per finished batch).
    """
    checkpoint = KeptCheckpoint(path, batches=batches)  # creates Lance's tables
    schema = _schema_signature(dataset)
    fragments = list(dataset.get_fragments())
    current = {int(f.fragment_id): _signature(f) for f in fragments}
    physical = {int(f.fragment_id): int(f.metadata.physical_rows or 0) for f in fragments}
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS migrator_fragments (fragment_id INT PRIMARY KEY, signature TEXT)")
        conn.execute("CREATE TABLE IF NOT EXISTS migrator_schema (signature TEXT)")
        known = conn.execute("SELECT signature FROM migrator_schema").fetchone()
        if known is None or known[0] != schema:
            for table in ("batches", "fragments", "migrator_fragments", "migrator_schema"):
                conn.execute(f"DELETE FROM {table}")
            conn.execute("INSERT INTO migrator_schema VALUES (?)", (schema,))
        recorded = dict(conn.execute("SELECT fragment_id, signature FROM migrator_fragments").fetchall())
        for fragment_id, signature in recorded.items():
            if current.get(fragment_id) != signature:
                conn.execute("DELETE FROM batches WHERE fragment_id = ?", (fragment_id,))
                conn.execute("DELETE FROM fragments WHERE fragment_id = ?", (fragment_id,))
                conn.execute("DELETE FROM migrator_fragments WHERE fragment_id = ?", (fragment_id,))
        cached = {int(r[0]) for r in conn.execute("SELECT fragment_id FROM fragments")}
        for fragment_id in cached - set(current):
            conn.execute("DELETE FROM fragments WHERE fragment_id = ?", (fragment_id,))
        conn.execute("DELETE FROM batches WHERE fragment_id NOT IN (SELECT fragment_id FROM migrator_fragments)")
        conn.executemany("INSERT OR REPLACE INTO migrator_fragments VALUES (?, ?)", list(current.items()))
        conn.commit()
        done = {int(r[0]) for r in conn.execute("SELECT fragment_id FROM fragments")}
        rows = sum(physical.get(i, 0) for i in done)
        for fragment_id, count in conn.execute("SELECT fragment_id, COUNT(*) FROM batches GROUP BY fragment_id"):
            rows += min(int(count) * batch_size, physical.get(int(fragment_id), 0))
    return checkpoint, rows


def _signature(fragment: Any) -> str:
    """What must not change for a checkpoint entry of ``fragment`` to stay true: its whole metadata."""
    meta = fragment.metadata.to_json()
    return meta if isinstance(meta, str) else json.dumps(meta, sort_keys=True, default=str)


def _schema_signature(dataset: Any) -> str:
    _, (_meta, *fields) = dataset.lance_schema.__reduce__()
    return hashlib.sha256(b"\0".join(bytes(f) for f in fields)).hexdigest()

