"""SQL workload W(N): N migrations, each creating one table and an index on it; down drops both.

Generated four ways, each in its own folder with its own SQLite file (default
journal mode, default synchronous):

- ``alembic/``: a project made by ``alembic init`` (its template env.py and
  alembic.ini, unchanged but for the URL), one revision file per migration
  using ``op.create_table`` / ``op.create_index``, a linear chain;
- ``mig-py/``: migrator Python files (``def up(db): db.execute(...)`` x2, ``def down``);
- ``mig-sql/``: migrator plain-SQL files (``NNNN_name.up.sql`` / ``.down.sql``);
- ``floor/``: the same .up.sql/.down.sql files applied by ``floor_sqlite.py``, a
  stdlib-only script: one transaction per migration with its bookkeeping row.

Every tool runs as a whole process from its project folder, as a user would
(``migrator upgrade``, ``alembic upgrade head``, ``python floor_sqlite.py up``).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from harness import BIN, BenchError, Case, Contender, Ratio, Sample, clean_env, process_output, run_process

FLOOR_SCRIPT = Path(__file__).with_name("floor_sqlite.py")
TOOLS = ("migrator-py", "migrator-sql", "alembic", "floor")


def table_sql(i: int) -> tuple[str, str]:
    """(up, down) SQL of migration ``i``."""
    t = f"t{i:05d}"
    up = (f"CREATE TABLE {t} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, created_at TEXT);\n"
          f"CREATE INDEX ix_{t}_name ON {t} (name);\n")
    down = f"DROP INDEX ix_{t}_name;\nDROP TABLE {t};\n"
    return up, down


def _stem(i: int) -> str:
    return f"{i:05d}_create_t{i:05d}"


# -- generators ------------------------------------------------------------------------------------------------


def write_migrator_config(folder: Path, db: Path, migrations: str = "migrations") -> None:
    (folder / "migrator.toml").write_text(
        'default_backend = "db"\n\n[backends.db]\ntype = "sql"\n'
        f'url = "sqlite:///{db}"\nmigrations = "{migrations}"\n'
    )


def generate_migrator_py(folder: Path, n: int) -> None:
    mig = folder / "migrations"
    mig.mkdir(parents=True)
    for i in range(1, n + 1):
        up, down = table_sql(i)
        ups = "\n".join(f'    db.execute("{s.strip()}")' for s in up.split(";") if s.strip())
        downs = "\n".join(f'    db.execute("{s.strip()}")' for s in down.split(";") if s.strip())
        text = f'"""Create t{i:05d}."""\n\n\ndef up(db):\n{ups}\n\n\ndef down(db):\n{downs}\n'
        (mig / f"{_stem(i)}.py").write_text(text)
    write_migrator_config(folder, folder / "app.db")


def generate_sql_files(folder: Path, n: int) -> None:
    mig = folder / "migrations"
    mig.mkdir(parents=True)
    for i in range(1, n + 1):
        up, down = table_sql(i)
        (mig / f"{_stem(i)}.up.sql").write_text(up)
        (mig / f"{_stem(i)}.down.sql").write_text(down)


def generate_migrator_sql(folder: Path, n: int) -> None:
    generate_sql_files(folder, n)
    write_migrator_config(folder, folder / "app.db")


def generate_floor(folder: Path, n: int) -> None:
    generate_sql_files(folder, n)
    shutil.copy(FLOOR_SCRIPT, folder / "floor_sqlite.py")


ALEMBIC_REVISION = '''"""create t{i:05d}

Revision ID: {rev}
Revises: {down_rev}
"""
from alembic import op
import sqlalchemy as sa

revision = {rev!r}
down_revision = {down_rev!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "t{i:05d}",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Text()),
    )
    op.create_index("ix_t{i:05d}_name", "t{i:05d}", ["name"])


def downgrade() -> None:
    op.drop_index("ix_t{i:05d}_name", table_name="t{i:05d}")
    op.drop_table("t{i:05d}")
'''


def alembic_revision_id(i: int) -> str:
    return f"{i:012x}" if i else ""


def generate_alembic(folder: Path, n: int, *, transaction_per_migration: bool = False) -> None:
    """``alembic init`` (the generic template), the URL set, N revision files in a linear chain."""
    folder.mkdir(parents=True)
    done = process_output([BIN / "alembic", "init", "alembic"], cwd=folder, env=clean_env())
    if done.returncode != 0:
        raise BenchError(f"alembic init failed: {done.stderr.strip()}")
    ini = folder / "alembic.ini"
    lines = [f"sqlalchemy.url = sqlite:///{folder / 'app.db'}" if line.startswith("sqlalchemy.url") else line
             for line in ini.read_text().splitlines()]
    ini.write_text("\n".join(lines) + "\n")
    if transaction_per_migration:
        env_py = folder / "alembic" / "env.py"
        text = env_py.read_text()
        marker = "connection=connection, target_metadata=target_metadata"
        if marker not in text:
            raise BenchError("alembic's env.py template changed: cannot set transaction_per_migration")
        env_py.write_text(text.replace(marker, marker + ", transaction_per_migration=True"))
    versions = folder / "alembic" / "versions"
    for i in range(1, n + 1):
        rev, down_rev = alembic_revision_id(i), alembic_revision_id(i - 1) or None
        (versions / f"{rev}_create_t{i:05d}.py").write_text(ALEMBIC_REVISION.format(i=i, rev=rev, down_rev=down_rev))


# -- checks ----------------------------------------------------------------------------------------------------


def count_tables(db: Path) -> int:
    if not db.exists():
        return 0
    with closing(sqlite3.connect(db)) as conn:
        row = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name GLOB 't[0-9]*'").fetchone()
        return int(row[0])


def expect_tables(db: Path, n: int) -> Callable[[], None]:
    def check() -> None:
        found = count_tables(db)
        if found != n:
            raise BenchError(f"{db}: expected {n} migration tables, found {found}")
    return check


def remove_db(folder: Path) -> Callable[[], None]:
    def setup() -> None:
        for path in folder.glob("app.db*"):
            path.unlink()
    return setup


def restore_db(folder: Path, snapshot: Path) -> Callable[[], None]:
    def setup() -> None:
        remove_db(folder)()
        target = folder / "app.db"
        shutil.copyfile(snapshot, target)
        # flush the copy now: otherwise the timed run's first fsync pays for writing the whole file back
        with open(target, "rb+") as f:
            os.fsync(f.fileno())
    return setup


# -- the workload ----------------------------------------------------------------------------------------------


@dataclass
class Tool:
    name: str
    folder: Path
    up: list[str | Path]
    down: list[str | Path]
    status: list[str | Path]
    validate: list[str | Path] | None = None

    @property
    def db(self) -> Path:
        return self.folder / "app.db"

    def snapshot(self) -> Path:
        return self.folder / "applied.db.snapshot"


class SqlWorkload:
    """The four projects for one N, generated once; the cases reuse them."""

    def __init__(self, root: Path, n: int, tools: tuple[str, ...] = TOOLS, alembic_txn_per_migration: bool = False):
        self.root = root / f"sql-N{n}"
        self.n = n
        self.env = clean_env()
        if self.root.exists():
            shutil.rmtree(self.root)
        self.tools: dict[str, Tool] = {}
        migrator = BIN / "migrator"
        py = sys.executable
        for name in tools:
            folder = self.root / name
            if name == "migrator-py":
                generate_migrator_py(folder, n)
            elif name == "migrator-sql":
                generate_migrator_sql(folder, n)
            elif name == "floor":
                generate_floor(folder, n)
                self.tools[name] = Tool(name, folder, [py, "floor_sqlite.py", "up"], [py, "floor_sqlite.py", "down"],
                                        [py, "floor_sqlite.py", "status"], [py, "floor_sqlite.py", "validate"])
                continue
            elif name.startswith("alembic"):
                generate_alembic(folder, n, transaction_per_migration=name == "alembic-txn")
                alembic = BIN / "alembic"
                self.tools[name] = Tool(name, folder, [alembic, "upgrade", "head"], [alembic, "downgrade", "base"],
                                        [alembic, "current"])
                continue
            else:
                raise ValueError(name)
            self.tools[name] = Tool(name, folder, [migrator, "upgrade"], [migrator, "rollback", "0"],
                                    [migrator, "status"], [migrator, "validate"])

    def _run(self, tool: Tool, cmd: list[str | Path]) -> Callable[[], Sample]:
        return lambda: run_process(cmd, cwd=tool.folder, env=self.env)

    def ensure_applied(self, tool: Tool) -> None:
        """An applied database, made once per tool and kept as a snapshot to copy from."""
        if tool.snapshot().exists():
            return
        remove_db(tool.folder)()
        run_process(tool.up, cwd=tool.folder, env=self.env)
        expect_tables(tool.db, self.n)()
        shutil.copyfile(tool.db, tool.snapshot())

    def upgrade_case(self, repeat: int, names: tuple[str, ...]) -> Case:
        contenders = [Contender(t.name, self._run(t, t.up), setup=remove_db(t.folder),
                                check=expect_tables(t.db, self.n)) for t in self._pick(names)]
        return Case(f"sql.upgrade.N{self.n}", f"upgrade W({self.n}) from an empty SQLite file", contenders,
                    repeat=repeat, ratios=self._ratios(names), params={"n": self.n})

    def rollback_case(self, repeat: int, names: tuple[str, ...]) -> Case:
        tools = self._pick(names)
        contenders = [Contender(t.name, self._run(t, t.down), setup=restore_db(t.folder, t.snapshot()),
                                check=expect_tables(t.db, 0)) for t in tools]

        def prepare() -> None:
            for t in tools:
                self.ensure_applied(t)

        return Case(f"sql.rollback.N{self.n}", f"roll W({self.n}) all the way back", contenders, repeat=repeat,
                    ratios=self._ratios(names), params={"n": self.n}, prepare=prepare)

    def status_case(self, repeat: int, names: tuple[str, ...]) -> Case:
        tools = self._pick(names)
        contenders = [Contender(t.name, self._run(t, t.status)) for t in tools]

        def prepare() -> None:
            for t in tools:
                self.ensure_applied(t)
                restore_db(t.folder, t.snapshot())()

        return Case(f"sql.status.N{self.n}", f"status with {self.n} applied (alembic current)", contenders,
                    repeat=repeat, ratios=self._ratios(names), params={"n": self.n}, prepare=prepare)

    def validate_case(self, repeat: int, names: tuple[str, ...]) -> Case:
        tools = [t for t in self._pick(names) if t.validate]
        contenders = [Contender(t.name, self._run(t, t.validate or [])) for t in tools]

        def prepare() -> None:
            for t in tools:
                self.ensure_applied(t)
                restore_db(t.folder, t.snapshot())()

        ratios = [r for r in self._ratios(names) if r.denominator == "floor"]
        return Case(f"sql.validate.N{self.n}", f"validate with {self.n} applied", contenders, repeat=repeat,
                    ratios=ratios, params={"n": self.n}, prepare=prepare)

    def _pick(self, names: tuple[str, ...]) -> list[Tool]:
        return [self.tools[n] for n in names if n in self.tools]

    def _ratios(self, names: tuple[str, ...]) -> list[Ratio]:
        ratios = []
        for mig in ("migrator-py", "migrator-sql"):
            if mig not in names:
                continue
            ratios += [Ratio(mig, other) for other in ("floor", "alembic", "alembic-txn") if other in names]
        return ratios
