"""Write new files: ``migrator init`` (config and folders) and ``migrator new`` (a migration)."""

from __future__ import annotations

import keyword
import os
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
url = "sqlite:///data/app.db"        # any SQLAlchemy URL; ${VAR} and ${VAR:-default} expand, $$ is a $
migrations = "migrations/sqlite"

# [backends.vectors]
# type = "lancedb"
# uri = "data/lancedb"               # or s3://bucket/prefix
# migrations = "migrations/lancedb"
'''

# Every value pasted into a template is a Python literal made by literal() (repr) (or a number, or a checked
# identifier), so no name or table can break the generated source.
PY_TEMPLATE = '''\
{docstring}


def up(db):
    db.execute("SELECT 1")


def down(db):
    db.execute("SELECT 1")
'''

SQL_UP_TEMPLATE = "-- {title}: forward\n"
SQL_DOWN_TEMPLATE = "-- {title}: undo what the .up.sql file did\n"

LANCE_TEMPLATE = '''\
{docstring}

from migrator.lancedb import migration


@migration(table={table}, version={version}, description={description})
def {func}(db):
    table = db.open_table({table})
    raise NotImplementedError({todo})
'''
LONGEST_SUFFIX = ".down.sql"


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
        raise UsageError(f"migration name {name!r} needs at least one ASCII letter or digit (for the file name)")
    return cleaned


def function_name(stem_name: str) -> str:
    """A Python identifier for the LanceDB migration function (``2fa`` or ``class`` are not)."""
    if stem_name.isidentifier() and not keyword.iskeyword(stem_name):
        return stem_name
    return f"migrate_{stem_name}"


def literal(text: str) -> str:
    """A Python string literal for ``text``: ``repr()``, in double quotes when ``text`` has no quote."""
    if "'" in text or '"' in text:
        return repr(text)
    return f'"{repr(text)[1:-1]}"'


def one_line(text: str) -> str:
    """``text`` for a SQL comment: control characters (a newline would end the comment) escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def new_migration(cfg: BackendConfig, name: str, *, sql: bool = False, table: str | None = None,
                  table_version: int = 1) -> list[Path]:
    """Create the next file(s) in the backend's folder; returns the paths written.

    The files always compile and load; a name or table that cannot give such files is refused
    (UsageError, exit code 2) before anything is written.
    """
    stem_name = slug(name)
    existing = scan(cfg.migrations, [".py", ".up.sql", ".down.sql"])
    number = max((f.version for f in existing), default=0) + 1
    if number > MAX_VERSION:
        raise UsageError(f"{cfg.migrations}: the newest version is already the largest allowed ({MAX_VERSION})")
    width = max([3, *(len(f.path.name) - len(f.path.name.lstrip("0123456789")) for f in existing)])
    stem = f"{number:0{width}d}_{stem_name}"
    _check_name_length(cfg.migrations, stem)
    title = name.strip()
    if cfg.type == "lancedb":
        if sql:
            raise UsageError("--sql is for SQL backends; LanceDB migrations are Python")
        if not table:
            raise UsageError(f"{cfg.name}: a LanceDB migration needs --table")
        from migrator.lancedb import TABLE_NAME  # only `new --table`: keep the helpers module off every start-up

        if not TABLE_NAME.fullmatch(table):
            raise UsageError(f"--table {table!r} is not a LanceDB table name (letters, digits, _ - .; "
                             "not starting with . or -)")
        files = {f"{stem}.py": LANCE_TEMPLATE.format(
            docstring=literal(title), table=literal(table), version=table_version, description=literal(title),
            func=function_name(stem_name), todo=literal(f"write the migration of {table} to version {table_version}"))}
    elif sql:
        if table:
            raise UsageError("--table is for LanceDB backends")
        files = {f"{stem}.up.sql": SQL_UP_TEMPLATE.format(title=one_line(title)),
                 f"{stem}.down.sql": SQL_DOWN_TEMPLATE.format(title=one_line(title))}
    else:
        if table:
            raise UsageError("--table is for LanceDB backends")
        files = {f"{stem}.py": PY_TEMPLATE.format(docstring=literal(title))}
    for filename, text in files.items():
        if filename.endswith(".py"):
            compile(text, filename, "exec")  # a template bug must fail here, not in the user's next upgrade
    return _write_all(cfg.migrations, files)


def _check_name_length(folder: Path, stem: str) -> None:
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    longest = len(os.fsencode(stem + LONGEST_SUFFIX))
    if longest > limit:
        raise UsageError(f"migration name too long: the file name {stem[:40]}... would be {longest} bytes, "
                         f"the file system allows {limit}; use a shorter name")


def _write_all(folder: Path, files: dict[str, str]) -> list[Path]:
    """Write every file or none: nothing is overwritten, and a failure removes what was written."""
    paths = [folder / filename for filename in files]
    for path in paths:
        if path.exists():
            raise UsageError(f"{path} already exists; nothing was written")
    written: list[Path] = []
    try:
        for path, text in zip(paths, files.values(), strict=True):
            with path.open("x", encoding="utf-8") as fh:
                written.append(path)
                fh.write(text)
    except OSError as exc:
        for path in written:
            path.unlink(missing_ok=True)
        raise UsageError(f"cannot write {exc.filename or folder}: {exc.strerror or exc}; nothing was written") from None
    return written
