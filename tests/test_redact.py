"""Passwords never reach output: masking URLs and scrubbing driver messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import Project, write_config
from migrator.redact import mask_url, scrub, secrets_in


def test_password_in_url_is_masked() -> None:
    assert mask_url("postgresql://app:s3cret@db:5432/app") == "postgresql://app:***@db:5432/app"


def test_url_without_password_is_unchanged() -> None:
    assert mask_url("sqlite:////tmp/app.db") == "sqlite:////tmp/app.db"


def test_secret_query_parameters_are_masked() -> None:
    assert "hunter2" not in mask_url("postgresql://h/db?user=a&password=hunter2&sslmode=require")


def test_scrub_removes_secrets_echoed_by_a_driver() -> None:
    url = "postgresql://app:pa55word@db/app"
    message = 'connection to "db" failed: invalid connection string "host=db user=app password=pa55word"'
    assert scrub(message, secrets_in(url)) == (
        'connection to "db" failed: invalid connection string "host=db user=app password=***"')


@given(st.text(alphabet=st.characters(blacklist_categories=("Z", "C"), blacklist_characters="@/:?#&=%"),
               min_size=1, max_size=30))
def test_any_password_is_masked(password: str) -> None:
    assert mask_url(f"postgresql://user:{password}@host/db") == "postgresql://user:***@host/db"


# --------------------------------------------------------------------------- masking by position, not by text

USER, HOST, PORT, DATABASE, SCHEME = "postgres", "127.0.0.1", 5432, "app", "postgresql+psycopg"
# spots where a password's text may occur without being the password: scheme, host, port, user, database, words
LOOKALIKES = ["postgres", "postgresql", "psycopg", "ql", "+", "127", "0", "1", ".", "5432", "54", "app", "a",
              "host", "password", "failed", "for", "user", "connection", "FATAL", "server", "to", "at", "refused",
              ":", "@", "/", "//", "*", "***", " ", "'", '"', "=", "%40", "Some", "authentication", "does not"]

TEMPLATES = [
    '(psycopg.OperationalError) connection failed: connection to server at "{host}" ({host}), port {port} failed: '
    'FATAL:  password authentication failed for user "{user}"',
    "{name}: cannot open {url}: {host}:{port} refused the connection",
    '{name}: cannot open {masked}: database "{db}" does not exist',
    "invalid connection string: host={host} port={port} dbname={db} user={user} password={conninfo} sslmode=prefer",
    "connect() got {{'host': '{host}', 'password': {pyrepr}, 'user': '{user}', 'dbname': '{db}'}}",
    'role "{user}" does not exist; tried {scheme}://{user}@{host}:{port}/{db}',
]


def _conninfo(password: str) -> str:
    """How libpq writes a value in a connection string: bare, or single-quoted with backslash escapes."""
    if password and not any(c.isspace() or c in "'\\" for c in password):
        return password
    return "'" + password.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _message(template: str, password: str, *, masked: bool) -> tuple[str, list[str]]:
    import sqlalchemy as sa

    url = sa.engine.URL.create(SCHEME, username=USER, password=password, host=HOST, port=PORT, database=DATABASE)
    raw = url.render_as_string(hide_password=False)
    conninfo = _conninfo(password)
    quoted = conninfo != password
    values = {
        "name": "db", "host": HOST, "port": PORT, "user": USER, "db": DATABASE, "scheme": SCHEME,
        "masked": url.render_as_string(hide_password=True),
        "url": url.render_as_string(hide_password=True) if masked else raw,
        "conninfo": ("'***'" if quoted else "***") if masked else conninfo,
        "pyrepr": repr(password)[0] + "***" + repr(password)[0] if masked else repr(password),
    }
    return template.format(**values), [*secrets_in(raw), password]  # the secrets the SQL adapter collects


@settings(max_examples=400, deadline=None)
@given(password=st.sampled_from(LOOKALIKES) | st.text(min_size=1, max_size=24)
       | st.builds(lambda a, b: a + b, st.sampled_from(LOOKALIKES), st.sampled_from(LOOKALIKES)),
       template=st.sampled_from(TEMPLATES))
def test_only_the_password_spots_are_masked_and_nothing_else_changes(password: str, template: str) -> None:
    message, secrets = _message(template, password, masked=False)
    expected, _ = _message(template, password, masked=True)
    assert scrub(message, secrets) == expected


@pytest.mark.parametrize(("password", "message"), [
    ("postgres", "cannot open postgresql+psycopg://app:***@db/app: refused"),
    ("127", "cannot open postgresql://app:***@127.0.0.1:5432/app: refused"),
    ("failed", 'FATAL:  password authentication failed for user "app"'),
])
def test_text_equal_to_the_password_outside_its_spot_is_left_alone(password: str, message: str) -> None:
    assert scrub(message, [password]) == message


def test_an_unknown_url_password_is_still_masked() -> None:
    assert scrub("also tried mysql://root:hunter2@other/db", []) == "also tried mysql://root:***@other/db"


def test_an_object_store_secret_in_debug_output_is_masked() -> None:
    text = 'AmazonS3Builder { access_key_id: Some("AKIA"), secret_access_key: Some("s/3cr et"), region: Some("x") }'
    assert scrub(text, ["s/3cr et"]) == (
        'AmazonS3Builder { access_key_id: Some("***"), secret_access_key: Some("***"), region: Some("x") }')


@pytest.mark.parametrize("password", ["postgres", "127", "1", "app", "failed"])
def test_cli_error_masks_the_password_field_and_keeps_scheme_host_and_words(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], password: str) -> None:
    (tmp_path / "migrations" / "db").mkdir(parents=True)
    write_config(tmp_path, f"postgresql+psycopg://app:{password}@127.0.0.1:1/app")  # nothing listens on port 1
    result = Project(tmp_path, "", capsys).cli("status")
    assert result.code == 2
    assert "postgresql+psycopg://app:***@127.0.0.1:1/app" in result.err
    assert result.err.count("***") == 1  # the password field, and nothing else
