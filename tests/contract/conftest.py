"""The ``harness`` fixture: each contract case runs once per adapter set-up.

Set-ups: a SQLite file, the embedded PostgreSQL (tests/pg.py), LanceDB on a local folder, LanceDB on S3
(moto, tests/s3.py). A new adapter adds its harness (``harness.py``) and one entry here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import Harness, LanceFolderHarness, LanceS3Harness, PostgresHarness, SqliteHarness


def _sqlite(request: pytest.FixtureRequest, root: Path) -> Harness:
    return SqliteHarness(root)


def _postgresql(request: pytest.FixtureRequest, root: Path) -> Harness:
    url: str = request.getfixturevalue("postgres_url")
    return PostgresHarness(root / "migrations", url)


def _lancedb_folder(request: pytest.FixtureRequest, root: Path) -> Harness:
    pytest.importorskip("lancedb")
    return LanceFolderHarness(root)


def _lancedb_s3(request: pytest.FixtureRequest, root: Path) -> Harness:
    pytest.importorskip("lancedb")
    bucket = request.getfixturevalue("s3_bucket")
    return LanceS3Harness(root, bucket.endpoint, bucket.name, bucket.storage_options)


SETUPS = [
    pytest.param(_sqlite, id="sqlite"),
    pytest.param(_postgresql, id="postgresql", marks=pytest.mark.postgres),
    pytest.param(_lancedb_folder, id="lancedb-folder", marks=pytest.mark.lancedb),
    pytest.param(_lancedb_s3, id="lancedb-s3", marks=pytest.mark.lancedb),
]


@pytest.fixture(params=SETUPS)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    made: Harness = request.param(request, tmp_path)
    yield made
    made.close_all()
