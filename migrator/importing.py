"""An object the config names as ``"package.module:attribute"`` (``target_metadata``, ``target_schemas``).

The config file's folder is searched first for the module; every failure is one ``ConfigError`` naming where
(the config file and section), the key and the value.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from migrator.errors import ConfigError

FORM = "'package.module:attribute'"


def load_attribute(target: object, key: str, where: str, root: Path | None) -> tuple[ModuleType, Any]:
    """``(module, the attribute)`` that ``target`` (the value of ``key``) names."""
    if not isinstance(target, str):
        raise ConfigError(f"{where}: {key} must be a string {FORM} (got {type(target).__name__})")
    module_name, sep, attribute = target.partition(":")
    if not sep or not _dotted(module_name) or not _dotted(attribute):
        raise ConfigError(f"{where}: {key} {target!r} must have the form {FORM}")
    with _searching(root):
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # ImportError, a SyntaxError in the module, anything it raises on import
            reason = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
            raise ConfigError(f"{where}: {key} {target!r}: cannot import {module_name!r}: "
                              f"{type(exc).__name__}: {reason}") from exc
    found: Any = module
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise ConfigError(f"{where}: {key} {target!r}: {module_name!r} has no attribute {attribute!r}")
        found = getattr(found, part)
    return module, found


def _dotted(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


@contextmanager
def _searching(root: Path | None) -> Iterator[None]:
    """``root`` first on ``sys.path`` for the import, as it was afterwards."""
    entry = str(root) if root is not None else None
    if entry is None or entry in sys.path:
        yield
        return
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        if entry in sys.path:
            sys.path.remove(entry)
