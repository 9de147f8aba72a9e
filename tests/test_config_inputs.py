"""Config inputs that must not misplace anything: odd folder names, symlinks, `$` forms."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import pytest

from conftest import Project, write_config
from migrator.config import load_config
from migrator.errors import ConfigError

# Each is URL syntax somewhere: an escape, a query, a fragment, a space, an IPv6 bracket, non-ASCII, userinfo
URL_LOOKING_FOLDERS = ["pct%20x", "q?x", "h#x", "sp ace", "br[ack]et", "ünï©ødé", "a%2Fb", "at@semi;colon", "x:1"]


def _files_under(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*") if p.is_file()}


def _sql_project(root: Path, capsys: pytest.CaptureFixture[str], url: str = "sqlite:///data/app.db") -> Project:
    (root / "migrations" / "db").mkdir(parents=True)
    (root / "data").mkdir()
    write_config(root, url)
    (root / "migrations" / "db" / "001_t.up.sql").write_text("CREATE TABLE t (id INTEGER);\n")
    return Project(root, url, capsys)


def _tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


@pytest.mark.parametrize("folder", URL_LOOKING_FOLDERS)
def test_sqlite_database_lands_in_a_config_folder_whose_name_looks_like_url_syntax(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], folder: str) -> None:
    project = _sql_project(tmp_path / folder, capsys)
    result = project.cli("upgrade")
    assert result.code == 0, result.err
    assert "t" in _tables(project.root / "data" / "app.db")
    outside = {p for p in _files_under(tmp_path) if p.parts[0] != folder}
    assert outside == set()


@pytest.mark.parametrize("folder", ["pct%20x", "q?x", "h#x"])
def test_sqlite_database_lands_beside_a_symlinked_config_folder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], folder: str) -> None:
    project = _sql_project(tmp_path / "real" / folder, capsys)
    link = tmp_path / f"link {folder}"
    link.symlink_to(project.root, target_is_directory=True)
    result = project.cli("--config", str(link / "migrator.toml"), "upgrade")
    assert result.code == 0, result.err
    assert "t" in _tables(link / "data" / "app.db")
    assert _files_under(tmp_path / "real") == {Path(folder) / p for p in (
        "migrator.toml", "migrations/db/001_t.up.sql", "data/app.db", "data/app.db.migrator-lock")}


def test_a_url_escape_written_by_the_user_keeps_its_url_meaning(tmp_path: Path) -> None:
    (tmp_path / "migrations" / "db").mkdir(parents=True)
    write_config(tmp_path, "sqlite:///my%20data/app.db")
    location = load_config(tmp_path / "migrator.toml").backends["db"].location
    import sqlalchemy as sa

    assert sa.make_url(location).database == str(tmp_path.resolve() / "my data" / "app.db")


@pytest.mark.parametrize("folder", ["a%20b", "h#x", "br[ack]et", "sp ace", "ünï©ødé"])
def test_lancedb_folder_lands_in_a_config_folder_whose_name_looks_like_url_syntax(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], folder: str) -> None:
    root = tmp_path / folder
    (root / "migrations" / "vec").mkdir(parents=True)
    (root / "migrations" / "vec" / "001_init.py").write_text(textwrap.dedent('''\
        import pyarrow as pa
        from migrator.lancedb import migration

        @migration(table="docs", version=1, description="create docs")
        def create(db):
            db.create_table("docs", schema=pa.schema([pa.field("id", pa.int64())]))
        '''))
    (root / "migrator.toml").write_text(textwrap.dedent('''\
        [backends.vec]
        type = "lancedb"
        uri = "data/lance"
        migrations = "migrations/vec"
        '''))
    result = Project(root, "", capsys).cli("upgrade")
    assert result.code == 0, result.err
    assert (root / "data" / "lance" / "docs.lance").is_dir()
    assert {p for p in _files_under(tmp_path) if p.parts[0] != folder} == set()


def test_a_lancedb_folder_with_a_question_mark_is_refused_before_anything_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # lance's own dataset reader (table.to_lance()) reads a '?' in a local path as a URL query: a table made
    # there could never be opened again, so the folder is refused, naming file and key
    root = tmp_path / "q?x"
    (root / "migrations" / "vec").mkdir(parents=True)
    (root / "migrator.toml").write_text('[backends.vec]\ntype = "lancedb"\nuri = "data/lance"\n'
                                        'migrations = "migrations/vec"\n')
    result = Project(root, "", capsys).cli("upgrade")
    assert result.code == 2
    assert result.err.count("\n") == 1 and "backends.vec.uri" in result.err and "'?'" in result.err
    assert not (root / "data").exists()


# --------------------------------------------------------------------------- `$` forms

BASIC = """\
default_backend = "db"

[backends.db]
type = "sql"
url = "{url}"
migrations = "{migrations}"
"""


def _config(folder: Path, url: str, migrations: str = "migrations/db") -> Path:
    (folder / "migrations" / "db").mkdir(parents=True, exist_ok=True)
    path = folder / "migrator.toml"
    path.write_text(BASIC.format(url=url, migrations=migrations))
    return path


@pytest.mark.parametrize(("env", "expected"),
                         [({}, "data"), ({"DATA_DIR": ""}, "data"), ({"DATA_DIR": "/srv"}, "/srv")])
def test_shell_default_form_expands(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    cfg = load_config(_config(tmp_path, "sqlite:///${DATA_DIR:-data}/app.db"), env=env).backends["db"]
    base = str(tmp_path.resolve()) + "/" if not expected.startswith("/") else "/"
    assert cfg.location == f"sqlite:///{base}{expected.lstrip('/')}/app.db"


def test_shell_default_form_creates_the_database_where_it_says(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATA_DIR", raising=False)
    project = _sql_project(tmp_path / "proj", capsys, url="sqlite:///${DATA_DIR:-data}/app.db")
    result = project.cli("upgrade")
    assert result.code == 0, result.err
    assert "t" in _tables(project.root / "data" / "app.db")
    assert not any("$" in str(p) for p in _files_under(tmp_path))


def test_a_doubled_dollar_is_one_literal_dollar(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, "postgresql://app:pa$$w0rd@db/app"), env={}).backends["db"]
    assert cfg.location == "postgresql://app:pa$w0rd@db/app"


def test_a_doubled_dollar_in_a_default_is_one_literal_dollar(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, "postgresql://app:${PW:-a$$b}@db/app"), env={}).backends["db"]
    assert cfg.location == "postgresql://app:a$b@db/app"


def test_the_migrations_folder_expands_the_same_forms(tmp_path: Path) -> None:
    (tmp_path / "mig" / "db").mkdir(parents=True)
    path = _config(tmp_path, "sqlite:///app.db", migrations="${MIG_ROOT:-mig}/db")
    assert load_config(path, env={}).backends["db"].migrations == tmp_path.resolve() / "mig" / "db"


@pytest.mark.parametrize("form", ["$HOME", "${X-default}", "${X:=default}", "${X:?err}", "${}", "${1X}", "${X",
                                  "pa$word", "end$", "${X:-a$b}", "${X:-a}$"])
def test_any_other_dollar_form_is_refused_naming_file_and_key(tmp_path: Path, form: str) -> None:
    path = _config(tmp_path, f"postgresql://app:{form}@db/app")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={"X": "x", "HOME": "/root"})
    message = str(info.value)
    assert str(path) in message and "backends.db.url" in message and "$$" in message
    assert "\n" not in message


@pytest.mark.parametrize("url", ["postgresql://app:pa$word@db/app", "sqlite:///app.db?password=x$word"])
def test_an_unsupported_dollar_form_in_a_password_is_not_shown(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError, match=r"uses a '\$' at character \d+, which is not supported") as info:
        load_config(_config(tmp_path, url), env={})
    assert "word" not in str(info.value)


def test_an_unsupported_dollar_form_in_a_secret_storage_option_is_not_shown(tmp_path: Path) -> None:
    (tmp_path / "migrations" / "vec").mkdir(parents=True)
    path = tmp_path / "migrator.toml"
    path.write_text('[backends.vec]\ntype = "lancedb"\nuri = "s3://b/p"\nmigrations = "migrations/vec"\n'
                    'storage_options = { aws_secret_access_key = "ab$cdef" }\n')
    with pytest.raises(ConfigError, match=r"storage_options\.aws_secret_access_key uses a '\$' at character 3") as info:
        load_config(path, env={})
    assert "cdef" not in str(info.value)


def test_an_unsupported_dollar_form_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = _sql_project(tmp_path / "proj", capsys, url="sqlite:///$DATA/app.db")
    result = project.cli("status")
    assert result.code == 2
    assert result.err.count("\n") == 1 and "'$DATA'" in result.err and "backends.db.url" in result.err


def test_an_unset_variable_names_the_variable_file_and_key(tmp_path: Path) -> None:
    path = _config(tmp_path, "sqlite:///${NOPE_DIR}/app.db")
    with pytest.raises(ConfigError, match=r"backends\.db\.url uses \$\{NOPE_DIR\}, which is not set") as info:
        load_config(path, env={})
    assert str(path) in str(info.value)


def test_a_storage_option_expands_the_default_form(tmp_path: Path) -> None:
    (tmp_path / "migrations" / "vec").mkdir(parents=True)
    path = tmp_path / "migrator.toml"
    path.write_text('[backends.vec]\ntype = "lancedb"\nuri = "s3://b/p"\nmigrations = "migrations/vec"\n'
                    'storage_options = { region = "${REGION:-eu-west-1}", secret = "a$$b" }\n')
    options = load_config(path, env={}).backends["vec"].options["storage_options"]
    assert options == {"region": "eu-west-1", "secret": "a$b"}


def test_the_url_override_variable_is_used_as_it_is(tmp_path: Path) -> None:
    path = _config(tmp_path, "sqlite:///app.db")
    cfg = load_config(path, env={"MIGRATOR_DB_URL": "postgresql://app:pa$word${X}@db/app"}).backends["db"]
    assert cfg.location == "postgresql://app:pa$word${X}@db/app"


def test_the_seed_shaped_manager_refuses_a_lancedb_folder_with_a_question_mark(tmp_path: Path) -> None:
    from migrator import MigrationManager

    (tmp_path / "migrations").mkdir()
    with pytest.raises(ConfigError, match=r"MigrationManager: the LanceDB folder .*q\?x.* has a '\?'"):
        MigrationManager(str(tmp_path / "q?x" / "lance"), tmp_path / "migrations")
    assert not (tmp_path / "q?x").exists()
