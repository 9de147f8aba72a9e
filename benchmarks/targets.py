"""The issues' targets, judged from one run's results: met, or missed by how much.

Numbers: ``14.N`` is item N of issue 14 (performance round 2); ``r1.N`` a first-round
target still measured here (LanceDB, and upgrade against Alembic).

Every target is a ratio measured side by side in the same run. ``of_medians``
(median of one contender / median of the other) is the number judged; the
table also shows the ratio of minimums.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness import CaseResult


@dataclass
class Verdict:
    number: str
    target: str
    measured: str
    threshold: str
    met: bool | None          # None: not measured in this run
    note: str = ""

    @property
    def status(self) -> str:
        if self.met is None:
            return "not measured"
        return "met" if self.met else "**missed**"


def _at_most(value: float, limit: float) -> tuple[bool, str]:
    met = value <= limit
    return met, "" if met else f"missed by {(value / limit - 1) * 100:.0f}%"


def _at_least(value: float, limit: float) -> tuple[bool, str]:
    met = value >= limit
    return met, "" if met else f"missed by {(limit / value - 1) * 100:.0f}%"


class Results:
    def __init__(self, cases: Sequence[CaseResult]) -> None:
        self.by_name = {c.name: c for c in cases}

    def median(self, case: str, contender: str) -> float | None:
        c = self.by_name.get(case)
        return c.median(contender) if c else None

    def pair(self, case: str, num: str, den: str) -> tuple[float, float, float | None] | None:
        """(ratio of medians, ratio of mins, ratio of median CPU times) of ``num`` / ``den`` in ``case``."""
        c = self.by_name.get(case)
        if not c or num not in c.contenders or den not in c.contenders:
            return None
        a, b = c.contenders[num].seconds, c.contenders[den].seconds
        ca, cb = c.contenders[num].cpu_seconds, c.contenders[den].cpu_seconds
        cpu = ca.median / cb.median if ca and cb and cb.median > 0 else None
        return a.median / b.median, a.min / b.min, cpu

    def rss(self, case: str, contender: str) -> float | None:
        c = self.by_name.get(case)
        if not c or contender not in c.contenders or c.contenders[contender].maxrss_mb is None:
            return None
        stats = c.contenders[contender].maxrss_mb
        return stats.median if stats else None

    def inner(self, case: str, contender: str, key: str) -> float | None:
        c = self.by_name.get(case)
        if not c or contender not in c.contenders or key not in c.contenders[contender].inner:
            return None
        return c.contenders[contender].inner[key].median


MIGRATORS = ("migrator-sql", "migrator-py")


def judge(cases: Sequence[CaseResult], imports: dict[str, Any], n: int = 1000, big: int = 5000) -> list[Verdict]:
    """Issue 14's targets (items 2-5) and the first round's LanceDB targets (r1.5-r1.7)."""
    r = Results(cases)
    out: list[Verdict] = []

    for mig in MIGRATORS:
        kind = mig.split("-")[1]
        p = r.pair(f"sql.status.N{n}", "alembic", mig)
        out.append(_verdict("14.2", f"status, {n} applied, {kind} files: alembic current / migrator status", p,
                            ">= 2.5x", 2.5))
    for mig in MIGRATORS:
        kind = mig.split("-")[1]
        p = r.pair(f"sql.upgrade.N{n}", mig, "floor")
        out.append(_verdict("14.3", f"upgrade W({n}), {kind} files: migrator / raw sqlite3 floor", p, "<= 1.3x", 1.3,
                            at_most=True))
        p = r.pair(f"sql.rollback.N{n}", "alembic", mig)
        out.append(_verdict("14.3", f"rollback 0 of W({n}), {kind} files: alembic downgrade base / migrator", p,
                            ">= 2.5x", 2.5))
        p = r.pair(f"sql.upgrade.N{n}", "alembic", mig)  # the first round's target, kept in view
        out.append(_verdict("r1.1", f"upgrade W({n}), {kind} files: alembic upgrade head / migrator", p, ">= 2.5x",
                            2.5))

    if big != n:
        limit = 5.5 * (big / n) / 5  # 5.5 for 5,000 vs 1,000; scaled when a run uses other sizes
        for command in ("upgrade", "status", "validate"):
            for mig in MIGRATORS:
                out.append(_above_floor(r, command, mig, n, big, limit))

    for label, check in imports.items():
        bad = check.get("heavy") or []
        out.append(Verdict("14.5", f"`{label}` imports neither lancedb nor pyarrow",
                           ", ".join(bad) or "neither imported", "none", not bad,
                           f"imports take {check.get('total_ms', 0):.0f} ms"))

    out += _lance(r, cases)
    return out


def _above_floor(r: Results, command: str, mig: str, n: int, big: int, limit: float) -> Verdict:
    """Item 4: migrator's time above the raw floor at ``big`` over the same at ``n`` (medians of each run)."""
    target = f"{command}: (migrator - floor) at W({big}) / at W({n}), {mig.split('-')[1]} files"
    a, b = r.median(f"sql.{command}.N{big}", mig), r.median(f"sql.{command}.N{n}", mig)
    fa, fb = r.median(f"sql.{command}.N{big}", "floor"), r.median(f"sql.{command}.N{n}", "floor")
    if a is None or b is None or fa is None or fb is None:
        return Verdict("14.4", target, "-", f"<= {limit:.1f}", None)
    if b <= fb:
        return Verdict("14.4", target, "-", f"<= {limit:.1f}", None, f"migrator not above the floor at W({n})")
    value = (a - fa) / (b - fb)
    met, miss = _at_most(value, limit)
    detail = (f"{a - fa:.2f} s / {b - fb:.2f} s above the floor; whole times {a / b:.2f}x, "
              f"the floor's own {fa / fb:.2f}x")
    return Verdict("14.4", target, f"{value:.2f}", f"<= {limit:.1f}", met, "; ".join(x for x in (miss, detail) if x))


def _verdict(number: str, target: str, pair: tuple[float, float, float | None] | None, threshold: str,
             limit: float, *, at_most: bool = False) -> Verdict:
    if pair is None:
        return Verdict(number, target, "-", threshold, None)
    value, of_mins, cpu = pair
    met, miss = _at_most(value, limit) if at_most else _at_least(value, limit)
    cpu_note = f"CPU time {cpu:.2f}x" if cpu is not None else ""
    note = "; ".join(x for x in (miss, f"ratio of mins {of_mins:.2f}x", cpu_note) if x)
    return Verdict(number, target, f"{value:.2f}x", threshold, met, note)


def _sizes(cases: Sequence[CaseResult], prefix: str) -> list[int]:
    return sorted(int(c.params["rows"]) for c in cases if c.name.startswith(prefix) and c.contenders)


def _lance(r: Results, cases: Sequence[CaseResult]) -> list[Verdict]:
    out: list[Verdict] = []
    by_rows = {int(c.params["rows"]): c.name for c in cases if c.name.startswith("lance.recreate.") and c.contenders}
    sizes = sorted(by_rows)
    if len(sizes) >= 2:
        big = sizes[-1]
        small = max((s for s in sizes if s * 10 <= big), default=sizes[0])
        a, b = r.rss(by_rows[big], "migrator"), r.rss(by_rows[small], "migrator")
        fa, fb = r.rss(by_rows[big], "floor"), r.rss(by_rows[small], "floor")
        if a and b:
            met, miss = _at_most(a / b, 1.3)
            floor_note = f"floor: {fa:.0f} / {fb:.0f} MB = {fa / fb:.2f}x" if fa and fb else ""
            out.append(Verdict("r1.5", f"recreate: peak RSS at {big:,} rows / at {small:,} rows (migrator)",
                               f"{a:.0f} / {b:.0f} MB = {a / b:.2f}x", "<= 1.3x", met,
                               "; ".join(x for x in (miss, floor_note) if x)))
    else:
        out.append(Verdict("r1.5", "recreate: peak RSS, largest / 1/10 of it", "-", "<= 1.3x", None))
    for rows in sizes:
        p = r.pair(by_rows[rows], "migrator", "floor")
        out.append(_verdict("r1.5", f"recreate {rows:,} rows: time migrator / raw Lance floor", p, "<= 1.3x", 1.3,
                            at_most=True))

    adds = {int(c.params["rows"]): c.name for c in cases if c.name.startswith("lance.addcol.") and c.contenders}
    if len(adds) >= 2:
        small, big = min(adds), max(adds)
        a, b = r.median(adds[big], "migrator"), r.median(adds[small], "migrator")
        ia, ib = (r.inner(adds[big], "migrator", "migrations_v2_ms_sum"),
                  r.inner(adds[small], "migrator", "migrations_v2_ms_sum"))
        if a and b:
            met, miss = _at_most(a / b, 1.5)
            inner = f"in-process {ia:.0f} ms vs {ib:.0f} ms" if ia is not None and ib is not None else ""
            out.append(Verdict("r1.6", f"add nullable column: {big:,} rows / {small:,} rows (migrator, whole process)",
                               f"{a / b:.2f}x", "about 1x (<= 1.5x)", met, "; ".join(x for x in (miss, inner) if x)))
            rec = r.median(by_rows[big], "migrator") if big in by_rows else None
            if rec:
                met2, miss2 = _at_most(a / rec, 0.1)
                out.append(Verdict("r1.6", f"add nullable column / recreation, {big:,} rows (migrator, whole process)",
                                   f"{a / rec:.3f}x", "far below (<= 0.1x)", met2, miss2))
            rec_inner = r.inner(by_rows[big], "migrator", "migrations_v2_ms_sum") if big in by_rows else None
            if rec_inner and ia is not None:
                met3, miss3 = _at_most(ia / rec_inner, 0.1)
                out.append(Verdict("r1.6", f"add nullable column / recreation, {big:,} rows (migrator, the migration's "
                                   "own duration_ms)", f"{ia:.0f} / {rec_inner:.0f} ms", "far below (<= 0.1x)", met3,
                                   miss3))
    else:
        out.append(Verdict("r1.6", "add nullable column: large / small", "-", "about 1x", None))

    jobs = [c.name for c in cases if c.name.startswith("lance.jobs.") and c.contenders]
    for name in jobs:
        p = r.pair(name, "--jobs 1", "--jobs 2")
        v = _verdict("r1.7", f"{name}: --jobs 1 / --jobs 2", p, ">= 1.5x", 1.5)
        c = r.by_name[name].contenders.get("--jobs 1")
        if c and c.cpu_seconds:
            cores = c.cpu_seconds.median / c.seconds.median
            v.note = "; ".join(x for x in (v.note, f"--jobs 1 already keeps {cores:.2f} cores busy (CPU / wall)") if x)
        out.append(v)
    if not jobs:
        out.append(Verdict("r1.7", "eight tables: --jobs 1 / --jobs 2", "-", ">= 1.5x", None))
    return out


def verdict_table(verdicts: Sequence[Verdict]) -> str:
    lines = ["| # | target | measured | threshold | verdict | note |", "|---|---|---:|---:|---|---|"]
    for v in verdicts:
        lines.append(f"| {v.number} | {v.target} | {v.measured} | {v.threshold} | {v.status} | {v.note} |")
    return "\n".join(lines)
