"""Configuration: lookup order, both file forms, env expansion and overrides, errors naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrator.config import find_config_file, load_config
from migrator.errors import ConfigError

BASIC = """\
default_backend = "db"

[backends.db]
type = "sql"
url = "sqlite:///data/app.db"
migrations = "migrations/db"
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "migrations" / "db").mkdir(parents=True)
    return tmp_path


def test_migrator_toml_is_found_from_a_subfolder(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (folder / "migrator.toml").write_text(BASIC)
    sub = folder / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    monkeypatch.delenv("MIGRATOR_CONFIG", raising=False)
    assert find_config_file() == folder / "migrator.toml"


def test_migrator_toml_wins_over_pyproject_in_the_same_folder(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (folder / "migrator.toml").write_text(BASIC)
    (folder / "pyproject.toml").write_text("[tool.migrator]\n" + BASIC.replace("[backends", "[tool.migrator.backends"))
    monkeypatch.chdir(folder)
    monkeypatch.delenv("MIGRATOR_CONFIG", raising=False)
    assert find_config_file().name == "migrator.toml"


def test_pyproject_without_tool_migrator_is_skipped(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (folder / "migrator.toml").write_text(BASIC)
    inner = folder / "pkg"
    inner.mkdir()
    (inner / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    monkeypatch.chdir(inner)
    monkeypatch.delenv("MIGRATOR_CONFIG", raising=False)
    assert find_config_file() == folder / "migrator.toml"


def test_pyproject_tool_migrator_takes_the_same_keys(folder: Path) -> None:
    text = BASIC.replace("default_backend", "[tool.migrator]\ndefault_backend", 1).replace(
        "[backends.db]", "[tool.migrator.backends.db]")
    (folder / "pyproject.toml").write_text(text)
    config = load_config(folder / "pyproject.toml")
    assert config.default_backend == "db"
    assert config.backends["db"].migrations == folder.resolve() / "migrations" / "db"


def test_migrator_config_env_var_names_the_file(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = folder / "custom.toml"
    path.write_text(BASIC)
    monkeypatch.setenv("MIGRATOR_CONFIG", str(path))
    assert find_config_file() == path


def test_relative_sqlite_path_resolves_against_the_config_folder(folder: Path) -> None:
    (folder / "migrator.toml").write_text(BASIC)
    cfg = load_config(folder / "migrator.toml").backends["db"]
    assert cfg.location == f"sqlite:///{folder.resolve() / 'data' / 'app.db'}"


def test_env_reference_is_expanded(folder: Path) -> None:
    (folder / "migrator.toml").write_text(BASIC.replace("sqlite:///data/app.db", "sqlite:///${DB_FILE}"))
    cfg = load_config(folder / "migrator.toml", env={"DB_FILE": "/tmp/x.db"}).backends["db"]
    assert cfg.location == "sqlite:////tmp/x.db"


def test_unset_env_reference_names_the_variable_and_key(folder: Path) -> None:
    (folder / "migrator.toml").write_text(BASIC.replace("sqlite:///data/app.db", "${NOPE_URL}"))
    with pytest.raises(ConfigError, match=r"backends\.db\.url uses \$\{NOPE_URL\}"):
        load_config(folder / "migrator.toml", env={})


def test_migrator_name_url_overrides_the_config(folder: Path) -> None:
    (folder / "migrator.toml").write_text(BASIC)
    cfg = load_config(folder / "migrator.toml", env={"MIGRATOR_DB_URL": "postgresql://a:b@h/d"}).backends["db"]
    assert cfg.location == "postgresql://a:b@h/d"
    assert cfg.masked_location == "postgresql://a:***@h/d"


def test_malformed_toml_names_the_file(folder: Path) -> None:
    (folder / "migrator.toml").write_text("[backends.db\n")
    with pytest.raises(ConfigError, match=r"migrator\.toml: invalid TOML"):
        load_config(folder / "migrator.toml")


def test_unknown_top_level_key_is_named(folder: Path) -> None:
    (folder / "migrator.toml").write_text("colour = 'blue'\n" + BASIC)
    with pytest.raises(ConfigError, match=r"unknown key 'colour'"):
        load_config(folder / "migrator.toml")


def test_unknown_backend_key_is_named_with_its_table(folder: Path) -> None:
    (folder / "migrator.toml").write_text(BASIC + "urll = 'x'\n")
    with pytest.raises(ConfigError, match=r"unknown key backends\.db\.'urll'"):
        load_config(folder / "migrator.toml")


def test_unknown_backend_type_lists_the_known_ones(folder: Path) -> None:
    (folder / "migrator.toml").write_text(BASIC.replace('type = "sql"', 'type = "mongo"'))
    with pytest.raises(ConfigError, match=r"backends\.db\.type must be one of lancedb, sql"):
        load_config(folder / "migrator.toml")


def test_missing_migrations_folder_names_key_and_folder(tmp_path: Path) -> None:
    (tmp_path / "migrator.toml").write_text(BASIC)
    with pytest.raises(ConfigError, match=r"backends\.db\.migrations: folder .*migrations/db does not exist"):
        load_config(tmp_path / "migrator.toml")


def test_default_backend_must_be_configured(folder: Path) -> None:
    (folder / "migrator.toml").write_text(BASIC.replace('default_backend = "db"', 'default_backend = "other"'))
    with pytest.raises(ConfigError, match=r"'default_backend' names 'other'"):
        load_config(folder / "migrator.toml")


def test_selecting_an_unknown_backend_lists_the_configured_ones(folder: Path) -> None:
    (folder / "migrator.toml").write_text(BASIC)
    config = load_config(folder / "migrator.toml")
    with pytest.raises(ConfigError, match=r"unknown backend 'nope' \(configured: db\)"):
        config.select("nope", all_if_none=False)


def test_no_config_anywhere_says_what_was_looked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MIGRATOR_CONFIG", raising=False)
    with pytest.raises(ConfigError, match=r"no migrator configuration found"):
        find_config_file(tmp_path)


def test_version_table_must_be_a_plain_name(folder: Path) -> None:
    (folder / "migrator.toml").write_text(BASIC + 'version_table = "x; DROP TABLE y"\n')
    with pytest.raises(ConfigError, match=r"version_table"):
        load_config(folder / "migrator.toml")


def test_lancedb_local_uri_resolves_against_the_config_folder(folder: Path) -> None:
    (folder / "migrator.toml").write_text(BASIC + '\n[backends.vec]\ntype = "lancedb"\nuri = "data/lance"\n'
                                          'migrations = "migrations/db"\n')
    cfg = load_config(folder / "migrator.toml").backends["vec"]
    assert cfg.location == str(folder.resolve() / "data" / "lance")


def test_s3_uri_is_left_alone(folder: Path) -> None:
    (folder / "migrator.toml").write_text(BASIC + '\n[backends.vec]\ntype = "lancedb"\nuri = "s3://b/p"\n'
                                          'migrations = "migrations/db"\n')
    assert load_config(folder / "migrator.toml").backends["vec"].location == "s3://b/p"


@pytest.mark.parametrize("lease", ["0", "-1", "inf", "nan", '"30"', "true"])
def test_lock_lease_must_be_a_positive_number_of_seconds(folder: Path, lease: str) -> None:
    (folder / "migrator.toml").write_text(BASIC + '\n[backends.vec]\ntype = "lancedb"\nuri = "s3://b/p"\n'
                                          f'migrations = "migrations/db"\nlock_lease = {lease}\n')
    with pytest.raises(ConfigError) as err:
        load_config(folder / "migrator.toml")
    assert str(err.value) == f"{folder / 'migrator.toml'}: backends.vec.lock_lease must be a positive number of seconds"


def test_lock_lease_reaches_the_lancedb_adapter(folder: Path) -> None:
    (folder / "migrator.toml").write_text(BASIC + '\n[backends.vec]\ntype = "lancedb"\nuri = "s3://b/p"\n'
                                          'migrations = "migrations/db"\nlock_lease = 2.5\n')
    from migrator.backends.lancedb import create

    cfg = load_config(folder / "migrator.toml").backends["vec"]
    assert cfg.lock_lease == 2.5 and "lock_lease" not in cfg.options
    assert create(cfg).lock_lease == 2.5


@pytest.mark.parametrize("engine", ['"spark"', '"Ray"', '""', "1", "true"])
def test_an_unknown_lancedb_engine_is_one_line_naming_the_file_and_key(folder: Path, engine: str) -> None:
    (folder / "migrator.toml").write_text(BASIC + '\n[backends.vec]\ntype = "lancedb"\nuri = "s3://b/p"\n'
                                          f'migrations = "migrations/db"\nengine = {engine}\n')
    with pytest.raises(ConfigError) as err:
        load_config(folder / "migrator.toml")
    (line,) = str(err.value).splitlines()
    assert line.startswith(f"{folder / 'migrator.toml'}: backends.vec.engine must be one of 'local', 'ray' (got ")
    assert err.value.exit_code == 2


def test_the_engine_key_is_refused_on_a_sql_backend(folder: Path) -> None:
    (folder / "migrator.toml").write_text(BASIC + 'engine = "ray"\n')
    with pytest.raises(ConfigError, match=r"unknown key backends\.db\.'engine' for a sql backend"):
        load_config(folder / "migrator.toml")


@pytest.mark.parametrize("engine", ["local", "ray", None])
def test_the_engine_key_reaches_the_lancedb_migrations(folder: Path, engine: str | None) -> None:
    pytest.importorskip("lancedb")
    if engine == "ray":
        pytest.importorskip("ray")
        pytest.importorskip("lance_ray")
    (folder / "migrator.toml").write_text(BASIC + '\n[backends.vec]\ntype = "lancedb"\nuri = "s3://b/p"\n'
                                          'migrations = "migrations/db"\n'
                                          + (f'engine = "{engine}"\n' if engine else ""))
    from migrator.backends.lancedb import create

    assert create(load_config(folder / "migrator.toml").backends["vec"]).engine == (engine or "local")
