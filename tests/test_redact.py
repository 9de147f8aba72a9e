"""Passwords never reach output: masking URLs and scrubbing driver messages."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from migrator.redact import mask_url, scrub, secrets_in


def test_password_in_url_is_masked() -> None:
    assert mask_url("postgresql://app:s3cret@db:5432/app") == "postgresql://app:***@db:5432/app"


def test_url_without_password_is_unchanged() -> None:
    assert mask_url("sqlite:////tmp/app.db") == "sqlite:////tmp/app.db"


def test_secret_query_parameters_are_masked() -> None:
    assert "hunter2" not in mask_url("postgresql://h/db?user=a&password=hunter2&sslmode=require")


def test_scrub_removes_secrets_echoed_by_a_driver() -> None:
    url = "postgresql://app:pa55word@db/app"
    message = 'connection to "db" failed for user app with password pa55word'
    assert "pa55word" not in scrub(message, secrets_in(url))


@given(st.text(alphabet=st.characters(blacklist_categories=("Z", "C"), blacklist_characters="@/:?#&=%"),
               min_size=1, max_size=30))
def test_any_password_is_masked(password: str) -> None:
    assert mask_url(f"postgresql://user:{password}@host/db") == "postgresql://user:***@host/db"
