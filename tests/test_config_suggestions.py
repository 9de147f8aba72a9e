"""A mistyped config key (or name) suggests the closest one (difflib), in every table of keys; a key put in the
wrong table says where it belongs. One line, naming the file, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Project

SQL = '[backends.db]\ntype = "sql"\nurl = "sqlite:///app.db"\nmigrations = "migrations/db"\n'
LANCE = '[backends.vec]\ntype = "lancedb"\nuri = "data/lance"\nmigrations = "migrations/db"\n'


@pytest.mark.parametrize(("config", "says"), [
    ('default_backends = "db"\n' + SQL, "unknown key 'default_backends' (did you mean 'default_backend'?)"),
    ("lock_timout = 3\n" + SQL, "unknown key 'lock_timout' (did you mean 'lock_timeout'?)"),
    ('migrations = "m"\n' + SQL, "unknown key 'migrations' (a key of a [backends.NAME] table)"),
    (SQL.replace("migrations =", "migration ="), "unknown key backends.db.'migration' for a sql backend "
                                                  "(did you mean 'migrations'?)"),
    (SQL + "lock_timout = 3\n", "unknown key backends.db.'lock_timout' for a sql backend "
                                "(did you mean 'lock_timeout'?)"),
    (SQL.replace("url =", "URL ="), "unknown key backends.db.'URL' for a sql backend (did you mean 'url'?)"),
    (SQL.replace("url =", "uri ="), "unknown key backends.db.'uri' for a sql backend (a key of lancedb backends)"),
    (SQL + "[backends.db.storage_options]\nregion = 'x'\n",
     "unknown key backends.db.'storage_options' for a sql backend (a key of lancedb backends)"),
    (SQL + "default_backend = 'db'\n", "unknown key backends.db.'default_backend' for a sql backend "
                                       "(a top-level key, above the [backends] tables)"),
    (SQL.replace('"sql"', '"sqll"'), "backends.db.type must be one of lancedb, sql (got 'sqll') "
                                     "(did you mean 'sql'?)"),
    (LANCE + 'engine = "rey"\n', "backends.vec.engine must be one of 'local', 'ray' (got 'rey') "
                                 "(did you mean 'ray'?)"),
    ('default_backend = "dbb"\n' + SQL, "'default_backend' names 'dbb', which is not configured (configured: db) "
                                        "(did you mean 'db'?)"),
])
def test_a_config_typo_names_the_closest_key(sqlite_project: Project, config: str, says: str) -> None:
    path: Path = sqlite_project.root / "migrator.toml"
    path.write_text(config)
    result = sqlite_project.cli("status")
    assert result.code == 2
    assert result.err == f"error: {path}: {says}\n"


def test_a_key_like_no_other_gets_no_suggestion(sqlite_project: Project) -> None:
    path = sqlite_project.root / "migrator.toml"
    path.write_text(SQL + "zzz = 1\n")
    result = sqlite_project.cli("status")
    assert result.code == 2 and result.err == f"error: {path}: unknown key backends.db.'zzz' for a sql backend\n"


def test_a_mistyped_backend_option_suggests_the_configured_one(sqlite_project: Project) -> None:
    result = sqlite_project.cli("status", "--backend", "dB")
    assert result.code == 2
    assert result.err.endswith("unknown backend 'dB' (configured: db) (did you mean 'db'?)\n"), result.err


def test_from_dict_suggests_too() -> None:
    from migrator import Migrator
    from migrator.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^Migrator.from_dict: unknown key 'backend' \(did you mean 'backends'\?\)$"):
        Migrator.from_dict({"backend": {}})
