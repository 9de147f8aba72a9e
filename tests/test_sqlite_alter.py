"""``db.op`` on SQLite keeps every schema object: up, down, up through the CLI leaves the schema as it was.

The schema has what a table copy tends to lose: triggers, views over the table, CHECKs (column and
table), foreign-key actions written inline (ON DELETE CASCADE, DEFERRABLE), COLLATE, AUTOINCREMENT
(with its counter ahead of max(id)), WITHOUT ROWID, a partial unique index and a table that others
reference.
"""

from __future__ import annotations

import sqlite3
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from snapshots import assert_clean_error, sqlite_row_counts, sqlite_schema

from conftest import Project
from migrator import MigrationRunner
from migrator.backends.sql import sqlite_alter
from migrator.errors import MigrationFailed

SCHEMA = """\
CREATE TABLE documents (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  title TEXT NOT NULL COLLATE NOCASE,
  kind TEXT DEFAULT 'note' CHECK (kind IN ('note', 'page')),
  score INTEGER,
  slug TEXT UNIQUE,
  CONSTRAINT ck_documents_score CHECK (score >= 0)
);
CREATE TABLE chunks (
  id INTEGER PRIMARY KEY,
  document_id INTEGER REFERENCES documents(id) ON DELETE CASCADE ON UPDATE CASCADE DEFERRABLE INITIALLY DEFERRED,
  body TEXT COLLATE NOCASE,
  tag TEXT,
  n INTEGER
);
CREATE TABLE tags (name TEXT PRIMARY KEY, hits INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
CREATE TABLE links (a INTEGER, b INTEGER);
CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, what TEXT);
CREATE INDEX ix_chunks_document ON chunks(document_id);
CREATE INDEX ix_chunks_n ON chunks(n);
CREATE UNIQUE INDEX ix_documents_page_title ON documents(title) WHERE kind = 'page';
CREATE TRIGGER tr_documents_insert AFTER INSERT ON documents
BEGIN
  INSERT INTO audit(what) VALUES ('document ' || new.title);
END;
CREATE TRIGGER tr_chunks_delete AFTER DELETE ON chunks
BEGIN
  INSERT INTO audit(what) VALUES ('chunk ' || old.id);
END;
CREATE VIEW document_chunks AS SELECT d.title, c.body FROM documents d JOIN chunks c ON c.document_id = d.id;
CREATE VIEW tag_list AS SELECT name, hits FROM tags;
INSERT INTO documents(title, kind, score, slug)
  VALUES ('a', 'note', 1, 'a'), ('b', 'page', 2, 'b'), ('c', 'note', 3, 'c');
DELETE FROM documents WHERE id = 3;
INSERT INTO chunks(document_id, body, tag, n) VALUES (1, 'x', NULL, 1), (1, 'y', NULL, 2), (2, 'z', NULL, 3);
INSERT INTO tags VALUES ('red', 1), ('blue', 2);
INSERT INTO links VALUES (1, 2), (2, 3);
"""


@dataclass(frozen=True)
class Case:
    up: str
    down: str
    rows_change: bool = False  # the migration adds or removes rows or tables on purpose


CASES = {
    "add_column": Case(
        'db.op.add_column("documents", sa.Column("summary", sa.Text(), server_default="none"))',
        'db.op.drop_column("documents", "summary")'),
    "add_column_with_foreign_key": Case(
        'db.op.add_column("chunks", sa.Column("parent_id", sa.Integer, '
        'sa.ForeignKey("chunks.id", ondelete="SET NULL", name="fk_chunks_parent")))\n'
        'db.op.drop_constraint("fk_chunks_parent", "chunks", type_="foreignkey")\n'
        'db.op.create_foreign_key("fk_chunks_parent", "chunks", "chunks", ["parent_id"], ["id"], '
        'ondelete="SET NULL", deferrable=True, initially="DEFERRED")',
        'db.op.drop_column("chunks", "parent_id")'),
    "add_column_unique": Case(
        'db.op.add_column("links", sa.Column("code", sa.Text, unique=True))',
        'db.op.drop_column("links", "code")'),
    "drop_column_with_its_index": Case(
        'db.op.drop_column("chunks", "n")',
        'db.op.add_column("chunks", sa.Column("n", sa.INTEGER))\n'
        'db.op.create_index("ix_chunks_n", "chunks", ["n"])'),
    "drop_column_unique": Case(
        'db.op.drop_column("documents", "slug")',
        'db.op.add_column("documents", sa.Column("slug", sa.TEXT, unique=True))'),
    "alter_column_type": Case(
        'db.op.alter_column("chunks", "tag", type_=sa.String(40))',
        'db.op.alter_column("chunks", "tag", type_=sa.TEXT)'),
    "alter_column_nullable": Case(
        'db.op.alter_column("chunks", "body", nullable=False)',
        'db.op.alter_column("chunks", "body", nullable=True)'),
    "alter_column_server_default": Case(
        'db.op.alter_column("documents", "score", server_default="0")',
        'db.op.alter_column("documents", "score", server_default=None)'),
    "alter_column_rename": Case(
        'db.op.alter_column("chunks", "body", new_column_name="content")',
        'db.op.alter_column("chunks", "content", new_column_name="body")'),
    "create_index": Case(
        'db.op.create_index("ix_chunks_tag", "chunks", ["tag"])',
        'db.op.drop_index("ix_chunks_tag", table_name="chunks")'),
    "create_unique_constraint_without_rowid": Case(
        'db.op.create_unique_constraint("uq_tags_hits", "tags", ["hits"])',
        'db.op.drop_constraint("uq_tags_hits", "tags", type_="unique")'),
    "create_foreign_key": Case(
        'db.op.create_foreign_key("fk_chunks_tag", "chunks", "tags", ["tag"], ["name"], ondelete="SET NULL")',
        'db.op.drop_constraint("fk_chunks_tag", "chunks", type_="foreignkey")'),
    "create_check_constraint_on_a_referenced_table": Case(
        'db.op.create_check_constraint("ck_documents_title", "documents", "length(title) < 200")',
        'db.op.drop_constraint("ck_documents_title", "documents", type_="check")'),
    "create_primary_key": Case(
        'db.op.create_primary_key("pk_links", "links", ["a", "b"])',
        'db.op.drop_constraint("pk_links", "links", type_="primary")'),
    "rename_table": Case(
        'db.op.rename_table("documents", "papers")',
        'db.op.rename_table("papers", "documents")', rows_change=True),
    "create_table_and_drop_table": Case(
        'db.op.create_table("notes", sa.Column("id", sa.Integer, primary_key=True), sa.Column("t", sa.Text))',
        'db.op.drop_table("notes")', rows_change=True),
    "execute_and_bulk_insert": Case(
        'db.op.execute("UPDATE tags SET hits = hits + 1")\n'
        'db.op.execute("CREATE INDEX ix_tags_hits ON tags(hits)")\n'
        'db.op.bulk_insert(sa.table("tags", sa.column("name"), sa.column("hits")), [{"name": "green", "hits": 0}])',
        'db.op.execute("DROP INDEX ix_tags_hits")\n'
        'db.op.execute("DELETE FROM tags WHERE name = \'green\'")\n'
        'db.op.execute("UPDATE tags SET hits = hits - 1")', rows_change=True),
    "batch_alter_table": Case(
        'with db.op.batch_alter_table("chunks") as batch:\n'
        '    batch.alter_column("tag", type_=sa.String(20))\n'
        '    batch.create_check_constraint("ck_chunks_n", "n > 0")',
        'with db.op.batch_alter_table("chunks") as batch:\n'
        '    batch.drop_constraint("ck_chunks_n", type_="check")\n'
        '    batch.alter_column("tag", type_=sa.TEXT)'),
}


def migration(up: str, down: str) -> str:
    return ("import sqlalchemy as sa\n\n\ndef up(db):\n" + textwrap.indent(up, "    ")
            + "\n\n\ndef down(db):\n" + textwrap.indent(down, "    ") + "\n")


def database(project: Project) -> Path:
    return project.root / "app.db"


def with_schema(project: Project, *, views: bool = True) -> Path:
    """The schema above; without its views the old batch-mode copy lost triggers, CHECKs and FK actions silently."""
    schema = SCHEMA if views else "\n".join(line for line in SCHEMA.splitlines() if "CREATE VIEW" not in line)
    project.write("001_schema.up.sql", schema)
    assert project.cli("upgrade").code == 0
    return database(project)


@pytest.mark.parametrize("views", [True, False], ids=["with_views", "without_views"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_up_down_up_leaves_the_schema_as_it_was(sqlite_project: Project, name: str, views: bool) -> None:
    case = CASES[name]
    db = with_schema(sqlite_project, views=views)
    before, rows_before = sqlite_schema(db), sqlite_row_counts(db)
    sqlite_project.write("002_change.py", migration(case.up, case.down))
    result = sqlite_project.cli("upgrade")
    assert result.code == 0, result.err
    after_up = sqlite_schema(db)
    assert after_up != before  # the migration did change something
    if not case.rows_change:
        assert sqlite_row_counts(db) == rows_before
    result = sqlite_project.cli("rollback", "1")
    assert result.code == 0, result.err
    assert sqlite_schema(db) == before
    assert sqlite_row_counts(db) == rows_before
    assert sqlite_project.cli("upgrade").code == 0
    assert sqlite_schema(db) == after_up


def run(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


def test_a_copied_table_keeps_its_cascade_and_its_trigger(sqlite_project: Project) -> None:
    db = with_schema(sqlite_project)
    sqlite_project.write("002_tag.py", migration(CASES["create_foreign_key"].up, CASES["create_foreign_key"].down))
    assert sqlite_project.cli("upgrade").code == 0
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("DELETE FROM documents WHERE id = 1")  # cascades to chunks 1 and 2, whose trigger logs them
        assert list(conn.execute("SELECT id FROM chunks")) == [(3,)]
        assert list(conn.execute("SELECT what FROM audit WHERE what LIKE 'chunk %' ORDER BY what")) == [
            ("chunk 1",), ("chunk 2",)]
    finally:
        conn.close()


def test_a_copied_table_keeps_its_autoincrement_counter_and_its_trigger(sqlite_project: Project) -> None:
    db = with_schema(sqlite_project)
    case = CASES["create_check_constraint_on_a_referenced_table"]
    sqlite_project.write("002_check.py", migration(case.up, case.down))
    assert sqlite_project.cli("upgrade").code == 0
    run(db, "INSERT INTO documents(title) VALUES ('d')")
    # id 3 was used and deleted before the copy: AUTOINCREMENT never hands it out again
    assert run(db, "SELECT id FROM documents WHERE title = 'd'") == [(4,)]
    assert run(db, "SELECT count(*) FROM audit WHERE what = 'document d'") == [(1,)]
    assert run(db, "SELECT id, title FROM documents ORDER BY id") == [(1, "a"), (2, "b"), (4, "d")]


def test_a_copied_table_keeps_its_rowids(sqlite_project: Project) -> None:
    db = with_schema(sqlite_project)
    run(db, "DELETE FROM links WHERE a = 1")
    before = run(db, "SELECT rowid, a, b FROM links")
    sqlite_project.write("002_pk.py", migration('db.op.alter_column("links", "b", type_=sa.BigInteger)', "pass"))
    assert sqlite_project.cli("upgrade").code == 0
    assert run(db, "SELECT rowid, a, b FROM links") == before == [(2, 2, 3)]


REFUSALS = {
    "a view": ('db.execute("CREATE VIEW chunk_numbers AS SELECT c.n FROM chunks AS c")\n'
               'db.op.drop_column("chunks", "n")', "view chunk_numbers"),
    "a trigger that sets it (SQLite's own DROP COLUMN lets this one through)": (
        'db.execute("CREATE TRIGGER tr_tags AFTER INSERT ON tags BEGIN UPDATE chunks SET tag = new.name; END")\n'
        'db.op.drop_column("chunks", "tag")', "trigger tr_tags"),
    "a trigger that inserts rows without naming columns": (
        'db.execute("CREATE TRIGGER tr_tags AFTER INSERT ON tags BEGIN '
        'INSERT INTO links VALUES (1, 2); END")\n'
        'db.op.drop_column("links", "b")', "trigger tr_tags (INSERT INTO links without a column list)"),
    "an index over it and another column": (
        'db.execute("CREATE INDEX ix_chunks_tag_body ON chunks(tag, body)")\n'
        'db.op.drop_column("chunks", "tag")', "index ix_chunks_tag_body"),
    "a foreign key of another table": (
        'db.execute("CREATE TABLE refs (code TEXT REFERENCES documents(slug))")\n'
        'db.op.drop_column("documents", "slug")', "foreign key refs(code)"),
    "a table CHECK over it and another column": (
        'db.op.create_check_constraint("ck_links", "links", "a < b")\n'
        'db.op.drop_column("links", "a")', "constraint ck_links"),
    "the primary key": ('db.op.drop_column("tags", "name")', "primary key"),
}


@pytest.mark.parametrize("what", sorted(REFUSALS))
def test_drop_column_that_another_object_uses_is_refused_naming_it(sqlite_project: Project, what: str) -> None:
    up, named = REFUSALS[what]
    db = with_schema(sqlite_project)
    before, rows = sqlite_schema(db), sqlite_row_counts(db)
    sqlite_project.write("002_drop.py", migration(up, "pass"))
    result = sqlite_project.cli("upgrade")
    assert_clean_error(result, 1, "002_drop.py", named, "drop_column")
    assert sqlite_schema(db) == before and sqlite_row_counts(db) == rows


def test_a_copy_that_rows_cannot_pass_changes_nothing(sqlite_project: Project) -> None:
    db = with_schema(sqlite_project)
    before = sqlite_schema(db)
    sqlite_project.write("002_not_null.py", migration('db.op.alter_column("chunks", "tag", nullable=False)', "pass"))
    result = sqlite_project.cli("upgrade")
    assert_clean_error(result, 1, "002_not_null.py", "alter_column chunks.tag", "NOT NULL constraint failed")
    assert sqlite_schema(db) == before


def test_a_new_foreign_key_that_rows_violate_is_refused(sqlite_project: Project) -> None:
    db = with_schema(sqlite_project)
    run(db, "UPDATE chunks SET tag = 'nonexistent' WHERE id = 2")
    before = sqlite_schema(db)
    sqlite_project.write("002_fk.py", migration(CASES["create_foreign_key"].up, "pass"))
    result = sqlite_project.cli("upgrade")
    assert_clean_error(result, 1, "002_fk.py", "fk_chunks_tag", "1 row(s) of chunks violate")
    assert sqlite_schema(db) == before


def test_a_copy_under_foreign_keys_on_is_refused_when_other_tables_reference_the_table(
        sqlite_project: Project) -> None:
    db = with_schema(sqlite_project)
    before, rows = sqlite_schema(db), sqlite_row_counts(db)
    case = CASES["create_check_constraint_on_a_referenced_table"]
    sqlite_project.write("002_check.py", migration(case.up, case.down))
    engine = sa.create_engine(sqlite_project.url)
    sa.event.listen(engine, "connect", lambda dbapi, _record: dbapi.execute("PRAGMA foreign_keys = ON"))
    runner = MigrationRunner(engine, sqlite_project.migrations)
    try:
        with pytest.raises(MigrationFailed, match=r"PRAGMA foreign_keys is ON.*chunks"):
            runner.run_migrations()
    finally:
        runner.close()
        engine.dispose()
    assert sqlite_schema(db) == before and sqlite_row_counts(db) == rows  # no cascade fired


def test_a_copy_under_foreign_keys_on_works_for_a_table_nobody_references(sqlite_project: Project) -> None:
    db = with_schema(sqlite_project)
    case = CASES["create_foreign_key"]
    sqlite_project.write("002_fk.py", migration(case.up, case.down))
    engine = sa.create_engine(sqlite_project.url)
    sa.event.listen(engine, "connect", lambda dbapi, _record: dbapi.execute("PRAGMA foreign_keys = ON"))
    runner = MigrationRunner(engine, sqlite_project.migrations)
    try:
        assert runner.run_migrations() == [2]
    finally:
        runner.close()
        engine.dispose()
    assert run(db, "SELECT \"table\", on_delete FROM pragma_foreign_key_list('chunks') ORDER BY id") == [
        ("tags", "SET NULL"), ("documents", "CASCADE")]


@pytest.mark.parametrize("name", ["drop_column_with_its_index", "alter_column_rename"])
def test_older_sqlite_without_drop_or_rename_column_gets_a_copy_that_keeps_everything(
        sqlite_project: Project, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setattr(sqlite_alter, "NATIVE_DROP_COLUMN", (99, 0, 0))
    monkeypatch.setattr(sqlite_alter, "NATIVE_RENAME_COLUMN", (99, 0, 0))
    case = CASES[name]
    db = with_schema(sqlite_project)
    if name == "alter_column_rename":  # the view names the column: SQLite before 3.25 cannot rewrite it
        run(db, "DROP VIEW document_chunks")
    before = sqlite_schema(db)
    sqlite_project.write("002_change.py", migration(case.up, case.down))
    assert sqlite_project.cli("upgrade").code == 0
    after_up = sqlite_schema(db)
    assert after_up != before
    assert sqlite_project.cli("rollback", "1").code == 0
    assert sqlite_schema(db) == before
    assert sqlite_project.cli("upgrade").code == 0
    assert sqlite_schema(db) == after_up


def test_older_sqlite_refuses_a_rename_that_a_view_uses(sqlite_project: Project, monkeypatch: pytest.MonkeyPatch,
                                                        ) -> None:
    monkeypatch.setattr(sqlite_alter, "NATIVE_RENAME_COLUMN", (99, 0, 0))
    db = with_schema(sqlite_project)
    before = sqlite_schema(db)
    sqlite_project.write("002_rename.py", migration(CASES["alter_column_rename"].up, "pass"))
    assert_clean_error(sqlite_project.cli("upgrade"), 1, "view document_chunks", "cannot rename columns in place")
    assert sqlite_schema(db) == before


def test_drop_constraint_that_does_not_exist_names_the_table(sqlite_project: Project) -> None:
    with_schema(sqlite_project)
    sqlite_project.write("002_drop.py", migration('db.op.drop_constraint("uq_nope", "tags", type_="unique")', "pass"))
    assert_clean_error(sqlite_project.cli("upgrade"), 1, "table tags has no unique constraint named uq_nope")


ODD = '''\
CREATE TABLE "odd ""table"", (x)" (
  -- a comment, with a comma (and a parenthesis
  "id" INTEGER PRIMARY KEY,
  [a,b] TEXT CONSTRAINT "nn, x" NOT NULL DEFAULT 'it''s, (ok)',
  `c d` INTEGER CHECK ("c d" > 0) /* a trailing, comment ) */
);
CREATE INDEX "ix odd" ON "odd ""table"", (x)"("c d");
CREATE TRIGGER "tr odd" AFTER INSERT ON "odd ""table"", (x)" BEGIN SELECT 1; END;
INSERT INTO "odd ""table"", (x)" VALUES (1, 'v', 2);
'''


def test_odd_names_quotes_and_comments_survive_a_copy(sqlite_project: Project) -> None:
    sqlite_project.write("001_odd.up.sql", ODD)
    assert sqlite_project.cli("upgrade").code == 0
    db = database(sqlite_project)
    before = sqlite_schema(db)
    table = repr('odd "table", (x)')
    sqlite_project.write("002_odd.py", migration(
        f'db.op.alter_column({table}, "c d", type_=sa.BigInteger)\n'
        f'db.op.create_check_constraint("ck, odd", {table}, \'"c d" < 100\')',
        f'db.op.drop_constraint("ck, odd", {table}, type_="check")\n'
        f'db.op.alter_column({table}, "c d", type_=sa.INTEGER)'))
    assert sqlite_project.cli("upgrade").code == 0
    after_up = sqlite_schema(db)
    [(sql,)] = run(db, "SELECT sql FROM sqlite_master WHERE name = 'odd \"table\", (x)'")
    assert "-- a comment, with a comma (and a parenthesis" in sql and "'it''s, (ok)'" in sql
    assert 'CONSTRAINT "ck, odd" CHECK ("c d" < 100)' in sql and "`c d` BIGINT CHECK" in sql
    assert sqlite_project.cli("rollback", "1").code == 0
    assert sqlite_schema(db) == before
    assert run(db, 'SELECT * FROM "odd ""table"", (x)"') == [(1, "v", 2)]
    assert sqlite_project.cli("upgrade").code == 0
    assert sqlite_schema(db) == after_up


def test_a_failed_copy_in_a_migration_without_transaction_leaves_no_half_made_table(sqlite_project: Project) -> None:
    db = with_schema(sqlite_project)
    before, rows = sqlite_schema(db), sqlite_row_counts(db)
    sqlite_project.write("002_loose.py", "transactional = False\n\n" + migration(
        'db.op.alter_column("chunks", "tag", nullable=False)', "pass"))
    result = sqlite_project.cli("upgrade")
    assert result.code == 1 and "NOT NULL constraint failed" in result.err
    after, counts = sqlite_schema(db), sqlite_row_counts(db)
    # the marker of the interrupted non-atomic step stays (README: Interrupted migrations); nothing else changed
    assert counts.pop("migrations_dirty") == 1
    after["objects"] = [o for o in after["objects"] if o[1] != "migrations_dirty"]
    after["tables"].pop("migrations_dirty")
    assert after == before and counts == rows  # no _migrator_old_chunks left over


def test_a_copy_in_a_migration_without_transaction_is_kept(sqlite_project: Project) -> None:
    db = with_schema(sqlite_project)
    sqlite_project.write("002_loose.py", "transactional = False\n\n" + migration(
        'db.op.create_check_constraint("ck_chunks_n", "chunks", "n > 0")', "pass"))
    assert sqlite_project.cli("upgrade").code == 0
    [(sql,)] = run(db, "SELECT sql FROM sqlite_master WHERE name = 'chunks'")
    assert sql.endswith("CONSTRAINT ck_chunks_n CHECK (n > 0)\n)")
    assert run(db, "SELECT count(*) FROM chunks") == [(3,)]


def test_the_autoincrement_counter_of_a_mixed_case_table_is_kept(sqlite_project: Project) -> None:
    sqlite_project.write("001_t.up.sql", """\
        CREATE TABLE "Notes" (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT);
        INSERT INTO "Notes"(body) VALUES ('a'), ('b'), ('c');
        DELETE FROM "Notes" WHERE id > 1;
    """)
    sqlite_project.write("002_copy.py", migration('db.op.alter_column("notes", "body", nullable=False)', "pass"))
    assert sqlite_project.cli("upgrade").code == 0
    db = database(sqlite_project)
    run(db, "INSERT INTO Notes(body) VALUES ('d')")
    assert run(db, "SELECT id FROM Notes WHERE body = 'd'") == [(4,)]


def test_add_column_that_would_break_a_trigger_inserting_without_column_names_is_refused(
        sqlite_project: Project) -> None:
    db = with_schema(sqlite_project)
    run(db, "CREATE TRIGGER tr_tags AFTER INSERT ON tags BEGIN INSERT INTO links SELECT 1, 2; END")
    before = sqlite_schema(db)
    sqlite_project.write("002_add.py", migration('db.op.add_column("links", sa.Column("c", sa.Integer))', "pass"))
    assert_clean_error(sqlite_project.cli("upgrade"), 1, "add_column links.c", "trigger tr_tags")
    assert sqlite_schema(db) == before
    run(db, "INSERT INTO tags VALUES ('green', 0)")  # the trigger still works
    assert run(db, "SELECT count(*) FROM links") == [(3,)]
