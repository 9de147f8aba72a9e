"""Compare a stored checksum with a migration's files, and say which file changed.

The stored form (see :func:`migrator.loader.digest`): one file's sha256 hex, or
for a ``.up.sql``/``.down.sql`` pair ``sha256(up):sha256(down)``. migrator 0.1
stored a pair as one sha256 over both files' bytes; that value still counts as
unchanged (``Migration.legacy_checksum``), and when it differs no one can tell
which of the two files changed, so the message says so; ``validate --repair``
records the current form.
"""

from __future__ import annotations

from dataclasses import dataclass

from migrator.loader import SEPARATOR
from migrator.model import Migration


@dataclass(frozen=True)
class Change:
    """What differs between an applied migration's stored checksum and its files now."""

    files: str   # the file or files named, as the message starts: "002_b.down.sql"
    what: str    # how they differ: "was edited after it was applied"


def matches(stored: str, migration: Migration) -> bool:
    """The files are as they were when ``stored`` was recorded (in the current or the 0.1 form)."""
    return stored == migration.checksum or (migration.legacy_checksum is not None
                                            and stored == migration.legacy_checksum)


def change(stored: str, migration: Migration) -> Change:
    """Name the file that changed since ``stored`` was recorded (``matches`` is False)."""
    files = migration.files or (migration.path,)
    before, now = stored.split(SEPARATOR), migration.checksum.split(SEPARATOR)
    edited = "was edited after it was applied (checksum differs)"
    if len(before) == len(now) == len(files):
        names = [path.name for path, old, new in zip(files, before, now, strict=True) if old != new]
        return Change(" and ".join(names) or files[0].name, edited)
    down = f"{migration.label}.down.sql"
    if len(before) == 2 and len(now) == 1:  # a pair then, one file now: its down file is gone
        if before[0] == now[0]:
            return Change(down, "lost this down file after it was applied (checksum differs)")
        return Change(f"{files[0].name} and {down}", f"{edited}, and its down file was removed")
    if len(before) == 1 and len(now) == 2:
        if before[0] == now[0]:
            return Change(files[1].name, "gained this down file after it was applied (checksum differs)")
        # migrator 0.1's digest of both files, or the up file's own from before the down file existed
        return Change(" or ".join(path.name for path in files),
                      f"{edited}; the recorded checksum is one digest (migrator 0.1's form for a pair, or the up "
                      "file's before the down file was added), so which one cannot be told")
    return Change(files[0].name, edited)
