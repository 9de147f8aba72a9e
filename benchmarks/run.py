"""Side-by-side benchmarks: migrator vs Alembic vs raw sqlite3, migrator vs raw Lance.

    python benchmarks/run.py                 # the SQL tables (W(1000), W(5000)) and start-up: ~15 minutes on 2 cores
    python benchmarks/run.py --lance         # ... and the LanceDB cases too (~1 hour more: recreations up to 4M rows)
    python benchmarks/run.py --quick         # a smoke run of every case at small sizes (a few minutes)
    python benchmarks/run.py --only sql.upgrade --only lance.addcol
    python benchmarks/run.py --list          # the cases the options select, without running them

Writes every sample to benchmarks/results/<time>.json (git-ignored) and prints
markdown tables: times (median, min), ratios, and the issue's targets.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import (  # noqa: E402
    BIN,
    Case,
    CaseResult,
    Contender,
    Ratio,
    case_from_json,
    freeze_code,
    machine_info,
    markdown_table,
    run_case,
    run_process,
    write_json,
)
from imports import import_profile  # noqa: E402
from lance_workload import LanceWorkload, human  # noqa: E402
from reembed_workload import REEMBED_GROWN_FRAGMENTS, ReembedWorkload, reembed_table  # noqa: E402
from sql_workload import TOOLS, SqlWorkload  # noqa: E402
from targets import Verdict, judge, verdict_table  # noqa: E402

# The default run measures issue 14's SQL targets (W(1000) against Alembic and the floor; the time above the floor
# at W(5000) / W(1000), for which Alembic is left out of W(5000): ~70 s a run, and no target reads it). The LanceDB
# cases take an hour or more on 2 cores: only with --lance (or named with --only).
FULL = {"sql": [1000, 5000], "lance": [100_000, 400_000, 1_000_000, 4_000_000],
        "addcol": [10_000, 1_000_000], "jobs": (8, 100_000), "repeat": 5, "lance_repeat": 3,
        "reembed": [1_000_000], "columns": [1_000_000]}
QUICK = {"sql": [100, 300], "lance": [10_000, 50_000], "addcol": [10_000, 50_000], "jobs": (8, 2_000),
         "repeat": 2, "lance_repeat": 1, "reembed": [10_000],
         "columns": [20_000]}


def parse_rows(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        scale = {"k": 1_000, "m": 1_000_000}.get(part[-1:], 1)
        out.append(int(float(part.rstrip("km")) * scale))
    return out


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes, few repetitions: a smoke run")
    p.add_argument("--only", action="append", metavar="NAME", default=[],
                   help="run the cases whose name contains NAME (or matches it as a glob); repeatable")
    p.add_argument("--lance", action="store_true",
                   help="also run the LanceDB cases (recreate, add column, reembed, --jobs: an hour or more)")
    p.add_argument("--list", action="store_true", help="list the selected cases and exit")
    p.add_argument("--repeat", type=int, help="timed rounds per case (default 5 for SQL, 3 for LanceDB)")
    p.add_argument("--sql-sizes", type=parse_rows, metavar="N,N", help="migration counts (default 100,1000,5000)")
    p.add_argument("--lance-sizes", type=parse_rows, metavar="ROWS,..",
                   help="recreation sizes (default 100k,400k,1M,4M)")
    p.add_argument("--reembed-sizes", type=parse_rows, metavar="ROWS,..",
                   help="re-embedding sizes (default 1M; 200k on a busy machine)")
    p.add_argument("--jobs-rows", type=parse_rows, metavar="ROWS", help="rows per table in the --jobs case")
    p.add_argument("--tools", type=lambda text: tuple(t.strip() for t in text.split(",") if t.strip()),
                   metavar="A,B", help=f"SQL contenders to run (default all: {','.join(TOOLS)}, without alembic "
                   "at W(5000) and above, where only migrator's time above the floor is judged)")
    p.add_argument("--workdir", type=Path, help="where generated projects and databases go (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--out", type=Path, help="results file (default benchmarks/results/<time>.json)")
    p.add_argument("--report", nargs="+", type=Path, metavar="JSON",
                   help="print the tables of saved results (several files are merged, later cases win) and exit")
    p.add_argument("--live", action="store_true",
                   help="measure the live working tree instead of a copy frozen at the start of the run")
    return p.parse_args(argv)


def selected(name: str, only: list[str]) -> bool:
    return not only or any(o in name or fnmatch.fnmatch(name, o) for o in only)


def startup_case(repeat: int) -> Case:
    contenders = [
        Contender("python -c pass", partial(run_process, [sys.executable, "-c", "pass"])),
        Contender("migrator --help", partial(run_process, [BIN / "migrator", "--help"])),
        Contender("alembic --help", partial(run_process, [BIN / "alembic", "--help"])),
    ]
    return Case("cli.startup", "interpreter and CLI start-up", contenders, repeat=repeat,
                ratios=[Ratio("migrator --help", "alembic --help"), Ratio("migrator --help", "python -c pass")])


class Plan:
    """Every case the options allow, built lazily so --only skips the generation of unused workloads."""

    def __init__(self, args: argparse.Namespace, work: Path, log: Callable[[str], None]) -> None:
        self.args, self.work, self.log = args, work, log
        preset = QUICK if args.quick else FULL
        self.repeat = args.repeat or preset["repeat"]
        self.lance_repeat = args.repeat or preset["lance_repeat"]
        self.sql_sizes = args.sql_sizes or preset["sql"]
        self.lance_sizes = args.lance_sizes or preset["lance"]
        self.addcol_sizes = preset["addcol"]
        self.reembed_sizes = args.reembed_sizes or preset["reembed"]
        self._reembed: ReembedWorkload | None = None
        tables, rows = preset["jobs"]
        self.jobs = (tables, args.jobs_rows[0] if args.jobs_rows else rows)
        self.tools: tuple[str, ...] = args.tools or TOOLS
        unknown = sorted(set(self.tools) - set(TOOLS))
        if unknown:
            raise SystemExit(f"--tools: unknown contender {unknown[0]!r} (known: {', '.join(TOOLS)})")
        self._sql: dict[int, SqlWorkload] = {}
        self._lance: LanceWorkload | None = None

    def sql(self, n: int) -> SqlWorkload:
        if n not in self._sql:
            self.log(f"generating W({n}) for {', '.join(self.tools)} ...")
            self._sql[n] = SqlWorkload(self.work, n, self.tools_at(n))
        return self._sql[n]

    @property
    def lance(self) -> LanceWorkload:
        if self._lance is None:
            self._lance = LanceWorkload(self.work, self.log)
        return self._lance

    def cases(self) -> list[tuple[str, Callable[[], Case]]]:
        out: list[tuple[str, Callable[[], Case]]] = [("cli.startup", lambda: startup_case(self.repeat))]
        out += self._sql_cases()
        if self.args.lance or self.args.quick or self.args.only:  # --only may name a LanceDB case
            out += self._lance_cases()
        return out

    def _sql_cases(self) -> list[tuple[str, Callable[[], Case]]]:
        out: list[tuple[str, Callable[[], Case]]] = []
        for n in self.sql_sizes:
            slow = max(1, min(self.repeat, 3)) if n >= 5000 else self.repeat  # alembic takes ~25 s per W(5000) run
            for command, rep in (("upgrade", slow), ("rollback", slow), ("status", self.repeat),
                                 ("validate", self.repeat)):
                out.append((f"sql.{command}.N{n}", partial(self._sql_case, n, command, rep)))
        return out

    def _lance_cases(self) -> list[tuple[str, Callable[[], Case]]]:
        out: list[tuple[str, Callable[[], Case]]] = []
        for rows in self.lance_sizes:
            rep = max(1, min(self.lance_repeat, 2)) if rows >= 4_000_000 else self.lance_repeat
            out.append((f"lance.recreate.{human(rows)}", partial(self._lance_case, "recreate", rows, rep)))
        for rows in self.addcol_sizes:
            out.append((f"lance.addcol.{human(rows)}", partial(self._lance_case, "addcol", rows, self.repeat)))
        for rows in self.reembed_sizes:
            for fragments in (1, REEMBED_GROWN_FRAGMENTS):
                suffix = "" if fragments == 1 else f".{fragments}frags"
                out.append((f"lance.reembed.{human(rows)}{suffix}", partial(self._reembed_case, rows, fragments, 1)))
        tables, rows = self.jobs
        out.append((f"lance.jobs.{tables}x{human(rows)}",
                    partial(self.lance.jobs_case, rows, tables, max(1, min(self.lance_repeat, 2)))))
        return out

    def _sql_case(self, n: int, command: str, repeat: int) -> Case:
        workload = self.sql(n)
        make = {"upgrade": workload.upgrade_case, "rollback": workload.rollback_case,
                "status": workload.status_case, "validate": workload.validate_case}[command]
        return make(repeat, self.tools_at(n))

    def tools_at(self, n: int) -> tuple[str, ...]:
        """The contenders at W(n): all of them, but Alembic only below W(5000) unless --tools names it."""
        if self.args.tools or n < 5000:
            return self.tools
        return tuple(t for t in self.tools if not t.startswith("alembic"))

    def _reembed_case(self, rows: int, fragments: int, repeat: int) -> Case:
        if self._reembed is None:
            self._reembed = ReembedWorkload(self.work, self.log)
        return self._reembed.case(rows, repeat, fragments=fragments)

    def _lance_case(self, kind: str, rows: int, repeat: int) -> Case:
        if kind == "recreate":
            return self.lance.recreate_case(rows, repeat)
        return self.lance.add_column_case(rows, repeat)


def import_checks(plan: Plan) -> dict[str, dict[str, Any]]:
    """``migrator --help`` and ``migrator status --backend db`` on the largest applied SQL project."""
    n = max(plan.sql_sizes)
    workload = plan.sql(n)
    tool = workload.tools["migrator-sql"]
    workload.ensure_applied(tool)
    return {
        "migrator --help": import_profile([BIN / "migrator", "--help"], cwd=tool.folder),
        "migrator status --backend db": import_profile([BIN / "migrator", "status", "--backend", "db"],
                                                       cwd=tool.folder),
    }


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    started = time.time()

    def log(message: str) -> None:
        print(f"[{time.time() - started:7.1f}s] {message}", file=sys.stderr, flush=True)

    if args.report:
        print(report_saved(args.report, args))
        return 0
    work = args.workdir or Path(tempfile.gettempdir()) / f"migrator-bench-{os.getpid()}"
    plan = Plan(args, work, log)
    chosen = [(name, make) for name, make in plan.cases() if selected(name, args.only)]
    # issue 16: the columns path vs today's recreation, in process (benchmarks/addcols_bench.py)
    columns = [rows for rows in (QUICK if args.quick else FULL)["columns"]
               if selected(f"lance.columns.{human(rows)}", args.only)]
    if args.list:
        print("\n".join([name for name, _ in chosen] + [f"lance.columns.{human(rows)}" for rows in columns]))
        return 0
    if not chosen and not columns:
        print(f"no case matches {args.only}; see --list", file=sys.stderr)
        return 2
    code = 0
    try:
        if chosen:
            code = run_cases(args, argv, plan, chosen, work, started, log)
        # In process, so after the cases above: a parent grown to gigabytes would make every child process it
        # starts later slower to fork, and report the parent's size as the child's peak RSS (the forked image).
        if columns:
            from addcols_bench import report as columns_report
            from addcols_bench import run as columns_run

            for rows in columns:
                measured = columns_run(rows, work / f"columns-{rows}", log)
                print(f"\n### lance.columns.{human(rows)}\n\n{columns_report(measured)}")
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    return code


def run_cases(args: argparse.Namespace, argv: list[str], plan: Plan, chosen: list[tuple[str, Callable[[], Case]]],
              work: Path, started: float, log: Callable[[str], None]) -> int:
    """Run the chosen whole-process cases, write their JSON after each, print the tables and the targets."""
    work.mkdir(parents=True, exist_ok=True)
    out = args.out or HERE / "results" / time.strftime("%Y%m%d-%H%M%S.json")
    machine = machine_info()
    if not args.live:
        machine["code"] = freeze_code(HERE.parent, work / "code")
        log(f"measuring a frozen copy of migrator/ and backends/ at {machine['code']['commit'][:10]}"
            f" (+{len(machine['code']['uncommitted'])} uncommitted files)")
    log(f"work directory {work}; {len(chosen)} cases; results -> {out}")
    results: list[CaseResult] = []
    imports: dict[str, dict[str, Any]] = {}
    payload: dict[str, Any] = {"machine": machine, "argv": argv, "quick": args.quick, "cases": results}
    try:
        for name, make in chosen:
            log(f"{name}")
            results.append(run_case(make(), log))
            write_json(out, payload)  # after every case: a crash late in the run keeps the rest
        if any(selected(f"sql.status.N{n}", args.only) for n in plan.sql_sizes) or selected("imports", args.only):
            imports = import_checks(plan)
        if plan._lance is not None:
            plan._lance.verify_seeds()
    finally:
        machine["loadavg_end"] = os.getloadavg()
        verdicts = judge(results, imports, n=1000 if 1000 in plan.sql_sizes else sorted(plan.sql_sizes)[0],
                         big=max(plan.sql_sizes))
        payload.update({"imports": imports, "targets": verdicts, "seconds_total": time.time() - started})
        write_json(out, payload)
    print(report(machine, results, imports, verdicts, args))
    log(f"done in {time.time() - started:.0f}s; raw results in {out}")
    return 1 if any(r.error for r in results) else 0


def report_saved(paths: list[Path], args: argparse.Namespace) -> str:
    """Re-render saved runs: their cases merged by name, the targets judged on the merge."""
    cases: dict[str, CaseResult] = {}
    imports: dict[str, dict[str, Any]] = {}
    machine: dict[str, Any] = {}
    for path in paths:
        data = json.loads(path.read_text())
        machine = machine or data["machine"]
        imports.update(data.get("imports") or {})
        for case in data["cases"]:
            cases[case["name"]] = case_from_json(case)
    results = list(cases.values())
    sizes = sorted({int(c.params["n"]) for c in results if "n" in c.params}) or [1000]
    verdicts = judge(results, imports, n=1000 if 1000 in sizes else sizes[0], big=sizes[-1])
    codes = []
    for path in paths:
        code = json.loads(path.read_text())["machine"].get("code") or {}
        codes.append(f"{path.name}: commit {str(code.get('commit', '?'))[:10]}"
                     f"{' + uncommitted ' + ', '.join(code['uncommitted']) if code.get('uncommitted') else ''}")
    return "Runs: " + "; ".join(codes) + "\n\n" + report(machine, results, imports, verdicts, args)


def report(machine: dict[str, Any], results: list[CaseResult], imports: dict[str, dict[str, Any]],
           verdicts: list[Verdict], args: argparse.Namespace) -> str:
    versions: dict[str, str | None] = machine.get("versions") or {}
    lines = [
        f"Machine: {machine.get('nproc')} cores ({machine.get('cpu')}), {machine.get('mem_total_gib')} GiB; "
        f"Python {machine.get('python')}, SQLite {machine.get('sqlite')}; "
        + ", ".join(f"{k} {v}" for k, v in versions.items() if v)
        + f"; load average {machine.get('loadavg_start')} -> {machine.get('loadavg_end')}"
        + (" (--quick)" if args.quick else ""),
        "",
        markdown_table(results),
        "",
    ]
    if imports:
        lines += ["| command | imports lancedb/pyarrow? | import time | costliest top-level imports (cumulative ms) |",
                  "|---|---|---:|---|"]
        for label, info in imports.items():
            top = ", ".join(f"{k} {v}" for k, v in list(info["top_ms"].items())[:6])
            lines.append(f"| `{label}` | {', '.join(info['heavy']) or 'no'} | {info['total_ms']:.0f} ms | {top} |")
        lines.append("")
    lines.append(verdict_table(verdicts))
    if any(r.name.startswith("lance.reembed.") for r in results):
        lines += ["", reembed_table(results)]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
