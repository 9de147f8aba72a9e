"""The project's config with every backend pointed at a temporary database (the plugin's fixtures).

Nothing here connects to the databases the config names: their URLs are read only for their dialect.

- SQLite: a file in the test's temporary folder, named as the configured file (``data/app.db`` -> ``app.db``).
- LanceDB (local folder or object storage): a folder there, named as the configured one's last part
  (``data/lancedb`` -> ``lancedb``; ``storage_options`` dropped).

So databases configured side by side stay side by side (a migration may find one from the other). Two backends
whose names would collide get ``<backend>-<name>``.
- Any other SQL URL: the server in ``MIGRATOR_TEST_URL_<BACKEND>``; on PostgreSQL a fresh database is created
  there for the test and dropped after it, another dialect's URL is used as it is (it must be disposable);
  unset: the test is skipped, with the variable named.

``MIGRATOR_TEST_URL_<BACKEND>`` (the backend's name upper-cased, other characters than letters and digits as
``_``) may also point a SQLite backend at a PostgreSQL server, to run the same tests there.
"""

from __future__ import annotations

import dataclasses
import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import quote, unquote

from migrator.config import BackendConfig, Config, find_config_file, load_config

INI_OPTION = "migrator_config"


class Unavailable(Exception):
    """A backend has no temporary database here (the test is skipped with this reason)."""


def config_path(ini_value: str | None, ini_dir: Path, rootdir: Path) -> Path:
    """The ini option ``migrator_config`` (relative to the ini file's folder), else the CLI's lookup from rootdir."""
    if ini_value:
        return ini_dir / ini_value
    return find_config_file(rootdir)


def test_url_variable(backend: str) -> str:
    """``MIGRATOR_TEST_URL_<BACKEND>``: where a test database of ``backend`` may be made."""
    return f"MIGRATOR_TEST_URL_{re.sub(r'[^A-Za-z0-9]', '_', backend).upper()}"


@contextmanager
def temporary(config: Config, folder: Path, env: Mapping[str, str] | None = None) -> Iterator[Config]:
    """``config`` with every backend on a temporary database under ``folder``; databases made on a server are
    dropped on exit. Raises :class:`Unavailable` for a backend that has none."""
    environ = os.environ if env is None else env
    taken: set[str] = set()
    with ExitStack() as cleanup:
        backends = {}
        for name, cfg in config.backends.items():
            local = _local_name(cfg)
            if local in taken:
                local = f"{name}-{local}"
            taken.add(local)
            backends[name] = _temporary_backend(cfg, folder / local, environ, cleanup.callback)
        yield dataclasses.replace(config, backends=backends)


def load(path: Path) -> Config:
    return load_config(path)


def _local_name(cfg: BackendConfig) -> str:
    """The configured database's last path part (``app.db``, ``lancedb``), or one made from the backend's name."""
    if cfg.type == "lancedb":
        part = cfg.location.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        return part if part and part not in {".", ".."} else cfg.name
    if cfg.location.startswith("sqlite"):
        part = unquote(cfg.location.split("?", 1)[0].rsplit("/", 1)[-1])
        return part if part and part not in {":memory:", ".", ".."} else f"{cfg.name}.db"
    return cfg.name


def _temporary_backend(cfg: BackendConfig, path: Path, env: Mapping[str, str],
                       on_exit: Callable[..., object]) -> BackendConfig:
    variable = test_url_variable(cfg.name)
    if cfg.type == "lancedb":
        options = {k: v for k, v in cfg.options.items() if k != "storage_options"}
        return dataclasses.replace(cfg, location=str(path), options=options, handle=None)
    server = env.get(variable)
    if server:
        return dataclasses.replace(cfg, location=_fresh_database(server, variable, on_exit), handle=None)
    if cfg.location.startswith("sqlite"):
        return dataclasses.replace(cfg, location=f"sqlite:///{quote(str(path), safe='/')}", handle=None)
    dialect = cfg.location.split(":", 1)[0].split("+", 1)[0]
    raise Unavailable(f"backend {cfg.name!r} is {dialect}: set {variable} to a server URL where tests may create "
                      "databases")


def _fresh_database(server: str, variable: str, on_exit: Callable[..., object]) -> str:
    """On PostgreSQL, a new database on ``server`` (dropped by ``on_exit``); any other URL as it is."""
    import sqlalchemy as sa

    url = sa.make_url(server)
    if url.get_backend_name() != "postgresql":
        return server
    name = f"migrator_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.SQLAlchemyError as exc:
        admin.dispose()
        raise Unavailable(f"{variable}: cannot create a test database: {str(exc).splitlines()[0]}") from exc

    def drop() -> None:
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            admin.dispose()

    on_exit(drop)
    return url.set(database=name).render_as_string(hide_password=False)
