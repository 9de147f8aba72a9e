"""How the SQL adapter words failures: one line, the driver's own cause, no secrets."""

from __future__ import annotations

import re
import sys
import traceback
from pathlib import Path

from migrator.errors import BackendUnavailable, MigratorError
from migrator.redact import mask_url

_CONTROL_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # whatever could break a line
BACKGROUND = re.compile(r"\s*\(Background on this \w+ at: [^)]*\)")


class StepError(Exception):
    """A failure inside one step, already phrased: ``statement 3 of 4 (line 12) failed: ...``."""

    def __init__(self, message: str, *, done: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.done = done  # statements that completed before the failure (non-transactional reports)


class TransactionControlRefused(Exception):
    """A transactional migration tried to COMMIT, ROLLBACK or BEGIN by itself."""


def has_control_chars(text: str) -> bool:
    return _CONTROL_CHARS.search(text) is not None


def mask_unparsed(url: str) -> str:
    """A URL that did not parse, safe to print: everything before its last ``@`` is hidden."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return mask_url(scheme + sep + rest)


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\n``): an error message stays on one line."""
    return _CONTROL_CHARS.sub(lambda m: repr(m.group())[1:-1], text)


def first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return text.strip()


def cause(exc: BaseException) -> str:
    """The driver's own message for database errors, ``Type: message`` for anything else."""
    if isinstance(exc, TransactionControlRefused):
        return str(exc)
    if isinstance(exc, MigratorError):  # already one phrased line
        return first_line(exc.message)
    if isinstance(exc, SystemExit):
        return f"sys.exit({exc.code!r}) was called"
    errors = sys.modules.get("sqlalchemy.exc")  # not imported: not one of SQLAlchemy's (the lean SQLite path)
    if errors is not None:
        if isinstance(exc, errors.DBAPIError) and exc.orig is not None:
            return first_line(str(exc.orig)) or type(exc.orig).__name__
        if isinstance(exc, errors.StatementError) and exc.orig is not None:
            return first_line(f"{type(exc.orig).__name__}: {exc.orig}")
    text = first_line(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def line_in(exc: BaseException, path: Path) -> int | None:
    """The last line of ``path`` in the traceback of ``exc`` (where the migration failed)."""
    target = str(path)
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == target:
            found = frame.lineno
    return found


def path_unusable(backend: str, path: Path, doing: str, exc: OSError) -> BackendUnavailable:
    """``backend``: cannot ``doing`` ``path``: the system's reason (a folder we may not write, a name too long)."""
    reason = exc.strerror or type(exc).__name__
    return BackendUnavailable(f"{backend}: cannot {doing} {printable(str(path))}: {reason}")
