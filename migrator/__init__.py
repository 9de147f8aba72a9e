"""migrator: one migration tool for a SQL database and a LanceDB database at once."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from migrator.errors import (
    BackendUnavailable,
    ConfigError,
    InterruptedMigration,
    IrreversibleMigration,
    LoaderError,
    LockLost,
    LockTimeout,
    MigrationFailed,
    MigratorError,
    UsageError,
    ValidationFailed,
)

if TYPE_CHECKING:
    from migrator.api import Migrator
    from migrator.compat import MigrationManager, MigrationRunner

__version__ = "0.1.0"

# Records go to the application's logging configuration; the library itself installs no handler
# (and Python's last-resort handler does not print migrator's warnings and errors on stderr).
logging.getLogger("migrator").addHandler(logging.NullHandler())

__all__ = [
    "BackendUnavailable",
    "ConfigError",
    "InterruptedMigration",
    "IrreversibleMigration",
    "LoaderError",
    "LockLost",
    "LockTimeout",
    "MigrationFailed",
    "MigrationManager",
    "MigrationRunner",
    "Migrator",
    "MigratorError",
    "UsageError",
    "ValidationFailed",
]

_LAZY = {"Migrator": "migrator.api", "MigrationRunner": "migrator.compat", "MigrationManager": "migrator.compat"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'migrator' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
