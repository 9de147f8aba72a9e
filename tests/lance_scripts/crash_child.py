"""Child process for the kill -9 tests: run every pending migration of a LanceDB folder, printing each step.

usage: python crash_child.py URI MIGRATIONS_DIR [STORAGE_OPTIONS_JSON]

With CRASH_ROLLBACK=TABLE:TARGET in the environment it rolls TABLE back to
TARGET instead of upgrading.

Prints "ready" when it is about to migrate, then one line per progress
report, then "done". The parent kills it with SIGKILL at a random moment.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lance_scripts.testlib import backend, rollback, upgrade


def say(line: str) -> None:
    print(line, flush=True)


def main() -> None:
    options = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
    b = backend(sys.argv[1], Path(sys.argv[2]), storage_options=options)
    b.discover()
    b.applied()  # imports lancedb and connects, so that the kill window is the migration itself
    say("ready")
    if os.environ.get("CRASH_ROLLBACK"):
        table, target = os.environ["CRASH_ROLLBACK"].split(":")
        rollback(b, table, int(target), report=say)
    else:
        upgrade(b, report=say)
    say("done")


if __name__ == "__main__":
    main()
