"""Rows and a deterministic embedding function for the reembed tests and the child processes they start.

``embed`` turns each row's ``text`` ("doc <id> ...") into a vector computed from the id, so any row's
expected vector is known. With ``REEMBED_COUNT_FILE`` set, every call appends the number of rows it
embedded to that file (one line per call, O_APPEND): the tests sum it across killed and re-run processes.
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa

OLD_DIM = 16


def doc_rows(n: int, start: int = 0, dim: int = OLD_DIM) -> pa.Table:
    ids = np.arange(start, start + n, dtype=np.int64)
    rng = np.random.default_rng(start)
    return pa.table({
        "id": pa.array(ids),
        "text": pa.array([f"doc {i} " + "lorem ipsum " * 4 for i in ids]),
        "category": pa.array([("work", "home", "misc")[i % 3] for i in ids]),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(rng.random(n * dim, dtype=np.float32)), dim),
    })


def expected(ids: np.ndarray, dim: int) -> np.ndarray:
    """The vectors ``embed`` gives the rows with these ids."""
    steps = np.arange(1, dim + 1, dtype=np.float32)
    return np.sin(np.outer(ids.astype(np.float32) + 1.0, steps) / dim).astype(np.float32)


def ids_of(batch: pa.RecordBatch) -> np.ndarray:
    return np.array([int(t.split(" ", 2)[1]) for t in batch.column("text").to_pylist()], dtype=np.int64)


def embedder(dim: int):  # type: ignore[no-untyped-def]
    def embed(batch: pa.RecordBatch) -> np.ndarray:
        counter = os.environ.get("REEMBED_COUNT_FILE")
        if counter:
            fd = os.open(counter, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, f"{batch.num_rows}\n".encode())
            finally:
                os.close(fd)
        return expected(ids_of(batch), dim)

    return embed


def embedded_rows(counter: str) -> int:
    """Rows embedded so far, as counted in ``counter``."""
    try:
        with open(counter, encoding="utf-8") as f:
            return sum(int(line) for line in f if line.strip())
    except FileNotFoundError:
        return 0


def report(line: str) -> None:
    """A migration's progress callback: print the line; pause 2 s on one that holds ``REEMBED_PAUSE_AT``.

    The pause holds the child in a window a test wants to kill it in (after the new column's commit,
    before the swap).
    """
    import time

    print(line, flush=True)
    pause = os.environ.get("REEMBED_PAUSE_AT")
    if pause and pause in line:
        time.sleep(2.0)
