"""The crash-recovery choice of the LanceDB adapter, as a table: Situation -> Recovery (pure, no storage)."""

from __future__ import annotations

import pytest

from migrator.backends.lancedb.bookkeeping import Intent
from migrator.backends.lancedb.common import Commit
from migrator.backends.lancedb.recovery import Recovery, Situation, classify
from migrator.backends.lancedb.recreate import Audit

APPEND = Commit(7, "Append", {})
DELETE = Commit(6, "Delete", {})
INDEX = Commit(6, "CreateIndex", {})  # changes no rows


def intent(start: int | None) -> Intent:
    return Intent("notes", 2, start, "dead", 0)


CASES = [
    ("fresh table, no intent", Situation(2, exists=True, stamp=1, current=5), Recovery.RUN),
    ("no table, no intent", Situation(2, exists=False), Recovery.RUN),
    ("stamped, no recreation pending", Situation(2, exists=True, stamp=2, current=5), Recovery.FINISH),
    ("stamped, intent left open", Situation(2, exists=True, stamp=2, intent=intent(4), current=5), Recovery.FINISH),
    ("stamped, recreation clean", Situation(2, exists=True, stamp=2, current=5, audit=Audit(5, (), ())),
     Recovery.FINISH),
    ("stamped, recreation commit gone", Situation(2, exists=True, stamp=2, current=5, audit=Audit(None, (), ())),
     Recovery.FINISH_UNCHECKED),
    ("stamped, recreation hid rows", Situation(2, exists=True, stamp=2, current=5, audit=Audit(5, (APPEND,), ())),
     Recovery.RESTORE_HIDDEN),
    ("stamped, recreation hid rows, changed since",
     Situation(2, exists=True, stamp=2, current=6, audit=Audit(5, (APPEND,), (APPEND,))), Recovery.REFUSE_HIDDEN),
    ("a later stamp is not this migration's", Situation(2, exists=True, stamp=3, intent=intent(4), current=4),
     Recovery.RERUN_UNCHANGED),
    ("interrupted, table gone", Situation(2, exists=False, intent=intent(4)), Recovery.RERUN_NO_TABLE),
    ("interrupted create, table never made", Situation(2, exists=False, intent=intent(None)), Recovery.RUN),
    ("interrupted create, nothing appended", Situation(2, exists=True, intent=intent(None), current=2,
                                                       history=(INDEX,)), Recovery.DROP_THEN_RUN),
    ("interrupted create, rows appended", Situation(2, exists=True, intent=intent(None), current=7,
                                                    history=(APPEND,)), Recovery.REFUSE_CREATED),
    ("interrupted before any commit", Situation(2, exists=True, stamp=1, intent=intent(4), current=4),
     Recovery.RERUN_UNCHANGED),
    ("interrupted, only appends since", Situation(2, exists=True, stamp=1, intent=intent(4), current=7,
                                                  history=(APPEND,)), Recovery.RERUN_KEEP_APPENDS),
    ("interrupted, only row-neutral commits since", Situation(2, exists=True, stamp=1, intent=intent(4), current=6,
                                                              history=(INDEX,)), Recovery.RUN),
    ("interrupted after changing rows", Situation(2, exists=True, stamp=1, intent=intent(4), current=6,
                                                  history=(DELETE,)), Recovery.RESTORE_THEN_RUN),
    ("interrupted, changes mixed with appends", Situation(2, exists=True, stamp=1, intent=intent(4), current=7,
                                                          history=(DELETE, APPEND)), Recovery.RESTORE_KEEP_APPENDS),
]


@pytest.mark.parametrize(("situation", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_classify_picks_the_recovery_for_each_situation(situation: Situation, expected: Recovery) -> None:
    assert classify(situation) is expected


def test_every_recovery_is_reachable() -> None:
    assert {c[2] for c in CASES} == set(Recovery)
