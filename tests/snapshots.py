"""Helpers for the safety tests: "exactly as before" made checkable, and the shape of a good error.

- :func:`snapshot` — every table with its columns, and the version table's rows.
- :func:`sqlite_schema` — every object of a SQLite file as SQLite itself reports it (for "the schema
  after down equals the schema before up").
- :func:`sqlite_integrity` — ``PRAGMA integrity_check`` of a SQLite file, opened read-only.
- :func:`assert_clean_error` — one ``error: ...`` line on stderr naming what it must name,
  no traceback, no secret anywhere in the output.
- :func:`run_cli_process` — the CLI in a child process (for rlimits, dropped capabilities, exits).
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa


class Output(Protocol):
    code: int
    out: str
    err: str


def snapshot(url: str, version_table: str = "migrations") -> dict[str, Any]:
    """Every table with its columns, and the version table's rows (version, name, checksum)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            tables = {t: sorted(c["name"] for c in inspector.get_columns(t)) for t in inspector.get_table_names()}
            rows: list[tuple[Any, ...]] = []
            if version_table in tables:
                rows = [tuple(r) for r in conn.execute(sa.text(
                    f"SELECT version, name, checksum FROM {version_table} ORDER BY version"))]
            return {"tables": tables, "rows": rows}
    finally:
        engine.dispose()


def versions(url: str) -> list[int]:
    return [row[0] for row in snapshot(url)["rows"]]


_SQL_TOKEN = re.compile(r"""\s+|--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|"(?:[^"]|"")*"|\[[^\]]*\]|`[^`]*`|\w+|.""", re.DOTALL)


def normalise_sql(sql: str | None) -> str | None:
    """``sql`` as SQLite reads it: layout and comments dropped, names unquoted, case folded outside strings.

    SQLite's own ``RENAME`` writes the names it rewrites in double quotes (``"docs"`` for ``docs``)
    and ``ADD``/``DROP COLUMN`` keep or drop the whitespace around a column: neither changes meaning.
    """
    if sql is None:
        return None
    words = []
    for token in _SQL_TOKEN.findall(sql):
        if token.isspace() or token.startswith(("--", "/*")):
            continue
        if token[0] in "\"[`":
            token = token[1:-1].replace('""', '"')
        words.append(token if token[0] == "'" else token.lower())
    return " ".join(words)


def sqlite_schema(path: Path) -> dict[str, Any]:
    """Every object in ``sqlite_master`` (type, name, table, normalised SQL), and for each table its
    ``PRAGMA table_xinfo`` and ``PRAGMA foreign_key_list`` (actions, MATCH and all)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        objects = sorted(
            (str(t), str(n).lower(), str(tbl).lower(), normalise_sql(sql))
            for t, n, tbl, sql in conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master")
        )
        tables: dict[str, Any] = {}
        for kind, name, _tbl, _sql in objects:
            if kind != "table":
                continue
            columns = [(r[1].lower(), r[2].upper(), r[3], normalise_sql(r[4]), r[5], r[6])
                       for r in conn.execute("SELECT * FROM pragma_table_xinfo(?)", (name,))]
            keys = sorted((r[0], r[1], r[2].lower(), r[3].lower(), (r[4] or "").lower(), r[5], r[6], r[7])
                          for r in conn.execute("SELECT * FROM pragma_foreign_key_list(?)", (name,)))
            tables[name] = {"columns": columns, "foreign_keys": keys}
        return {"objects": objects, "tables": tables}
    finally:
        conn.close()


def sqlite_row_counts(path: Path, version_table: str = "migrations") -> dict[str, int]:
    """The number of rows of every table but the version table."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                 if r[0] != version_table]
        return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
    finally:
        conn.close()


def sqlite_integrity(path: Path) -> str:
    """``ok`` for a sound SQLite file (a hot journal is rolled back first, as any reader would)."""
    conn = sqlite3.connect(path)
    try:
        return ", ".join(str(row[0]) for row in conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()


def assert_clean_error(result: Output, code: int, *names: str, secrets: Iterable[str] = ()) -> str:
    """The run failed with ``code`` and exactly one ``error:`` line naming every one of ``names``."""
    assert result.code == code, (result.code, result.out, result.err)
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    (line,) = lines
    assert line.startswith("error: "), line
    assert "Traceback" not in result.err + result.out
    assert "unexpected error" not in line, line
    for name in names:
        assert name in line, (name, line)
    assert_no_secret(result, secrets)
    return line


def assert_no_secret(result: Output, secrets: Iterable[str]) -> None:
    text = result.out + result.err
    for secret in secrets:
        assert secret not in text, (secret, text)


class ProcessResult:
    def __init__(self, completed: subprocess.CompletedProcess[str]) -> None:
        self.code = completed.returncode
        self.out = completed.stdout
        self.err = completed.stderr

    def __repr__(self) -> str:
        return f"ProcessResult(code={self.code}, out={self.out!r}, err={self.err!r})"


def run_cli_process(root: Path, *args: str, preexec_fn: Callable[[], None] | None = None,
                    timeout: float = 60) -> ProcessResult:
    """``python -m migrator ARGS`` in ``root``, in a child process, with the test's interpreter."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIGRATOR_")}
    env["COLUMNS"] = "200"
    completed = subprocess.run(
        [sys.executable, "-m", "migrator", *args], cwd=root, env=env, capture_output=True, text=True,
        preexec_fn=preexec_fn, timeout=timeout, check=False,
    )
    return ProcessResult(completed)
