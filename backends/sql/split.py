"""Split a SQL migration file into statements, keeping the line each one starts on.

The driver must get one statement at a time: ``sqlite3`` refuses several, and
``executescript`` would commit behind the runner's back. Splitting on ``;`` is
wrong inside strings, quoted identifiers, comments, PostgreSQL dollar quotes
(``$$ ... $$``, ``$body$ ... $body$``) and procedural bodies (``CREATE TRIGGER
... BEGIN ...; ...; END;``). This module handles those; nothing else.

On SQLite, whether a ``;`` ends a statement is decided by SQLite itself
(``sqlite3.complete_statement``, the rule its own shell uses, which knows
``CREATE TRIGGER ... END;``). Elsewhere, inside ``CREATE`` statements
``BEGIN``/``CASE`` ... ``END`` blocks nest, and parentheses always do.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

__all__ = ["NO_TRANSACTION_MARKER", "SplitError", "Statement", "is_no_transaction", "split", "transaction_control"]

NO_TRANSACTION_MARKER = "-- migrator: no-transaction"
NO_TRANSACTION = re.compile(r"^\ufeff?\s*--\s*migrator\s*:\s*no-transaction\s*$", re.IGNORECASE)

# Identifier characters: ASCII letters, digits, "_" (and "$" inside words), and U+0080 to U+FFFF. Written as the
# complement of the other characters: a class spelled as the range \x80-\uffff takes re ~25 ms to compile, on
# every start of the CLI; its complement ~0.5 ms, and both match exactly the same characters (test_sql_split.py).
_WORD_START = r"[^\x00-\x40\x5b-\x5e\x60\x7b-\x7f\U00010000-\U0010ffff]"     # [A-Za-z_\x80-\uffff]
_WORD_PART = r"[^\x00-\x23\x25-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f\U00010000-\U0010ffff]"  # [A-Za-z0-9_$\x80-\uffff]
_TAG_PART = r"[^\x00-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f\U00010000-\U0010ffff]"   # [A-Za-z0-9_\x80-\uffff]

_TOKEN = re.compile(
    rf"""
      (?P<ws>\s+)
    | (?P<line_comment>--[^\n]*)
    | (?P<block_comment>/\*)
    | (?P<word>{_WORD_START}{_WORD_PART}*)
    | (?P<quote>['"`\[])
    | (?P<dollar>\$(?:{_WORD_START}{_TAG_PART}*)?\$)
    | (?P<semi>;)
    | (?P<open>\()
    | (?P<close>\))
    | (?P<other>[0-9]+|.)
    """,
    re.VERBOSE | re.DOTALL,
)
# SQLite's rules need only quotes, comments and ";" (SQLite itself decides whether a ";" ends a statement, and
# words, dollar signs and parentheses mean nothing to the split): runs of other characters are one token.
_SQLITE_TOKEN = re.compile(
    r"""
      (?P<ws>\s+)
    | (?P<line_comment>--[^\n]*)
    | (?P<block_comment>/\*)
    | (?P<quote>['"`\[])
    | (?P<semi>;)
    | (?P<other>[^\s'"`\[;/-]+|.)
    """,
    re.VERBOSE | re.DOTALL,
)
_BLOCK_COMMENT_EDGE = re.compile(r"/\*|\*/")

# After END, these words close a block that did not open one (END IF, END LOOP ...).
_END_SUFFIX_NO_BLOCK = frozenset({"IF", "LOOP", "WHILE", "REPEAT", "FOR"})
_ROUTINE_WORDS = frozenset({"FUNCTION", "PROCEDURE", "TRIGGER"})


@dataclass(frozen=True)
class Statement:
    """One statement: its text (without the closing ``;``) and the 1-based line it starts on."""

    text: str
    line: int


class SplitError(ValueError):
    """The text cannot be split: an unterminated string, identifier or dollar quote."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(f"line {line}: {message}")
        self.message = message
        self.line = line


@dataclass(frozen=True)
class _Rules:
    dollar_quotes: bool
    backticks: bool
    brackets: bool
    nested_comments: bool
    backslash_strings: bool  # E'...' strings (PostgreSQL)
    sqlite: bool


def _rules(dialect: str) -> _Rules:
    name = dialect.lower()
    if name == "sqlite":
        return _Rules(False, True, True, False, False, True)
    if name in {"mysql", "mariadb"}:
        return _Rules(False, True, False, False, False, False)
    if name == "mssql":
        return _Rules(False, False, True, False, False, False)
    if name == "oracle":
        return _Rules(False, False, False, False, False, False)
    # postgresql and the dialects that follow it (cockroachdb, ...)
    return _Rules(True, False, False, True, True, False)


def is_no_transaction(sql: str) -> bool:
    """True when the first line is ``-- migrator: no-transaction``."""
    first = sql.split("\n", 1)[0]
    return bool(NO_TRANSACTION.match(first.rstrip("\r")))


_LEADING = re.compile(r"(?:\s+|--[^\n]*|/\*.*?\*/)*", re.DOTALL)
_WORDS = re.compile(r"[A-Za-z_]+")
# Dialects whose anonymous procedural blocks start with BEGIN (a statement "BEGIN ... END" is not a transaction)
_BLOCK_DIALECTS = frozenset({"oracle", "mssql"})
_CONTROL_WORDS = frozenset({"COMMIT", "ABORT", "BEGIN", "END", "ROLLBACK", "START", "PREPARE"})


def transaction_control(statement: str, dialect: str = "sqlite") -> str | None:
    """The transaction-control command ``statement`` is (``"COMMIT"``, ``"BEGIN"`` ...), or None.

    ``SAVEPOINT``, ``RELEASE`` and ``ROLLBACK TO`` stay inside a transaction and are not
    control in this sense; ``COMMIT``, ``END``, ``ROLLBACK``, ``ABORT``, ``BEGIN``, ``START
    TRANSACTION`` and ``PREPARE TRANSACTION`` end or open one.
    """
    start = _LEADING.match(statement)
    offset = start.end() if start else 0
    found = _WORDS.search(statement, offset, offset + 80)  # runs on every statement a migration executes:
    if found is None or found.group().upper() not in _CONTROL_WORDS:  # the common case decided cheaply
        return None
    words: list[str] = [str(w).upper() for w in _WORDS.findall(statement[offset:offset + 80])[:4]]
    first = words[0]
    if first in {"COMMIT", "ABORT"}:
        return first
    if first in {"BEGIN", "END"}:
        return None if dialect.lower() in _BLOCK_DIALECTS else first
    if first == "ROLLBACK":
        rest = [w for w in words[1:] if w not in {"WORK", "TRANSACTION", "TRAN"}]
        return None if rest[:1] == ["TO"] else first
    if first in {"START", "PREPARE"} and words[1:2] == ["TRANSACTION"]:
        return f"{first} TRANSACTION"
    return None


def split(sql: str, dialect: str = "sqlite") -> list[Statement]:
    """The statements of ``sql`` in order, without empty ones; SplitError for unterminated quotes."""
    rules = _rules(dialect)
    statements: list[Statement] = []
    length = len(sql)
    pos = 0
    start = -1            # index of the current statement's first significant character
    line_pos, line_no = 0, 1
    first_word = ""
    routine = False
    depth = 0             # BEGIN/CASE ... END nesting inside CREATE statements (not SQLite)
    parens = 0
    after_end = False
    prev_word_end = -1
    prev_word = ""

    def line_of(index: int) -> int:
        nonlocal line_pos, line_no
        if index >= line_pos:
            line_no += sql.count("\n", line_pos, index)
        else:  # only for error messages about an earlier position
            return sql.count("\n", 0, index) + 1
        line_pos = index
        return line_no

    def finish(end: int) -> None:
        nonlocal start, first_word, routine, depth, parens, after_end
        text = sql[start:end].rstrip()
        if text:
            statements.append(Statement(text, line_of(start)))
        start = -1
        first_word = ""
        routine = False
        depth = parens = 0
        after_end = False

    token = _SQLITE_TOKEN if rules.sqlite else _TOKEN
    while pos < length:
        match = token.match(sql, pos)
        assert match is not None  # the last alternative matches any character
        kind = match.lastgroup
        token_start = pos
        pos = match.end()
        if kind == "ws" or kind == "line_comment":
            continue
        if kind == "block_comment":
            pos = _skip_block_comment(sql, pos, rules.nested_comments)
            continue
        if start < 0:
            start = token_start
        if kind == "word":
            word = match.group().upper()
            if not rules.sqlite:
                if not first_word:
                    first_word = word
                elif first_word == "CREATE":
                    if after_end:
                        after_end = False
                        if word in _END_SUFFIX_NO_BLOCK:
                            depth += 1  # END IF: undo the END's decrement
                            prev_word, prev_word_end = word, pos
                            continue
                        if word == "CASE":  # END CASE closes the CASE it names
                            prev_word, prev_word_end = word, pos
                            continue
                    if word in _ROUTINE_WORDS:
                        routine = True
                    elif word == "CASE" or (word == "BEGIN" and routine):
                        depth += 1
                    elif word == "END":
                        depth -= 1
                        after_end = True
            prev_word, prev_word_end = word, pos
            continue
        after_end = False
        if kind == "quote":
            quote = match.group()
            escapes = rules.backslash_strings and quote == "'" and prev_word_end == token_start and prev_word == "E"
            if (quote == "`" and not rules.backticks) or (quote == "[" and not rules.brackets):
                continue
            pos = _skip_quoted(sql, token_start, quote, escapes)
        elif kind == "dollar":
            if not rules.dollar_quotes or prev_word_end == token_start:
                pos = token_start + 1  # a plain "$" (parameter or part of a name)
                continue
            tag = match.group()
            close = sql.find(tag, pos)
            if close < 0:
                raise SplitError(f"unterminated dollar-quoted string {tag}", line_of(token_start))
            pos = close + len(tag)
        elif kind == "open":
            if not rules.sqlite:
                parens += 1
        elif kind == "close":
            if not rules.sqlite:
                parens -= 1
        elif kind == "semi":
            if rules.sqlite:
                if sqlite3.complete_statement(sql[start:pos]):
                    finish(token_start)
            elif depth <= 0 and parens <= 0:
                finish(token_start)
    if start >= 0:
        finish(length)
    return statements


def _skip_block_comment(sql: str, pos: int, nested: bool) -> int:
    """Index after the comment opened just before ``pos`` (end of text if it never closes)."""
    level = 1
    while level:
        edge = _BLOCK_COMMENT_EDGE.search(sql, pos)
        if edge is None:
            return len(sql)
        pos = edge.end()
        if edge.group() == "*/":
            level -= 1
        elif nested:
            level += 1
    return pos


def _skip_quoted(sql: str, begin: int, quote: str, escapes: bool) -> int:
    """Index after the quoted text starting at ``begin``; SplitError if it never closes."""
    close = "]" if quote == "[" else quote
    pos = begin + 1
    while True:
        end = sql.find(close, pos)
        if escapes:
            slash = sql.find("\\", pos)
            if 0 <= slash < end or (end < 0 <= slash):
                pos = slash + 2
                continue
        if end < 0:
            what = {"'": "string", '"': "quoted identifier", "`": "quoted identifier", "[": "quoted identifier"}
            line = sql.count("\n", 0, begin) + 1
            raise SplitError(f"unterminated {what[quote]} starting with {quote}", line)
        if close != "]" and sql.startswith(close, end + 1):  # doubled quote: an escaped quote
            pos = end + 2
            continue
        return end + 1
