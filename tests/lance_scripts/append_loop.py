"""Child process: an application that keeps appending memo rows to a LanceDB table until told to stop.

usage: python append_loop.py URI TABLE START BATCH INTERVAL_S STOP_FILE

It opens the table once and appends BATCH rows every INTERVAL_S seconds, as a
live app would. After each successful append it prints
``committed FIRST COUNT STAMP`` (the ids FIRST..FIRST+COUNT-1 are in the table).
When an append is refused because migrator cut the table over to a new version
("incompatible with concurrent transaction Overwrite"), it does what the
cutover contract asks: reopen the table, read its stamp
(``migrator.lancedb.table_stamp``) and write the new form from then on (a
``tags`` column and ``rev = 1``, what the test's migration produces), retrying
the same ids. It stops when STOP_FILE exists and prints ``stopped``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lancedb
import pyarrow as pa

from lance_scripts.testlib import memo_rows
from migrator.lancedb import table_stamp

TAGS = pa.field("tags", pa.list_(pa.string()))


def rows_for(schema: pa.Schema, first: int, count: int) -> pa.Table:
    rows = memo_rows(count, start=first)
    if "tags" in schema.names:  # the app's new code, after the migration: the new form
        rows = rows.set_column(rows.schema.get_field_index("rev"), "rev", pa.array([1] * count, pa.int64()))
        rows = rows.append_column(TAGS, pa.array([["app"]] * count, TAGS.type))
    return rows


def main() -> None:
    uri, name = sys.argv[1], sys.argv[2]
    first, batch, interval, stop = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), Path(sys.argv[6])
    db = lancedb.connect(uri)
    table: Any = db.open_table(name)
    stamp = table_stamp(db, name)
    while not stop.exists():
        try:
            table.add(rows_for(table.schema, first, batch))
        except Exception as exc:
            if not any(word in str(exc) for word in ("ncompatible", "onflict", "oo many concurrent writers")):
                raise  # (Lance gives up on a commit after 30 s of conflicts: nothing was written, try again)
            table = db.open_table(name)  # the cutover contract: reopen, read the version, write its form
            stamp = table_stamp(db, name)
            print(f"reopened at stamp {stamp}", flush=True)
            continue
        print(f"committed {first} {batch} {stamp}", flush=True)
        first += batch
        time.sleep(interval)
    print("stopped", flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
