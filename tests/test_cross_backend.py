"""Cross-backend requirements: one upgrade plan over a SQL backend and a LanceDB folder (issue 12, section 1)."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from pathlib import Path

import lancedb
import pytest

from conftest import Project

pytestmark = pytest.mark.lancedb

CHUNKS = '''\
import pyarrow as pa
from migrator.lancedb import migration, add_columns

@migration(table="chunks_vec", version=1, description="create chunks")
def create(db):
    db.create_table("chunks_vec", data=[{"id": i, "text": f"t{i}"} for i in range(3)])

@migration(table="chunks_vec", version=2, description="add emb")
def emb(db):
    add_columns(db, "chunks_vec", pa.field("emb", pa.string()))

@migration(table="chunks_vec", version=3, description="add extra")
def extra(db):
    add_columns(db, "chunks_vec", pa.field("extra", pa.string()))
'''
OTHER = '''\
from migrator.lancedb import migration

@migration(table="other", version=1, description="create other")
def create(db):
    db.create_table("other", data=[{"id": 1}])
'''
SEEN = "CREATE TABLE seen (what VARCHAR(200));\n"
BACKFILL = '''\
import lancedb
import sqlalchemy as sa

requires = {{"vectors": {{"chunks_vec": 2}}}}

def up(db):
    table = lancedb.connect({lance!r}).open_table("chunks_vec")
    db.execute(sa.text("INSERT INTO seen (what) VALUES (:w)"), {{"w": ",".join(table.schema.names)}})
{down}'''
DOWN = '''
def down(db):
    db.execute("DELETE FROM seen")
'''


def make(tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str, *, lance_first: bool = False,
         sql: dict[str, str] | None = None, vectors: dict[str, str] | None = None) -> Project:
    root = tmp_path / "proj"
    lance = root / "data" / "lance"
    files = {
        "sql": {"001_seen.up.sql": SEEN, "002_backfill.py": BACKFILL.format(lance=str(lance), down=DOWN)}
        if sql is None else sql,
        "vectors": {"001_chunks.py": CHUNKS} if vectors is None else vectors,
    }
    for backend, texts in files.items():
        (root / "migrations" / backend).mkdir(parents=True)
        for name, text in texts.items():
            (root / "migrations" / backend / name).write_text(textwrap.dedent(text), encoding="utf-8")
    blocks = {
        "sql": f'[backends.sql]\ntype = "sql"\nurl = "{url}"\nmigrations = "migrations/sql"\n',
        "vectors": '[backends.vectors]\ntype = "lancedb"\nuri = "data/lance"\nmigrations = "migrations/vectors"\n',
    }
    order = ["vectors", "sql"] if lance_first else ["sql", "vectors"]
    (root / "migrator.toml").write_text("\n".join(blocks[name] for name in order), encoding="utf-8")
    return Project(root, url, capsys)


def lines(project: Project) -> dict[str, dict[str, int]]:
    result = project.cli("status", "--json")
    assert result.code == 0, result.err
    return {b["name"]: {line["line"]: line["current"] for line in b["lines"]}
            for b in json.loads(result.out)["backends"]}


def seen(project: Project) -> list[str]:
    import sqlalchemy as sa

    engine = sa.create_engine(project.url)
    try:
        with engine.connect() as connection:
            return [row[0] for row in connection.execute(sa.text("SELECT what FROM seen"))]
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'app.db'}"


@pytest.mark.parametrize("lance_first", [False, True], ids=["sql-first", "lancedb-first"])
def test_backfill_sees_the_required_table_version_whichever_backend_is_listed_first(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], sql_url: str, lance_first: bool) -> None:
    project = make(tmp_path, capsys, sql_url, lance_first=lance_first)
    result = project.cli("upgrade")
    assert result.code == 0, result.err
    assert seen(project) == ["id,text,emb"]  # chunks_vec at version 2: emb, and not yet extra
    assert lines(project) == {"sql": {"": 2}, "vectors": {"chunks_vec": 3}}


def test_a_line_already_past_the_requirement_runs_against_the_newer_state(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], sqlite_url: str) -> None:
    project = make(tmp_path, capsys, sqlite_url)
    assert project.cli("upgrade", "--backend", "vectors").code == 0
    result = project.cli("upgrade")
    assert result.code == 0, result.err
    assert seen(project) == ["id,text,emb,extra"]


def test_a_sql_file_header_orders_it_after_the_required_table_version(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], sqlite_url: str) -> None:
    header = "-- migrator: requires vectors.chunks_vec=2\nINSERT INTO seen (what) VALUES ('header');\n"
    project = make(tmp_path, capsys, sqlite_url, sql={"001_seen.up.sql": SEEN, "002_mark.up.sql": header})
    result = project.cli("upgrade")
    assert result.code == 0, result.err
    order = [line for line in result.out.splitlines() if "002_mark" in line or "chunks_vec v" in line]
    names = " | ".join(order)
    assert names.index("chunks_vec v2") < names.index("002_mark") < names.index("chunks_vec v3"), names


def test_a_lancedb_migration_requiring_a_sql_version_sees_that_version(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db_file = tmp_path / "app.db"
    snap = f'''\
    import sqlite3
    from migrator.lancedb import migration

    @migration(table="snap", version=1, description="count items", requires={{"sql": 2}})
    def count(db):
        with sqlite3.connect({str(db_file)!r}) as connection:
            rows = connection.execute("SELECT count(*) FROM items").fetchone()[0]
        db.create_table("snap", data=[{{"rows": rows}}])
    '''
    sql = {"001_items.up.sql": "CREATE TABLE items (id INTEGER);\nINSERT INTO items VALUES (1);\n",
           "002_more.up.sql": "INSERT INTO items VALUES (2);\n",
           "003_more.up.sql": "INSERT INTO items VALUES (3);\n"}
    project = make(tmp_path, capsys, f"sqlite:///{db_file}", sql=sql, vectors={"001_snap.py": snap})
    result = project.cli("upgrade")
    assert result.code == 0, result.err
    table = lancedb.connect(project.root / "data" / "lance").open_table("snap")
    assert table.to_arrow().column("rows").to_pylist() == [2]
    assert sqlite3.connect(db_file).execute("SELECT count(*) FROM items").fetchone()[0] == 3


@pytest.mark.parametrize(("requires", "says"), [
    ('{"vector": {"chunks_vec": 2}}', "the config has no backend 'vector'"),
    ('{"vectors": {"chunks": 2}}', "declares table 'chunks'"),
    ('{"vectors": {"chunks_vec": 7}}', "has no version 7"),
    ('{"vectors": 2}', "keeps a version per table"),
    ('{"vectors": {"chunks_vec": "2"}}', "must be a positive integer"),
], ids=["backend", "table", "version", "no-table", "not-int"])
def test_an_unknown_requirement_is_refused_at_load_and_nothing_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], sqlite_url: str, requires: str, says: str) -> None:
    backfill = BACKFILL.format(lance="unused", down=DOWN).replace('{"vectors": {"chunks_vec": 2}}', requires)
    project = make(tmp_path, capsys, sqlite_url, sql={"001_seen.up.sql": SEEN, "002_backfill.py": backfill})
    result = project.cli("upgrade")
    assert result.code == 2
    (line,) = result.err.strip().splitlines()
    assert says in line and "002_backfill.py" in line, line
    assert not (tmp_path / "app.db").exists() or lines(project)["sql"] == {"": 0}
    assert not (project.root / "data" / "lance").exists() or \
        lancedb.connect(project.root / "data" / "lance").list_tables().tables == []


def test_a_requirement_cycle_is_refused_naming_it_and_nothing_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], sqlite_url: str) -> None:
    chunks = CHUNKS.replace('description="add emb")', 'description="add emb", requires={"sql": 2})')
    project = make(tmp_path, capsys, sqlite_url, vectors={"001_chunks.py": chunks})
    result = project.cli("upgrade")
    assert result.code == 2
    (line,) = result.err.strip().splitlines()
    assert "cycle" in line and "002_backfill.py" in line and "chunks_vec v2" in line, line
    assert lines(project) == {"sql": {"": 0}, "vectors": {"chunks_vec": 0}}


BROKEN_EMB = CHUNKS.replace('    add_columns(db, "chunks_vec", pa.field("emb", pa.string()))',
                            '    raise RuntimeError("emb exploded")')


def test_a_failure_stops_its_dependants_and_independent_lines_go_on(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], sqlite_url: str) -> None:
    project = make(tmp_path, capsys, sqlite_url, vectors={"001_chunks.py": BROKEN_EMB, "002_other.py": OTHER})
    result = project.cli("upgrade")
    assert result.code == 1
    assert "emb exploded" in result.err
    assert "sql: skipped 002_backfill: waits for vectors: chunks_vec v2 (add emb), which failed" in result.out
    assert lines(project) == {"sql": {"": 1}, "vectors": {"chunks_vec": 1, "other": 1}}


def test_fail_fast_stops_independent_lines_too(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], sqlite_url: str) -> None:
    project = make(tmp_path, capsys, sqlite_url, vectors={"001_chunks.py": BROKEN_EMB, "002_other.py": OTHER})
    result = project.cli("upgrade", "--fail-fast")
    assert result.code == 1
    assert lines(project) == {"sql": {"": 1}, "vectors": {"chunks_vec": 1, "other": 0}}


def test_rollback_below_a_required_version_is_refused_naming_the_dependant(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], sqlite_url: str) -> None:
    project = make(tmp_path, capsys, sqlite_url)
    assert project.cli("upgrade").code == 0
    result = project.cli("rollback", "1", "--backend", "vectors", "--table", "chunks_vec")
    assert result.code == 2
    (line,) = result.err.strip().splitlines()
    assert "sql: 002_backfill.py requires" in line and "--cascade" in line, line
    assert lines(project) == {"sql": {"": 2}, "vectors": {"chunks_vec": 3}}


def test_rollback_to_the_required_version_itself_is_allowed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], sqlite_url: str) -> None:
    project = make(tmp_path, capsys, sqlite_url)
    assert project.cli("upgrade").code == 0
    result = project.cli("rollback", "2", "--backend", "vectors", "--table", "chunks_vec")
    assert result.code == 0, result.err
    assert lines(project) == {"sql": {"": 2}, "vectors": {"chunks_vec": 2}}


def test_rollback_cascade_rolls_the_dependants_back_first(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], sqlite_url: str) -> None:
    project = make(tmp_path, capsys, sqlite_url)
    assert project.cli("upgrade").code == 0
    result = project.cli("rollback", "1", "--backend", "vectors", "--table", "chunks_vec", "--cascade")
    assert result.code == 0, result.err
    assert lines(project) == {"sql": {"": 1}, "vectors": {"chunks_vec": 1}}
    assert seen(project) == []
    assert result.out.index("002_backfill") < result.out.index("chunks_vec v2")


def test_rollback_cascade_dry_run_changes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], sqlite_url: str) -> None:
    project = make(tmp_path, capsys, sqlite_url)
    assert project.cli("upgrade").code == 0
    result = project.cli("rollback", "1", "--backend", "vectors", "--table", "chunks_vec", "--cascade", "--dry-run")
    assert result.code == 0, result.err
    assert result.out.count("002_backfill") == 1, result.out
    assert lines(project) == {"sql": {"": 2}, "vectors": {"chunks_vec": 3}}


def test_rollback_cascade_over_an_irreversible_dependant_changes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], sqlite_url: str) -> None:
    lance = tmp_path / "proj" / "data" / "lance"
    sql = {"001_seen.up.sql": SEEN, "002_backfill.py": BACKFILL.format(lance=str(lance), down="")}
    project = make(tmp_path, capsys, sqlite_url, sql=sql)
    assert project.cli("upgrade").code == 0
    result = project.cli("rollback", "1", "--backend", "vectors", "--table", "chunks_vec", "--cascade")
    assert result.code == 2
    assert "002_backfill.py" in result.err and "no down" in result.err
    assert lines(project) == {"sql": {"": 2}, "vectors": {"chunks_vec": 3}}


def test_status_shows_the_requirements_that_are_waiting(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], sqlite_url: str) -> None:
    project = make(tmp_path, capsys, sqlite_url)
    text = project.cli("status")
    assert "waiting: 002_backfill.py requires vectors.chunks_vec=2 (now at 0)" in text.out
    backends = {b["name"]: b for b in json.loads(project.cli("status", "--json").out)["backends"]}
    assert backends["sql"]["waiting"] == [{
        "line": "", "version": 2, "name": "backfill", "file": "002_backfill.py",
        "requires": {"backend": "vectors", "line": "chunks_vec", "version": 2}, "current": 0}]
    assert backends["vectors"]["waiting"] == []
    assert project.cli("upgrade").code == 0
    assert "waiting" not in project.cli("status").out


def test_a_failed_dependant_keeps_the_required_line_at_its_version(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], sqlite_url: str) -> None:
    failing = "requires = {'vectors': {'chunks_vec': 2}}\n\ndef up(db):\n    raise RuntimeError('backfill broke')\n"
    project = make(tmp_path, capsys, sqlite_url, sql={"001_seen.up.sql": SEEN, "002_backfill.py": failing},
                   vectors={"001_chunks.py": CHUNKS, "002_other.py": OTHER})
    result = project.cli("upgrade")
    assert result.code == 1
    assert "backfill broke" in result.err
    # chunks_vec waits at 2 for the backfill to be fixed and re-run; the independent table goes on
    assert lines(project) == {"sql": {"": 1}, "vectors": {"chunks_vec": 2, "other": 1}}


def test_upgrading_one_backend_refuses_a_step_whose_requirement_is_not_reached(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], sqlite_url: str) -> None:
    project = make(tmp_path, capsys, sqlite_url)
    result = project.cli("upgrade", "--backend", "sql")
    assert result.code == 2
    (line,) = result.err.strip().splitlines()
    assert "sql: 002_backfill.py requires vectors.chunks_vec=2" in line and "at version 0" in line, line
    assert lines(project) == {"sql": {"": 0}, "vectors": {"chunks_vec": 0}}
    assert project.cli("upgrade", "--backend", "sql", "--to", "1").code == 0  # what needs nothing still runs
    assert lines(project)["sql"] == {"": 1}


def test_a_no_transaction_marker_below_a_requires_header_is_refused_not_ignored(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], sqlite_url: str) -> None:
    text = "-- migrator: requires vectors.chunks_vec=1\n-- migrator: no-transaction\nSELECT 1;\n"
    project = make(tmp_path, capsys, sqlite_url, sql={"001_seen.up.sql": SEEN, "002_mark.up.sql": text})
    result = project.cli("upgrade")
    assert result.code == 2
    (line,) = result.err.strip().splitlines()
    assert "002_mark.up.sql:2" in line and "must be the first line" in line, line
    assert not (tmp_path / "app.db").exists()
    assert not (project.root / "data" / "lance").exists()
