"""`migrator seed`: seed data loaded after migrations, idempotent, one transaction on SQL, upserts by key on LanceDB.

SQL cases run on SQLite and PostgreSQL (``sql_url``); LanceDB cases on real local folders. "Changes nothing" is
checked by comparing every table's full contents (and, on LanceDB, the table's Lance version).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import textwrap
from pathlib import Path
from typing import Any

import lancedb
import pyarrow as pa
import pytest
import sqlalchemy as sa
from s3 import S3Bucket
from snapshots import assert_clean_error

from conftest import Project, write_config
from migrator import Migrator
from migrator.backends import open_backend
from migrator.errors import SeedRefused
from migrator.events import Event, SeedDone

USERS = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n"
ROLES = "CREATE TABLE roles (user_id INTEGER NOT NULL REFERENCES users (id), role TEXT NOT NULL, " \
        "PRIMARY KEY (user_id, role));\n"
USERS_SEED = ("INSERT INTO users (id, name) VALUES (1, 'ann'), (2, 'bob')\n"
              "  ON CONFLICT (id) DO UPDATE SET name = excluded.name;\n")
ROLES_SEED = '''\
    def seed(db):
        # reads what the .sql seed before it wrote: file-name order, one transaction
        for (user_id,) in db.execute("SELECT id FROM users ORDER BY id").fetchall():
            db.execute("INSERT INTO roles (user_id, role) VALUES (:u, 'member') ON CONFLICT DO NOTHING",
                       {"u": user_id})
    '''


def sql_project(root: Path, url: str, capsys: pytest.CaptureFixture[str], seeds: str = "seeds/db") -> Project:
    """A SQL backend ``db`` with ``seeds = <seeds>``, users and roles migrated by 001 and 002 (not applied yet)."""
    (root / "migrations" / "db").mkdir(parents=True)
    (root / seeds).mkdir(parents=True)
    write_config(root, url, f'seeds = "{seeds}"\n')
    project = Project(root, url, capsys)
    project.write("001_users.up.sql", USERS)
    project.write("002_roles.up.sql", ROLES)
    return project


def seed_file(project: Project, name: str, text: str, seeds: str = "seeds/db") -> Path:
    path = project.root / seeds / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def contents(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's full contents, sorted (the version table's rows included)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            names = sa.inspect(conn).get_table_names()
            return {name: sorted((tuple(row) for row in conn.execute(sa.text(f'SELECT * FROM "{name}"'))), key=repr)
                    for name in names}
    finally:
        engine.dispose()


@pytest.fixture
def seeded(tmp_path: Path, sql_url: str, capsys: pytest.CaptureFixture[str]) -> Project:
    project = sql_project(tmp_path / "proj", sql_url, capsys)
    seed_file(project, "01_users.sql", USERS_SEED)
    seed_file(project, "02_roles.py", ROLES_SEED)
    return project


# --------------------------------------------------------------------------- SQL


def test_sql_seeds_run_in_file_name_order_and_are_named(seeded: Project) -> None:
    assert seeded.cli("upgrade").code == 0
    result = seeded.cli("seed")
    assert result.code == 0, result
    assert result.out.index("01_users.sql") < result.out.index("02_roles.py")
    data = contents(seeded.url)
    assert data["users"] == [(1, "ann"), (2, "bob")]
    assert data["roles"] == [(1, "member"), (2, "member")]


def test_sql_second_seed_run_changes_nothing(seeded: Project) -> None:
    assert seeded.cli("upgrade").code == 0
    assert seeded.cli("seed").code == 0
    before = contents(seeded.url)
    again = seeded.cli("seed")
    assert again.code == 0, again
    assert contents(seeded.url) == before


@pytest.mark.parametrize(("name", "text", "says"), [
    ("03_bad.sql", "INSERT INTO users (id, name) VALUES (3, 'cy');\nINSERT INTO nowhere VALUES (1);\n",
     "statement 2 of 2 (line 2)"),
    ("03_bad.py", "def seed(db):\n    db.execute(\"INSERT INTO users (id, name) VALUES (3, 'cy')\")\n"
                  "    raise RuntimeError('no more users')\n", "no more users"),
])
def test_sql_failing_seed_leaves_nothing_seeded_and_names_the_file(seeded: Project, name: str, text: str,
                                                                   says: str) -> None:
    assert seeded.cli("upgrade").code == 0
    seed_file(seeded, name, text)
    before = contents(seeded.url)
    result = seeded.cli("seed")
    line = assert_clean_error(result, 1, name, says)
    assert "nothing was seeded" in line
    assert contents(seeded.url) == before  # the two seeds before it were rolled back with it
    assert before["users"] == []


def test_sql_seed_that_commits_is_refused_and_rolled_back(seeded: Project) -> None:
    assert seeded.cli("upgrade").code == 0
    seed_file(seeded, "00_commits.py", "def seed(db):\n    db.execute(\"INSERT INTO users VALUES (7, 'eve')\")\n"
                                       "    db.connection.commit()\n")
    before = contents(seeded.url)
    result = seeded.cli("seed")
    assert_clean_error(result, 1, "00_commits.py", "commit() refused")
    assert contents(seeded.url) == before


def test_sql_seed_file_with_commit_statement_is_refused_before_anything_runs(seeded: Project) -> None:
    assert seeded.cli("upgrade").code == 0
    seed_file(seeded, "03_commit.sql", "INSERT INTO users VALUES (7, 'eve');\nCOMMIT;\n")
    before = contents(seeded.url)
    assert_clean_error(seeded.cli("seed"), 2, "03_commit.sql:2", "COMMIT")
    assert contents(seeded.url) == before


def test_sql_seed_refused_while_migrations_are_pending(seeded: Project) -> None:
    assert seeded.cli("upgrade", "--to", "1").code == 0
    before = contents(seeded.url)
    for command in (("seed",), ("seed", "--dry-run")):
        line = assert_clean_error(seeded.cli(*command), 1, "002_roles.up.sql", "pending", "migrator upgrade")
        assert "nothing was seeded" in line
    assert contents(seeded.url) == before


def test_sql_seed_refused_after_an_interrupted_step(seeded: Project) -> None:
    seeded.write("003_half.up.sql", "-- migrator: no-transaction\nCREATE TABLE half (id INTEGER);\n"
                                    "INSERT INTO nowhere VALUES (1);\n")
    assert seeded.cli("upgrade").code == 1
    before = contents(seeded.url)
    assert_clean_error(seeded.cli("seed"), 1, "seed refused", "003")
    assert contents(seeded.url) == before


def test_sql_seed_dry_run_lists_the_seeds_and_changes_nothing(seeded: Project) -> None:
    assert seeded.cli("upgrade").code == 0
    before = contents(seeded.url)
    result = seeded.cli("seed", "--dry-run")
    assert result.code == 0, result
    assert "would seed 01_users.sql (1 statement)" in result.out
    assert "would seed 02_roles.py" in result.out
    assert contents(seeded.url) == before


def test_sql_seed_waits_for_the_migration_lock(seeded: Project) -> None:
    assert seeded.cli("upgrade").code == 0
    config = seeded.root / "migrator.toml"
    config.write_text("lock_timeout = 0.3\n" + config.read_text())
    m = Migrator.from_config(config)
    backend = open_backend(m.config.backends["db"])
    try:
        with backend.lock(5):
            result = seeded.cli("seed")
    finally:
        backend.close()
    assert_clean_error(result, 1, "being migrated by another process")
    assert contents(seeded.url)["users"] == []


def test_seeds_folder_with_percent_and_spaces(tmp_path: Path, sql_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    folder = "my seeds 100%/a%20b"
    project = sql_project(tmp_path / "a 100% b", sql_url, capsys, seeds=folder)
    seed_file(project, "01 users.sql", USERS_SEED, seeds=folder)
    assert project.cli("upgrade").code == 0
    result = project.cli("seed")
    assert result.code == 0, result
    assert "01 users.sql" in result.out
    assert contents(sql_url)["users"] == [(1, "ann"), (2, "bob")]


def test_missing_seeds_folder_is_a_config_error_naming_file_and_key(sqlite_project: Project) -> None:
    write_config(sqlite_project.root, sqlite_project.url, 'seeds = "seeds/nowhere"\n')
    result = sqlite_project.cli("seed")
    assert_clean_error(result, 2, "migrator.toml", "backends.db.seeds", "seeds/nowhere")


def test_seeds_folder_expands_environment_variables(sqlite_project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    (sqlite_project.root / "seeds" / "staging").mkdir(parents=True)
    write_config(sqlite_project.root, sqlite_project.url, 'seeds = "seeds/${SEED_SET:-nowhere}"\n')
    monkeypatch.setenv("SEED_SET", "staging")
    result = sqlite_project.cli("seed")
    assert result.code == 0, result
    assert result.out == "db: no seeds\n"


def test_seed_without_a_seeds_folder_configured_is_a_usage_error(sqlite_project: Project) -> None:
    assert_clean_error(sqlite_project.cli("seed"), 2, "seeds")


def test_library_seed_returns_what_each_seed_did_and_tells_the_listener(seeded: Project) -> None:
    assert seeded.cli("upgrade").code == 0
    events: list[Event] = []
    m = Migrator.from_config(seeded.root / "migrator.toml", listener=events.append)
    (result,) = m.seed()
    assert [s.label for s in result.seeds] == ["01_users.sql", "02_roles.py"]
    assert [e.seed for e in events if isinstance(e, SeedDone)] == ["01_users.sql", "02_roles.py"]


def test_library_seed_logs_each_seed(seeded: Project, caplog: pytest.LogCaptureFixture) -> None:
    assert seeded.cli("upgrade").code == 0
    caplog.set_level(logging.INFO, logger="migrator")
    Migrator.from_config(seeded.root / "migrator.toml").seed()
    seeded_records = [r for r in caplog.records if getattr(r, "migrator_event", None) == "seeded"]
    assert [r.getMessage() for r in seeded_records] == ["db: seeded 01_users.sql (1 statement, 2 rows affected)",
                                                         "db: seeded 02_roles.py (seed(db))"]


def test_library_seed_refusal_is_seed_refused(seeded: Project) -> None:
    m = Migrator.from_config(seeded.root / "migrator.toml")
    with pytest.raises(SeedRefused, match=re.escape("001_users.up.sql and 1 more pending")):
        m.seed("db")


# --------------------------------------------------------------------------- LanceDB

MEMOS = '''\
    import pyarrow as pa
    from migrator.lancedb import migration

    SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("title", pa.string()),
                        pa.field("vector", pa.list_(pa.float32(), 2))])

    @migration(table="memos", version=1, description="create memos")
    def create(db):
        db.create_table("memos", schema=SCHEMA)
    '''
WELCOME = '''\
    from migrator.lancedb import seed

    @seed(table="memos", key="id")
    def welcome():
        return [{"id": 1, "title": "welcome", "vector": [1.0, 2.0]}, {"id": 2, "title": "read me", "vector": [3, 4]}]
    '''


def lance_seeded(root: Path, capsys: pytest.CaptureFixture[str], seeds: str = "seeds/vec",
                 uri: str = "data/lance") -> Project:
    (root / "migrations" / "vec").mkdir(parents=True)
    (root / seeds).mkdir(parents=True)
    (root / "migrations" / "vec" / "001_memos.py").write_text(textwrap.dedent(MEMOS))
    (root / "migrator.toml").write_text(textwrap.dedent(f'''\
        [backends.vec]
        type = "lancedb"
        uri = "{uri}"
        migrations = "migrations/vec"
        seeds = "{seeds}"
        '''))
    project = Project(root, "", capsys)
    seed_file(project, "01_welcome.py", WELCOME, seeds=seeds)
    return project


def memos(project: Project, uri: str = "data/lance") -> tuple[int, list[dict[str, Any]]]:
    table = lancedb.connect(project.root / uri).open_table("memos")
    return int(table.version), sorted(table.to_arrow().to_pylist(), key=lambda row: row["id"])


@pytest.fixture
def vec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Project:
    project = lance_seeded(tmp_path / "proj", capsys)
    assert project.cli("upgrade").code == 0
    return project


def test_lancedb_seed_upserts_by_key_without_duplicates(vec: Project) -> None:
    table = lancedb.connect(vec.root / "data/lance").open_table("memos")
    table.add(pa.Table.from_pylist([{"id": 1, "title": "old title", "vector": [9.0, 9.0]},
                                    {"id": 9, "title": "the app's", "vector": [0.5, 0.5]}], schema=table.schema))
    result = vec.cli("seed")
    assert result.code == 0, result
    assert "1 inserted, 1 updated, 0 unchanged" in result.out
    _, rows = memos(vec)
    assert rows == [{"id": 1, "title": "welcome", "vector": [1.0, 2.0]},
                    {"id": 2, "title": "read me", "vector": [3.0, 4.0]},
                    {"id": 9, "title": "the app's", "vector": [0.5, 0.5]}]


def test_lancedb_second_seed_run_changes_nothing(vec: Project) -> None:
    assert vec.cli("seed").code == 0
    before = memos(vec)
    again = vec.cli("seed")
    assert again.code == 0, again
    assert "0 inserted, 0 updated, 2 unchanged" in again.out
    assert memos(vec) == before  # the rows, and the Lance version: nothing was committed


def test_lancedb_seed_giving_some_columns_keeps_the_others(vec: Project) -> None:
    assert vec.cli("seed").code == 0
    seed_file(vec, "02_retitle.py", '''\
        import pyarrow as pa
        from migrator.lancedb import seed

        @seed(table="memos", key=["id"])
        def retitle():
            return pa.table({"id": pa.array([2], pa.int64()), "title": ["read me first"]})
        ''', seeds="seeds/vec")
    result = vec.cli("seed")
    assert result.code == 0, result
    _, rows = memos(vec)
    # 01 sets "read me" again, then 02 "read me first": file-name order, each on what the one before wrote
    assert rows[1] == {"id": 2, "title": "read me first", "vector": [3.0, 4.0]}


@pytest.mark.parametrize(("text", "says"), [
    ('@seed(table="memos", key="id")\ndef broken():\n    raise RuntimeError("no data")\n', "no data"),
    ('@seed(table="nowhere", key="id")\ndef rows():\n    return [{"id": 1}]\n', "'nowhere' does not exist"),
    ('@seed(table="memos", key="id")\ndef rows():\n    return [{"id": 5}, {"id": 5}]\n', "key 5 is given twice"),
    ('@seed(table="memos", key="id")\ndef rows():\n    return [{"title": "x"}]\n', "no key column 'id'"),
    ('@seed(table="memos", key="id")\ndef rows():\n    return [{"id": 5, "colour": "red"}]\n',
     "column 'colour' is not in table 'memos'"),
    ('@seed(table="memos", key="id")\ndef rows():\n    return [{"id": "five"}]\n', "do not fit table 'memos'"),
])
def test_lancedb_failing_seed_writes_nothing_and_names_the_file(vec: Project, text: str, says: str) -> None:
    seed_file(vec, "02_bad.py", "from migrator.lancedb import seed\n\n" + text, seeds="seeds/vec")
    before = memos(vec)
    line = assert_clean_error(vec.cli("seed"), 1, "02_bad.py", says)
    assert "nothing was seeded" in line
    assert memos(vec) == before  # 01_welcome.py, checked before it, was not written either


def test_lancedb_seed_refused_while_migrations_are_pending(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = lance_seeded(tmp_path / "proj", capsys)
    assert project.cli("upgrade").code == 0
    (project.root / "migrations" / "vec" / "002_more.py").write_text(textwrap.dedent('''\
        import pyarrow as pa
        from migrator.lancedb import migration

        @migration(table="memos", version=2, description="add tags")
        def tags(db):
            db.open_table("memos").add_columns(pa.field("tags", pa.string()))
        '''))
    before = memos(project)
    assert_clean_error(project.cli("seed"), 1, "memos v2", "pending")
    assert memos(project) == before


def test_lancedb_seed_on_a_database_not_created_yet_is_refused(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    project = lance_seeded(tmp_path / "proj", capsys)
    assert_clean_error(project.cli("seed"), 1, "pending")
    assert not (project.root / "data").exists()


def test_lancedb_seeds_folder_with_percent_and_spaces(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = lance_seeded(tmp_path / "a 100% b", capsys, seeds="my seeds 100%/a%20b", uri="data 1%/lance")
    assert project.cli("upgrade").code == 0
    result = project.cli("seed")
    assert result.code == 0, result
    _, rows = memos(project, uri="data 1%/lance")
    assert [row["id"] for row in rows] == [1, 2]


def test_lancedb_seed_dry_run_counts_and_changes_nothing(vec: Project) -> None:
    before = memos(vec)
    result = vec.cli("seed", "--dry-run")
    assert result.code == 0, result
    assert "would seed 01_welcome.py: welcome -> memos by id (2 to insert, 0 to update, 0 unchanged)" in result.out
    assert memos(vec) == before


def test_lancedb_seeds_on_object_storage_load_once(tmp_path: Path, s3_bucket: S3Bucket,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    project = lance_seeded(tmp_path / "proj", capsys)
    options = ", ".join(f'{k} = "{v}"' for k, v in s3_bucket.storage_options.items())
    config = project.root / "migrator.toml"
    config.write_text(config.read_text().replace('uri = "data/lance"', f'uri = "{s3_bucket.uri()}"')
                      + f"storage_options = {{ {options} }}\n")
    assert project.cli("upgrade").code == 0
    assert project.cli("seed").code == 0
    table = lancedb.connect(s3_bucket.uri(), storage_options=s3_bucket.storage_options).open_table("memos")
    before = (int(table.version), table.to_arrow().to_pylist())
    assert [row["id"] for row in before[1]] == [1, 2]
    assert project.cli("seed").code == 0
    table.checkout_latest()
    assert (int(table.version), table.to_arrow().to_pylist()) == before
    assert not (project.root / "data").exists()


def test_sql_file_in_a_lancedb_seeds_folder_is_refused(vec: Project) -> None:
    seed_file(vec, "02_rows.sql", "INSERT INTO memos VALUES (1);\n", seeds="seeds/vec")
    assert_clean_error(vec.cli("seed"), 2, "02_rows.sql", "@seed")


# --------------------------------------------------------------------------- both


def test_seed_over_every_backend_refuses_before_seeding_any(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "proj"
    sql = sql_project(root, f"sqlite:///{root / 'app.db'}", capsys)
    seed_file(sql, "01_users.sql", USERS_SEED)
    assert sql.cli("upgrade").code == 0
    lance_root = root / "vec"
    lance_seeded(lance_root, capsys)  # its migration is pending
    config = root / "migrator.toml"
    config.write_text(config.read_text() + textwrap.dedent('''\

        [backends.vec]
        type = "lancedb"
        uri = "vec/data/lance"
        migrations = "vec/migrations/vec"
        seeds = "vec/seeds/vec"
        '''))
    assert_clean_error(sql.cli("seed"), 1, "vec", "pending")
    assert contents(sql.url)["users"] == []


# --------------------------------------------------------------------------- the example project

REPO = Path(__file__).resolve().parent.parent


def test_the_example_seeds_load_on_the_example_migrations_once(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "demo"
    shutil.copytree(REPO / "migrations", root / "migrations")
    shutil.copytree(REPO / "seeds", root / "seeds")
    pyproject = (REPO / "pyproject.toml").read_text()
    (root / "pyproject.toml").write_text(pyproject[pyproject.index("[tool.migrator]"):pyproject.index(
        "[tool.pytest")])
    project = Project(root, "", capsys)
    assert project.cli("upgrade").code == 0
    first = project.cli("seed")
    assert first.code == 0, first
    url = f"sqlite:///{root / 'data' / 'app.db'}"
    db = lancedb.connect(root / "data" / "lancedb")

    def state() -> tuple[Any, ...]:
        tables = [db.open_table(name) for name in ("users", "notebooks")]
        return contents(url), [(int(t.version), t.to_arrow().to_pylist()) for t in tables]

    before = state()
    assert [row[0] for row in before[0]["documents"]] == ["welcome"]
    assert [rows[0]["id"] for _, rows in before[1]] == ["demo", "inbox"]
    again = project.cli("seed")
    assert again.code == 0, again
    assert state() == before
    assert json.loads(project.cli("status", "--json").out)["backends"][0]["pending"] == 0
