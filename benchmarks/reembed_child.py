"""Child-process side of the re-embedding benchmark (run as a script; the runner never imports lancedb itself).

``python reembed_child.py make URI ROWS [FRAGMENTS]``     table ``docs``: id, 1 KB text, 384-d vector; BTREE
                                                          on id (IVF_PQ on vector with BENCH_REEMBED_INDEX=1);
                                                          FRAGMENTS > 1: written in that many equal appends
``python reembed_child.py reembed URI MODE [KILL_AT]``    ``migrator.lancedb.reembed`` to 768-d (MODE: the
                                                          checkpoint granularity, auto, batch or fragment); with
                                                          KILL_AT the process SIGKILLs itself once the embedding
                                                          function has seen that many rows
``python reembed_child.py recreate URI``                  ``recreate_table`` with the same embedding function
``python reembed_child.py check URI ROWS``                every row is tagged; sampled rows have the 768-d
                                                          vector of their text

Each run prints ``BENCH_JSON {...}``: bytes this process wrote (``wchar``: every ``write``
call, so a file written and deleted before it reached the disk still counts; ``write_bytes``:
what reached the block layer), the size of the new column's data files, rows embedded.
With ``REEMBED_COUNT_FILE`` set, the embedding function appends its row counts there (the
runner sums a killed run and its re-run).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

OLD_DIM, NEW_DIM = 384, 768
TEXT_BYTES = 1024
BATCH = 16_384                    # rows per generated batch (seeding)
EMBED_BATCH = 4096                # rows per embedding call
MODEL = "bench-768"
# The vector index, when BENCH_REEMBED_INDEX=1: light IVF_PQ parameters, rebuilt by both contenders on the
# new vectors with the same code (indices.ensure). Off by default: on this shared 2-core machine its build
# (identical on both sides) took 90 s of a 100 s run at 20k rows and would hide the data path being compared.
INDEX: dict[str, Any] = {"num_partitions": 64, "num_sub_vectors": 48, "options": {"sample_rate": 16,
                                                                                   "max_iterations": 10}}


def batches(rows: int, first: int = 0) -> Iterator[pa.RecordBatch]:
    rng = np.random.default_rng(first)
    alphabet = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz      ABCDEFGHIJ0123456789", dtype=np.uint8)
    for start in range(first, first + rows, BATCH):
        n = min(BATCH, first + rows - start)
        chars = alphabet[rng.integers(0, len(alphabet), n * TEXT_BYTES)]
        offsets = np.arange(0, (n + 1) * TEXT_BYTES, TEXT_BYTES, dtype=np.int32)
        text = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars.tobytes()))
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(rng.random(n * OLD_DIM, dtype=np.float32)), OLD_DIM)
        yield pa.RecordBatch.from_arrays([pa.array(np.arange(start, start + n, dtype=np.int64)), text, vectors],
                                         names=["id", "text", "vector"])


def embed_text(text: pa.Array) -> np.ndarray:
    """The cheap deterministic 'model': a 768-d vector from a checksum of each text's bytes."""
    text = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)[text.offset:text.offset + len(text) + 1]
    data = np.frombuffer(text.buffers()[2], dtype=np.uint8)
    sums = np.add.reduceat(data.astype(np.int64), offsets[:-1]) if len(text) else np.zeros(0, np.int64)
    steps = np.arange(1, NEW_DIM + 1, dtype=np.float32) / NEW_DIM
    return np.sin(np.outer(sums.astype(np.float32) / 1000.0, steps)).astype(np.float32)


class Counter:
    def __init__(self, kill_at: int | None) -> None:
        self.rows = 0
        self.kill_at = kill_at
        self.path = os.environ.get("REEMBED_COUNT_FILE")

    def __call__(self, batch: pa.RecordBatch) -> np.ndarray:
        self.rows += batch.num_rows
        if self.path:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(f"{batch.num_rows}\n")
        if self.kill_at is not None and self.rows >= self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)  # kill -9 at half way, mid-embedding
        return embed_text(batch.column("text"))


def io_counters() -> dict[str, float]:
    out: dict[str, float] = {}
    with open("/proc/self/io", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key.strip()] = float(value)
    return out


def column_mb(uri: str, names: set[str]) -> float:
    import lance

    dataset = lance.dataset(f"{uri}/docs.lance")
    ids = {f.id() for f in dataset.lance_schema.fields() if f.name() in names}
    total = 0
    for fragment in dataset.get_fragments():
        for data in fragment.metadata.files:
            if set(data.fields) & ids:
                total += int(data.file_size_bytes or os.path.getsize(f"{uri}/docs.lance/data/{data.path}"))
    return total / 1e6


def lance_fragments(uri: str) -> list[Any]:
    import lance

    return list(lance.dataset(f"{uri}/docs.lance").get_fragments())


def report(started: float, before: dict[str, float], uri: str, **extra: float) -> None:
    after = io_counters()
    out = {"wchar_mb": (after["wchar"] - before["wchar"]) / 1e6,
           "write_bytes_mb": (after["write_bytes"] - before["write_bytes"]) / 1e6,
           "new_column_mb": column_mb(uri, {"vector", "vector_model"}),
           "inner_seconds": time.perf_counter() - started, **extra}
    print("BENCH_JSON " + json.dumps(out), flush=True)


def main(argv: list[str]) -> None:
    import lancedb

    from migrator.lancedb import Index, create_index, recreate_table, reembed

    command, uri = argv[0], argv[1]
    db = lancedb.connect(uri)
    if command == "make":
        rows = int(argv[2])
        parts = int(argv[3]) if len(argv) > 3 else 1
        schema = next(batches(1)).schema
        bounds = [rows * i // parts for i in range(parts + 1)]
        table = db.create_table("docs", data=pa.RecordBatchReader.from_batches(
            schema, batches(bounds[1] - bounds[0])))
        for lo, hi in itertools.pairwise(bounds[1:]):  # an app's appends: one fragment each
            table.add(pa.RecordBatchReader.from_batches(schema, batches(hi - lo, lo)))
        assert len(lance_fragments(uri)) == parts, (len(lance_fragments(uri)), parts)
        create_index(db, "docs", Index("id"))
        if os.environ.get("BENCH_REEMBED_INDEX") == "1":
            create_index(db, "docs", Index("vector", kind="IVF_PQ", **INDEX))
        return
    if command == "check":
        import lance

        dataset = lance.dataset(f"{uri}/docs.lance")
        rows = int(argv[2])
        assert dataset.count_rows() == rows, dataset.count_rows()
        assert dataset.count_rows(filter=f"vector_model = '{MODEL}'") == rows
        # every row's tag (above); the vectors of the first and last 2,000 rows and of 20,000 random ones (a full
        # pass reads the 3 GB column again and, on a loaded machine, took longer than the contender it checks;
        # tests/test_lancedb_reembed.py checks every vector of every killed and re-run reembed)
        rng = np.random.default_rng(rows)
        picks = np.unique(np.concatenate([np.arange(min(2000, rows)), np.arange(max(rows - 2000, 0), rows),
                                          rng.integers(0, rows, min(20_000, rows))]))
        sample = dataset.take(picks, columns=["text", "vector"])
        got = np.stack(sample.column("vector").to_numpy(zero_copy_only=False))
        np.testing.assert_allclose(got, embed_text(sample.column("text")), rtol=1e-6)
        return
    before = io_counters()
    started = time.perf_counter()
    if command == "reembed":
        counter = Counter(int(argv[3]) if len(argv) > 3 else None)
        result = reembed(db, "docs", embed=counter, model=MODEL, dim=NEW_DIM, source=["text"],
                         batch_size=EMBED_BATCH, checkpoint=argv[2],
                         report=lambda line: print(line, file=sys.stderr, flush=True))
        report(started, before, uri, rows_embedded=counter.rows, rows_resumed=result.rows_resumed)
    elif command == "recreate":
        counter = Counter(None)

        def transform(batch: pa.RecordBatch) -> pa.RecordBatch:
            vectors = counter(batch)
            batch = batch.drop_columns(["vector"])
            return batch.append_column("vector", pa.FixedSizeListArray.from_arrays(
                pa.array(vectors.reshape(-1)), NEW_DIM)).append_column(
                "vector_model", pa.array([MODEL] * batch.num_rows))

        recreate_table(db, "docs", transform=transform, report=lambda line: print(line, file=sys.stderr))
        report(started, before, uri, rows_embedded=counter.rows)
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
