"""Forensics for a lost application row: which Lance version of a table holds which of the app's batches.

usage: python forensics.py URI TABLE [FIRST_APP_ID]

Prints, for each Lance version of the table: its operation, migrator's
transaction properties, and the application's batches it holds (an app batch
is a run of consecutive ids at or above FIRST_APP_ID, 1000000 by default), with
the batches that appear and disappear against the previous version. Then the
transaction files under ``_transactions/`` that no manifest references: a
commit whose manifest was replaced (or a commit that failed) leaves its
transaction file behind, and the Append among them is the lost batch's.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

APP_FIRST = 1_000_000


def runs(ids: list[int]) -> list[tuple[int, int]]:
    """Consecutive runs ``(first, count)`` of the sorted ids."""
    found: list[tuple[int, int]] = []
    for i in sorted(ids):
        if found and found[-1][0] + found[-1][1] == i:
            found[-1] = (found[-1][0], found[-1][1] + 1)
        else:
            found.append((i, 1))
    return found


def trace(dataset: Any, app_first: int = APP_FIRST) -> list[str]:
    """One line per version of ``dataset`` (a ``lance.LanceDataset``), then the unreferenced transaction files."""
    lines: list[str] = []
    before: set[int] = set()
    referenced: set[str] = set()
    for info in dataset.versions():
        version = int(info["version"])
        at = dataset.checkout_version(version)
        transaction = at.read_transaction(version)
        op = type(transaction.operation).__name__ if transaction is not None else "?"
        if transaction is not None:
            referenced.add(transaction.uuid)
            if op == "Restore":
                op = f"Restore({transaction.operation.version})"
        props = {k: v for k, v in (transaction.transaction_properties or {}).items()} if transaction else {}
        ids = [i for i in at.to_table(columns=["id"]).column("id").to_pylist() if i >= app_first]
        now = set(ids)
        gained, lost = sorted(now - before), sorted(before - now)
        dup = len(ids) - len(now)
        lines.append(f"v{version} {op} read={transaction.read_version if transaction else '?'} "
                     f"rows={at.count_rows()} app={len(now)} +{runs(gained)} -{runs(lost)}"
                     f"{f' DUP {dup}' if dup else ''} {props}")
        before = now
    folder = Path(dataset.uri) / "_transactions"
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if not any(uuid in path.name for uuid in referenced):
                lines.append(f"unreferenced transaction file {path.name}")
    return lines


def main() -> None:
    import lancedb

    uri, name = sys.argv[1], sys.argv[2]
    first = int(sys.argv[3]) if len(sys.argv) > 3 else APP_FIRST
    print("\n".join(trace(lancedb.connect(uri).open_table(name).to_lance(), first)))


if __name__ == "__main__":
    main()
