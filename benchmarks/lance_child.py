"""Child-process side of the LanceDB benchmarks (run as a script; the runner never imports lancedb itself).

``python lance_child.py make URI TABLE ROWS``      create the table (streamed) and its two indices
``python lance_child.py floor URI TABLE``          the floor: raw streamed overwrite + index rebuild
``python lance_child.py addcol URI TABLE``         the floor for a nullable column: native add_columns
``python lance_child.py check URI T1,T2 ROWS KIND`` verify tables (``recreated``/``added``/``created``)

Also imported by generated migrator migrations for the same schema, data and
transform, so both sides do identical work. The table: ``id`` int64, ``text``
(200 ASCII bytes), ``vector`` 128 x float32, ``ts`` timestamp[us]; a BTREE index
on ``id`` and an IVF_PQ index on ``vector`` with fixed parameters. The
transform adds ``text_len`` (int32) and casts ``ts`` to int64.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DIM = 128
TEXT_BYTES = 200
BATCH = 32_768          # rows per generated batch (seeding)
FLOOR_BATCH = 4_096     # the floor reads with migrator.lancedb.recreate_table's default batch_size
# The app's IVF_PQ parameters (fixed for every size, so the sizes differ in rows only). sample_rate and
# max_iterations are below Lance's defaults (256, 50) to keep the full run near 20 minutes on 2 cores.
VECTOR_INDEX: dict[str, Any] = {"num_partitions": 256, "num_sub_vectors": 16}
VECTOR_OPTIONS: dict[str, Any] = {"sample_rate": 64, "max_iterations": 20}
TS0 = 1_700_000_000_000_000  # microseconds

SCHEMA_V1 = pa.schema([
    pa.field("id", pa.int64(), nullable=False),
    pa.field("text", pa.string()),
    pa.field("vector", pa.list_(pa.float32(), DIM)),
    pa.field("ts", pa.timestamp("us")),
])
SCHEMA_V2 = pa.schema([
    pa.field("id", pa.int64(), nullable=False),
    pa.field("text", pa.string()),
    pa.field("vector", pa.list_(pa.float32(), DIM)),
    pa.field("ts", pa.int64()),
    pa.field("text_len", pa.int32()),
])


def batches(rows: int, seed: int = 0) -> Iterator[pa.RecordBatch]:
    rng = np.random.default_rng(seed)
    alphabet = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz      ABCDEFGHIJ0123456789", dtype=np.uint8)
    for start in range(0, rows, BATCH):
        n = min(BATCH, rows - start)
        ids = np.arange(start, start + n, dtype=np.int64)
        chars = alphabet[rng.integers(0, len(alphabet), n * TEXT_BYTES)]
        offsets = np.arange(0, (n + 1) * TEXT_BYTES, TEXT_BYTES, dtype=np.int32)
        text = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars.tobytes()))
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(rng.standard_normal(n * DIM, dtype=np.float32)), DIM)
        ts = pa.array(TS0 + ids * 1_000_000, type=pa.timestamp("us"))
        yield pa.RecordBatch.from_arrays([pa.array(ids), text, vectors, ts], schema=SCHEMA_V1)


def transform(batch: pa.RecordBatch) -> pa.RecordBatch:
    """v1 -> v2: cast ``ts`` timestamp -> int64 (refused natively) and add ``text_len``."""
    return pa.RecordBatch.from_arrays(
        [batch.column("id"), batch.column("text"), batch.column("vector"),
         batch.column("ts").cast(pa.int64()), pc.utf8_length(batch.column("text")).cast(pa.int32())],
        schema=SCHEMA_V2,
    )


def create_indices(table: Any) -> dict[str, float]:
    """The two indices, as the app created them; returns seconds per index."""
    took = {}
    from lancedb.index import BTree, IvfPq

    t = time.perf_counter()
    table.create_index("id", config=BTree(), name="id_idx")
    took["scalar_index_s"] = time.perf_counter() - t
    t = time.perf_counter()
    table.create_index("vector", config=IvfPq(**VECTOR_INDEX, **VECTOR_OPTIONS), name="vector_idx")
    took["vector_index_s"] = time.perf_counter() - t
    return took


def make(db: Any, name: str, rows: int, *, indices: bool = True) -> Any:
    reader = pa.RecordBatchReader.from_batches(SCHEMA_V1, batches(rows))
    table = db.create_table(name, data=reader, schema=SCHEMA_V1)
    if indices:
        create_indices(table)
    return table


def floor(db: Any, name: str) -> dict[str, float]:
    """Raw Lance: stream the pinned current version through ``transform`` into an overwrite, rebuild indices."""
    t = time.perf_counter()
    ds = db.open_table(name).to_lance()
    reader = ds.scanner(batch_size=FLOOR_BATCH).to_reader()
    new = pa.RecordBatchReader.from_batches(SCHEMA_V2, (transform(b) for b in reader))
    table = db.create_table(name, data=new, schema=SCHEMA_V2, mode="overwrite")
    took = {"write_s": time.perf_counter() - t}
    took.update(create_indices(table))
    return took


def check(db: Any, name: str, rows: int, kind: str) -> None:
    table = db.open_table(name)
    count = table.count_rows()
    if count != rows:
        raise SystemExit(f"{name}: expected {rows} rows, found {count}")
    names = set(table.schema.names)
    want = {"recreated": set(SCHEMA_V2.names), "created": set(SCHEMA_V1.names),
            "added": set(SCHEMA_V1.names) | {"note"}}[kind]
    if names != want:
        raise SystemExit(f"{name}: columns {sorted(names)}, expected {sorted(want)}")
    if kind == "recreated":
        if table.schema.field("ts").type != pa.int64():
            raise SystemExit(f"{name}: ts is {table.schema.field('ts').type}, not int64")
        indexed = {tuple(i.columns) for i in table.list_indices()}
        if indexed != {("id",), ("vector",)}:
            raise SystemExit(f"{name}: indices on {sorted(indexed)}, expected id and vector")


def main(argv: list[str]) -> None:
    start = time.perf_counter()
    import lancedb

    cmd, uri, name = argv[0], argv[1], argv[2]
    db = lancedb.connect(uri)
    took: dict[str, float] = {"import_connect_s": time.perf_counter() - start}
    if cmd == "make":
        make(db, name, int(argv[3]))
    elif cmd == "floor":
        took.update(floor(db, name))
    elif cmd == "addcol":
        t = time.perf_counter()
        db.open_table(name).add_columns(pa.field("note", pa.string()))
        took["add_columns_s"] = time.perf_counter() - t
    elif cmd == "check":
        for table in name.split(","):
            check(db, table, int(argv[3]), argv[4])
    else:
        raise SystemExit(f"unknown command {cmd}")
    took["in_process_s"] = time.perf_counter() - start
    print("BENCH_JSON " + json.dumps(took))


if __name__ == "__main__":
    main(sys.argv[1:])
