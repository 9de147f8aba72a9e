"""SQLite DDL as text: a tokenizer, the parts of a ``CREATE TABLE`` statement, and edits to it.

A table copy on SQLite re-creates the table from its own ``CREATE TABLE`` text in
``sqlite_master`` with exactly one edit applied (a column removed, a type replaced, a
constraint added...). Everything else the statement says — CHECKs, foreign-key actions,
``COLLATE``, ``AUTOINCREMENT``, ``WITHOUT ROWID``, ``STRICT``, comments, layout — stays as
written, which reflection cannot promise.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|--[^\n]*|/\*.*?(?:\*/|\Z))
  | (?P<string>[xX]'[^']*'|'(?:[^']|'')*')
  | (?P<name>"(?:[^"]|"")*"|\[[^\]]*\]|`(?:[^`]|``)*`|[A-Za-z_\u0080-\uffff][\w$\u0080-\uffff]*)
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<variable>[?:@$][\w$]*)
  | (?P<punct>\|\||<<|>>|<=|>=|==|!=|<>|->>|->|.)
    """,
    re.VERBOSE | re.DOTALL,
)
_UNTERMINATED = re.compile(r"""['"`\[]""")

# words that start a column constraint (https://www.sqlite.org/syntax/column-constraint.html)
_COLUMN_CONSTRAINTS = {"CONSTRAINT", "PRIMARY", "NOT", "NULL", "UNIQUE", "CHECK", "DEFAULT", "COLLATE",
                       "REFERENCES", "GENERATED", "AS"}
_TABLE_CONSTRAINTS = {"CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"}
_KINDS = {"PRIMARY": "primary", "NOT": "notnull", "NULL": "null", "UNIQUE": "unique", "CHECK": "check",
          "DEFAULT": "default", "COLLATE": "collate", "REFERENCES": "foreign", "GENERATED": "generated",
          "AS": "generated", "FOREIGN": "foreign"}


class DdlError(ValueError):
    """A statement this module cannot take apart (it says why)."""


@dataclass(frozen=True)
class Token:
    kind: str  # space, string, name, number, variable, punct
    text: str
    start: int
    end: int

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "name" else self.text

    @property
    def value(self) -> str:
        """An identifier's name, unquoted and lower-cased (SQLite compares names that way)."""
        return unquote(self.text).lower() if self.kind == "name" else self.text


def unquote(text: str) -> str:
    if text[:1] == '"':
        return text[1:-1].replace('""', '"')
    if text[:1] == "`":
        return text[1:-1].replace("``", "`")
    if text[:1] == "[":
        return text[1:-1]
    return text


@cache
def _preparer() -> Any:
    from sqlalchemy.dialects import sqlite

    return sqlite.dialect().identifier_preparer


def quote(name: str) -> str:
    """``name`` as an identifier, quoted only where SQLite needs it (as SQLAlchemy renders it)."""
    quoted: str = _preparer().quote(name)
    return quoted


def tokenize(sql: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(sql):
        match = _TOKEN.match(sql, pos)
        assert match is not None and match.lastgroup is not None  # the last branch takes any character
        kind, text = match.lastgroup, match.group()
        if kind == "punct" and _UNTERMINATED.fullmatch(text):
            raise DdlError(f"unterminated quote at character {pos + 1}")
        tokens.append(Token(kind, text, pos, match.end()))
        pos = match.end()
    return tokens


def significant(tokens: Iterable[Token]) -> list[Token]:
    return [t for t in tokens if t.kind != "space"]


def names_in(tokens: Sequence[Token]) -> set[str]:
    """Every identifier in ``tokens`` that is not a function name (lower-cased, unquoted)."""
    sig = significant(tokens)
    found = set()
    for i, token in enumerate(sig):
        if token.kind != "name":
            continue
        if i + 1 < len(sig) and sig[i + 1].text == "(" and token.text[:1] not in "\"[`":
            continue
        found.add(token.value)
    return found


def _groups(tokens: Sequence[Token]) -> list[list[Token]]:
    """``tokens`` split at top-level commas."""
    parts: list[list[Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.text == "(":
            depth += 1
        elif token.text == ")":
            depth -= 1
        if token.text == "," and depth == 0:
            parts.append([])
        else:
            parts[-1].append(token)
    return parts


def _first_group(tokens: Sequence[Token]) -> list[Token]:
    """The tokens inside the first parenthesised group of ``tokens``."""
    depth = 0
    inside: list[Token] = []
    for token in tokens:
        if token.text == "(":
            depth += 1
            if depth == 1:
                continue
        elif token.text == ")":
            depth -= 1
            if depth == 0:
                return inside
        if depth >= 1:
            inside.append(token)
    return inside


def column_list(tokens: Sequence[Token]) -> tuple[str, ...]:
    """The names in the first ``( a, b COLLATE x DESC )`` of ``tokens``."""
    names = []
    for part in _groups(significant(_first_group(tokens))):
        if part and part[0].kind == "name":
            names.append(part[0].value)
    return tuple(names)


@dataclass(frozen=True)
class Constraint:
    """A column constraint, or a table constraint; ``start``/``end`` span its text (CONSTRAINT name included)."""

    kind: str  # primary, notnull, null, unique, check, default, collate, foreign, generated
    name: str | None
    tokens: tuple[Token, ...]
    start: int
    end: int
    columns: tuple[str, ...] = ()  # table constraints: PRIMARY KEY / UNIQUE / FOREIGN KEY columns

    @property
    def label(self) -> str:
        words = {"primary": "PRIMARY KEY", "notnull": "NOT NULL", "foreign": "FOREIGN KEY", "generated": "AS"}
        kind = words.get(self.kind, self.kind.upper())
        cols = f" ({', '.join(self.columns)})" if self.columns else ""
        return f"constraint {self.name}" if self.name else f"{kind}{cols}"


@dataclass(frozen=True)
class Item:
    """One entry of the table's column list: a column definition or a table constraint."""

    raw_start: int  # just after the ``(`` or ``,`` before it
    raw_end: int    # at the ``,`` or ``)`` after it
    start: int      # its first significant character
    end: int        # just after its last significant token
    tokens: tuple[Token, ...]
    column: str | None  # the column's name (lower-cased) for a column definition
    column_text: str | None  # the name as written, unquoted
    type_start: int
    type_end: int
    constraints: tuple[Constraint, ...]

    def has(self, kind: str) -> bool:
        return any(c.kind == kind for c in self.constraints)


@dataclass(frozen=True)
class CreateTable:
    sql: str
    name: str
    name_start: int
    name_end: int
    items: tuple[Item, ...]
    options: str  # after the closing parenthesis: WITHOUT ROWID, STRICT
    display: str = ""  # the name as written, unquoted (for messages)

    @property
    def columns(self) -> list[Item]:
        return [i for i in self.items if i.column is not None]

    @property
    def table_constraints(self) -> list[Constraint]:
        return [c for i in self.items if i.column is None for c in i.constraints]

    @property
    def without_rowid(self) -> bool:
        return "ROWID" in self.options.upper()

    def column(self, name: str) -> Item | None:
        for item in self.columns:
            if item.column == name.lower():
                return item
        return None

    def item_of(self, constraint: Constraint) -> Item:
        for item in self.items:
            if constraint in item.constraints:
                return item
        raise KeyError(constraint.name)

    def constraints_named(self, name: str) -> list[Constraint]:
        return [c for i in self.items for c in i.constraints if c.name is not None and c.name == name.lower()]

    def primary_key(self) -> tuple[str, ...]:
        for item in self.items:
            for c in item.constraints:
                if c.kind == "primary":
                    return c.columns if item.column is None else (item.column,)
        return ()


def parse_create_table(sql: str) -> CreateTable:
    tokens = tokenize(sql)
    sig = significant(tokens)
    words = [t.upper for t in sig[:3]]
    if words[:2] != ["CREATE", "TABLE"] and words[:3] not in (["CREATE", "TEMP", "TABLE"],
                                                               ["CREATE", "TEMPORARY", "TABLE"]):
        raise DdlError("not a CREATE TABLE statement (a virtual table?)")
    try:
        open_at = next(i for i, t in enumerate(sig) if t.text == "(")
    except StopIteration:
        raise DdlError("the table has no column list") from None
    name_token = sig[open_at - 1]
    depth = 0
    close_at = -1
    for i in range(open_at, len(sig)):
        if sig[i].text == "(":
            depth += 1
        elif sig[i].text == ")":
            depth -= 1
            if depth == 0:
                close_at = i
                break
    if close_at < 0:
        raise DdlError("unbalanced parentheses")
    first = tokens.index(sig[open_at])
    last = tokens.index(sig[close_at])
    items: list[Item] = []
    raw_start = sig[open_at].end
    depth = 0
    chunk: list[Token] = []
    for token in tokens[first + 1:last + 1]:
        if token.text == "(":
            depth += 1
        elif token.text == ")":
            depth -= 1
        if depth < 0 or (depth == 0 and token.text == ","):
            items.append(_item(chunk, raw_start, token.start))
            chunk = []
            raw_start = token.end
            continue
        chunk.append(token)
    name = name_token.value
    return CreateTable(sql, name, name_token.start, name_token.end, tuple(items), sql[sig[close_at].end:],
                       unquote(name_token.text))


def _item(tokens: list[Token], raw_start: int, raw_end: int) -> Item:
    sig = significant(tokens)
    if not sig:
        raise DdlError("an empty entry in the column list")
    if sig[0].upper in _TABLE_CONSTRAINTS:
        constraint = _table_constraint(sig)
        return Item(raw_start, raw_end, sig[0].start, sig[-1].end, tuple(tokens), None, None,
                    sig[0].start, sig[0].start, (constraint,))
    name = sig[0]
    rest = sig[1:]
    type_tokens: list[Token] = []
    depth = 0
    index = 0
    while index < len(rest):
        token = rest[index]
        if depth == 0 and token.upper in _COLUMN_CONSTRAINTS and token.kind == "name":
            break
        depth += token.text == "("
        depth -= token.text == ")"
        type_tokens.append(token)
        index += 1
    type_start, type_end = (type_tokens[0].start, type_tokens[-1].end) if type_tokens else (name.end, name.end)
    constraints = _column_constraints(rest[index:])
    return Item(raw_start, raw_end, sig[0].start, sig[-1].end, tuple(tokens), name.value, unquote(name.text),
                type_start, type_end, tuple(constraints))


def _column_constraints(sig: list[Token]) -> list[Constraint]:
    segments: list[list[Token]] = []
    depth = 0
    absorb = 0  # after CONSTRAINT: its name and its own keyword belong to it
    for i, token in enumerate(sig):
        previous = sig[i - 1].upper if i else ""
        following = sig[i + 1].upper if i + 1 < len(sig) else ""
        starts = (
            not absorb and depth == 0 and token.kind == "name" and token.upper in _COLUMN_CONSTRAINTS
            and previous not in {"SET", "DEFAULT", "ALWAYS", "NOT"}  # SET NULL, DEFAULT NULL, NOT NULL
            and not (token.upper == "NOT" and following != "NULL")   # NOT DEFERRABLE
        )
        if starts or not segments:
            segments.append([])
        segments[-1].append(token)
        if absorb:
            absorb -= 1
        elif starts and token.upper == "CONSTRAINT":
            absorb = 2
        depth += token.text == "("
        depth -= token.text == ")"
    constraints = []
    for segment in segments:
        name = None
        body = segment
        if segment[0].upper == "CONSTRAINT" and len(segment) >= 2:
            name = segment[1].value
            body = segment[2:] or segment
        kind = _KINDS.get(body[0].upper, "other")
        constraints.append(Constraint(kind, name, tuple(segment), segment[0].start, segment[-1].end))
    return constraints


def _table_constraint(sig: list[Token]) -> Constraint:
    name = None
    body = sig
    if sig[0].upper == "CONSTRAINT" and len(sig) >= 3:
        name = sig[1].value
        body = sig[2:]
    kind = _KINDS.get(body[0].upper, "other")
    columns = column_list(body) if kind in {"primary", "unique", "foreign"} else ()
    return Constraint(kind, name, tuple(sig), sig[0].start, sig[-1].end, columns)


def references(constraint: Constraint) -> tuple[str, tuple[str, ...]]:
    """A foreign key's parent table and parent columns (lower-cased)."""
    sig = list(constraint.tokens)
    at = next(i for i, t in enumerate(sig) if t.upper == "REFERENCES")
    parent = sig[at + 1].value
    rest = sig[at + 2:]
    return parent, (column_list(rest) if rest and rest[0].text == "(" else ())


# ---------------------------------------------------------------------------------- edits


class Edits:
    """Replacements in one statement's text, applied together."""

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self._edits: list[tuple[int, int, str]] = []

    def replace(self, start: int, end: int, text: str) -> None:
        self._edits.append((start, end, text))

    def result(self) -> str:
        sql = self.sql
        for start, end, text in sorted(self._edits, key=lambda e: (e[0], e[1]), reverse=True):
            sql = sql[:start] + text + sql[end:]
        return sql


def _indent(table: CreateTable, item: Item) -> str:
    lead = table.sql[item.raw_start:item.start]
    if "\n" in lead:
        tail = lead.rsplit("\n", 1)[1]
        return "\n" + (tail if not tail.strip() else "")
    return " "


def remove_item(edits: Edits, table: CreateTable, item: Item) -> None:
    index = table.items.index(item)
    if index > 0:
        edits.replace(item.raw_start - 1, item.raw_end, "")  # from the comma before it
    elif len(table.items) > 1:
        edits.replace(item.raw_start, table.items[1].raw_start, "")  # through the comma after it
    else:
        raise DdlError("a table needs at least one column")


def add_item(edits: Edits, table: CreateTable, text: str, *, column: bool) -> None:
    """Add a column definition (after the last column) or a table constraint (at the end)."""
    anchor = table.columns[-1] if column else table.items[-1]
    edits.replace(anchor.end, anchor.end, "," + _indent(table, anchor) + text)


def remove_constraint(edits: Edits, table: CreateTable, constraint: Constraint) -> None:
    item = table.item_of(constraint)
    if item.column is None:
        remove_item(edits, table, item)
        return
    before = [t for t in item.tokens if t.kind != "space" and t.end <= constraint.start]
    edits.replace(before[-1].end if before else constraint.start, constraint.end, "")


def append_to_column(edits: Edits, item: Item, text: str) -> None:
    edits.replace(item.end, item.end, " " + text)


def set_type(edits: Edits, item: Item, type_text: str) -> None:
    if item.type_start == item.type_end:
        edits.replace(item.type_end, item.type_end, " " + type_text)
    else:
        edits.replace(item.type_start, item.type_end, type_text)


def rename_names(edits: Edits, tokens: Iterable[Token], old: str, new_text: str) -> None:
    """Every identifier token ``old`` in ``tokens`` becomes ``new_text``."""
    for token in tokens:
        if token.kind == "name" and token.value == old.lower():
            edits.replace(token.start, token.end, new_text)


def normalise(sql: str) -> str:
    """``sql`` with whitespace and comments collapsed, names unquoted and lower-cased, keywords too.

    Two statements that SQLite reads alike compare equal (``"docs"`` and ``docs``), string literals
    stay exact.
    """
    parts = []
    for token in tokenize(sql):
        if token.kind == "space":
            continue
        parts.append(token.value if token.kind == "name" else token.text)
    return " ".join(parts)
