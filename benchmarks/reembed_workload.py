"""The re-embedding case: ``reembed`` (its default and the other checkpoint granularity) vs ``recreate_table``.

Table ``docs``: id, a 1 KB text, a 384-d vector (BTREE on id; IVF_PQ on the vector with
BENCH_REEMBED_INDEX=1), re-embedded to 768-d by a cheap deterministic numpy function
(:mod:`reembed_child`), in two shapes: written in one go (one fragment, ``lance.reembed.<rows>``) and
grown by an app in :data:`REEMBED_GROWN_FRAGMENTS` appends (``lance.reembed.<rows>.10frags``).
Contenders, each on a fresh hard-linked copy of the same seed:

* ``reembed (default: <granularity>)``: ``checkpoint="auto"``, which picks per batch on the one-fragment
  table and per fragment on the grown one
* ``reembed (checkpoint=<the other>)``: the granularity the default did not pick
* ``recreate_table``: the whole table streamed through the same function into an overwrite
* ``... killed at 1/2 + re-run`` (both granularities): the child SIGKILLs itself when half the rows are
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
REEMBED_GROWN_FRAGMENTS = 10      # the app-grown shape: this many appends of equal size
AUTO_FRAGMENT_SHARE = 0.2         # backends/lancedb/reembed.py: "auto" keeps fragments when none is above this share


class ReembedWorkload:
    def __init__(self, root: Path, log: Callable[[str], None]) -> None:
        self.root = root / "reembed"
        self.root.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.env = clean_env()
        self.seeds: dict[tuple[int, int], Path] = {}

    def seed(self, rows: int, fragments: int) -> Path:
        if (rows, fragments) not in self.seeds:
            path = self.root / f"seed-{human(rows)}-{fragments}"
            if path.exists():
                shutil.rmtree(path)
            self.log(f"seeding the re-embedding table: {rows:,} rows of id, 1 KB text, 384-d vector in "
                     f"{fragments} fragment(s) ...")
            done = process_output([sys.executable, CHILD, "make", path, str(rows), str(fragments)], env=self.env)
            if done.returncode != 0:
                raise RuntimeError(done.stderr[-2000:])
            self.seeds[rows, fragments] = path
        return self.seeds[rows, fragments]

    def case(self, rows: int, repeat: int, *, fragments: int = 1) -> Case:
        work = self.root / "work"
        default = "fragment" if fragments > 1 and 1 / fragments <= AUTO_FRAGMENT_SHARE else "batch"
        other = "batch" if default == "fragment" else "fragment"

        def fresh() -> None:
            clone(self.seed(rows, fragments), work)
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

        first = f"reembed (default: {default})"
        contenders = [
            Contender(first, child("reembed", str(work), "auto"), setup=fresh, check=check),
            Contender(f"reembed (checkpoint={other})", child("reembed", str(work), other), setup=fresh, check=check),
            Contender("recreate_table", child("recreate", str(work)), setup=fresh, check=check),
            Contender(f"reembed (default: {default}) killed at 1/2 + re-run", killed("auto"), setup=fresh,
                      check=check),
            Contender(f"reembed ({other}) killed at 1/2 + re-run", killed(other), setup=fresh, check=check),
        ]
        suffix = "" if fragments == 1 else f".{fragments}frags"
        return Case(f"lance.reembed.{human(rows)}{suffix}",
                    f"re-embed {rows:,} rows in {fragments} fragment(s) 384-d -> 768-d", contenders,
                    repeat=repeat, warmup=0, params={"rows": rows, "fragments": fragments},
                    ratios=[Ratio(first, "recreate_table"), Ratio(f"reembed (checkpoint={other})", "recreate_table")])


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
