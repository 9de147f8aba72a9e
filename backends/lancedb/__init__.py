"""The LanceDB adapter as a package: one version line per table, forward-only, crash-safe bookkeeping.

Modules (each one job):

``adapter``      :class:`LanceBackend`, the Protocol methods of :mod:`migrator.backends.base`
``recovery``     what to do with a migration an earlier run left half done (:class:`Recovery`, ``classify``)
``bookkeeping``  ``table_migrations`` (seed shape) and its history table: :class:`Bookkeeping`, its verbs, pure replay
``legacy``       converting migrator 0.1's one-table event log on the first run
``lock``         the migration lock: ``flock`` in a local folder, a leased object on object storage
``rollback``     ``migrator rollback`` by Lance time travel, and settling interrupted rollbacks
``recreate``     ``recreate_table``: streamed rewrite in one overwrite commit, audit of other writers
``indices``      declared / recorded indices: build, compare, record in the schema metadata
``evolve``       native schema evolution helpers (add / rename / drop columns)
``common``       stamps, the migration context, commit history, retries shared by the others

The registry (``migrator.backends.BACKEND_TYPES``) imports this package and calls :func:`create`.
"""

from __future__ import annotations

from .adapter import LanceBackend, LanceStep, create
from .bookkeeping import EVENT_REVERTING, EVENT_STARTED, Bookkeeping, Row, now_ms
from .lock import LOCK_NAME, object_lock, object_store_for

__all__ = [
    "EVENT_REVERTING",
    "EVENT_STARTED",
    "LOCK_NAME",
    "Bookkeeping",
    "LanceBackend",
    "LanceStep",
    "Row",
    "create",
    "now_ms",
    "object_lock",
    "object_store_for",
]
