"""Migration files of the SQL adapter: discovery (``.py``, ``.up.sql`` + ``.down.sql``) and loading."""

from __future__ import annotations

import ast
import dataclasses
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from migrator import loader, requirements
from migrator.errors import LoaderError
from migrator.model import Migration, Requirement

from . import split as sqlsplit

if TYPE_CHECKING:
    from .database import Database

SUFFIXES = (".py", ".up.sql", ".down.sql")
_DEF_DOWN = re.compile(rb"^def\s+down\s*\(", re.MULTILINE)
_NOT_TRANSACTIONAL = re.compile(rb"^transactional\s*(?::[^=\n]*)?=\s*False\b", re.MULTILINE)


@dataclass(frozen=True)
class PythonSource:
    """A discovered ``.py`` migration, not imported yet."""

    path: Path


_KEEP_BYTES = 256 * 1024  # files up to this size keep the bytes discovery read (and hashed) for loading


@dataclass(frozen=True)
class SqlSource:
    """A discovered ``.up.sql`` (+ ``.down.sql``) pair, not split yet.

    ``up_bytes`` / ``down_bytes``: what discovery read and hashed, kept for small files so that
    loading neither reads them a second time nor runs bytes other than the ones checksummed.
    """

    up: Path
    down: Path | None
    up_bytes: bytes | None = field(default=None, repr=False, compare=False)
    down_bytes: bytes | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class PythonCode:
    """A loaded Python migration: its ``up`` and ``down`` callables."""

    path: Path
    up: Callable[[Database], object]
    down: Callable[[Database], object] | None


@dataclass(frozen=True)
class SqlCode:
    """A loaded SQL migration: its statements, split, with their line numbers."""

    up_path: Path
    down_path: Path | None
    up: tuple[sqlsplit.Statement, ...]
    down: tuple[sqlsplit.Statement, ...] | None
    up_transactional: bool = True     # each file may start with "-- migrator: no-transaction"
    down_transactional: bool = True


def discover(migrations_dir: Path) -> list[Migration]:
    _refuse_undecodable_names(migrations_dir)
    files = loader.scan(migrations_dir, SUFFIXES, read=True)  # one open per file: checked, read, hashed
    migrations: list[Migration] = []
    index = 0
    while index < len(files):
        group = [files[index]]
        index += 1
        while index < len(files) and files[index].version == group[0].version:
            group.append(files[index])
            index += 1
        migrations.append(_migration_from(group))
    return migrations


def _refuse_undecodable_names(migrations_dir: Path) -> None:
    """A migration file whose name is not UTF-8 could be listed but never recorded: refuse it by name."""
    try:
        names = os.listdir(migrations_dir)
    except OSError:
        return  # loader.scan reports the folder itself
    for name in names:
        if name.startswith((".", "_")) or not name.endswith(SUFFIXES):
            continue
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            shown = os.fsencode(migrations_dir / name).decode("utf-8", "backslashreplace")
            raise LoaderError(f"{shown}: the file name is not valid UTF-8; rename the file") from None


def _migration_from(group: list[loader.SourceFile]) -> Migration:
    runnable = [f for f in group if f.kind != ".down.sql"]
    downs = [f for f in group if f.kind == ".down.sql"]
    version = group[0].version
    if len(runnable) > 1:
        first, second = runnable[0], runnable[1]
        raise LoaderError(f"duplicate migration version {version}: {first.path} and {second.path}")
    if not runnable:
        down = downs[0]
        stem = down.path.name[: -len(".down.sql")]
        raise LoaderError(f"{down.path}: has no matching up file (expected {stem}.up.sql)")
    main = runnable[0]
    if main.kind == ".py":
        if downs:
            raise LoaderError(f"duplicate migration version {version}: {main.path} and {downs[0].path}")
        source = _bytes(main)
        return Migration(
            version=version,
            name=main.name,
            path=main.path,
            checksum=loader.digest(source),
            reversible=bool(_DEF_DOWN.search(source)),
            transactional=not _NOT_TRANSACTIONAL.search(source),
            payload=PythonSource(main.path),
            requires=_python_requires(main.path, source) if b"requires" in source else (),
        )
    if len(downs) > 1 or (downs and downs[0].name != main.name):
        other = downs[1] if len(downs) > 1 and downs[0].name == main.name else downs[0]
        raise LoaderError(f"duplicate migration version {version}: {main.path} and {other.path}")
    down_path = downs[0].path if downs else None
    up = _bytes(main)
    first_line = up[:4096].split(b"\n", 1)[0].decode("utf-8", errors="replace")
    down_bytes = _bytes(downs[0]) if downs else None
    contents = [up, *([] if down_bytes is None else [down_bytes])]
    return Migration(
        version=version,
        name=main.name,
        path=main.path,
        checksum=loader.digest(*contents),
        files=(main.path, *([] if down_path is None else [down_path])),
        legacy_checksum=loader.legacy_digest(*contents),
        reversible=down_path is not None,
        transactional=not sqlsplit.is_no_transaction(first_line),
        payload=SqlSource(main.path, down_path, _kept(up), _kept(down_bytes)),
        requires=_sql_requires(main.path, up) if b"requires" in up else (),
    )


def _bytes(file: loader.SourceFile) -> bytes:
    return file.content if file.content is not None else file.path.read_bytes()


def _kept(content: bytes | None) -> bytes | None:
    return content if content is not None and len(content) <= _KEEP_BYTES else None


def _sql_requires(path: Path, up: bytes) -> tuple[Requirement, ...]:
    """``-- migrator: requires ...`` header lines; a no-transaction marker below the first line is refused."""
    text = up.decode("utf-8-sig", errors="replace")
    found = requirements.from_header(text, str(path))
    for number, line in enumerate(text.splitlines()[1:], 2):
        if line.strip() and not line.strip().startswith("--"):
            break
        if sqlsplit.NO_TRANSACTION.match(line):
            raise LoaderError(f"{path}:{number}: `{sqlsplit.NO_TRANSACTION_MARKER}` must be the first line "
                              "(put `-- migrator: requires ...` below it)")
    return found


def _python_requires(path: Path, source: bytes) -> tuple[Requirement, ...]:
    """A module-level ``requires = {...}`` literal, read without importing the file (discovery stays cheap)."""
    try:
        tree = ast.parse(source, filename=str(path))
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        raise LoaderError(f"{path}{f':{line}' if line else ''}: {getattr(exc, 'msg', exc)}") from None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "requires" for t in node.targets):
            value: ast.expr | None = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "requires":
            value = node.value
        else:
            continue
        try:
            declared = ast.literal_eval(value) if value is not None else None
        except ValueError:
            raise LoaderError(f"{path}:{node.lineno}: requires must be written as a literal dict like "
                              f"{requirements.EXAMPLE}") from None
        return requirements.from_mapping(declared, f"{path}:{node.lineno}")
    return ()


def load_one(migration: Migration, dialect: str) -> Migration:
    """``migration`` with its code loaded (Python imported, SQL read and split); refuses what cannot run."""
    payload = migration.payload
    if isinstance(payload, (PythonCode, SqlCode)):
        return migration
    if payload is None:
        payload = _source_for(migration.path)
    if isinstance(payload, PythonSource):
        module = loader.import_file(payload.path)
        up = getattr(module, "up", None)
        if not callable(up):
            raise LoaderError(f"{payload.path}: defines no up(db) function")
        down = getattr(module, "down", None)
        if down is not None and not callable(down):
            raise LoaderError(f"{payload.path}: down is not a function")
        transactional = getattr(module, "transactional", True)
        if not isinstance(transactional, bool):
            raise LoaderError(f"{payload.path}: transactional must be True or False")
        return dataclasses.replace(
            migration,
            reversible=down is not None,
            transactional=transactional,
            payload=PythonCode(payload.path, up, down),
        )
    if isinstance(payload, SqlSource):
        up_text = _read_sql(payload.up, payload.up_bytes)
        statements = _split(payload.up, up_text, dialect)
        down_statements = None
        down_transactional = True
        if payload.down is not None:
            down_text = _read_sql(payload.down, payload.down_bytes)
            down_statements = _split(payload.down, down_text, dialect)
            down_transactional = not sqlsplit.is_no_transaction(down_text)
            if down_transactional:
                _refuse_transaction_control(payload.down, down_statements, dialect)
        up_transactional = not sqlsplit.is_no_transaction(up_text)
        if up_transactional:
            _refuse_transaction_control(payload.up, statements, dialect)
        return dataclasses.replace(
            migration,
            reversible=down_statements is not None,
            transactional=up_transactional,
            payload=SqlCode(payload.up, payload.down, statements, down_statements, up_transactional,
                            down_transactional),
        )
    raise LoaderError(f"{migration.path}: not a migration this SQL backend can run")


def _refuse_transaction_control(path: Path, statements: Sequence[sqlsplit.Statement], dialect: str) -> None:
    """A COMMIT or BEGIN in a file that runs in migrator's transaction would split it from its version row."""
    for number, statement in enumerate(statements, 1):
        command = sqlsplit.transaction_control(statement.text, dialect)
        if command is not None:
            raise LoaderError(
                f"{path}:{statement.line}: statement {number} is {command}, but the file runs in one "
                f"transaction with its version row; remove it, or make the first line "
                f"`{sqlsplit.NO_TRANSACTION_MARKER}` to manage transactions yourself"
            )


def _source_for(path: Path) -> PythonSource | SqlSource:
    if path.name.endswith(".py"):
        return PythonSource(path)
    if path.name.endswith(".up.sql"):
        down = path.with_name(path.name[: -len(".up.sql")] + ".down.sql")
        return SqlSource(path, down if down.is_file() else None)
    raise LoaderError(f"{path}: not a migration file (.py, .up.sql)")


def _split(path: Path, text: str, dialect: str) -> tuple[sqlsplit.Statement, ...]:
    try:
        statements = tuple(sqlsplit.split(text, dialect))
    except sqlsplit.SplitError as exc:
        raise LoaderError(f"{path}:{exc.line}: {exc.message}") from None
    if not statements and loader.TEMPLATE_MARKER in text:
        what = ("the SQL that undoes the .up.sql file (or delete it if the migration cannot be undone)"
                if path.name.endswith(".down.sql") else "the migration's SQL")
        raise LoaderError(f"{path}: still the template `migrator new` wrote: write {what}; nothing was run")
    return statements


def _read_sql(path: Path, content: bytes | None = None) -> str:
    """The file's text (``content``: its bytes, already read), as ``read_text`` reads it: universal newlines."""
    try:
        if content is None:
            return path.read_text(encoding="utf-8-sig")
        return content.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as exc:
        raise LoaderError(f"{path}: is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise LoaderError(f"{path}: cannot read: {exc.strerror}") from None
