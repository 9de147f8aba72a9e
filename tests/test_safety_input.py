"""Hostile input on the SQL backends: config values of the wrong type, odd migration file names.

Every case ends in one ``error:`` line on stderr naming the file and the key (or the
migration file), exit code 2, no traceback -- or, for names that are fine, a normal run.
Config cases go through ``migrator status`` in-process; hypothesis draws the values.
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from snapshots import assert_clean_error, snapshot, versions

from conftest import CliResult, Project

# --------------------------------------------------------------------------- TOML values

_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


def toml(value: Any) -> str:
    """``value`` as a TOML value (inline tables and arrays included)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        out = []
        for char in value:
            if char in '"\\':
                out.append("\\" + char)
            elif ord(char) < 0x20 or ord(char) == 0x7F:
                out.append(f"\\u{ord(char):04x}")
            else:
                out.append(char)
        return '"' + "".join(out) + '"'
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml(str(k))} = {toml(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


SCALARS = st.one_of(
    st.booleans(), st.integers(), st.floats(), _TEXT, st.datetimes(), st.dates(), st.times(),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(_TEXT, inner, max_size=3)), max_leaves=6)


def not_a(*types: type) -> st.SearchStrategy[Any]:
    """TOML values whose Python type is none of ``types`` (bool is not an int here)."""
    def wrong(value: Any) -> bool:
        if isinstance(value, bool):
            return bool not in types
        return not isinstance(value, types)
    return VALUES.filter(wrong)


NOT_A_STRING = not_a(str)
NOT_A_NUMBER = st.one_of(not_a(int, float), st.integers(max_value=-1), st.floats(max_value=-1e-9))
NOT_A_TABLE = not_a(dict)
NOT_AN_IDENTIFIER = st.one_of(NOT_A_STRING, _TEXT.filter(lambda s: not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", s)))

# --------------------------------------------------------------------------- the config under test

BASE_TOP = {"default_backend": '"db"'}
BASE_DB = {"type": '"sql"', "url": '"sqlite:///app.db"', "migrations": '"migrations/db"'}


def render(top: dict[str, str], db: dict[str, str] | None, extra_tables: str = "") -> str:
    lines = [f"{key} = {value}" for key, value in top.items()]
    if db is not None:
        lines.append("[backends.db]")
        lines += [f"{key} = {value}" for key, value in db.items()]
    return "\n".join(lines) + "\n" + extra_tables


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "migrations" / "db").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)  # a relative path that escapes the config folder lands here, not in the repo
    return tmp_path


def status_with(folder: Path, capsys: pytest.CaptureFixture[str], text: str, *args: str) -> CliResult:
    from migrator.cli import main

    (folder / "migrator.toml").write_text(text, encoding="utf-8")
    capsys.readouterr()
    code = main(["--config", str(folder / "migrator.toml"), *(args or ("status",))])
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)


HYPOTHESIS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# (where, key, hostile values, text the message must contain besides the file)
HOSTILE_KEYS: list[tuple[str, str, st.SearchStrategy[Any], str]] = [
    ("db", "url", st.one_of(NOT_A_STRING, st.just("")), "url"),
    ("db", "migrations", st.one_of(NOT_A_STRING, st.just("")), "migrations"),
    ("db", "version_table", NOT_AN_IDENTIFIER, "version_table"),
    ("db", "type", st.one_of(NOT_A_STRING, _TEXT.filter(lambda s: s not in {"sql", "lancedb"})), "type"),
    ("db", "lock_timeout", NOT_A_NUMBER, "lock_timeout"),
    ("db", "engine_options", NOT_A_TABLE, "engine_options"),
    ("top", "default_backend", st.one_of(NOT_A_STRING, _TEXT.filter(lambda s: s != "db")), "default_backend"),
    ("top", "lock_timeout", NOT_A_NUMBER, "lock_timeout"),
    ("top", "backends", NOT_A_TABLE, "backends"),
]


@pytest.mark.parametrize(("where", "key", "values", "named"), HOSTILE_KEYS,
                         ids=[f"{w}.{k}" for w, k, _, _ in HOSTILE_KEYS])
def test_a_wrong_value_for_a_key_is_a_config_error_naming_file_and_key(
    folder: Path, capsys: pytest.CaptureFixture[str], where: str, key: str,
    values: st.SearchStrategy[Any], named: str,
) -> None:
    @HYPOTHESIS
    @given(value=values)
    def check(value: Any) -> None:
        top, db = dict(BASE_TOP), dict(BASE_DB)
        (top if where == "top" else db)[key] = toml(value)
        result = status_with(folder, capsys, render(top, None if key == "backends" else db))
        assert_clean_error(result, 2, "migrator.toml", named)

    check()


@HYPOTHESIS
@given(name=_TEXT.filter(lambda s: s not in {"type", "url", "migrations", "version_table", "lock_timeout",
                                             "backup", "engine_options"}), value=VALUES)
def test_an_unknown_backend_key_is_named(folder: Path, capsys: pytest.CaptureFixture[str], name: str,
                                         value: Any) -> None:
    db = {**BASE_DB, toml(name): toml(value)}
    result = status_with(folder, capsys, render(BASE_TOP, db))
    assert_clean_error(result, 2, "migrator.toml", "unknown key backends.db.")


@HYPOTHESIS
@given(name=_TEXT.filter(lambda s: s not in {"default_backend", "backends", "lock_timeout"}), value=VALUES)
def test_an_unknown_top_level_key_is_named(folder: Path, capsys: pytest.CaptureFixture[str], name: str,
                                           value: Any) -> None:
    top = {toml(name): toml(value), **BASE_TOP}
    result = status_with(folder, capsys, render(top, BASE_DB))
    assert_clean_error(result, 2, "migrator.toml", "unknown key")


@HYPOTHESIS
@given(value=not_a(dict))
def test_a_backend_that_is_not_a_table_is_named(folder: Path, capsys: pytest.CaptureFixture[str], value: Any) -> None:
    result = status_with(folder, capsys, f"default_backend = \"db\"\nbackends = {{db = {toml(value)}}}\n")
    assert_clean_error(result, 2, "migrator.toml", "backends.db")


@HYPOTHESIS
@given(name=_TEXT.filter(bool))
def test_a_backend_name_either_works_or_is_refused_by_name(folder: Path, capsys: pytest.CaptureFixture[str],
                                                            name: str) -> None:
    table = "\n".join(f"{k} = {v}" for k, v in BASE_DB.items())
    text = f"[backends.{toml(name)}]\n{table}\n"
    result = status_with(folder, capsys, text)
    if re.fullmatch(r"[A-Za-z0-9_\-]+", name):
        assert result.code == 0, result.err
        assert name in result.out
    else:
        assert_clean_error(result, 2, "migrator.toml", "backend name")


URL_TEXT = st.one_of(
    _TEXT.filter(lambda s: "://" not in s),
    _TEXT.map(lambda s: "sqlite:///" + s),
    st.tuples(st.sampled_from(["a", "mysql+pymysql", "postgresql+nodriver", "sqlite+nodriver", "oracle"]),
              _TEXT).map(lambda t: f"{t[0]}://user:Zq9-secret@127.0.0.1:1/{t[1]}"),
)


@HYPOTHESIS
@given(url=URL_TEXT)
@example(url="postgresql://user:Zq9-secret@h:notaport/db")
@example(url="sqlite:///a\x00b.db")
@example(url="sqlite:///" + "x" * 5000)
@example(url="sqlite:///app.db?mode=ro")
@example(url="line one\nline two")
def test_any_url_string_runs_or_fails_in_one_line_without_the_password(
    folder: Path, capsys: pytest.CaptureFixture[str], url: str,
) -> None:
    for command in ("status", "upgrade"):
        result = status_with(folder, capsys, render(BASE_TOP, {**BASE_DB, "url": toml(url)}), command)
        if result.code != 0:
            assert_clean_error(result, 2, secrets=["Zq9-secret"])
        assert "Zq9-secret" not in result.out + result.err


def test_engine_options_the_driver_rejects_are_a_config_error_at_status(
    folder: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    sqlite3.connect(folder / "app.db").close()  # an existing database: status connects
    for options in ("{foo = 1}", "{connect_args = 1}", "{connect_args = {foo = 1}}", '{poolclass = "x"}',
                    '{isolation_level = "x"}'):
        result = status_with(folder, capsys, render(BASE_TOP, {**BASE_DB, "engine_options": options}))
        assert_clean_error(result, 2, "db: cannot open", "engine_options")


def test_engine_options_are_checked_before_the_database_exists(folder: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    result = status_with(folder, capsys, render(BASE_TOP, {**BASE_DB, "engine_options": "{foo = 1}"}))
    assert_clean_error(result, 2, "db: cannot open", "engine_options")
    assert not (folder / "app.db").exists()


def test_a_sqlite_url_argument_the_driver_would_ignore_is_a_config_error(
    folder: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    (folder / "migrations" / "db" / "001_a.up.sql").write_text("CREATE TABLE a (id INTEGER);\n")
    result = status_with(folder, capsys, render(BASE_TOP, {**BASE_DB, "url": '"sqlite:///app.db?mode=ro"'}),
                         "upgrade")
    assert_clean_error(result, 2, "mode", "uri=true")
    assert not (folder / "app.db").exists()


def test_a_too_long_migrations_folder_name_is_a_config_error(
    folder: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    result = status_with(folder, capsys, render(BASE_TOP, {**BASE_DB, "migrations": toml("m" * 300)}))
    assert_clean_error(result, 2, "migrator.toml", "migrations")


@pytest.mark.parametrize("where", ["top", "db"])
def test_lock_timeout_nan_is_a_config_error(folder: Path, capsys: pytest.CaptureFixture[str], where: str) -> None:
    top, db = dict(BASE_TOP), dict(BASE_DB)
    (top if where == "top" else db)["lock_timeout"] = "nan"
    result = status_with(folder, capsys, render(top, db))
    assert_clean_error(result, 2, "migrator.toml", "lock_timeout")


@HYPOTHESIS
@given(value=not_a(bool))
def test_a_backup_key_that_is_not_a_bool_is_a_config_error_at_status(
    folder: Path, capsys: pytest.CaptureFixture[str], value: Any,
) -> None:
    result = status_with(folder, capsys, render(BASE_TOP, {**BASE_DB, "backup": toml(value)}))
    assert_clean_error(result, 2, "migrator.toml", "backup")


def test_a_backup_key_that_is_not_a_bool_stops_upgrade_before_any_change(
    folder: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    (folder / "migrations" / "db" / "001_a.up.sql").write_text("CREATE TABLE a (id INTEGER);\n")
    result = status_with(folder, capsys, render(BASE_TOP, {**BASE_DB, "backup": '"yes"'}), "upgrade")
    assert_clean_error(result, 2, "backup")
    assert not (folder / "app.db").exists() or "a" not in snapshot(f"sqlite:///{folder / 'app.db'}")["tables"]


# --------------------------------------------------------------------------- migration file names

UP = "def up(db):\n    db.execute('CREATE TABLE t{n} (id INTEGER)')\n"


def write_raw(project: Project, name: str | bytes, text: str) -> None:
    folder = os.fsencode(project.migrations)
    raw = name if isinstance(name, bytes) else os.fsencode(name)
    with open(os.path.join(folder, raw), "w", encoding="utf-8") as fh:
        fh.write(text)


@pytest.mark.parametrize("name", ["-1_x.py", "abc.up.sql", "x_1.py", "1\\x.py", "1:x.py", "²_superscript.py",
                                  "00_zero.py", "99999999999999999999_huge.py", "9223372036854775808_x.py"])
def test_a_file_name_without_a_usable_version_is_refused_by_name(sqlite_project: Project, name: str) -> None:
    write_raw(sqlite_project, name, UP.format(n=1))
    assert_clean_error(sqlite_project.cli("status"), 2, name)
    assert_clean_error(sqlite_project.cli("upgrade"), 2, name)
    assert not (sqlite_project.root / "app.db").exists()


@pytest.mark.parametrize(("name", "version", "title"), [
    ("0001_leading_zeros.py", 1, "leading_zeros"),
    ("7 with spaces.py", 7, "with spaces"),
    ("3.up.sql", 3, ""),
    ("12-dashed-name.py", 12, "dashed-name"),
    ("5_ünïcødé_名前.py", 5, "ünïcødé_名前"),
    ("9223372036854775807_max.py", 9223372036854775807, "max"),
])
def test_an_odd_but_valid_file_name_parses_and_applies(project: Project, name: str, version: int,
                                                       title: str) -> None:
    write_raw(project, name, "CREATE TABLE t (id INTEGER);\n" if name.endswith(".sql") else UP.format(n=""))
    status = json.loads(project.cli("status", "--json").out)
    assert status["backends"][0]["lines"][0]["pending"] == [{"version": version, "name": title, "file": name}]
    assert project.cli("upgrade").code == 0
    assert snapshot(project.url)["rows"][0][:2] == (version, title)
    assert project.cli("rollback", "0").code == 2  # no down: refused, nothing changes
    assert versions(project.url) == [version]


@pytest.mark.parametrize("name", [".up.sql", ".1_hidden.py", "_1_private.py", "__init__.py", "1_notes.txt",
                                  "1_a.sql", "1_a.pyc"])
def test_hidden_private_and_foreign_files_are_ignored(sqlite_project: Project, name: str) -> None:
    write_raw(sqlite_project, name, "this is not a migration(\n")
    result = sqlite_project.cli("status")
    assert result.code == 0 and "no migrations" in result.out


@pytest.mark.parametrize(("first", "second"), [
    ("001_a.py", "001_a.up.sql"),
    ("001_a.py", "1_b.up.sql"),
    ("001_a.py", "001_a.down.sql"),
    ("1_a.py", "01_b.py"),
    ("2_a.up.sql", "002_b.up.sql"),
])
def test_two_files_with_one_version_are_refused_naming_both(project: Project, first: str, second: str) -> None:
    write_raw(project, first, UP.format(n=1) if first.endswith(".py") else "CREATE TABLE a (id INTEGER);\n")
    write_raw(project, second, UP.format(n=2) if second.endswith(".py") else "CREATE TABLE b (id INTEGER);\n")
    before = snapshot(project.url)
    assert_clean_error(project.cli("status"), 2, first, second)
    assert_clean_error(project.cli("upgrade"), 2, first, second)
    assert snapshot(project.url) == before


def test_a_down_file_without_its_up_file_is_refused_by_name(sqlite_project: Project) -> None:
    write_raw(sqlite_project, "004_orphan.down.sql", "DROP TABLE x;\n")
    assert_clean_error(sqlite_project.cli("status"), 2, "004_orphan.down.sql", "no matching up file")


def test_a_file_name_that_is_not_utf8_is_refused_by_name(sqlite_project: Project) -> None:
    write_raw(sqlite_project, b"001_caf\xe9.py", UP.format(n=1))
    line = assert_clean_error(sqlite_project.cli("status"), 2, "001_caf")
    assert "UTF-8" in line
    assert_clean_error(sqlite_project.cli("upgrade"), 2, "001_caf")
    assert not (sqlite_project.root / "app.db").exists()


ARABIC_ONE_NAME = "\u0661_arabic_one.py"


def test_a_version_in_non_ascii_digits_is_refused(sqlite_project: Project) -> None:
    write_raw(sqlite_project, ARABIC_ONE_NAME, UP.format(n=1))
    assert_clean_error(sqlite_project.cli("status"), 2, ARABIC_ONE_NAME)


def test_a_refused_file_name_with_a_newline_stays_on_one_line(sqlite_project: Project) -> None:
    write_raw(sqlite_project, "bad\nname.py", UP.format(n=1))
    assert_clean_error(sqlite_project.cli("status"), 2, "bad")


def test_new_after_the_largest_version_is_refused(sqlite_project: Project) -> None:
    write_raw(sqlite_project, "9223372036854775807_max.py", UP.format(n=1))
    result = sqlite_project.cli("new", "next")
    assert_clean_error(result, 2, "9223372036854775807")
    assert sorted(p.name for p in sqlite_project.migrations.iterdir()) == ["9223372036854775807_max.py"]

