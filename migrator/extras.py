"""Which pip extra installs which optional module: every ``pip install`` hint is written here.

``pip install migrator`` alone migrates SQLite (SQLAlchemy and Alembic are base
dependencies); the extras add what is heavy or optional. Keep this table in step
with ``[project.optional-dependencies]`` in pyproject.toml.
"""

from __future__ import annotations

# top-level import name -> the extra that installs it
EXTRA_OF_MODULE: dict[str, str] = {
    "lancedb": "lancedb",
    "lance": "lancedb",        # pylance
    "pyarrow": "lancedb",
    "obstore": "lancedb",
    "psycopg": "postgres",
    "ray": "ray",
    "lance_ray": "ray",
}
# installed with migrator itself: missing means a broken install
BASE_MODULES = frozenset({"sqlalchemy", "alembic", "mako", "click", "rich"})


def install_command(extra: str | None) -> str:
    """The command that installs ``extra`` (None: migrator itself), quoted for a shell."""
    return f"pip install 'migrator[{extra}]'" if extra else "pip install migrator"


def hint_for(exc: ImportError) -> str | None:
    """The install command for the module ``exc`` misses, if it is one migrator knows; else None."""
    top = (exc.name or "").partition(".")[0]
    if top in EXTRA_OF_MODULE:
        return install_command(EXTRA_OF_MODULE[top])
    if top in BASE_MODULES:
        return install_command(None)
    return None
