"""Planning: pending, out of order, edited and missing files, rollback targets, stamp — pure functions."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrator import plan
from migrator.errors import IrreversibleMigration, UsageError, ValidationFailed
from migrator.model import ISSUE_CHANGED, ISSUE_MISSING, ISSUE_OUT_OF_ORDER, AppliedMigration, Migration


def mig(version: int, line: str = "", checksum: str | None = None, reversible: bool = True) -> Migration:
    return Migration(version=version, name=f"m{version}", path=Path(f"{version:03d}_m{version}.py"),
                     checksum=checksum or f"c{version}", line=line, reversible=reversible)


def done(version: int, line: str = "", checksum: str | None = None) -> AppliedMigration:
    return AppliedMigration(version=version, name=f"m{version}", line=line, checksum=checksum or f"c{version}")


def test_upgrade_plans_every_pending_version_in_order() -> None:
    assert [m.version for m in plan.upgrade_plan([mig(3), mig(1), mig(2)], [done(1)])] == [2, 3]


def test_upgrade_to_stops_at_the_target_inclusive() -> None:
    assert [m.version for m in plan.upgrade_plan([mig(1), mig(2), mig(3)], [], to=2)] == [1, 2]


def test_upgrade_refuses_when_an_applied_file_was_edited() -> None:
    with pytest.raises(ValidationFailed, match=r"edited after it was applied.*--allow-changed"):
        plan.upgrade_plan([mig(1, checksum="new"), mig(2)], [done(1, checksum="old")])


def test_upgrade_runs_past_an_edit_when_allowed() -> None:
    assert [m.version for m in plan.upgrade_plan([mig(1, checksum="new"), mig(2)], [done(1, checksum="old")],
                                                 allow_changed=True)] == [2]


def test_upgrade_refuses_out_of_order_pending_versions() -> None:
    with pytest.raises(ValidationFailed, match=r"older than the newest applied version 3.*--allow-out-of-order"):
        plan.upgrade_plan([mig(1), mig(2), mig(3)], [done(1), done(3)])


def test_upgrade_applies_out_of_order_versions_when_allowed() -> None:
    steps = plan.upgrade_plan([mig(1), mig(2), mig(3)], [done(1), done(3)], allow_out_of_order=True)
    assert [m.version for m in steps] == [2]


def test_validate_reports_missing_files() -> None:
    issues = plan.validate([mig(1)], [done(1), done(2)])
    assert [(i.kind, i.version) for i in issues] == [(ISSUE_MISSING, 2)]


def test_validate_reports_changed_and_out_of_order_together() -> None:
    issues = plan.validate([mig(1, checksum="x"), mig(2), mig(3)], [done(1), done(3)])
    assert {(i.kind, i.version) for i in issues} == {(ISSUE_CHANGED, 1), (ISSUE_OUT_OF_ORDER, 2)}


def test_applied_rows_without_checksum_are_not_reported_as_changed() -> None:
    row = AppliedMigration(version=1, name="m1", checksum=None)
    assert plan.validate([mig(1)], [row]) == []


def test_lines_are_independent() -> None:
    steps = plan.upgrade_plan([mig(1, "a"), mig(2, "a"), mig(1, "b")], [done(1, "a")])
    assert [(m.line, m.version) for m in steps] == [("a", 2), ("b", 1)]


def test_rollback_undoes_versions_above_target_newest_first() -> None:
    steps = plan.rollback_plan([mig(1), mig(2), mig(3)], [done(1), done(2), done(3)], 1)
    assert [m.version for m in steps] == [3, 2]


def test_rollback_zero_undoes_everything() -> None:
    assert len(plan.rollback_plan([mig(1), mig(2)], [done(1), done(2)], 0)) == 2


def test_rollback_above_current_version_is_refused() -> None:
    with pytest.raises(UsageError, match=r"cannot roll back to 5: the database is at version 2"):
        plan.rollback_plan([mig(1), mig(2)], [done(1), done(2)], 5)


def test_rollback_to_negative_target_is_refused() -> None:
    with pytest.raises(UsageError, match=r"0 or a positive number"):
        plan.rollback_plan([mig(1)], [done(1)], -1)


def test_rollback_crossing_an_irreversible_migration_is_refused() -> None:
    steps = plan.rollback_plan([mig(1), mig(2, reversible=False), mig(3)], [done(1), done(2), done(3)], 0)
    with pytest.raises(IrreversibleMigration, match=r"002_m2\.py: .*has no down migration"):
        plan.check_reversible(steps)


def test_stamp_records_up_to_the_version_and_unrecords_above() -> None:
    record, unrecord = plan.stamp_plan([mig(1), mig(2), mig(3)], [done(3)], 2)
    assert ([m.version for m in record], [m.version for m in unrecord]) == ([1, 2], [3])


def test_stamp_of_an_unknown_version_is_refused() -> None:
    with pytest.raises(UsageError, match=r"no migration has version 7"):
        plan.stamp_plan([mig(1)], [], 7)


@given(st.sets(st.integers(1, 200), min_size=1, max_size=40), st.data())
def test_after_upgrade_nothing_is_pending(versions: set[int], data: st.DataObject) -> None:
    migrations = [mig(v) for v in versions]
    prefix = sorted(versions)[: data.draw(st.integers(0, len(versions)))]
    steps = plan.upgrade_plan(migrations, [done(v) for v in prefix])
    applied = [done(v) for v in prefix] + [done(m.version) for m in steps]
    (status,) = plan.line_statuses(migrations, applied)
    assert status.pending == () and status.current == max(versions)


def test_adopted_versions_without_files_are_not_missing() -> None:
    adopted = AppliedMigration(version=1, name="", line="memos", checksum=None, extra={"adopted": True})
    assert plan.validate([mig(2, "memos")], [adopted]) == []


def baseline(version: int, line: str = "docs") -> AppliedMigration:
    return AppliedMigration(version=version, name="", line=line, extra={"adopted": True}, baseline=True,
                            irreversible=f"{line} v{version} was adopted from the bookkeeping of an earlier tool")


def test_an_adopted_baseline_covers_every_version_under_it_without_expanding_them() -> None:
    files = [mig(3, "docs"), mig(20240115, "docs"), mig(20240201, "docs")]
    applied = [baseline(20240115)]
    (status,) = plan.line_statuses(files, applied)
    assert status.current == 20240115 and [m.version for m in status.pending] == [20240201]
    assert plan.validate(files, applied) == []  # v3 is covered: not out of order
    assert [m.version for m in plan.upgrade_plan(files, applied)] == [20240201]
    assert plan.stamp_plan(files, applied, 3, line="docs") == ([], [mig(20240115, "docs")])
    with pytest.raises(IrreversibleMigration, match="adopted"):
        plan.rollback_plan(files, applied, 3, line="docs")
