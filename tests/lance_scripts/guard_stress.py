"""Stress migrator's guarded commits against an application appending back to back; report lost batches.

usage: python guard_stress.py FOLDER ROUNDS KIND [INTERVAL_S]

KIND is ``restore`` (guard.restore of the version just checked: the data does
not change, so any batch missing at the end was discarded by migrator's
commit) or ``overwrite`` (guard.commit of an Overwrite holding exactly the
rows of the version checked). An application process
(``append_loop.py``, INTERVAL_S between appends, 0 by default) runs throughout. Prints
``rounds R committed C moved M lost L`` and, when L > 0, the forensics trace.
Exit 1 when a batch the application reported committed is missing.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lance
import lancedb

from lance_scripts.forensics import trace
from lance_scripts.testlib import memo_rows
from migrator.backends.lancedb import guard

HERE = Path(__file__).resolve().parent


def main() -> int:
    folder, rounds, kind = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    interval = sys.argv[4] if len(sys.argv) > 4 else "0"
    uri = folder / "db"
    db = lancedb.connect(str(uri))
    db.create_table("memos", data=memo_rows(100))
    stop = folder / "stop"
    app = subprocess.Popen([sys.executable, str(HERE / "append_loop.py"), str(uri), "memos", "1000000", "1", interval,
                            str(stop)], stdout=subprocess.PIPE, text=True)
    lines: list[str] = []

    def read() -> None:
        assert app.stdout is not None
        lines.extend(line.strip() for line in app.stdout)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    while not lines:
        time.sleep(0.01)
    committed = moved = 0
    for _ in range(rounds):
        dataset = db.open_table("memos").to_lance()
        checked = int(dataset.version)
        try:
            if kind == "restore":
                guard.restore(dataset, checked, read_version=checked, table="memos")
            else:
                fragments = [f.metadata for f in dataset.get_fragments()]
                if any(f.deletion_file is not None for f in fragments):
                    raise SystemExit("unexpected deletion file")
                from lance.fragment import write_fragments
                written = write_fragments(dataset.to_table(), dataset, dataset.schema, mode="overwrite")
                guard.commit(dataset, lance.LanceOperation.Overwrite(dataset.schema, written),
                             read_version=checked, table="memos", what="a stress overwrite")
            committed += 1
        except guard.TableMoved:
            moved += 1
    stop.touch()
    app.wait(120)
    reader.join(30)
    ids = set(db.open_table("memos").to_arrow().column("id").to_pylist())
    lost = [line for line in lines if line.startswith("committed ") and int(line.split()[1]) not in ids]
    print(f"rounds {rounds} committed {committed} moved {moved} lost {len(lost)}")
    if lost:
        print("\n".join(lost))
        print("\n".join(trace(db.open_table("memos").to_lance())[-40:]))
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
