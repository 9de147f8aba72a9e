"""``Migrator.from_dict``: the config's keys without a file; an application's own Engine, sqlite3.Connection or
lancedb connection standing in for ``url`` / ``uri``, used and never disposed or closed."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from migrator import ConfigError, Migrator, UsageError

UP = """\
def up(db):
    db.execute("CREATE TABLE t{n} (id INTEGER)")

def down(db):
    db.execute("DROP TABLE t{n}")
"""

VECTORS = '''\
import os
from migrator.lancedb import migration

@migration(table="docs", version=1, description="create docs")
def create(db):
    os.environ["MIGRATOR_TEST_SEEN_DB"] = str(id(db))
    db.create_table("docs", data=[{"id": 1, "text": "one"}])
'''


def sql_folder(root: Path, count: int = 2) -> Path:
    folder = root / "migrations" / "db"
    folder.mkdir(parents=True)
    for n in range(1, count + 1):
        (folder / f"{n:03d}_t{n}.py").write_text(UP.format(n=n))
    return folder


def lance_folder(root: Path) -> Path:
    folder = root / "migrations" / "vectors"
    folder.mkdir(parents=True)
    (folder / "001_docs.py").write_text(VECTORS)
    return folder


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


# -- the config's keys -----------------------------------------------------------------------------------------------

def test_relative_paths_resolve_against_base(tmp_path: Path) -> None:
    sql_folder(tmp_path)
    m = Migrator.from_dict({"backends": {"db": {"type": "sql", "url": "sqlite:///data/app.db",
                                                "migrations": "migrations/db"}}}, base=tmp_path)
    m.upgrade()
    assert {"t1", "t2", "migrations"} <= tables(f"sqlite:///{tmp_path / 'data' / 'app.db'}")


def test_migrations_may_be_a_path_object_and_is_taken_literally(tmp_path: Path) -> None:
    folder = tmp_path / "pa$$word ${HOME}"
    (folder / "migrations" / "db").mkdir(parents=True)
    (folder / "migrations" / "db" / "001_t1.py").write_text(UP.format(n=1))
    url = f"sqlite:///{tmp_path / 'app.db'}"
    Migrator.from_dict({"backends": {"db": {"type": "sql", "url": url,
                                            "migrations": folder / "migrations" / "db"}}}).upgrade()
    assert "t1" in tables(url)


def test_an_unknown_key_is_one_line_naming_it(tmp_path: Path) -> None:
    sql_folder(tmp_path)
    with pytest.raises(ConfigError) as caught:
        Migrator.from_dict({"backends": {"db": {"type": "sql", "url": "sqlite:///app.db", "urll": "x"}}},
                           base=tmp_path)
    assert str(caught.value) == ("Migrator.from_dict: unknown key backends.db.'urll' for a sql backend "
                                 "(did you mean 'url'?)")
    assert caught.value.exit_code == 2


def test_a_missing_migrations_folder_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^Migrator\.from_dict: backends\.db\.migrations: folder .* does not "
                                          r"exist$"):
        Migrator.from_dict({"backends": {"db": {"type": "sql", "url": "sqlite:///app.db"}}}, base=tmp_path)


def test_a_dict_that_is_not_a_dict_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^Migrator\.from_dict: expects a dict of the config's keys, not list$"):
        Migrator.from_dict([("backends", {})])  # type: ignore[arg-type]


def test_a_pyproject_shaped_dict_is_read_and_its_keys_named_with_the_prefix(tmp_path: Path) -> None:
    sql_folder(tmp_path, 1)
    url = f"sqlite:///{tmp_path / 'app.db'}"
    Migrator.from_dict({"tool": {"migrator": {"backends": {"db": {"type": "sql", "url": url}}}}},
                       base=tmp_path).upgrade()
    assert "t1" in tables(url)
    with pytest.raises(ConfigError, match=r"^Migrator\.from_dict: 'tool\.migrator\.default_backend' names 'nope', "
                                          r"which is not configured \(configured: db\)$"):
        Migrator.from_dict({"tool": {"migrator": {"default_backend": "nope",
                                                  "backends": {"db": {"type": "sql", "url": url}}}}}, base=tmp_path)


def test_env_variables_expand_as_in_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sql_folder(tmp_path, 1)
    monkeypatch.setenv("NOTES_DB", str(tmp_path / "from-env.db"))
    Migrator.from_dict({"backends": {"db": {"type": "sql", "url": "sqlite:///${NOTES_DB}"}}}, base=tmp_path).upgrade()
    assert "t1" in tables(f"sqlite:///{tmp_path / 'from-env.db'}")


# -- an Engine -------------------------------------------------------------------------------------------------------

def test_an_engine_stands_in_for_the_url_and_is_not_disposed(tmp_path: Path, sql_url: str) -> None:
    sql_folder(tmp_path)
    engine = sa.create_engine(sql_url)
    pool = engine.pool
    try:
        m = Migrator.from_dict({"backends": {"db": {"type": "sql", "url": engine}}}, base=tmp_path)
        m.upgrade()
        m.rollback(1, backend="db")
        assert m.status()["db"].line().current == 1  # type: ignore[union-attr]
        assert engine.pool is pool  # dispose() would have replaced the pool
        assert pool.checkedout() == 0  # every connection migrator took went back
        with engine.connect() as conn:
            assert sa.inspect(conn).has_table("t1") and not sa.inspect(conn).has_table("t2")
    finally:
        engine.dispose()


def test_an_engines_password_is_never_shown(tmp_path: Path, sql_url: str) -> None:
    password = make_url(sql_url).password
    if not password:
        pytest.skip("this database URL has no password")
    sql_folder(tmp_path)
    (tmp_path / "migrations" / "db" / "003_bad.py").write_text("def up(db):\n    db.execute('SELEC 1')\n")
    engine = sa.create_engine(sql_url)
    try:
        m = Migrator.from_dict({"backends": {"db": {"type": "sql", "url": engine}}}, base=tmp_path)
        location = m.status()["db"].location
        assert "***" in location and str(password) not in location
        assert str(password) not in m.config.backends["db"].location
        with pytest.raises(Exception) as caught:
            m.upgrade()
        assert str(password) not in str(caught.value)
    finally:
        engine.dispose()


def test_engine_options_beside_an_engine_are_refused(tmp_path: Path) -> None:
    sql_folder(tmp_path)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    try:
        with pytest.raises(ConfigError, match=r"^Migrator\.from_dict: backends\.db\.engine_options cannot apply "
                                              r"to the Engine given as backends\.db\.url"):
            Migrator.from_dict({"backends": {"db": {"type": "sql", "url": engine, "engine_options": {}}}},
                               base=tmp_path)
    finally:
        engine.dispose()


def test_a_sqlalchemy_connection_is_refused_naming_the_key(tmp_path: Path) -> None:
    sql_folder(tmp_path)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    try:
        with engine.connect() as conn, pytest.raises(
                ConfigError, match=r"^Migrator\.from_dict: backends\.db\.url is a SQLAlchemy Connection: pass its "
                                   r"Engine \(connection\.engine\)$"):
            Migrator.from_dict({"backends": {"db": {"type": "sql", "url": conn}}}, base=tmp_path)
    finally:
        engine.dispose()


@pytest.mark.parametrize("value", [42, b"sqlite:///x.db", Path("x.db")])
def test_a_url_of_another_type_is_refused_naming_the_key(tmp_path: Path, value: Any) -> None:
    sql_folder(tmp_path)
    with pytest.raises(ConfigError, match=r"^Migrator\.from_dict: backends\.db\.url must be a database URL \(a "
                                          r"string\), a SQLAlchemy Engine or a sqlite3\.Connection, not "):
        Migrator.from_dict({"backends": {"db": {"type": "sql", "url": value}}}, base=tmp_path)


# -- a sqlite3.Connection --------------------------------------------------------------------------------------------

def test_a_sqlite3_connection_stands_in_for_the_url_and_stays_open(tmp_path: Path) -> None:
    sql_folder(tmp_path)
    conn = sqlite3.connect(tmp_path / "app.db")
    conn.row_factory = sqlite3.Row
    try:
        Migrator.from_dict({"backends": {"db": {"type": "sql", "url": conn}}}, base=tmp_path).upgrade()
        assert conn.execute("SELECT count(*) FROM migrations").fetchone()[0] == 2  # still open, still the app's
        assert conn.isolation_level == ""  # the app's transaction handling as it was
        assert conn.row_factory is sqlite3.Row
    finally:
        conn.close()


# -- a lancedb connection --------------------------------------------------------------------------------------------

@pytest.mark.lancedb
def test_a_lancedb_connection_stands_in_for_the_uri_and_is_the_one_migrations_get(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lancedb

    lance_folder(tmp_path)
    monkeypatch.delenv("MIGRATOR_TEST_SEEN_DB", raising=False)
    db = lancedb.connect(tmp_path / "lance")
    m = Migrator.from_dict({"backends": {"vectors": {"type": "lancedb", "uri": db}}}, base=tmp_path)
    m.upgrade()
    assert os.environ["MIGRATOR_TEST_SEEN_DB"] == str(id(db))
    assert m.status()["vectors"].line("docs").current == 1  # type: ignore[union-attr]
    assert db.open_table("docs").count_rows() == 1  # the app's connection still serves it


@pytest.mark.lancedb
def test_storage_options_beside_a_lancedb_connection_are_refused(tmp_path: Path) -> None:
    import lancedb

    lance_folder(tmp_path)
    db = lancedb.connect(tmp_path / "lance")
    with pytest.raises(ConfigError, match=r"^Migrator\.from_dict: backends\.v\.storage_options cannot apply to the "
                                          r"connection given as backends\.v\.uri"):
        Migrator.from_dict({"backends": {"v": {"type": "lancedb", "uri": db, "storage_options": {},
                                               "migrations": "migrations/vectors"}}}, base=tmp_path)


@pytest.mark.lancedb
def test_a_lance_uri_of_another_type_is_refused_naming_the_key(tmp_path: Path) -> None:
    lance_folder(tmp_path)
    with pytest.raises(ConfigError, match=r"^Migrator\.from_dict: backends\.v\.uri must be a LanceDB URI \(a string "
                                          r"or a path\) or a lancedb connection \(lancedb\.connect\), not int$"):
        Migrator.from_dict({"backends": {"v": {"type": "lancedb", "uri": 7, "migrations": "migrations/vectors"}}},
                           base=tmp_path)


@pytest.mark.lancedb
def test_an_async_lancedb_connection_is_refused(tmp_path: Path) -> None:
    import asyncio

    import lancedb

    lance_folder(tmp_path)
    db = asyncio.run(lancedb.connect_async(tmp_path / "lance"))
    with pytest.raises(ConfigError, match=r"backends\.v\.uri is an async lancedb connection"):
        Migrator.from_dict({"backends": {"v": {"type": "lancedb", "uri": db, "migrations": "migrations/vectors"}}},
                           base=tmp_path)


def test_a_sqlite3_connection_inside_a_transaction_is_refused(tmp_path: Path) -> None:
    sql_folder(tmp_path, 1)
    conn = sqlite3.connect(tmp_path / "app.db")
    try:
        conn.execute("CREATE TABLE app_owned (id INTEGER)")
        conn.execute("INSERT INTO app_owned VALUES (1)")  # a transaction of the app's, not committed
        assert conn.in_transaction
        m = Migrator.from_dict({"backends": {"db": {"type": "sql", "url": conn}}}, base=tmp_path)
        with pytest.raises(UsageError, match=r"the sqlite3\.Connection has a transaction open"):
            m.upgrade()
        assert conn.in_transaction  # neither committed nor rolled back by migrator
        conn.rollback()
    finally:
        conn.close()
    assert "t1" not in tables(f"sqlite:///{tmp_path / 'app.db'}")
