"""Testing helpers for projects that use migrator: a pytest plugin and ready tests.

The plugin (:mod:`migrator.testing.plugin`, registered under pytest's ``pytest11`` entry point) gives the
fixtures ``migrator`` (a :class:`~migrator.Migrator` on the project's config, every backend on a temporary
database, nothing applied), ``migrated`` (the same at head) and ``migrator_urls`` (each backend's temporary
URL / folder). One line in a test file turns the ready tests on::

    from migrator.testing import test_models_match_head, test_stairway, test_version_lines  # noqa: F401

Importing this package imports neither SQLAlchemy nor lancedb nor pyarrow.
"""

from __future__ import annotations

from migrator.testing.ready import test_models_match_head, test_stairway, test_version_lines

__all__ = ["test_models_match_head", "test_stairway", "test_version_lines"]
