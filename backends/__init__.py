"""Adapters, installed as ``migrator.backends``.

This module only *names* the adapters: the registry below says which module
implements each ``type`` and which config keys it takes, without importing it.
Adapters are imported on first use (``lancedb`` alone takes a second to import).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from migrator.errors import ConfigError
from migrator.extras import hint_for, install_command

if TYPE_CHECKING:
    from migrator.backends.base import Backend
    from migrator.config import BackendConfig


@dataclass(frozen=True)
class BackendType:
    module: str
    location_key: str          # the key holding the URL / URI; MIGRATOR_<NAME>_URL overrides it
    required: frozenset[str]
    optional: frozenset[str]
    extra: str | None          # the pip extra that installs its dependencies (None: base install)


_COMMON_OPTIONAL = frozenset({"type", "migrations", "lock_timeout", "backup"})

BACKEND_TYPES: dict[str, BackendType] = {
    "sql": BackendType(
        module="migrator.backends.sql.readpath",   # reads SQLite with sqlite3; SqlBackend for the rest
        location_key="url",
        required=frozenset({"url"}),
        optional=_COMMON_OPTIONAL | {"version_table", "engine_options", "target_metadata"},
        extra=None,                # SQLAlchemy and Alembic come with `pip install migrator`
    ),
    "lancedb": BackendType(
        module="migrator.backends.lancedb",
        location_key="uri",
        required=frozenset({"uri"}),
        optional=_COMMON_OPTIONAL | {"storage_options", "version_table", "jobs", "lock_lease", "engine",
                                     "target_schemas"},
        extra="lancedb",
    ),
}


def open_backend(config: BackendConfig) -> Backend:
    """Import the adapter for ``config.type`` and open it (lazily connects)."""
    kind = BACKEND_TYPES[config.type]
    try:
        module = importlib.import_module(kind.module)
    except ImportError as exc:
        raise missing_dependency(config, exc) from exc
    backend: Backend = module.create(config)
    return backend


def missing_dependency(config: BackendConfig, exc: ImportError) -> ConfigError:
    """The one-line error for an adapter whose dependencies are not installed, naming the pip command."""
    kind = BACKEND_TYPES[config.type]
    return ConfigError(
        f"{config.source}: backend {config.name!r} (type {config.type!r}) needs "
        f"`{hint_for(exc) or install_command(kind.extra)}`: {exc}"
    )
