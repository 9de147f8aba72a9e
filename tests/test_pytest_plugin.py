"""The pytest plugin for projects that use migrator (``migrator.testing``), run in real inner pytest sessions.

Each test builds a project in pytester's folder (a config, migration files, a test file that turns the ready
tests on with one import line) and runs pytest on it in a child process, which loads the plugin through its
``pytest11`` entry point as a user's pytest would.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
READY = "from migrator.testing import test_models_match_head, test_stairway, test_version_lines  # noqa: F401\n"
SQLITE_CONFIG = """\
[tool.migrator]
default_backend = "db"

[tool.migrator.backends.db]
type = "sql"
url = "sqlite:///data/app.db"
migrations = "migrations/db"
"""


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def sql_project(pytester: pytest.Pytester, files: dict[str, str], config: str = SQLITE_CONFIG) -> Path:
    """A SQLite project: ``pyproject.toml`` with ``[tool.migrator]``, ``files`` under ``migrations/db``."""
    root = pytester.path
    (root / "migrations" / "db").mkdir(parents=True)
    write(root, {"pyproject.toml": config, **{f"migrations/db/{name}": text for name, text in files.items()}})
    return root


CREATE_A = {
    "001_a.up.sql": "CREATE TABLE a (id INTEGER NOT NULL PRIMARY KEY, b TEXT);\n",
    "001_a.down.sql": "DROP TABLE a;\n",
}
FORGETFUL_DOWN = {
    **CREATE_A,
    "002_more.py": '''\
        import sqlalchemy as sa

        def up(db):
            db.op.add_column("a", sa.Column("c", sa.Integer()))
            db.op.create_index("ix_a_b", "a", ["b"])

        def down(db):
            db.op.drop_column("a", "c")  # the index stays behind
        ''',
}


@pytest.fixture
def server_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Where the inner session's test databases live: SQLite files, or a PostgreSQL server
    (``MIGRATOR_TEST_URL_DB``, a fresh database per test made there by the plugin)."""
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        monkeypatch.setenv("MIGRATOR_TEST_URL_DB", url)
    else:
        monkeypatch.delenv("MIGRATOR_TEST_URL_DB", raising=False)
    return str(request.param)


BOTH = pytest.mark.parametrize("server_env", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
                               indirect=True)


@BOTH
def test_the_stairway_passes_when_every_down_undoes_its_up(pytester: pytest.Pytester, server_env: str) -> None:
    sql_project(pytester, {**FORGETFUL_DOWN, "002_more.py": FORGETFUL_DOWN["002_more.py"].replace(
        "db.op.drop_column", 'db.op.drop_index("ix_a_b", table_name="a")\n            db.op.drop_column')})
    pytester.makepyfile(test_migrations=READY)
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=2, skipped=1)  # no target_metadata: models_match_head is skipped


@BOTH
def test_a_down_that_does_not_undo_its_up_fails_the_stairway_with_a_diff_naming_it(pytester: pytest.Pytester,
                                                                                   server_env: str) -> None:
    sql_project(pytester, FORGETFUL_DOWN)
    pytester.makepyfile(test_migrations=READY)
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines([
        "*db: version 2 (002_more.py): its down does not undo its up*",
        "+table a: index ix_a_b (b)",
    ])
    assert "-table a: index ix_a_b (b)" not in result.stdout.str()
    assert "001_a" not in result.stdout.str().split("its down does not undo")[0].rsplit("\n", 1)[-1]


def test_a_second_up_that_differs_from_the_first_fails_the_stairway(pytester: pytest.Pytester) -> None:
    """The down restores the schema but leaves a row the up reads: the second up makes another schema."""
    sql_project(pytester, {**CREATE_A, "002_t.py": '''\
        import sqlalchemy as sa

        def up(db):
            runs = db.connection.exec_driver_sql("SELECT count(*) FROM a").scalar()
            db.execute("INSERT INTO a (id, b) VALUES (:id, 'run')", {"id": runs + 1})
            if runs:
                db.op.add_column("a", sa.Column("second", sa.Integer()))
            db.op.create_table("t", sa.Column("id", sa.Integer()))

        def down(db):
            db.op.drop_table("t")  # the row in a stays
        '''})
    pytester.makepyfile(test_migrations="from migrator.testing import test_stairway  # noqa: F401\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*db: version 2 (002_t.py): applied again after its down, it gives another schema*",
                                 "+table a: column second INTEGER NULL"])


def test_a_migration_that_fails_going_down_fails_the_stairway_naming_it(pytester: pytest.Pytester) -> None:
    sql_project(pytester, {**CREATE_A, "002_bad.up.sql": "CREATE TABLE b (id INTEGER);\n",
                           "002_bad.down.sql": "DROP TABLE no_such_table;\n"})
    pytester.makepyfile(test_migrations="from migrator.testing import test_stairway  # noqa: F401\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*db: version 2 (002_bad.up.sql, 002_bad.down.sql): down failed:*no_such_table*"])


def test_an_irreversible_migration_is_applied_and_reported_not_walked_down(pytester: pytest.Pytester) -> None:
    sql_project(pytester, {**CREATE_A, "002_once.up.sql": "CREATE TABLE b (id INTEGER);\n",
                           "003_c.up.sql": "CREATE TABLE c (id INTEGER);\n", "003_c.down.sql": "DROP TABLE c;\n"})
    pytester.makepyfile(test_migrations="from migrator.testing import test_stairway  # noqa: F401\n")
    result = pytester.runpytest_subprocess("-W", "error::UserWarning")
    result.assert_outcomes(failed=1)  # the warning, made an error, shows it is raised
    result.stdout.fnmatch_lines(["*IrreversibleWarning: applied but not walked down (no down): "
                                 "db: version 2 (002_once.up.sql)*"])


def test_a_duplicate_version_fails_the_version_lines_test_naming_both_files(pytester: pytest.Pytester) -> None:
    sql_project(pytester, {**CREATE_A, "002_b.up.sql": "CREATE TABLE b (id INTEGER);\n",
                           "002_c.up.sql": "CREATE TABLE c (id INTEGER);\n"})
    pytester.makepyfile(test_migrations="from migrator.testing import test_version_lines  # noqa: F401\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*002_b.up.sql*002_c.up.sql*"])


@pytest.mark.lancedb
def test_a_lancedb_table_version_declared_twice_fails_the_version_lines_test(pytester: pytest.Pytester) -> None:
    write(pytester.path, {
        "migrator.toml": '[backends.vectors]\ntype = "lancedb"\nuri = "lance"\nmigrations = "m"\n',
        "m/001_a.py": """\
            import pyarrow as pa
            from migrator.lancedb import migration

            @migration(table="t", version=1, description="one")
            def one(db):
                db.create_table("t", schema=pa.schema([pa.field("id", pa.int64())]))
            """,
        "m/002_b.py": """\
            from migrator.lancedb import migration

            @migration(table="t", version=1, description="again")
            def again(db):
                pass
            """,
    })
    pytester.makepyfile(test_migrations="from migrator.testing import test_version_lines  # noqa: F401\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*002_b.py: again: t v1 is declared twice (also by *001_a.py: one)*"])


def test_the_fixtures_give_each_test_its_own_database(pytester: pytest.Pytester) -> None:
    """Two tests insert a row each into the migrated database: each sees only its own, and the database the
    config names is never created."""
    sql_project(pytester, CREATE_A)
    pytester.makepyfile(test_rows='''\
        import pytest
        import sqlalchemy as sa

        @pytest.mark.parametrize("word", ["first", "second"])
        def test_insert(migrated, migrator_urls, word):
            engine = sa.create_engine(migrator_urls["db"])
            with engine.begin() as conn:
                conn.execute(sa.text("INSERT INTO a (id, b) VALUES (1, :b)"), {"b": word})
                assert [r[0] for r in conn.execute(sa.text("SELECT b FROM a"))] == [word]
            engine.dispose()

        def test_nothing_applied(migrator):
            assert migrator.status()["db"].pending_count == 1
        ''')
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=3)
    assert not (pytester.path / "data").exists()


@pytest.mark.postgres
def test_each_test_gets_a_fresh_postgresql_database_dropped_after_it(pytester: pytest.Pytester,
                                                                     postgres_url: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    config = SQLITE_CONFIG.replace("sqlite:///data/app.db", "postgresql+psycopg://app@production.invalid/app")
    sql_project(pytester, CREATE_A, config)
    monkeypatch.setenv("MIGRATOR_TEST_URL_DB", postgres_url)
    pytester.makepyfile(test_rows='''\
        import sqlalchemy as sa

        SEEN = []

        def test_one(migrated, migrator_urls):
            SEEN.append(migrator_urls["db"])
            engine = sa.create_engine(migrator_urls["db"])
            with engine.begin() as conn:
                conn.execute(sa.text("INSERT INTO a (id, b) VALUES (1, 'x')"))
                assert conn.execute(sa.text("SELECT count(*) FROM a")).scalar() == 1
            engine.dispose()

        def test_two(migrated, migrator_urls):
            assert migrator_urls["db"] != SEEN[0]
            engine = sa.create_engine(migrator_urls["db"])
            with engine.begin() as conn:
                assert conn.execute(sa.text("SELECT count(*) FROM a")).scalar() == 0
            engine.dispose()
        ''')
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=2)
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        left = conn.execute(sa.text("SELECT datname FROM pg_database WHERE datname LIKE 'migrator_test_%'")).all()
    engine.dispose()
    assert left == []


def test_a_postgresql_backend_without_a_test_server_is_skipped_naming_the_variable(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    config = SQLITE_CONFIG.replace("sqlite:///data/app.db", "postgresql+psycopg://app@production.invalid/app")
    sql_project(pytester, CREATE_A, config)
    monkeypatch.delenv("MIGRATOR_TEST_URL_DB", raising=False)
    pytester.makepyfile(test_migrations="from migrator.testing import test_stairway  # noqa: F401\n")
    result = pytester.runpytest_subprocess("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*backend 'db' is postgresql: set MIGRATOR_TEST_URL_DB to a server URL*"])


def test_the_ini_option_names_the_config(pytester: pytest.Pytester) -> None:
    write(pytester.path, {
        "pyproject.toml": '[tool.pytest.ini_options]\nmigrator_config = "deploy/migrator.toml"\n',
        "deploy/migrator.toml": '[backends.db]\ntype = "sql"\nurl = "sqlite:///app.db"\nmigrations = "m"\n',
        **{f"deploy/m/{name}": text for name, text in CREATE_A.items()},
    })
    pytester.makepyfile(test_config='''\
        def test_config(migrator):
            assert migrator.config.path.name == "migrator.toml"
            assert migrator.status()["db"].pending_count == 1
        ''')
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)


def test_a_project_without_a_config_errors_with_the_lookup_named(pytester: pytest.Pytester,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MIGRATOR_CONFIG", raising=False)
    pytester.makepyfile(test_migrations="from migrator.testing import test_stairway  # noqa: F401\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*migrator plugin: no migrator configuration found in*"])


MODELS = '''\
    import sqlalchemy as sa

    metadata = sa.MetaData()
    a = sa.Table("a", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("b", sa.Text){extra})
    '''


@pytest.mark.parametrize(("extra", "outcome"), [("", {"passed": 1}), (', sa.Column("c", sa.Integer)', {"failed": 1})],
                         ids=["matching", "a column more"])
def test_models_match_head_compares_the_target_metadata(pytester: pytest.Pytester, extra: str,
                                                        outcome: dict[str, int]) -> None:
    config = SQLITE_CONFIG + 'target_metadata = "app_models:metadata"\n'
    sql_project(pytester, CREATE_A, config)
    write(pytester.path, {"app_models.py": MODELS.format(extra=extra)})
    pytester.makepyfile(test_migrations="from migrator.testing import test_models_match_head  # noqa: F401\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(**outcome)
    if outcome.get("failed"):
        result.stdout.fnmatch_lines(["*db: the models and the database at head differ*", "*add column a.c*"])


def test_loading_the_plugin_imports_no_database_library(pytester: pytest.Pytester) -> None:
    """In a session that does not use it, the plugin is loaded (by its entry point) and imports nothing heavy."""
    pytester.makepyfile(test_light='''\
        import sys

        def test_light(request):
            assert request.config.pluginmanager.has_plugin("migrator")
            assert "migrator.testing.plugin" in sys.modules
            heavy = {"sqlalchemy", "alembic", "lancedb", "lance", "pyarrow", "psycopg", "pandas"}
            assert sorted(heavy & set(sys.modules)) == []
        ''')
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)


@pytest.mark.lancedb
def test_the_ready_tests_pass_on_the_example_migrations(pytester: pytest.Pytester) -> None:
    """The repository's own example project (``migrations/``, ``[tool.migrator]`` of pyproject.toml)."""
    shutil.copytree(REPO / "migrations", pytester.path / "migrations")
    shutil.copytree(REPO / "seeds", pytester.path / "seeds")  # the config names the seeds folders
    config = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    start = config.index("[tool.migrator]")
    end = config.index("[tool.pytest.ini_options]")
    write(pytester.path, {"pyproject.toml": config[start:end]})
    pytester.makepyfile(test_migrations=READY)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-v")
    result.assert_outcomes(passed=2, skipped=1)
    assert not (pytester.path / "data").exists()


@pytest.mark.lancedb
@pytest.mark.slow  # nox -s slow; the default session runs the ready tests on migrations/ (SQLite and LanceDB)
def test_the_ready_tests_pass_on_the_notes_app_migrations(pytester: pytest.Pytester) -> None:
    """examples/notes_app: SQLite and LanceDB with cross-backend requirements each way and a re-embedding."""
    shutil.copytree(REPO / "examples" / "notes_app", pytester.path, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))  # the re-embedding imports the app's model
    write(pytester.path, {"migrator.toml": '''\
        default_backend = "sqlite"

        [backends.sqlite]
        type = "sql"
        url = "sqlite:///notes.db"
        migrations = "migrations/sqlite"

        [backends.vectors]
        type = "lancedb"
        uri = "lancedb"
        migrations = "migrations/vectors"
        '''})
    pytester.makepyfile(test_migrations=READY)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-v")
    result.assert_outcomes(passed=2, skipped=1)


@pytest.mark.lancedb
def test_a_lancedb_migration_whose_rollback_leaves_a_change_fails_the_stairway_with_the_arrow_diff(
        pytester: pytest.Pytester) -> None:
    """LanceDB rolls a table back by time travel: a migration of ``notes`` that also changes ``tags`` is not
    undone by it, and the stairway says so, with both schemas."""
    write(pytester.path, {
        "migrator.toml": '[backends.vectors]\ntype = "lancedb"\nuri = "data/lancedb"\nmigrations = "migrations"\n',
        "migrations/001_init.py": '''\
            import pyarrow as pa
            from migrator.lancedb import migration

            @migration(table="tags", version=1, description="create tags")
            def create_tags(db):
                db.create_table("tags", schema=pa.schema([pa.field("id", pa.int64())]))

            @migration(table="notes", version=1, description="create notes")
            def create_notes(db):
                db.create_table("notes", schema=pa.schema([pa.field("id", pa.int64())]))
            ''',
        "migrations/002_color.py": '''\
            import pyarrow as pa
            from migrator.lancedb import migration

            @migration(table="notes", version=2, description="add color", requires={"vectors": {"tags": 1}})
            def add_color(db):
                db.open_table("notes").add_columns(pa.field("color", pa.string()))
                db.open_table("tags").add_columns(pa.field("color", pa.string()))  # not its table
            ''',
    })
    pytester.makepyfile(test_migrations=READY)
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines([
        "*vectors: table notes version 2 (002_color.py): rolling it back does not undo its up*",
        "[[]vectors[]]",
        "+table tags: field 1 color string nullable",
    ])
