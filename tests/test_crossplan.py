"""The cross-backend planner alone (pure): ties in config order, run once reached, before the line moves past."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrator import crossplan
from migrator.errors import LoaderError
from migrator.model import AppliedMigration, Migration, Requirement


def step(version: int, line: str = "", *requires: Requirement) -> Migration:
    return Migration(version=version, name=f"m{version}", path=Path(f"{version:03d}_m{version}.py"), checksum="x",
                     line=line, requires=requires)


def names(plan: crossplan.Plan) -> list[str]:
    return [f"{backend}:{m.line}{m.version}" for backend, m in plan.order]


SQL = [step(1), step(2), step(3, "", Requirement("vec", "t", 2)), step(4)]
VEC = [step(1, "t"), step(2, "t"), step(3, "t")]


def views(applied_vec: tuple[AppliedMigration, ...] = (), sql_first: bool = True) -> list[crossplan.View]:
    sql = crossplan.View("sql", False, SQL, (), SQL)
    vec_steps = [m for m in VEC if m.version not in {r.version for r in applied_vec}]
    vec = crossplan.View("vec", True, VEC, applied_vec, vec_steps)
    return [sql, vec] if sql_first else [vec, sql]


@pytest.mark.parametrize("sql_first", [True, False])
def test_a_requirement_runs_once_reached_and_before_the_line_moves_past(sql_first: bool) -> None:
    order = names(crossplan.order(views(sql_first=sql_first)))
    assert order.index("vec:t2") < order.index("sql:3") < order.index("vec:t3")
    assert order.index("sql:2") < order.index("sql:3") < order.index("sql:4")


def test_ties_go_in_config_order() -> None:
    assert names(crossplan.order(views(sql_first=True)))[:2] == ["sql:1", "sql:2"]
    assert names(crossplan.order(views(sql_first=False)))[:2] == ["vec:t1", "vec:t2"]


def test_a_line_already_past_adds_no_constraint() -> None:
    applied = tuple(AppliedMigration(version=v, name=f"m{v}", line="t") for v in (1, 2, 3))
    assert names(crossplan.order(views(applied))) == ["sql:1", "sql:2", "sql:3", "sql:4"]


def test_a_cycle_names_its_migrations() -> None:
    vec = [step(1, "t", Requirement("sql", "", 2))]
    sql = [step(1, "", Requirement("vec", "t", 1)), step(2)]
    with pytest.raises(LoaderError, match=r"requirements form a cycle") as caught:
        crossplan.order([crossplan.View("sql", False, sql, (), sql), crossplan.View("vec", True, vec, (), vec)])
    assert "sql: 001_m1.py" in str(caught.value) and "vec: t v1 (m1)" in str(caught.value)
