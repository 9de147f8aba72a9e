"""The pytest plugin (entry point ``pytest11``: ``migrator = "migrator.testing.plugin"``).

pytest loads it in every session where migrator is installed, so loading it costs nothing: no database
library is imported until a test asks for one of its fixtures.

The project's config is the ini option ``migrator_config`` (a path, relative to the ini file's folder) or
the one the CLI would find from pytest's rootdir (``MIGRATOR_CONFIG``, then ``migrator.toml`` /
``[tool.migrator]`` walking up). The fixtures never touch the databases it names.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from migrator.api import Migrator
    from migrator.config import Config

INI_OPTION = "migrator_config"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(INI_OPTION, "the migrator config file for the migrator fixtures (default: found from rootdir "
                              "as the migrator CLI finds it)", default="")


@pytest.fixture(scope="session")
def migrator_project_config(pytestconfig: pytest.Config) -> Config:
    """The project's migrator config as the file says (its databases are the real ones: not for connecting)."""
    from migrator.errors import MigratorError
    from migrator.testing import project

    value = str(pytestconfig.getini(INI_OPTION) or "")
    ini_dir = pytestconfig.inipath.parent if pytestconfig.inipath else pytestconfig.rootpath
    try:
        return project.load(project.config_path(value, ini_dir, pytestconfig.rootpath))
    except MigratorError as exc:
        failure = f"migrator plugin: {exc}"
    pytest.fail(failure, pytrace=False)


@pytest.fixture
def migrator_temporary_config(migrator_project_config: Config, tmp_path: Path) -> Iterator[Config]:
    """The project's config with every backend on a temporary database (skipped when one has none)."""
    from migrator.testing import project

    folder = tmp_path / "migrator"
    folder.mkdir()
    try:
        with project.temporary(migrator_project_config, folder) as config:
            yield config
    except project.Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def migrator_urls(migrator_temporary_config: Config) -> dict[str, str]:
    """Each backend's temporary database: a SQLAlchemy URL (SQL) or a folder (LanceDB), by backend name."""
    return {name: cfg.location for name, cfg in migrator_temporary_config.backends.items()}


@pytest.fixture(name="migrator")
def migrator_fixture(migrator_temporary_config: Config) -> Migrator:
    """A Migrator on the project's config, every backend on a fresh temporary database, nothing applied."""
    from migrator.api import Migrator

    return Migrator(migrator_temporary_config)


@pytest.fixture
def migrated(migrator: Migrator) -> Migrator:
    """The ``migrator`` fixture with every backend upgraded to head (a failed migration fails the test, named)."""
    from migrator.errors import MigratorError

    try:
        migrator.upgrade()
    except MigratorError as exc:
        failure = f"migrator plugin: upgrading the temporary databases to head failed: {exc}"
    else:
        return migrator
    pytest.fail(failure, pytrace=False)
