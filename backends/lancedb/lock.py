"""The cross-process migration lock of a LanceDB database, on a local folder or on object storage.

Local folder
    ``fcntl.flock`` on ``<uri>/.migrator-lock``. The kernel drops it when the
    holder dies (``kill -9`` included), so there is nothing to expire.

Object storage (``s3://``, ``gs://``, ``az://`` ...)
    A *leased* lock object ``<uri>/.migrator-lock`` written only with
    conditional puts (S3 ``If-None-Match: *`` / ``If-Match: <etag>``, GCS
    generation match, Azure ``If-Match``), through obstore, the Python face of
    the same ``object_store`` crate Lance writes with:

    - acquire: create the object if absent; or, if its body says ``free``,
      replace it if its etag is still the one just read. Exactly one of any
      number of racing processes wins either put.
    - hold: a daemon thread rewrites the object every ``lease / 3`` seconds
      (``If-Match`` its own last etag): the heartbeat.
    - a holder that died (``kill -9``, lost machine) stops beating. A waiter
      that sees the *same etag* for a whole lease takes the lock over with a
      conditional put. Only etags and the waiter's own monotonic clock are
      compared, so clocks of different machines never need to agree.
    - release: rewrite the object as ``free`` (``If-Match`` again; no
      conditional delete is needed, which not every store has).
    - a holder whose heartbeat finds another etag has lost the lock (it was
      paused for longer than the lease): :meth:`Lease.check` raises
      :class:`LockLost` before the next migration starts, and on release.

The adapter wraps its whole run in one of these (``LanceBackend.lock``).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from migrator.errors import BackendUnavailable, LockLost, LockTimeout
from migrator.extras import install_command

from ..locking import Waiting, holder_line, read_holder, tell_waiting, try_flock, wait_for, write_holder

__all__ = ["DEFAULT_LEASE", "LOCK_NAME", "Lease", "folder_lock", "object_lock", "object_store_for"]

LOCK_NAME = ".migrator-lock"
DEFAULT_LEASE = 30.0

# obstore takes object_store's configuration keys, as Lance does (S3 keys under their ``aws_`` names only, GCS and
# Azure keys under their short names). Lance's spellings and aliases are mapped onto those; keys that neither knows
# (Lance's own, such as ``download_retry_count``) do not concern the lock and are left out.
_CLIENT_KEYS = frozenset({
    "allow_http", "allow_invalid_certificates", "connect_timeout", "default_content_type", "http1_only",
    "http2_keep_alive_interval", "http2_keep_alive_timeout", "http2_keep_alive_while_idle", "http2_only",
    "pool_idle_timeout", "pool_max_idle_per_host", "proxy_url", "proxy_ca_certificate", "proxy_excludes",
    "randomize_addresses", "read_timeout", "timeout", "user_agent",
})
_STORE_KEYS: dict[str, tuple[tuple[str, ...], str, frozenset[str], dict[str, str]]] = {
    "s3": (("aws_",), "aws_", frozenset({
        "access_key_id", "bucket", "checksum_algorithm", "conditional_put", "container_credentials_relative_uri",
        "container_credentials_full_uri", "container_authorization_token_file", "default_region", "endpoint",
        "imdsv1_fallback", "metadata_endpoint", "region", "request_payer", "role_arn", "role_session_name",
        "s3_express", "secret_access_key", "server_side_encryption", "session_token", "skip_signature",
        "sse_bucket_key_enabled", "sse_customer_key_base64", "sse_kms_key_id", "sts_endpoint", "unsigned_payload",
        "virtual_hosted_style_request", "web_identity_token_file",
    }), {"endpoint_url": "endpoint", "token": "session_token", "bucket_name": "bucket"}),
    "gs": (("google_",), "", frozenset({
        "service_account", "service_account_key", "base_url", "bearer_token", "bucket", "application_credentials",
        "skip_signature",
    }), {"service_account_path": "service_account", "bucket_name": "bucket"}),
    "az": (("azure_storage_", "azure_"), "", frozenset({
        "account_name", "account_key", "client_id", "client_secret", "tenant_id", "authority_host", "sas_key",
        "token", "use_emulator", "use_fabric_endpoint", "endpoint", "msi_endpoint", "object_id", "msi_resource_id",
        "federated_token_file", "use_azure_cli", "skip_signature", "container_name",
    }), {"storage_account_name": "account_name", "storage_account_key": "account_key",
         "access_key": "account_key"}),
}
_SCHEMES = {"s3": "s3", "s3a": "s3", "s3+ddb": "s3", "gs": "gs", "gcs": "gs", "az": "az", "azure": "az",
            "abfs": "az", "abfss": "az", "adl": "az"}


class Lease:
    """A held migration lock. :meth:`check` raises :class:`LockLost` once another process has taken it over."""

    def __init__(self, where: str) -> None:
        self.where = where
        self._lost: str | None = None

    def lose(self, why: str) -> None:
        self._lost = why

    @property
    def lost(self) -> bool:
        return self._lost is not None

    def check(self, when: str = "stopped before the next migration") -> None:
        if self._lost is not None:
            raise LockLost(f"{self.where}: lost the migration lock ({self._lost}); {when}. "
                           "Run `migrator validate` once the other process is done.")


# -- local folder ------------------------------------------------------------------------------------------------


@contextmanager
def folder_lock(folder: Path, timeout: float, where: str, waiting: Waiting | None = None) -> Iterator[Lease]:
    """``fcntl.flock`` on ``folder/.migrator-lock``, polled (:func:`~migrator.backends.locking.wait_for`) until
    ``timeout`` seconds have passed; the holder writes who it is into the file, a waiter that times out names it."""
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

    def timed_out() -> LockTimeout:
        holder = read_holder(path)
        return LockTimeout(f"{where}: another process holds the migration lock {path}"
                           f"{f' ({holder})' if holder else ''} for more than {timeout:g} s")

    try:
        wait_for(lambda: try_flock(fd), timeout, timed_out, waiting=tell_waiting(waiting, lambda: read_holder(path),
                                                                                 timeout))
        write_holder(fd)
        try:
            yield Lease(where)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# -- object storage ----------------------------------------------------------------------------------------------


def object_store_for(uri: str, storage_options: Mapping[str, str], where: str = "") -> Any:
    """An obstore store rooted at the database ``uri``, configured from Lance's ``storage_options``."""
    scheme, _, rest = uri.partition("://")
    kind = _SCHEMES.get(scheme.lower())
    prefix = f"{where}: " if where else ""
    if kind is None:
        raise BackendUnavailable(f"{prefix}cannot take a migration lock on {scheme}:// storage "
                                 "(it works on local folders, s3://, gs:// and az://)")
    try:
        from obstore.store import from_url
    except ImportError as exc:
        raise BackendUnavailable(f"{prefix}the migration lock on object storage needs obstore "
                                 f"(`{install_command('lancedb')}`): {exc}") from exc
    namespaces, emit, accepted, aliases = _STORE_KEYS[kind]
    config: dict[str, str] = {}
    client: dict[str, str] = {}
    for key, value in storage_options.items():
        name = key.lower()
        if name in _CLIENT_KEYS:
            client[name] = value
            continue
        base = next((name[len(n):] for n in namespaces if name.startswith(n)), name)
        base = aliases.get(base, base)
        if base in accepted:
            config[emit + base] = value
    url = f"{scheme if kind == 'az' else kind}://{rest}"  # s3a/s3+ddb are plain S3 here, gcs is gs
    retry = {"max_retries": 3, "retry_timeout": timedelta(seconds=10),
             "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=2)}}
    return from_url(url, config=config or None, client_options=client or None,  # type: ignore[call-overload]
                    retry_config=retry)


@dataclass(frozen=True)
class _Seen:
    etag: str
    version: str | None
    body: dict[str, Any]

    @property
    def mode(self) -> dict[str, str]:
        """The conditional-put mode that replaces exactly this object version."""
        mode = {"e_tag": self.etag}
        if self.version is not None:
            mode["version"] = self.version
        return mode


class _LockObject:
    """The lock object and the three conditional operations on it."""

    def __init__(self, store: Any, where: str, lease: float, scrub: Callable[[str], str]) -> None:
        import obstore
        from obstore.exceptions import AlreadyExistsError, NotFoundError, PreconditionError

        self._obstore = obstore
        self._conflicts: tuple[type[BaseException], ...] = (AlreadyExistsError, PreconditionError, NotFoundError)
        self.store = store
        self.where = where
        self.lease = lease
        self.scrub = scrub
        self.owner = uuid.uuid4().hex
        self.beats = 0

    def body(self, state: str) -> bytes:
        self.beats += 1
        return json.dumps({"state": state, "owner": self.owner, "holder": holder_line() if state == "held" else "",
                           "lease": self.lease, "beat": self.beats}).encode()

    def create(self) -> tuple[bool, _Seen | None]:
        """Put the object if absent. (True, the object written) or (False, the object found, None if gone again)."""
        return self._put(self.body("held"), "create")

    def replace(self, seen: _Seen, state: str) -> tuple[bool, _Seen | None]:
        """Put over exactly ``seen``. (True, the object written) or (False, the object found instead)."""
        return self._put(self.body(state), seen.mode)

    def read(self) -> _Seen | None:
        try:
            got = self._obstore.get(self.store, LOCK_NAME)
            raw = bytes(got.bytes())
        except self._conflicts:
            return None
        except Exception as exc:
            raise self._unavailable("read", exc) from exc
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        meta = got.meta
        return _Seen(str(meta["e_tag"]), meta.get("version"), body if isinstance(body, dict) else {})

    def _put(self, payload: bytes, mode: Any) -> tuple[bool, _Seen | None]:
        try:
            result = self._obstore.put(self.store, LOCK_NAME, payload, mode=mode)
        except self._conflicts:
            # A put that reached the store but whose answer was lost is retried by the client and then fails its
            # own condition: the object holds exactly this payload (owner and beat count are unique) if so.
            seen = self.read()
            return seen is not None and seen.body == json.loads(payload), seen
        except Exception as exc:
            raise self._unavailable("write", exc) from exc
        etag = result.get("e_tag")
        if not etag:
            raise BackendUnavailable(f"{self.where}: the object store returned no etag for {LOCK_NAME}; "
                                     "it cannot hold a migration lock")
        return True, _Seen(str(etag), result.get("version"), json.loads(payload))

    def _unavailable(self, verb: str, exc: BaseException) -> BackendUnavailable:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return BackendUnavailable(self.scrub(f"{self.where}: cannot {verb} the migration lock {LOCK_NAME}: {first}"))


@contextmanager
def object_lock(store: Any, timeout: float, where: str, lease: float = DEFAULT_LEASE, *,
                scrub: Callable[[str], str] = str, waiting: Waiting | None = None) -> Iterator[Lease]:
    """Hold the leased lock object of ``store`` for the ``with`` block (see the module docstring)."""
    lock = _LockObject(store, where, lease, scrub)
    mine = _acquire(lock, timeout, waiting)
    held = Lease(where)
    stop = threading.Event()

    def beat() -> None:
        nonlocal mine
        while not stop.wait(lease / 3):
            try:
                renewed, now = lock.replace(mine, "held")
            except BackendUnavailable:
                continue  # a transient store error: the next beat tries again within the lease
            if not renewed or now is None:
                held.lose(f"another process took {LOCK_NAME} over after {lease:g} s without a heartbeat")
                return
            mine = now

    thread = threading.Thread(target=beat, name="migrator-lock-heartbeat", daemon=True)
    thread.start()
    failed = False
    try:
        yield held
    except BaseException:
        failed = True
        raise
    finally:
        stop.set()
        thread.join()  # no beat runs from here on: ``mine`` is the object as this process last wrote it
        if not held.lost:
            try:
                if not lock.replace(mine, "free")[0]:
                    held.lose(f"another process took {LOCK_NAME} over")
            except BackendUnavailable:
                pass  # left held: waiters take it over after one lease
        if not failed:
            held.check("it happened while the last migration ran")


def _acquire(lock: _LockObject, timeout: float, waiting: Waiting | None = None) -> _Seen:
    """Take the lock object: create it, or replace it when it says ``free`` or its etag stood still for a lease."""
    mine: list[_Seen] = []
    last: _Seen | None = None               # the holder's object as last read, for the timeout message
    watched: tuple[str, float] | None = None  # (etag, when this process first saw it)

    def try_once() -> bool:
        nonlocal last, watched
        created, seen = lock.create()
        if created and seen is not None:
            mine.append(seen)
            return True
        if seen is None:
            return False  # deleted between the two requests: create again
        last = seen
        now = time.monotonic()
        if watched is None or watched[0] != seen.etag:
            watched = (seen.etag, now)
        if seen.body.get("state") == "free" or now - watched[1] >= _number(seen.body.get("lease"), lock.lease):
            taken, got = lock.replace(seen, "held")
            if taken and got is not None:
                mine.append(got)
                return True
            watched = None
        return False

    def holder() -> str:
        return str((last.body if last is not None else {}).get("holder") or "")

    def timed_out() -> LockTimeout:
        body = last.body if last is not None else {}
        holder = str(body.get("holder") or "holder unknown")
        lease = _number(body.get("lease"), lock.lease)
        return LockTimeout(
            f"{lock.where}: another process holds the migration lock {LOCK_NAME} ({holder}) for more than "
            f"{timeout:g} s; if that process died, the lock is free {lease:g} s after its last heartbeat")

    wait_for(try_once, max(0.0, timeout), timed_out, pause=0.05, longest=1.0,
             waiting=tell_waiting(waiting, holder, timeout))
    return mine[0]


def _number(value: Any, default: float) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else default
