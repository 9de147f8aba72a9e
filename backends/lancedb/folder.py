"""The local folder a LanceDB ``uri`` names: why it cannot be used, in words, before Lance or ``mkdir`` fail.

Lance and ``Path.mkdir`` report a ``uri`` that is a file, or lies under one,
as ``FileExistsError`` / ``NotADirectoryError`` tracebacks; an unwritable
folder as a ``PermissionError`` from the middle of a commit. These checks name
the problem first. Reading needs none of them to pass but the first two: a
read-only folder can still be inspected (``status``, ``history``, ``check``).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["unreadable", "unwritable"]


def unreadable(path: Path) -> str | None:
    """Why ``path`` can be neither a LanceDB folder nor created as one; None when it is a folder or can be made."""
    if path.is_symlink() and not path.exists():
        return f"is a symlink to {os.readlink(path)}, which does not exist"
    if path.exists():
        return None if path.is_dir() else "is a file, not a LanceDB folder"
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else f"cannot be created: {parent} is a file, not a folder"
        if parent.is_symlink():
            return f"cannot be created: {parent} is a symlink to {os.readlink(parent)}, which does not exist"
    return None


def unwritable(path: Path) -> str | None:
    """Why migrator cannot write in ``path`` (or create it): the nearest existing folder is not writable."""
    problem = unreadable(path)
    if problem is not None:
        return problem
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None or os.access(existing, os.W_OK | os.X_OK):
        return None
    return "is not writable" if existing == path else f"cannot be created: {existing} is not writable"
