"""One harness per adapter set-up: how the contract suite makes a backend, writes migrations and reads user data.

A new adapter (MySQL, DuckDB) starts by adding a :class:`Harness` subclass here and a ``params`` entry in
``tests/contract/conftest.py``; every case in ``test_contract.py`` then runs against it.

Each harness describes its database by a JSON-able ``spec`` so that a child process (``child.py``: the lock
holder, the migration killed half way) opens exactly the same database with :func:`open_backend`.

Every set-up keeps one version line (``items``) whose user data is one table ``items`` of integer ids:

- ``write_ok(v)``: version 1 creates ``items`` holding id 1; a later version adds the id ``v``.
- ``write_failing(v)``: changes the schema (a column ``extra``) and the rows (deletes id 1), then raises.
- ``write_interruptible(v)``: not atomic (SQL: ``transactional = False``); deletes id 1, then, when the
  environment names a signal file (``CONTRACT_SIGNAL``), writes it and sleeps until it is killed.
- ``user_data()``: every user table with its columns and sorted rows (bookkeeping left out).
- ``version_rows()``: the version table exactly as a reader of the seed's shape sees it.
- ``footprint()``: what exists on the storage at all (files, objects, tables): a read must not change it.
"""

from __future__ import annotations

import json
import textwrap
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

from migrator.backends.base import Backend

SIGNAL_ENV = "CONTRACT_SIGNAL"
FAILURE = "contract: this migration fails after its changes"
LOCK_LEASE = 2.0  # object storage: a killed child's lock is taken over this long after its last heartbeat

Spec = dict[str, Any]


def open_backend(spec: Spec) -> Backend:
    """The backend a ``spec`` describes (in the test process and in its children alike)."""
    if spec["kind"] == "sql":
        from migrator.backends.sql import SqlBackend

        return SqlBackend("contract", spec["url"], Path(spec["migrations"]))
    from migrator.backends.lancedb import LanceBackend

    return LanceBackend("contract", spec["uri"], Path(spec["migrations"]), storage_options=spec["options"],
                        lock_timeout=30.0, lock_lease=LOCK_LEASE)


class Harness(ABC):
    """What the contract suite needs to know about one adapter set-up."""

    name: str
    line: str                     # the version line the migrations below are on ("" for one line per database)
    backs_up: bool                # backup() makes a real backup (else: UsageError naming the backend)

    def __init__(self, migrations: Path) -> None:
        self.migrations = migrations
        migrations.mkdir(parents=True, exist_ok=True)
        self._opened: list[Backend] = []

    # -- backends ---------------------------------------------------------------------------------------------

    @property
    @abstractmethod
    def spec(self) -> Spec: ...

    @property
    def secrets(self) -> list[str]:
        """What must never be printed: passwords, secret keys."""
        return []

    def backend(self) -> Backend:
        """A new backend object on this set-up's database (closed when the test ends)."""
        made = open_backend(self.spec)
        self._opened.append(made)
        return made

    def spec_json(self) -> str:
        return json.dumps(self.spec)

    def close_all(self) -> None:
        for made in self._opened:
            made.close()

    # -- migrations -------------------------------------------------------------------------------------------

    def _write(self, version: int, name: str, text: str) -> Path:
        path = self.migrations / f"{version:03d}_{name}.py"
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    @abstractmethod
    def write_ok(self, version: int) -> Path: ...

    @abstractmethod
    def write_failing(self, version: int) -> Path: ...

    @abstractmethod
    def write_interruptible(self, version: int) -> Path: ...

    # -- reading ----------------------------------------------------------------------------------------------

    @abstractmethod
    def user_data(self) -> dict[str, Any]: ...

    @abstractmethod
    def version_rows(self) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def footprint(self) -> Any: ...

    @abstractmethod
    def backup_data(self, where: str) -> dict[str, Any]:
        """The user data held by the backup ``backup()`` said is at ``where``."""


def _files(root: Path) -> list[str]:
    """Every path under ``root`` (``root`` itself marked when it does not exist)."""
    if not root.exists():
        return ["<absent>"]
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# -- SQL ----------------------------------------------------------------------------------------------------------


def _sql_read(url: str, read: Callable[[Any], Any]) -> Any:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return read(conn)
    finally:
        engine.dispose()


def _sql_user_data(url: str) -> dict[str, Any]:
    """Every table but the version table: its columns and its sorted rows."""
    import sqlalchemy as sa

    def read(conn: Any) -> dict[str, Any]:
        inspector = sa.inspect(conn)
        data: dict[str, Any] = {}
        for table in sorted(set(inspector.get_table_names()) - {"migrations"}):
            columns = [c["name"] for c in inspector.get_columns(table)]
            rows = sorted(tuple(r) for r in conn.exec_driver_sql(f'SELECT * FROM "{table}"').all())
            data[table] = (columns, rows)
        return data

    return dict(_sql_read(url, read))


class SqlHarness(Harness):
    line = ""
    backs_up = False

    def __init__(self, migrations: Path, url: str) -> None:
        super().__init__(migrations)
        self.url = url

    @property
    def spec(self) -> Spec:
        return {"kind": "sql", "url": self.url, "migrations": str(self.migrations)}

    @property
    def secrets(self) -> list[str]:
        import sqlalchemy as sa

        password = sa.make_url(self.url).password
        return [str(password)] if password else []

    def write_ok(self, version: int) -> Path:
        create = 'db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY)")' if version == 1 else "pass"
        return self._write(version, f"step{version}", f'''
            def up(db):
                {create}
                db.execute("INSERT INTO items (id) VALUES ({version})")


            def down(db):
                db.execute("DELETE FROM items WHERE id = {version}")
            ''')

    def write_failing(self, version: int) -> Path:
        return self._write(version, f"fails{version}", f'''
            def up(db):
                db.execute("ALTER TABLE items ADD COLUMN extra INTEGER")
                db.execute("DELETE FROM items WHERE id = 1")
                raise RuntimeError("{FAILURE}")
            ''')

    def write_interruptible(self, version: int) -> Path:
        return self._write(version, f"slow{version}", f'''
            import os
            import time
            from pathlib import Path

            transactional = False


            def up(db):
                db.execute("DELETE FROM items WHERE id = 1")
                if os.environ.get("{SIGNAL_ENV}"):
                    Path(os.environ["{SIGNAL_ENV}"]).write_text("in the step")
                    time.sleep(600)
            ''')

    def _read(self, read: Callable[[Any], Any]) -> Any:
        return _sql_read(self.url, read)

    def user_data(self) -> dict[str, Any]:
        return _sql_user_data(self.url)

    def version_rows(self) -> list[tuple[Any, ...]]:
        import sqlalchemy as sa

        def read(conn: Any) -> list[tuple[Any, ...]]:
            if "migrations" not in sa.inspect(conn).get_table_names():
                return []
            return [tuple(r) for r in conn.exec_driver_sql(
                "SELECT version, name, applied_at, checksum FROM migrations ORDER BY version").all()]

        return list(self._read(read))


class SqliteHarness(SqlHarness):
    name = "sqlite"
    backs_up = True

    def __init__(self, root: Path) -> None:
        self.folder = root / "data"  # not created: a read must not create it
        super().__init__(root / "migrations", f"sqlite:///{self.folder / 'app.db'}")

    def footprint(self) -> Any:
        return _files(self.folder)

    def backup_data(self, where: str) -> dict[str, Any]:
        return _sql_user_data(f"sqlite:///{where}")


class PostgresHarness(SqlHarness):
    name = "postgresql"

    def footprint(self) -> Any:
        return self._read(lambda conn: sorted(tuple(r) for r in conn.exec_driver_sql(
            "SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'").all()))

    def backup_data(self, where: str) -> dict[str, Any]:
        raise AssertionError("PostgreSQL refuses backup(): the operator's own backups apply")


# -- LanceDB ------------------------------------------------------------------------------------------------------

BOOKKEEPING = ("table_migrations", "table_migrations_history")


class LanceHarness(Harness):
    line = "items"
    backs_up = True

    def __init__(self, migrations: Path, uri: str, options: dict[str, str] | None = None) -> None:
        super().__init__(migrations)
        self.uri = uri
        self.options = options or {}

    @property
    def spec(self) -> Spec:
        return {"kind": "lancedb", "uri": self.uri, "options": self.options, "migrations": str(self.migrations)}

    @property
    def secrets(self) -> list[str]:
        return [v for k, v in self.options.items() if "secret" in k]

    def write_ok(self, version: int) -> Path:
        body = ('db.create_table("items", data=pa.table({"id": pa.array([1], pa.int64())}))' if version == 1 else
                f'db.open_table("items").add(pa.table({{"id": pa.array([{version}], pa.int64())}}))')
        return self._write(version, f"step{version}", f'''
            import pyarrow as pa
            from migrator.lancedb import migration


            @migration(table="items", version={version}, description="step {version}")
            def step(db):
                {body}
            ''')

    def write_failing(self, version: int) -> Path:
        # No append: the adapter keeps appended rows as an application's (backends/lancedb/undo.py).
        return self._write(version, f"fails{version}", f'''
            import pyarrow as pa
            from migrator.lancedb import migration


            @migration(table="items", version={version}, description="fails")
            def fails(db):
                items = db.open_table("items")
                items.add_columns(pa.field("extra", pa.int64()))
                items.delete("id = 1")
                raise RuntimeError("{FAILURE}")
            ''')

    def write_interruptible(self, version: int) -> Path:
        return self._write(version, f"slow{version}", f'''
            import os
            import time
            from pathlib import Path

            from migrator.lancedb import migration


            @migration(table="items", version={version}, description="slow")
            def slow(db):
                db.open_table("items").delete("id = 1")
                if os.environ.get("{SIGNAL_ENV}"):
                    Path(os.environ["{SIGNAL_ENV}"]).write_text("in the step")
                    time.sleep(600)
            ''')

    def _db(self) -> Any:
        import lancedb

        return lancedb.connect(self.uri, storage_options=self.options or None)

    @staticmethod
    def _table_data(table: Any) -> tuple[list[str], list[tuple[Any, ...]]]:
        data = table.to_arrow()
        return list(data.schema.names), sorted(tuple(r.values()) for r in data.to_pylist())

    def user_data(self) -> dict[str, Any]:
        db = self._db()
        names = sorted(set(db.list_tables().tables) - set(BOOKKEEPING))
        return {name: self._table_data(db.open_table(name)) for name in names}

    def version_rows(self) -> list[tuple[Any, ...]]:
        db = self._db()
        if "table_migrations" not in db.list_tables().tables:
            return []
        rows = db.open_table("table_migrations").to_arrow().to_pylist()
        return sorted((r["tableName"], r["currentVersion"], r["lastMigratedAt"]) for r in rows)

    def backup_data(self, where: str) -> dict[str, Any]:
        tag = where.split()[1]  # "tag <name> on N table(s) of <uri>"
        db = self._db()
        data = {}
        for name in sorted(set(db.list_tables().tables) - set(BOOKKEEPING)):
            table = db.open_table(name)
            table.checkout(tag)
            data[name] = self._table_data(table)
        return data


class LanceFolderHarness(LanceHarness):
    name = "lancedb-folder"

    def __init__(self, root: Path) -> None:
        self.folder = root / "lance" / "db"  # not created: a read must not create it
        super().__init__(root / "migrations", str(self.folder))

    def footprint(self) -> Any:
        return _files(self.folder.parent)


class LanceS3Harness(LanceHarness):
    name = "lancedb-s3"

    def __init__(self, root: Path, endpoint: str, bucket: str, options: dict[str, str]) -> None:
        self.endpoint = endpoint
        self.bucket = bucket
        super().__init__(root / "migrations", f"s3://{bucket}/app", options)

    def footprint(self) -> Any:
        import boto3

        client = boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.options["aws_access_key_id"],
                              aws_secret_access_key=self.options["aws_secret_access_key"], region_name="us-east-1")
        listed = client.list_objects_v2(Bucket=self.bucket)
        return sorted(item["Key"] for item in listed.get("Contents", []))
