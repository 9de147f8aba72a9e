"""The LanceDB adapter on object storage (S3 served by moto): same migrations, no lock file, secrets masked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lance_scripts.testlib import by_line, upgrade

from migrator.backends.lancedb import LanceBackend
from migrator.lancedb import table_stamp

pytestmark = pytest.mark.lancedb

DEMO = Path(__file__).resolve().parents[1] / "migrations" / "lancedb"
SECRET = "s3cr3t-value"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=url, aws_access_key_id="test", aws_secret_access_key=SECRET,
                 region_name="us-east-1").create_bucket(Bucket="vectors")
    yield url
    server.stop()


def test_the_demo_runs_on_s3(endpoint: str) -> None:
    import lancedb

    options = {"aws_access_key_id": "test", "aws_secret_access_key": SECRET, "aws_endpoint": endpoint,
               "aws_region": "us-east-1", "allow_http": "true"}
    b = LanceBackend("vectors", "s3://vectors/app", DEMO, storage_options=options)
    assert b.location == "s3://vectors/app" and b.local_path is None
    assert b.applied() == []
    upgrade(b)  # lock(): nothing to take on object storage, Lance's conditional commits guard each commit
    assert by_line(b.applied())["memos"] == [1, 2]
    assert upgrade(b) == []
    db = lancedb.connect("s3://vectors/app", storage_options=options)
    assert table_stamp(db, "memos") == 2
    assert "tags" in db.open_table("memos").schema.names
    assert SECRET not in repr(b) and SECRET in b._secrets  # scrubbed from messages
