"""Adapters, installed as ``migrator.backends``.

This module only *names* the adapters: the registry below says which module
implements each ``type`` and which config keys it takes, without importing it.
Adapters are imported on first use (``lancedb`` alone takes a second to import).
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
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


_COMMON_OPTIONAL = frozenset({"type", "migrations", "lock_timeout", "backup", "seeds"})

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
        with collector_paused():
            module = importlib.import_module(kind.module)
    except ImportError as exc:
        raise missing_dependency(config, exc) from exc
    backend: Backend = module.create(config)
    return backend


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while an adapter and its libraries are imported (SQLAlchemy: ~30,000
    objects); what the import made joins the oldest generation, as long-lived objects do.

    An import makes classes, functions and module dicts that live as long as the process. Left to the collector,
    they are scanned in generation 0, again in 1, and they trigger a full collection of everything allocated so far:
    ~10% of a short ``migrator upgrade`` process, freeing nothing. ``freeze`` + ``unfreeze`` (two list splices)
    moves every tracked object into the oldest generation: each stays collectable, in the next full collection.
    Skipped when the application froze objects itself (``gc.freeze`` before a fork): those stay frozen.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        if enabled:
            gc.enable()


def missing_dependency(config: BackendConfig, exc: ImportError) -> ConfigError:
    """The one-line error for an adapter whose dependencies are not installed, naming the pip command."""
    kind = BACKEND_TYPES[config.type]
    return ConfigError(
        f"{config.source}: backend {config.name!r} (type {config.type!r}) needs "
        f"`{hint_for(exc) or install_command(kind.extra)}`: {exc}"
    )
