"""Write new files: ``migrator init`` (config and folders) and ``migrator new`` (a migration)."""

from __future__ import annotations

import re
from pathlib import Path

from migrator.config import BackendConfig
from migrator.errors import UsageError
from migrator.loader import MAX_VERSION, scan

INIT_CONFIG = '''\
# migrator configuration: see README.md for every key.
default_backend = "sqlite"

[backends.sqlite]
type = "sql"
url = "sqlite:///data/app.db"        # any SQLAlchemy URL; ${ENV_VAR} expands; MIGRATOR_SQLITE_URL overrides
migrations = "migrations/sqlite"

# [backends.vectors]
# type = "lancedb"
# uri = "data/lancedb"               # or s3://bucket/prefix
# migrations = "migrations/lancedb"
'''

PY_TEMPLATE = '''\
"""{title}"""


def up(db):
    db.execute("SELECT 1")


def down(db):
    db.execute("SELECT 1")
'''

SQL_UP_TEMPLATE = "-- {title}: forward\n"
SQL_DOWN_TEMPLATE = "-- {title}: undo what the .up.sql file did\n"

LANCE_TEMPLATE = '''\
"""{title}"""

from migrator.lancedb import migration


@migration(table="{table}", version={version}, description="{title}")
def {func}(db):
    table = db.open_table("{table}")
    raise NotImplementedError("write the migration of {table} to version {version}")
'''


def init_project(folder: Path) -> list[Path]:
    """Scaffold ``migrator.toml`` and the migrations folder in ``folder``."""
    config = folder / "migrator.toml"
    if config.exists():
        raise UsageError(f"{config} already exists; nothing was written")
    migrations = folder / "migrations" / "sqlite"
    migrations.mkdir(parents=True, exist_ok=True)
    config.write_text(INIT_CONFIG, encoding="utf-8")
    return [config, migrations]


def slug(name: str) -> str:
    cleaned = re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()
    if not cleaned:
        raise UsageError(f"migration name {name!r} needs at least one letter or digit")
    return cleaned


def new_migration(cfg: BackendConfig, name: str, *, sql: bool = False, table: str | None = None,
                  table_version: int = 1) -> list[Path]:
    """Create the next file(s) in the backend's folder; returns the paths written."""
    stem_name = slug(name)
    existing = scan(cfg.migrations, [".py", ".up.sql", ".down.sql"])
    number = max((f.version for f in existing), default=0) + 1
    if number > MAX_VERSION:
        raise UsageError(f"{cfg.migrations}: the newest version is already the largest allowed ({MAX_VERSION})")
    width = max([3, *(len(f.path.name) - len(f.path.name.lstrip("0123456789")) for f in existing)])
    stem = f"{number:0{width}d}_{stem_name}"
    title = name.strip()
    if cfg.type == "lancedb":
        if sql:
            raise UsageError("--sql is for SQL backends; LanceDB migrations are Python")
        if not table:
            raise UsageError(f"{cfg.name}: a LanceDB migration needs --table")
        files = {f"{stem}.py": LANCE_TEMPLATE.format(title=title.replace('"', "'"), table=table,
                                                     version=table_version, func=stem_name)}
    elif sql:
        files = {f"{stem}.up.sql": SQL_UP_TEMPLATE.format(title=title), f"{stem}.down.sql":
                 SQL_DOWN_TEMPLATE.format(title=title)}
    else:
        if table:
            raise UsageError("--table is for LanceDB backends")
        files = {f"{stem}.py": PY_TEMPLATE.format(title=title.replace('"', "'"))}
    written = []
    for filename, text in files.items():
        path = cfg.migrations / filename
        if path.exists():
            raise UsageError(f"{path} already exists")
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
