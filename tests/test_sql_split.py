"""The SQL statement splitter (migrator.backends.sql.split): statements, line numbers, quoting rules."""

from __future__ import annotations

import re
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migrator.backends.sql import split as splitter
from migrator.backends.sql.split import SplitError, Statement, is_no_transaction, split


def texts(sql: str, dialect: str = "sqlite") -> list[str]:
    return [statement.text for statement in split(sql, dialect)]


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_splits_on_semicolons_and_drops_empty_statements(dialect: str) -> None:
    assert texts("CREATE TABLE a (x INT);;\n\nINSERT INTO a VALUES (1);\n;", dialect) == [
        "CREATE TABLE a (x INT)",
        "INSERT INTO a VALUES (1)",
    ]


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_last_statement_needs_no_semicolon(dialect: str) -> None:
    assert texts("SELECT 1;\nSELECT 2\n", dialect) == ["SELECT 1", "SELECT 2"]


def test_records_the_line_each_statement_starts_on() -> None:
    sql = "-- header\n\nCREATE TABLE a (x INT);\n/* note */\nINSERT INTO a\nVALUES (1); SELECT 1;\n"
    assert [(s.line, s.text) for s in split(sql)] == [
        (3, "CREATE TABLE a (x INT)"),
        (5, "INSERT INTO a\nVALUES (1)"),
        (6, "SELECT 1"),
    ]


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_semicolons_inside_strings_and_quoted_identifiers_do_not_split(dialect: str) -> None:
    sql = """INSERT INTO "we;ird" VALUES ('a;b', 'it''s; fine');SELECT 2"""
    assert texts(sql, dialect) == ["""INSERT INTO "we;ird" VALUES ('a;b', 'it''s; fine')""", "SELECT 2"]


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_semicolons_inside_comments_do_not_split(dialect: str) -> None:
    sql = "SELECT 1 -- not; here\n, 2 /* nor; here */;\nSELECT 3"
    assert texts(sql, dialect) == ["SELECT 1 -- not; here\n, 2 /* nor; here */", "SELECT 3"]


def test_a_file_of_comments_only_has_no_statements() -> None:
    assert split("-- nothing\n/* at; all */\n") == []


def test_sqlite_brackets_and_backticks_quote_identifiers() -> None:
    assert texts("SELECT [a;b], `c;d` FROM t; SELECT 2") == ["SELECT [a;b], `c;d` FROM t", "SELECT 2"]


def test_sqlite_trigger_body_stays_one_statement() -> None:
    sql = (
        "CREATE TABLE log (msg TEXT);\n"
        "CREATE TRIGGER t AFTER INSERT ON log BEGIN\n"
        "  INSERT INTO log VALUES ('a;');\n"
        "  UPDATE log SET msg = CASE WHEN msg = 'x' THEN 'y' END;\n"
        "END;\n"
        "INSERT INTO log VALUES ('z');\n"
    )
    statements = split(sql)
    assert [s.line for s in statements] == [1, 2, 6]
    assert statements[1].text.startswith("CREATE TRIGGER") and statements[1].text.endswith("END")
    assert sqlite3.complete_statement(statements[1].text + ";")


def test_sqlite_temp_trigger_with_if_not_exists_stays_one_statement() -> None:
    sql = "CREATE TEMP TRIGGER IF NOT EXISTS t BEFORE DELETE ON a BEGIN SELECT 1; SELECT 2; END; SELECT 3"
    assert len(split(sql)) == 2


def test_sqlite_column_named_begin_does_not_swallow_the_next_statement() -> None:
    assert texts("CREATE TABLE spans (begin INT, x INT); SELECT 1") == ["CREATE TABLE spans (begin INT, x INT)",
                                                                        "SELECT 1"]


def test_postgresql_dollar_quoted_body_stays_one_statement() -> None:
    sql = (
        "CREATE FUNCTION touch() RETURNS trigger AS $$\n"
        "BEGIN\n  NEW.note := 'a;b';\n  RETURN NEW;\nEND;\n$$ LANGUAGE plpgsql;\n"
        "CREATE FUNCTION two() RETURNS text AS $body$ SELECT ';'::text $body$ LANGUAGE sql;\n"
    )
    statements = split(sql, "postgresql")
    assert [s.line for s in statements] == [1, 7]
    assert statements[0].text.endswith("LANGUAGE plpgsql")


def test_postgresql_dollar_quote_tags_must_match() -> None:
    sql = "SELECT $a$ x $b$ ; $a$; SELECT 2"
    assert texts(sql, "postgresql") == ["SELECT $a$ x $b$ ; $a$", "SELECT 2"]


def test_postgresql_positional_parameters_are_not_dollar_quotes() -> None:
    assert texts("PREPARE p AS SELECT $1; EXECUTE p(1)", "postgresql") == ["PREPARE p AS SELECT $1",
                                                                          "EXECUTE p(1)"]


def test_postgresql_sql_standard_body_with_case_stays_one_statement() -> None:
    sql = ("CREATE FUNCTION sign_of(x int) RETURNS int LANGUAGE sql\n"
           "BEGIN ATOMIC\n  SELECT CASE WHEN x < 0 THEN -1 ELSE 1 END;\nEND;\nSELECT 1")
    statements = split(sql, "postgresql")
    assert len(statements) == 2
    assert statements[0].text.endswith("END")


def test_postgresql_escape_strings_use_backslashes() -> None:
    assert texts(r"SELECT E'it\'s; fine'; SELECT 'a\'; SELECT 3", "postgresql") == [
        r"SELECT E'it\'s; fine'", r"SELECT 'a\'", "SELECT 3",
    ]


def test_postgresql_nested_block_comments() -> None:
    assert texts("SELECT 1 /* a /* b; */ c; */; SELECT 2", "postgresql") == ["SELECT 1 /* a /* b; */ c; */",
                                                                            "SELECT 2"]


def test_postgresql_rule_with_parenthesised_statements_stays_one_statement() -> None:
    sql = "CREATE RULE r AS ON INSERT TO a DO ALSO (SELECT 1; SELECT 2); SELECT 3"
    assert len(split(sql, "postgresql")) == 2


def test_mysql_style_procedure_with_end_if_stays_one_statement() -> None:
    sql = ("CREATE TRIGGER t BEFORE INSERT ON a FOR EACH ROW BEGIN\n"
           "  IF NEW.x < 0 THEN SET NEW.x = 0; END IF;\n  SET NEW.y = 1;\nEND;\nSELECT 1")
    assert len(split(sql, "mysql")) == 2


@pytest.mark.parametrize(
    ("sql", "dialect", "line"),
    [
        ("SELECT 1;\nSELECT 'open", "sqlite", 2),
        ('SELECT 1;\n\nSELECT "open', "postgresql", 3),
        ("SELECT 1;\nSELECT $$ open", "postgresql", 2),
    ],
)
def test_unterminated_quotes_raise_with_the_line(sql: str, dialect: str, line: int) -> None:
    with pytest.raises(SplitError) as info:
        split(sql, dialect)
    assert info.value.line == line
    assert "unterminated" in str(info.value)


@pytest.mark.parametrize(
    ("first_line", "expected"),
    [
        ("-- migrator: no-transaction", True),
        ("--migrator:no-transaction  ", True),
        ("-- MIGRATOR: NO-TRANSACTION", True),
        ("\ufeff-- migrator: no-transaction", True),
        ("-- migrator: no-transaction please", False),
        ("SELECT 1; -- migrator: no-transaction", False),
    ],
)
def test_no_transaction_marker_on_the_first_line(first_line: str, expected: bool) -> None:
    assert is_no_transaction(first_line + "\nSELECT 1;") is expected


def test_no_transaction_marker_elsewhere_does_not_count() -> None:
    assert not is_no_transaction("SELECT 1;\n-- migrator: no-transaction\n")


# --------------------------------------------------------------------------- properties

_plain = st.text(alphabet="abcxyz019 ,=*+<>", min_size=1, max_size=12)
_string = st.text(alphabet="ab;'\" -*/\n$", max_size=10).map(lambda s: "'" + s.replace("'", "''") + "'")
_ident = st.text(alphabet='ab;" -', min_size=1, max_size=8).map(lambda s: '"' + s.replace('"', '""') + '"')
_line_comment = st.text(alphabet="ab;'\" $", max_size=8).map(lambda s: f"-- {s}\n")
_block_comment = st.text(alphabet="ab;'\"\n $", max_size=8).map(lambda s: f"/* {s} */")
_dollar = st.tuples(st.sampled_from(["", "x", "body"]), st.text(alphabet="ab;'\"\n $-", max_size=10)).filter(
    lambda t: f"${t[0]}$" not in t[1] + "$"
).map(lambda t: f"${t[0]}${t[1]}${t[0]}$")


def _statement(pieces: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(pieces, min_size=1, max_size=6).map(lambda parts: "SELECT " + " ".join(parts) + " z")


_sqlite_statement = _statement(st.one_of(_plain, _string, _ident, _line_comment, _block_comment))
_pg_statement = _statement(st.one_of(_plain, _string, _ident, _line_comment, _block_comment, _dollar))


def _joined(statements: list[str], separators: list[str]) -> str:
    out = []
    for index, statement in enumerate(statements):
        out.append(statement)
        out.append(";" + separators[index % len(separators)])
    return "".join(out)


@settings(max_examples=300, deadline=None)
@given(st.lists(_sqlite_statement, min_size=1, max_size=6), st.lists(st.sampled_from(["\n", " ", "\n\n", ""]),
                                                                     min_size=1, max_size=3))
def test_sqlite_split_recovers_joined_statements(statements: list[str], separators: list[str]) -> None:
    assert texts(_joined(statements, separators), "sqlite") == statements


@settings(max_examples=300, deadline=None)
@given(st.lists(_pg_statement, min_size=1, max_size=6), st.lists(st.sampled_from(["\n", " ", "\n\n", ""]),
                                                                 min_size=1, max_size=3))
def test_postgresql_split_recovers_joined_statements(statements: list[str], separators: list[str]) -> None:
    assert texts(_joined(statements, separators), "postgresql") == statements


@settings(max_examples=200, deadline=None)
@given(st.lists(_sqlite_statement, min_size=1, max_size=5))
def test_sqlite_statements_are_complete_for_sqlite_itself(statements: list[str]) -> None:
    for statement in split(_joined(statements, ["\n"]), "sqlite"):
        assert sqlite3.complete_statement(statement.text + ";")


@settings(max_examples=200, deadline=None)
@given(st.lists(_sqlite_statement, min_size=1, max_size=5), st.integers(min_value=0, max_value=3))
def test_line_numbers_point_at_the_statement_text(statements: list[str], blank_lines: int) -> None:
    sql = "\n" * blank_lines + _joined(statements, ["\n"])
    lines = sql.split("\n")
    for statement in split(sql, "sqlite"):
        first = statement.text.split("\n", 1)[0]
        assert first in lines[statement.line - 1]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab ;'\"-/*$\n()[]`E\\", max_size=40), st.sampled_from(["sqlite", "postgresql", "mysql"]))
def test_arbitrary_text_splits_or_reports_an_unterminated_quote(sql: str, dialect: str) -> None:
    try:
        statements = split(sql, dialect)
    except SplitError as exc:
        assert 1 <= exc.line <= sql.count("\n") + 1
        return
    for statement in statements:
        assert isinstance(statement, Statement)
        assert statement.text and statement.text == statement.text.strip()
        assert statement.text in sql
        assert 1 <= statement.line <= sql.count("\n") + 1


_inner = st.lists(_sqlite_statement, min_size=1, max_size=3)
_trigger = _inner.map(lambda body: "CREATE TRIGGER tr AFTER INSERT ON t BEGIN\n  " + ";\n  ".join(body) + ";\nEND")
_atomic = _inner.map(lambda body: "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC "
                                  + "; ".join(b.replace("SELECT", "SELECT CASE WHEN true THEN 1 END,", 1)
                                              for b in body) + "; END")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_sqlite_statement, _trigger), min_size=1, max_size=5))
def test_sqlite_split_keeps_trigger_bodies_whole(statements: list[str]) -> None:
    assert texts(_joined(statements, ["\n"]), "sqlite") == statements


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_pg_statement, _atomic), min_size=1, max_size=5))
def test_postgresql_split_keeps_atomic_bodies_whole(statements: list[str]) -> None:
    assert texts(_joined(statements, ["\n"]), "postgresql") == statements


@pytest.mark.parametrize(("spelled", "written"), [
    (r"[A-Za-z_\x80-\uffff]", splitter._WORD_START),
    (r"[A-Za-z0-9_$\x80-\uffff]", splitter._WORD_PART),
    (r"[A-Za-z0-9_\x80-\uffff]", splitter._TAG_PART),
])
def test_identifier_classes_written_as_complements_match_exactly_the_ranges_they_stand_for(
        spelled: str, written: str) -> None:
    """The classes are spelled as complements only because a wide range is slow to compile (at every CLI start)."""
    wide, narrow = re.compile(spelled), re.compile(written)
    differ = [hex(c) for c in range(0x110000) if bool(wide.fullmatch(chr(c))) != bool(narrow.fullmatch(chr(c)))]
    assert differ == []


def test_sqlite_split_keeps_quotes_comments_and_triggers_with_plain_text_runs_as_tokens() -> None:
    """SQLite's tokenizer takes runs of plain text at once: quotes, comments and ``;`` inside them still count."""
    sql = ("CREATE TABLE t(a TEXT DEFAULT 'x;y', \"b;c\" INT, [d;e] INT, `f;g` INT); -- a ; comment\n"
           "/* ; */ INSERT INTO t(a) VALUES('it''s;');-1;\n"
           "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET a = a||'-'; SELECT 1/2; END;\n"
           "SELECT $x, a-b/c FROM t")
    assert [(s.text, s.line) for s in split(sql, "sqlite")] == [
        ("CREATE TABLE t(a TEXT DEFAULT 'x;y', \"b;c\" INT, [d;e] INT, `f;g` INT)", 1),
        ("INSERT INTO t(a) VALUES('it''s;')", 2),
        ("-1", 2),
        ("CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET a = a||'-'; SELECT 1/2; END", 3),
        ("SELECT $x, a-b/c FROM t", 4),
    ]
