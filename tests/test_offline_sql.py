"""`migrator upgrade --sql` / `rollback TARGET --sql`: the SQL a run would execute, printed, nothing changed."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import Project, write_config

REPO = Path(__file__).resolve().parent.parent

SQL_UP = """\
CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE INDEX ix_notes_body ON notes (body);
"""
SQL_DOWN = "DROP INDEX ix_notes_body;\nDROP TABLE notes;\n"
PY_OPS = '''\
import sqlalchemy as sa

def up(db):
    db.op.create_table("tags", sa.Column("id", sa.Integer, primary_key=True), sa.Column("label", sa.String(40)))
    db.op.add_column("notes", sa.Column("title", sa.String(80), server_default="untitled"))
    db.execute("INSERT INTO tags (id, label) VALUES (1, 'it''s :not a bind')")
    db.execute("INSERT INTO tags (id, label) VALUES (:id, :label)", {"id": 2, "label": "o'neil"})

def down(db):
    db.op.drop_table("tags")
    db.execute("ALTER TABLE notes DROP COLUMN title")
'''


def build(project: Project) -> None:
    project.write("001_notes.up.sql", SQL_UP)
    project.write("001_notes.down.sql", SQL_DOWN)
    project.write("002_tags.py", PY_OPS)


def snapshot(url: str) -> dict[str, Any]:
    """Tables with their columns and indices, the rows of tags and the version table's (version, name, checksum)."""
    engine = sa.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        found: dict[str, Any] = {}
        for table in sorted(inspector.get_table_names()):
            found[table] = ([(c["name"], str(c["type"]), str(c.get("default"))) for c in inspector.get_columns(table)],
                            sorted(i["name"] or "" for i in inspector.get_indexes(table)))
        with engine.connect() as conn:
            if "tags" in found:
                found["tags rows"] = [tuple(r) for r in conn.execute(sa.text("SELECT id, label FROM tags ORDER BY id"))]
            if "migrations" in found:
                found["versions"] = [tuple(r) for r in conn.execute(
                    sa.text("SELECT version, name, checksum FROM migrations ORDER BY version"))]
        return found
    finally:
        engine.dispose()


def run_script(url: str, script: str) -> None:
    """Execute the printed script as a DBA would (sqlite3's executescript, psql-like multi-statement)."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(sa.make_url(url).database or "", isolation_level=None)
        try:
            conn.executescript(script)
        finally:
            conn.close()
        return
    import psycopg

    plain = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(script.encode())


def untouched(project: Project) -> Any:
    """What must not change: the SQLite file's bytes and mtime (or its absence); PostgreSQL's whole schema."""
    if project.url.startswith("sqlite"):
        path = Path(sa.make_url(project.url).database or "")
        return (path.read_bytes(), path.stat().st_mtime_ns) if path.exists() else None
    return snapshot(project.url)


def test_upgrade_sql_prints_what_upgrade_runs_and_changes_nothing(project: Project) -> None:
    build(project)
    before = untouched(project)
    result = project.cli("upgrade", "--sql")
    assert result.code == 0, result.err
    assert untouched(project) == before
    script = result.out
    assert "CREATE TABLE IF NOT EXISTS migrations" in script
    assert "CREATE TABLE notes" in script and "CREATE TABLE tags" in script
    assert "'it''s :not a bind'" in script and "'o''neil'" in script
    assert "INSERT INTO migrations (version, name, checksum) VALUES (2, 'tags', " in script
    assert script.count("COMMIT;") == 2

    run_script(project.url, script)
    by_script = snapshot(project.url)
    assert project.cli("check").code == 0, "the script's version rows are the ones upgrade writes"
    assert project.cli("rollback", "0").code == 0
    assert project.cli("upgrade").code == 0
    assert snapshot(project.url) == by_script


def test_rollback_sql_prints_what_rollback_runs_and_changes_nothing(project: Project) -> None:
    build(project)
    assert project.cli("upgrade").code == 0
    before = untouched(project)
    result = project.cli("rollback", "0", "--sql")
    assert result.code == 0, result.err
    assert untouched(project) == before
    script = result.out
    assert script.index("DROP TABLE tags") < script.index("DROP TABLE notes")
    assert "DELETE FROM migrations WHERE migrations.version = 2" in script

    run_script(project.url, script)
    after = snapshot(project.url)
    assert set(after) == {"migrations", "versions"} and after["versions"] == []


def test_from_version_plans_from_the_files_without_connecting(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "proj"
    (root / "migrations" / "db").mkdir(parents=True)
    url = "postgresql+psycopg://app:s3cret-pw@127.0.0.1:1/nowhere"  # nothing listens on port 1
    write_config(root, url)
    project = Project(root, url, capsys)
    build(project)

    result = project.cli("upgrade", "--sql", "--from", "1")
    assert result.code == 0, result.err
    assert "CREATE TABLE notes" not in result.out and "CREATE TABLE tags" in result.out
    assert "INSERT INTO migrations (version, name, checksum) VALUES (2, 'tags'" in result.out
    back = project.cli("rollback", "1", "--sql", "--from", "2")
    assert back.code == 0, back.err
    assert "DROP TABLE tags" in back.out and "DROP TABLE notes" not in back.out
    assert "s3cret-pw" not in result.out + result.err + back.out + back.err

    connecting = project.cli("upgrade", "--sql")
    assert connecting.code == 2, "without --from the version table is read, so the server is needed"
    assert "s3cret-pw" not in connecting.err


def test_from_version_on_sqlite_creates_no_file(sqlite_project: Project) -> None:
    build(sqlite_project)
    assert sqlite_project.cli("upgrade", "--sql", "--from", "0").code == 0
    assert not (sqlite_project.root / "app.db").exists()


def test_from_an_unknown_version_is_refused(sqlite_project: Project) -> None:
    build(sqlite_project)
    result = sqlite_project.cli("upgrade", "--sql", "--from", "7")
    assert result.code == 2
    assert "--from 7: no migration has that version (versions: 1, 2" in result.err


@pytest.mark.parametrize(("body", "what"), [
    ("rows = db.execute('SELECT 1').fetchall()", "uses the result of db.execute() (.fetchall)"),
    ("for row in db.execute('SELECT 1'):\n        pass", "iterates over the result of db.execute()"),
    ("db.connection.exec_driver_sql('SELECT 1')", "uses db.connection"),
])
def test_python_migration_that_needs_the_database_is_named(project: Project, body: str, what: str) -> None:
    build(project)
    project.write("003_backfill.py", f"def up(db):\n    {body}\n\ndef down(db):\n    pass\n")
    before = untouched(project)
    result = project.cli("upgrade", "--sql")
    assert result.code == 2
    assert result.out == ""
    assert result.err.strip() == (f"error: db: 003_backfill.py: up() cannot be written as SQL: it {what}, which needs "
                                  "a live database; run it against the database (without --sql)")
    assert untouched(project) == before


def test_sqlite_table_copy_operations_are_refused_offline(sqlite_project: Project) -> None:
    build(sqlite_project)
    sqlite_project.write("003_retype.py", '''\
        import sqlalchemy as sa

        def up(db):
            db.op.alter_column("notes", "body", type_=sa.String(10))
        ''')
    result = sqlite_project.cli("upgrade", "--sql")
    assert result.code == 2
    assert ("003_retype.py: up() cannot be written as SQL: it uses db.op.alter_column (type_), which on SQLite is "
            "made from the table's live definition") in result.err


def test_postgresql_alter_column_is_written(postgres_url: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "proj"
    (root / "migrations" / "db").mkdir(parents=True)
    write_config(root, postgres_url)
    project = Project(root, postgres_url, capsys)
    build(project)
    project.write("003_retype.py", '''\
        import sqlalchemy as sa

        def up(db):
            db.op.alter_column("notes", "body", type_=sa.String(10))
        ''')
    result = project.cli("upgrade", "--sql", "--from", "2")
    assert result.code == 0, result.err
    assert "ALTER TABLE notes ALTER COLUMN body TYPE VARCHAR(10);" in result.out


def test_migration_outside_a_transaction_has_no_begin(sqlite_project: Project) -> None:
    sqlite_project.write("001_big.up.sql", "-- migrator: no-transaction\nCREATE TABLE big (id INTEGER);\n")
    result = sqlite_project.cli("upgrade", "--sql")
    assert result.code == 0, result.err
    assert "-- 001_big.up.sql (runs outside a transaction)" in result.out
    assert "BEGIN" not in result.out and "COMMIT" not in result.out
    assert "INSERT INTO migrations (version, name, checksum) VALUES (1, 'big'" in result.out


def test_rollback_sql_over_an_irreversible_migration_is_refused(sqlite_project: Project) -> None:
    sqlite_project.write("001_a.up.sql", "CREATE TABLE a (id INTEGER);\n")
    result = sqlite_project.cli("rollback", "0", "--sql", "--from", "1")
    assert result.code == 2
    assert "001_a has no down migration; rollback refused" in result.err


@pytest.mark.parametrize("args", [
    ("upgrade", "--from", "1"),
    ("upgrade", "--sql", "--dry-run"),
    ("upgrade", "--sql", "--backup"),
    ("rollback", "0", "--sql", "--cascade"),
])
def test_sql_option_misuse_is_refused(sqlite_project: Project, args: tuple[str, ...]) -> None:
    build(sqlite_project)
    result = sqlite_project.cli(*args)
    assert result.code == 2
    assert result.err.count("\n") == 1 and result.out == ""
    assert not (sqlite_project.root / "app.db").exists()


def test_example_migrations_print_without_touching_the_database(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "proj"
    shutil.copytree(REPO / "migrations" / "sqlite", root / "migrations" / "db")
    url = f"sqlite:///{root / 'app.db'}"
    write_config(root, url)
    project = Project(root, url, capsys)
    result = project.cli("upgrade", "--sql")
    assert result.code == 0, result.err
    assert not (root / "app.db").exists()
    run_script(url, result.out)
    assert project.cli("check").code == 0


def test_migration_that_catches_the_refusal_is_still_refused(sqlite_project: Project) -> None:
    build(sqlite_project)
    sqlite_project.write("003_careful.py", '''\
        def up(db):
            try:
                count = db.execute("SELECT count(*) FROM notes").scalar()
            except Exception:
                count = 0
            db.execute(f"INSERT INTO notes (id, body) VALUES ({count + 1}, 'x')")
        ''')
    result = sqlite_project.cli("upgrade", "--sql")
    assert result.code == 2 and result.out == ""
    assert "003_careful.py: up() cannot be written as SQL: it uses the result of db.execute() (.scalar)" in result.err


def test_commit_in_a_transactional_python_migration_is_refused_as_online(sqlite_project: Project) -> None:
    sqlite_project.write("001_commits.py", "def up(db):\n    db.execute('CREATE TABLE a (id INTEGER)')\n"
                                           "    db.execute('COMMIT')\n")
    result = sqlite_project.cli("upgrade", "--sql")
    assert result.code == 2
    assert "001_commits.py: up() cannot be written as SQL: it runs COMMIT in a migration that runs in one " \
           "transaction" in result.err


def test_commit_in_a_non_transactional_python_migration_is_written(sqlite_project: Project) -> None:
    sqlite_project.write("001_commits.py", "transactional = False\n\ndef up(db):\n"
                                           "    db.execute('BEGIN')\n    db.execute('CREATE TABLE a (id INTEGER)')\n"
                                           "    db.execute('COMMIT')\n")
    result = sqlite_project.cli("upgrade", "--sql")
    assert result.code == 0, result.err
    assert "BEGIN;\n\nCREATE TABLE a (id INTEGER);\n\nCOMMIT;\n\nINSERT INTO migrations" in result.out
