"""The engines that run the heavy LanceDB helpers (``recreate_table``; ``reembed``): their names, checked once.

``local`` runs in the migrating process; ``ray`` runs the same work on a Ray cluster
(``RAY_ADDRESS``, or a local Ray when it is unset) through
:mod:`migrator.backends.lancedb.ray_engine`, installed by ``pip install 'migrator[ray]'``.
Light on purpose: the configuration imports it and must not import ray.
"""

from __future__ import annotations

from typing import Any

ENGINES = ("local", "ray")
DEFAULT_ENGINE = "local"


def engine_problem(value: Any) -> str | None:
    """Why ``value`` is not an engine name, as the end of a sentence (None when it is one)."""
    if isinstance(value, str) and value in ENGINES:
        return None
    return f"must be one of {', '.join(repr(e) for e in ENGINES)} (got {value!r})"


def resolve(engine: Any, configured: str | None, what: str) -> str:
    """The engine a helper call runs on: its own ``engine=`` argument, else the backend's ``engine`` key, else local.

    ``what`` names the helper in the ValueError a wrong name gets.
    """
    if engine is None:
        return configured or DEFAULT_ENGINE
    problem = engine_problem(engine)
    if problem is not None:
        raise ValueError(f"{what}: engine {problem}")
    return str(engine)
