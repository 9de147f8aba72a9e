"""Measurement machinery: timed child processes, interleaved repetitions, statistics, JSON, markdown.

A *case* is one workload with several *contenders* (migrator, Alembic, the raw
floor...). Each round runs every contender once, in a rotated order (round 0:
A B C, round 1: B C A, ...), so drift on a shared machine hits every contender
alike instead of whichever ran last. Untimed ``setup`` runs before each timed
``run``; untimed ``check`` after it verifies the run really did the work.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

INNER_PREFIX = "BENCH_JSON "
"""A child process may print one line ``BENCH_JSON {...}`` with timings it took of itself."""

BIN = Path(sys.executable).parent


@dataclass
class Sample:
    seconds: float                      # wall time of the timed action
    cpu_seconds: float | None = None    # user + system time of the child
    maxrss_mb: float | None = None      # peak resident set size of the child
    inner: dict[str, float] = field(default_factory=dict)  # what the child reported about itself


@dataclass
class Contender:
    name: str
    run: Callable[[], Sample]
    setup: Callable[[], None] | None = None
    check: Callable[[], None] | None = None


@dataclass
class Ratio:
    """``numerator`` / ``denominator`` between two contenders of one case, shown in the table."""

    numerator: str
    denominator: str


@dataclass
class Case:
    name: str                                      # "sql.upgrade.N1000"
    description: str
    contenders: list[Contender]
    repeat: int = 5
    warmup: int = 1
    ratios: list[Ratio] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    prepare: Callable[[], None] | None = None      # once, before the first round (untimed)
    cleanup: Callable[[], None] | None = None      # once, after the last round


@dataclass
class Stats:
    n: int
    median: float
    min: float
    max: float
    samples: list[float]

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        return cls(n=len(values), median=statistics.median(values), min=min(values), max=max(values),
                   samples=list(values))


@dataclass
class ContenderResult:
    name: str
    seconds: Stats
    cpu_seconds: Stats | None
    maxrss_mb: Stats | None
    inner: dict[str, Stats]
    samples: list[Sample]


@dataclass
class RatioResult:
    numerator: str
    denominator: str
    of_medians: float
    of_mins: float
    paired_median: float     # median over rounds of (numerator / denominator) within the same round
    cpu_of_medians: float | None = None  # the same for CPU time (user + system): less sensitive to a busy machine


@dataclass
class CaseResult:
    name: str
    description: str
    params: dict[str, Any]
    contenders: dict[str, ContenderResult]
    ratios: list[RatioResult]
    started: float
    seconds_total: float
    error: str | None = None

    def median(self, contender: str) -> float | None:
        c = self.contenders.get(contender)
        return c.seconds.median if c else None


class BenchError(RuntimeError):
    pass


# -- processes -------------------------------------------------------------------------------------------------


def run_process(cmd: Sequence[str | os.PathLike[str]], *, cwd: Path | None = None,
                env: Mapping[str, str] | None = None, timeout: float = 3600.0) -> Sample:
    """Run ``cmd`` to completion and measure it: wall time, CPU time and peak RSS of that child.

    ``os.wait4`` gives the rusage of exactly this child (not of earlier ones).
    stdout/stderr go to files so a chatty process cannot block on a full pipe.
    A non-zero exit raises BenchError with the tail of stderr.
    """
    out_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-{os.getpid()}-{time.monotonic_ns()}"
    with open(f"{out_path}.out", "w+b") as out, open(f"{out_path}.err", "w+b") as err:
        start = time.perf_counter()
        proc = subprocess.Popen([str(c) for c in cmd], cwd=cwd, env=dict(env) if env is not None else None,
                                stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                raise BenchError(f"timed out after {timeout:.0f}s: {' '.join(map(str, cmd))}")
            time.sleep(0.002)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    for suffix in (".out", ".err"):
        Path(f"{out_path}{suffix}").unlink(missing_ok=True)
    if proc.returncode != 0:
        tail = "\n".join((stderr or stdout).strip().splitlines()[-15:])
        raise BenchError(f"exit {proc.returncode}: {' '.join(map(str, cmd))}\n{tail}")
    inner: dict[str, float] = {}
    for line in stdout.splitlines():
        if line.startswith(INNER_PREFIX):
            inner.update({k: float(v) for k, v in json.loads(line[len(INNER_PREFIX):]).items()})
    return Sample(seconds=seconds, cpu_seconds=usage.ru_utime + usage.ru_stime,
                  maxrss_mb=usage.ru_maxrss / 1024.0, inner=inner)


def process_output(cmd: Sequence[str | os.PathLike[str]], *, cwd: Path | None = None,
                   env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` untimed and return its output (for setup, checks and import profiles)."""
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=dict(env) if env is not None else None,
                          capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for tool processes: ours minus anything that would redirect a tool's config."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MIGRATOR_") and k not in {"PYTHONPROFILEIMPORTTIME", "PYTHONDONTWRITEBYTECODE"}}
    env.update(extra)
    return env


def timed(fn: Callable[[], Any]) -> Sample:
    """Time an in-process callable (for in-process variants; no RSS)."""
    start = time.perf_counter()
    cpu = time.process_time()
    fn()
    return Sample(seconds=time.perf_counter() - start, cpu_seconds=time.process_time() - cpu)


# -- running cases ---------------------------------------------------------------------------------------------


def run_case(case: Case, log: Callable[[str], None]) -> CaseResult:
    started = time.time()
    t0 = time.perf_counter()
    samples: dict[str, list[Sample]] = {c.name: [] for c in case.contenders}
    rounds: list[dict[str, float]] = []
    error: str | None = None
    try:
        if case.prepare:
            case.prepare()
        order = list(case.contenders)
        total = case.warmup + case.repeat
        for r in range(total):
            k = r % len(order)
            rotated = order[k:] + order[:k]
            this_round: dict[str, float] = {}
            for contender in rotated:
                if contender.setup:
                    contender.setup()
                sample = contender.run()
                if contender.check:
                    contender.check()
                if r >= case.warmup:
                    samples[contender.name].append(sample)
                    this_round[contender.name] = sample.seconds
                rss = f", {sample.maxrss_mb:.0f} MB" if sample.maxrss_mb is not None else ""
                tag = "warm-up" if r < case.warmup else f"{r - case.warmup + 1}/{case.repeat}"
                log(f"  {case.name} [{tag}] {contender.name}: {sample.seconds:.3f}s{rss}")
            if r >= case.warmup:
                rounds.append(this_round)
    except Exception as exc:  # one broken case must not lose the others' results
        error = f"{type(exc).__name__}: {exc}"
        log(f"  {case.name} FAILED: {error}")
    finally:
        if case.cleanup:
            try:
                case.cleanup()
            except Exception as exc:
                log(f"  {case.name}: cleanup failed: {exc}")
    results = {name: _summarise(name, s) for name, s in samples.items() if s}
    ratios = [_ratio(r, results, rounds) for r in case.ratios if r.numerator in results and r.denominator in results]
    return CaseResult(name=case.name, description=case.description, params=case.params, contenders=results,
                      ratios=ratios, started=started, seconds_total=time.perf_counter() - t0, error=error)


def _summarise(name: str, samples: list[Sample]) -> ContenderResult:
    cpu = [s.cpu_seconds for s in samples if s.cpu_seconds is not None]
    rss = [s.maxrss_mb for s in samples if s.maxrss_mb is not None]
    keys = sorted({k for s in samples for k in s.inner})
    inner = {k: Stats.of([s.inner[k] for s in samples if k in s.inner]) for k in keys}
    return ContenderResult(name=name, seconds=Stats.of([s.seconds for s in samples]),
                           cpu_seconds=Stats.of(cpu) if len(cpu) == len(samples) else None,
                           maxrss_mb=Stats.of(rss) if len(rss) == len(samples) else None,
                           inner=inner, samples=samples)


def _ratio(ratio: Ratio, results: dict[str, ContenderResult], rounds: list[dict[str, float]]) -> RatioResult:
    num, den = results[ratio.numerator].seconds, results[ratio.denominator].seconds
    paired = [r[ratio.numerator] / r[ratio.denominator] for r in rounds
              if ratio.numerator in r and ratio.denominator in r and r[ratio.denominator] > 0]
    cpu_num, cpu_den = results[ratio.numerator].cpu_seconds, results[ratio.denominator].cpu_seconds
    cpu = cpu_num.median / cpu_den.median if cpu_num and cpu_den and cpu_den.median > 0 else None
    return RatioResult(numerator=ratio.numerator, denominator=ratio.denominator, of_medians=num.median / den.median,
                       of_mins=num.min / den.min, paired_median=statistics.median(paired) if paired else float("nan"),
                       cpu_of_medians=cpu)


# -- the code under test ---------------------------------------------------------------------------------------


def freeze_code(repo: Path, dest: Path) -> dict[str, Any]:
    """Copy the working tree's ``migrator/`` and ``backends/`` (as ``migrator/backends``) to ``dest`` and put it
    first on PYTHONPATH for every child process.

    The repository is shared and edited while a run takes half an hour; the
    frozen copy makes every sample measure the same code. ``sys.path`` (and so
    PYTHONPATH) is searched before the editable install's finder, so the copy
    wins. Returns the commit and the files that differed from it.
    """
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(repo / "migrator", dest / "migrator", ignore=ignore)
    shutil.copytree(repo / "backends", dest / "migrator" / "backends", ignore=ignore)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(dest), os.environ.get("PYTHONPATH")) if p)

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
        return done.stdout.rstrip("\n")

    dirty = [line[3:] for line in git("status", "--porcelain", "--", "migrator", "backends").splitlines()]
    return {"commit": git("rev-parse", "HEAD").strip(), "uncommitted": dirty, "frozen_at": str(dest)}


# -- the machine -----------------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    import sqlite3
    from importlib import metadata

    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "loadavg_start": os.getloadavg(),
    }
    try:
        with open("/proc/meminfo") as f:
            total_kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
        info["mem_total_gib"] = round(total_kb / 1024 / 1024, 1)
    except (OSError, StopIteration, ValueError):
        pass
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        pass
    free = shutil.which("free")
    if free:
        info["free_h"] = subprocess.run([free, "-h"], capture_output=True, text=True, check=False).stdout.strip()
    versions = {}
    for dist in ("migrator", "alembic", "sqlalchemy", "lancedb", "pylance", "pyarrow", "numpy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    info["versions"] = versions
    return info


# -- output ----------------------------------------------------------------------------------------------------


def to_jsonable(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        return to_jsonable(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and obj != obj:  # NaN is not JSON
        return None
    return obj


def case_from_json(data: Mapping[str, Any]) -> CaseResult:
    """A :class:`CaseResult` back from its JSON form (for re-rendering saved runs)."""

    def stats(d: Mapping[str, Any] | None) -> Stats | None:
        return Stats(**d) if d else None

    contenders = {}
    for name, c in data["contenders"].items():
        contenders[name] = ContenderResult(
            name=c["name"], seconds=Stats(**c["seconds"]), cpu_seconds=stats(c.get("cpu_seconds")),
            maxrss_mb=stats(c.get("maxrss_mb")), inner={k: Stats(**v) for k, v in c.get("inner", {}).items()},
            samples=[Sample(**s) for s in c.get("samples", [])])
    ratios = [RatioResult(**{**r, "paired_median": r.get("paired_median") or float("nan")})
              for r in data.get("ratios", [])]
    return CaseResult(name=data["name"], description=data["description"], params=data.get("params", {}),
                      contenders=contenders, ratios=ratios, started=data["started"],
                      seconds_total=data["seconds_total"], error=data.get("error"))


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_jsonable(payload), indent=1) + "\n")


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 100:
        return f"{s:.2f} s"
    return f"{s:.0f} s"


def markdown_table(results: Sequence[CaseResult]) -> str:
    """One row per contender: median, min, runs, peak RSS, CPU; then each case's ratios."""
    lines = ["| case | contender | median | min | n | peak RSS (median) | CPU (median) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for case in results:
        if case.error:
            error = " ".join(case.error.split())[:160].replace("|", "/")
            lines.append(f"| {case.name} | **failed**: {error} | | | | | |")
        for c in case.contenders.values():
            rss = f"{c.maxrss_mb.median:.0f} MB" if c.maxrss_mb else "-"
            cpu = fmt_seconds(c.cpu_seconds.median) if c.cpu_seconds else "-"
            lines.append(f"| {case.name} | {c.name} | {fmt_seconds(c.seconds.median)} | {fmt_seconds(c.seconds.min)}"
                         f" | {c.seconds.n} | {rss} | {cpu} |")
    ratio_lines = ["", "| case | ratio | of medians | of mins | paired (median of per-round) | CPU time |",
                   "|---|---|---:|---:|---:|---:|"]
    for case in results:
        for r in case.ratios:
            cpu = f"{r.cpu_of_medians:.2f}x" if r.cpu_of_medians is not None else "-"
            paired = f"{r.paired_median:.2f}x" if r.paired_median == r.paired_median else "-"
            ratio_lines.append(f"| {case.name} | {r.numerator} / {r.denominator} | {r.of_medians:.2f}x"
                               f" | {r.of_mins:.2f}x | {paired} | {cpu} |")
    if len(ratio_lines) > 3:
        lines += ratio_lines
    return "\n".join(lines)
