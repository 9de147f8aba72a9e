"""The re-embedding case: ``reembed`` (both checkpoint granularities) vs ``recreate_table``, and a kill at half way.

Table ``docs``: id, a 1 KB text, a 384-d vector (BTREE on id, IVF_PQ on the vector), re-embedded to
768-d by a cheap deterministic numpy function (:mod:`reembed_child`). Contenders, each on a fresh
hard-linked copy of the same seed:

* ``reembed (batch checkpoint)``: the default; a re-run after a kill embeds no finished batch again
* ``reembed (fragment checkpoint)``: the vectors are written once; a kill loses the fragment in progress
* ``recreate_table``: the whole table streamed through the same function into an overwrite
* ``reembed killed at 1/2 + re-run`` (each granularity): the child SIGKILLs itself when half the rows are
  embedded, then a second child finishes; time, CPU and bytes are the re-run's, ``rows_embedded_total``
  is counted across both runs

Each child prints the bytes it wrote (``wchar``), the new column's data file size and rows embedded.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from harness import Case, CaseResult, Contender, Ratio, Sample, clean_env, process_output, run_process
from lance_workload import clone, human

HERE = Path(__file__).resolve().parent
CHILD = HERE / "reembed_child.py"


class ReembedWorkload:
    def __init__(self, root: Path, log: Callable[[str], None]) -> None:
        self.root = root / "reembed"
        self.root.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.env = clean_env()
        self.seeds: dict[int, Path] = {}

    def seed(self, rows: int) -> Path:
        if rows not in self.seeds:
            path = self.root / f"seed-{human(rows)}"
            if path.exists():
                shutil.rmtree(path)
            self.log(f"seeding the re-embedding table: {rows:,} rows of id, 1 KB text, 384-d vector ...")
            done = process_output([sys.executable, CHILD, "make", path, str(rows)], env=self.env)
            if done.returncode != 0:
                raise RuntimeError(done.stderr[-2000:])
            self.seeds[rows] = path
        return self.seeds[rows]

    def case(self, rows: int, repeat: int) -> Case:
        work = self.root / "work"

        def fresh() -> None:
            clone(self.seed(rows), work)
            (self.root / "count").unlink(missing_ok=True)

        def check() -> None:
            done = process_output([sys.executable, CHILD, "check", work, str(rows)], env=self.env)
            if done.returncode != 0:
                raise RuntimeError(f"check failed: {done.stderr[-2000:]}")

        def child(*args: str) -> Callable[[], Sample]:
            return lambda: run_process([sys.executable, CHILD, *args], env=self.env)

        def killed(mode: str) -> Callable[[], Sample]:
            def run() -> Sample:
                env = {**self.env, "REEMBED_COUNT_FILE": str(self.root / "count")}
                first = subprocess.run([sys.executable, str(CHILD), "reembed", str(work), mode, str(rows // 2)],
                                       env=env, capture_output=True, text=True, check=False)
                if first.returncode != -9:
                    raise RuntimeError(f"the killed run ended with {first.returncode}: {first.stderr[-1500:]}")
                second = run_process([sys.executable, CHILD, "reembed", work, mode], env=env)
                total = sum(int(line) for line in (self.root / "count").read_text().split())
                second.inner["rows_embedded_total"] = float(total)
                second.inner["rows_embedded_ratio"] = total / rows
                return second

            return run

        contenders = [
            Contender("reembed (batch checkpoint)", child("reembed", str(work), "batch"), setup=fresh, check=check),
            Contender("reembed (fragment checkpoint)", child("reembed", str(work), "fragment"), setup=fresh,
                      check=check),
            Contender("recreate_table", child("recreate", str(work)), setup=fresh, check=check),
            Contender("reembed (batch) killed at 1/2 + re-run", killed("batch"), setup=fresh, check=check),
            Contender("reembed (fragment) killed at 1/2 + re-run", killed("fragment"), setup=fresh, check=check),
        ]
        return Case(f"lance.reembed.{human(rows)}", f"re-embed {rows:,} rows 384-d -> 768-d", contenders,
                    repeat=repeat, warmup=0, params={"rows": rows},
                    ratios=[Ratio("reembed (batch checkpoint)", "recreate_table"),
                            Ratio("reembed (fragment checkpoint)", "recreate_table")])


def reembed_table(results: list[CaseResult]) -> str:
    """Bytes written, new column size, rows embedded per contender, with the issue's targets."""
    lines = ["| case | contender | wall (median) | CPU | bytes written (wchar) | x new column | peak RSS | "
             "rows embedded (x rows) |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for case in results:
        if not case.name.startswith("lance.reembed."):
            continue
        rows = int(case.params.get("rows", 0)) or 1
        floors = [c.inner["new_column_mb"].median for name, c in case.contenders.items()
                  if name.startswith("reembed (") and "new_column_mb" in c.inner and "killed" not in name]
        floor = min(floors) if floors else None
        for name, c in case.contenders.items():
            written = c.inner.get("wchar_mb")
            ratio = f"{written.median / floor:.2f}x" if written and floor else "-"
            total = c.inner.get("rows_embedded_total") or c.inner.get("rows_embedded")
            embedded = f"{total.median / rows:.2f}x" if total else "-"
            rss = f"{c.maxrss_mb.median:.0f} MB" if c.maxrss_mb else "-"
            cpu = f"{c.cpu_seconds.median:.1f} s" if c.cpu_seconds else "-"
            size = f"{written.median:,.0f} MB" if written else "-"
            lines.append(f"| {case.name} | {name} | {c.seconds.median:.1f} s | {cpu} | {size} | {ratio} | {rss} | "
                         f"{embedded} |")
    return "\n".join(lines)
