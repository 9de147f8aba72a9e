"""pytest plugin: a real S3 API (moto's server) on 127.0.0.1 for the test session, one fresh bucket per test.

moto answers S3 requests from a thread of the test process. Its conditional
puts (``If-None-Match: *``, ``If-Match``) check and then write in two steps, so
two requests racing through its threaded server could both pass the check;
real S3 decides each conditional put atomically. The server here handles one
request at a time, which makes the fake exactly as atomic as the real thing
(Lance's own commits and migrator's lock both depend on it).

Fixtures:

- ``s3_endpoint`` (session): ``http://127.0.0.1:PORT``.
- ``s3_bucket`` (function): an :class:`S3Bucket` — a new empty bucket and the
  LanceDB ``storage_options`` that reach it (the secret key is
  :data:`SECRET`, so tests can check that it is never printed).
  :func:`new_bucket` makes one for fixtures of a wider scope.

Load with ``pytest_plugins = ["s3"]`` (``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

SECRET = "s3cr3t-value"


@dataclass(frozen=True)
class S3Bucket:
    endpoint: str
    name: str

    def uri(self, prefix: str = "app") -> str:
        return f"s3://{self.name}/{prefix}"

    @property
    def storage_options(self) -> dict[str, str]:
        return {"aws_access_key_id": "test", "aws_secret_access_key": SECRET, "aws_endpoint": self.endpoint,
                "aws_region": "us-east-1", "allow_http": "true"}


class _OneAtATime:
    """A WSGI app that lets one request through at a time (see the module docstring)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self.lock:
            return list(self.app(environ, start_response))


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    pytest.importorskip("moto.server")
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    app = _OneAtATime(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="moto-s3", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join()


def new_bucket(endpoint: str) -> S3Bucket:
    """Create an empty bucket with a fresh name on the server at ``endpoint``."""
    boto3 = pytest.importorskip("boto3")
    name = f"bucket-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key=SECRET,
                 region_name="us-east-1").create_bucket(Bucket=name)
    return S3Bucket(endpoint, name)


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> S3Bucket:
    return new_bucket(s3_endpoint)
