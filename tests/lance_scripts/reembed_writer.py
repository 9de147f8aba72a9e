"""Child process: an application appending docs rows every 50 ms while a reembed runs, until told to stop.

usage: python reembed_writer.py URI TABLE START STOP_FILE

It writes the old form (16-d vectors, no model tag) with the handle it opened
first. When an append is refused it reopens the table and, once the table has
the ``vector_model`` column (the swap happened), writes the new form: the new
model's vectors and its tag. After each successful append it prints
``committed FIRST COUNT VERSION``; when it stops, ``stopped``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lancedb
import numpy as np
import pyarrow as pa

from lance_scripts.reembed_lib import doc_rows, expected

BATCH = 20


def rows_for(schema: pa.Schema, first: int) -> pa.Table:
    rows = doc_rows(BATCH, first)
    if "vector_model" in schema.names:  # the app's new code, after the switch
        dim = schema.field("vector").type.list_size
        vectors = expected(np.arange(first, first + BATCH), dim).reshape(-1)
        rows = rows.set_column(rows.schema.get_field_index("vector"), "vector",
                               pa.FixedSizeListArray.from_arrays(pa.array(vectors), dim))
        rows = rows.append_column("vector_model", pa.array(["m2"] * BATCH))
    return rows


def main() -> None:
    uri, name, first, stop = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    db = lancedb.connect(uri)
    table: Any = db.open_table(name)
    print("ready", flush=True)
    while not stop.exists():
        try:
            result = table.add(rows_for(table.schema, first))
        except Exception as exc:  # the swap changed the schema: reopen, write the new form
            print("refused", type(exc).__name__, str(exc).splitlines()[0][:200], flush=True)
            table = db.open_table(name)
            continue
        print("committed", first, BATCH, result.version, flush=True)
        first += BATCH
        time.sleep(0.05)
    print("stopped", flush=True)


if __name__ == "__main__":
    main()
