"""Child process: append memo rows to a LanceDB table, as another app would (a real second writer).

usage: python append_rows.py URI TABLE START COUNT
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lancedb

from lance_scripts.testlib import memo_rows


def main() -> None:
    uri, table, start, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    result = lancedb.connect(uri).open_table(table).add(memo_rows(count, start=start))
    print("appended", result.version, flush=True)


if __name__ == "__main__":
    main()
