"""One duration per migration, measured once: what `upgrade` prints is what `history` stores.

The CLI printed "applied 001_x (31 ms)" while the bookkeeping held 0 ms: the runner timed the step itself while
the adapter timed (and recorded) the migration's body. Each migration here sleeps 50 ms, so a stored 0 cannot
match what is printed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import Project, lance_project

SLOW = """\
import time
{flag}
def up(db):
    time.sleep(0.05)
    db.execute("CREATE TABLE t{n} (id INTEGER)")
"""


def printed(out: str) -> dict[str, int]:
    return {m["name"]: int(m["ms"]) for m in re.finditer(r"applied (?P<name>.+) \((?P<ms>[0-9]+) ms\)", out)}


def stored(project: Project, backend: str) -> dict[tuple[str, int], int]:
    (history,) = json.loads(project.cli("history", "--backend", backend, "--json").out)["backends"]
    return {(h["line"], h["version"]): h["duration_ms"] for h in history["history"]}


@pytest.mark.parametrize("transactional", [True, False], ids=["transaction", "no-transaction"])
def test_sql_printed_durations_are_the_stored_ones(project: Project, transactional: bool) -> None:
    flag = "" if transactional else "transactional = False\n"
    for n in (1, 2, 3):
        project.write(f"00{n}_slow{n}.py", SLOW.format(flag=flag, n=n))
    result = project.cli("upgrade")
    assert result.code == 0, result.err
    shown = printed(result.out)
    assert sorted(shown) == ["001_slow1", "002_slow2", "003_slow3"]
    assert {("", n): shown[f"00{n}_slow{n}"] for n in (1, 2, 3)} == stored(project, "db")
    assert all(ms > 0 for ms in shown.values())


LANCE_SLOW = '''\
import time
from migrator.lancedb import migration

@migration(table="notes", version=1, description="create notes")
def create_notes(db):
    time.sleep(0.05)
    db.create_table("notes", data=[{"id": 1}])

@migration(table="people", version=1, description="create people")
def create_people(db):
    time.sleep(0.05)
    db.create_table("people", data=[{"id": 1}])
'''


@pytest.mark.lancedb
def test_lancedb_printed_durations_are_the_stored_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = lance_project(tmp_path, capsys, {"001_init.py": LANCE_SLOW})
    result = p.cli("upgrade", "--backend", "vec")
    assert result.code == 0, result.err
    shown = printed(result.out)
    assert sorted(shown) == ["notes v1 (create notes)", "people v1 (create people)"]
    assert stored(p, "vec") == {("notes", 1): shown["notes v1 (create notes)"],
                                ("people", 1): shown["people v1 (create people)"]}
    assert all(ms > 0 for ms in shown.values())
