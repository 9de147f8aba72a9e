"""Issue 16: ``recreate_table`` writing only the new columns vs today's streamed overwrite, on one table.

    python benchmarks/addcols_bench.py --rows 1000000          # the issue's size
    python benchmarks/run.py --only lance.columns               # the same, from the suite

One table of ``rows`` rows (id, title, rev, a 64-d vector) with an IVF_PQ index
and a BTREE on id is built once and copied for each run. Two migrations:

* **add**: a non-null int64 column computed from ``id`` (the transform keeps
  every other column): the columns path, against today's overwrite on a copy
  of the same table (the overwrite path forced by making the columns path
  decline). Measured: wall and CPU seconds (this process: Lance's threads
  included), bytes of the data files each run added, whether the vector
  index kept its id.
* **change**: the same plus ``rev + 1`` (an existing column changes): the new
  code notices it on the first batch and takes the overwrite; against the
  forced overwrite: wall, CPU, and whether both tables hold the same rows.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCORE_BYTES = 8  # int64, non-null


def _rows(n: int, dim: int = 64, chunk: int = 100_000) -> Iterator[Any]:
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(0)
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        ids = np.arange(start, start + size, dtype=np.int64)
        yield pa.record_batch({
            "id": pa.array(ids), "title": pa.array([f"memo {i}" for i in ids]),
            "rev": pa.array(np.zeros(size, dtype=np.int64)),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(rng.random(size * dim, dtype=np.float32)), dim)})


def build(folder: Path, rows: int, log: Callable[[str], None]) -> None:
    import lancedb
    import pyarrow as pa

    from migrator.lancedb import Index, create_index

    db = lancedb.connect(str(folder))
    batches = list(_rows(rows))
    db.create_table("memos", data=pa.Table.from_batches(batches))
    log(f"built {rows:,} rows; indexing")
    create_index(db, "memos", Index("vector", kind="IVF_PQ", num_sub_vectors=8))
    create_index(db, "memos", Index("id"))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _data_bytes(table_dir: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in (table_dir / "data").glob("*.lance")}


@contextmanager
def _overwrite_only() -> Iterator[None]:
    """Today's recreation: the columns path declines, so recreate_table takes the streamed overwrite."""
    from migrator.backends.lancedb import recreate

    real = recreate._in_place
    recreate._in_place = lambda *args, **kwargs: None  # type: ignore[assignment]
    try:
        yield
    finally:
        recreate._in_place = real


def _vector_index_id(db: Any) -> str:
    return next(str(i["uuid"]) for i in db.open_table("memos").to_lance().list_indices() if i["name"] == "vector_idx")


def one_run(base: Path, work: Path, label: str, change_rev: bool, overwrite: bool) -> dict[str, Any]:
    import lancedb
    import pyarrow as pa
    import pyarrow.compute as pc

    from migrator.lancedb import recreate_table

    folder = work / label
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(base, folder)
    db = lancedb.connect(str(folder))
    score = pa.field("score", pa.int64(), nullable=False)
    target = db.open_table("memos").schema.append(score)

    def transform(batch: Any) -> Any:
        out = batch.append_column(score, pc.multiply(batch.column("id"), 3))
        if change_rev:
            out = out.set_column(out.schema.get_field_index("rev"), "rev", pc.add(out.column("rev"), 1))
        return out

    before_files = _data_bytes(folder / "memos.lance")
    before_index = _vector_index_id(db)
    cpu, wall = _cpu(), time.perf_counter()
    if overwrite:
        with _overwrite_only():
            result = recreate_table(db, "memos", schema=target, transform=transform, batch_size=8192)
    else:
        result = recreate_table(db, "memos", schema=target, transform=transform, batch_size=8192)
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    after = _data_bytes(folder / "memos.lance")
    written = sum(v for k, v in after.items() if k not in before_files)
    return {"label": label, "path": result.path, "wall_s": wall, "cpu_s": cpu, "bytes_written": written,
            "vector_index_kept": _vector_index_id(db) == before_index, "rows": result.rows,
            "table": folder / "memos.lance"}


def _same_rows(a: Path, b: Path) -> bool:
    import lance

    left = lance.dataset(str(a)).to_table().sort_by("id")
    right = lance.dataset(str(b)).to_table().sort_by("id")
    return bool(left.select(right.schema.names).equals(right))


def run(rows: int, work: Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    base = work / "base"
    if not base.exists():
        build(base, rows, log)
    out: dict[str, Any] = {"rows": rows, "new_column_bytes": rows * SCORE_BYTES}
    for key, change, overwrite in (("add.columns", False, False), ("add.overwrite", False, True),
                                   ("change.new", True, False), ("change.overwrite", True, True)):
        log(f"{key} ...")
        out[key] = one_run(base, work, key, change, overwrite)
        log(f"{key}: {json.dumps({k: v for k, v in out[key].items() if k != 'table'})}")
    out["change.identical"] = _same_rows(out["change.new"]["table"], out["change.overwrite"]["table"])
    return out


def report(out: dict[str, Any]) -> str:
    add, base = out["add.columns"], out["add.overwrite"]
    new, old = out["change.new"], out["change.overwrite"]
    lines = [
        f"rows: {out['rows']:,}; the new column's own size: {out['new_column_bytes']:,} bytes",
        "",
        "| run | path | wall s | CPU s | bytes written | vector index kept |",
        "|---|---|---|---|---|---|",
    ]
    for run_ in (add, base, new, old):
        lines.append(f"| {run_['label']} | {run_['path']} | {run_['wall_s']:.2f} | {run_['cpu_s']:.2f} | "
                     f"{run_['bytes_written']:,} | {run_['vector_index_kept']} |")
    lines += [
        "",
        f"- add, bytes written / new column: {add['bytes_written'] / out['new_column_bytes']:.2f}x (target <= 1.2x)",
        f"- add, wall vs today's recreation: {add['wall_s'] / base['wall_s']:.4f} (target <= 0.1); CPU "
        f"{add['cpu_s'] / max(base['cpu_s'], 1e-9):.4f}",
        f"- add, vector index id unchanged: {add['vector_index_kept']}",
        f"- change, wall vs today's recreation: {new['wall_s'] / old['wall_s']:.3f} (target <= 1.1); CPU "
        f"{new['cpu_s'] / max(old['cpu_s'], 1e-9):.3f}; identical rows: {out['change.identical']}",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=None, help="keep the tables here (default: a temp folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="addcols-bench-") as scratch:
        work = args.work or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        print(report(run(args.rows, work)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
