"""The floor for the SQL workload: what any correct migration tool must at least do, with stdlib sqlite3.

``python floor_sqlite.py up|down|status|validate`` from a folder holding ``migrations/``
(``NNNNN_name.up.sql`` / ``.down.sql``) and ``app.db``. Like migrator it reads
each file, hashes it, and applies it in its own transaction together with its
bookkeeping row (``BEGIN IMMEDIATE`` ... ``COMMIT``), so a crash leaves the
database at a version it really reached. No locking, no validation, no output
beyond one ``BENCH_JSON`` line with the in-process time.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import time

START = time.perf_counter()
BOOKKEEPING = """CREATE TABLE IF NOT EXISTS migrations (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  version INTEGER UNIQUE NOT NULL,
  name TEXT NOT NULL,
  applied_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  checksum TEXT,
  duration_ms INTEGER
)"""


def statements(path: str) -> tuple[list[str], str]:
    with open(path, "rb") as f:
        data = f.read()
    return [s for s in data.decode().split(";") if s.strip()], hashlib.sha256(data).hexdigest()


def known_versions(files: list[str]) -> set[int]:
    return {int(n.split("_", 1)[0]) for n in files if n.endswith(".up.sql")}


def main(mode: str) -> None:
    files = sorted(os.listdir("migrations"))
    conn = sqlite3.connect("app.db", isolation_level=None)
    conn.execute(BOOKKEEPING)
    applied = {v for (v,) in conn.execute("SELECT version FROM migrations")}
    if mode == "up":
        for name in files:
            if not name.endswith(".up.sql"):
                continue
            version, title = name[: -len(".up.sql")].split("_", 1)
            if int(version) in applied:
                continue
            stmts, digest = statements(os.path.join("migrations", name))
            began = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            for stmt in stmts:
                conn.execute(stmt)
            conn.execute("INSERT INTO migrations (version, name, checksum, duration_ms) VALUES (?, ?, ?, ?)",
                         (int(version), title, digest, int((time.perf_counter() - began) * 1000)))
            conn.execute("COMMIT")
    elif mode == "down":
        downs = {int(n.split("_", 1)[0]): n for n in files if n.endswith(".down.sql")}
        for version in sorted(applied, reverse=True):
            stmts, _ = statements(os.path.join("migrations", downs[version]))
            conn.execute("BEGIN IMMEDIATE")
            for stmt in stmts:
                conn.execute(stmt)
            conn.execute("DELETE FROM migrations WHERE version = ?", (version,))
            conn.execute("COMMIT")
    elif mode == "validate":
        # every file read and hashed, compared with the checksum stored when it was applied
        stored = dict(conn.execute("SELECT version, checksum FROM migrations"))
        changed = 0
        for name in files:
            if name.endswith(".sql"):  # the .down.sql files too: a tool that checksums both reads both
                _, digest = statements(os.path.join("migrations", name))
                version = int(name.split("_", 1)[0])
                changed += name.endswith(".up.sql") and version in stored and stored[version] != digest
        print(f"{changed} changed, {len(set(stored) - known_versions(files))} missing")
    elif mode == "status":
        print(f"current {max(applied, default=0)}, pending {len(known_versions(files) - applied)}")
    else:
        raise SystemExit(f"usage: {sys.argv[0]} up|down|status|validate")
    conn.close()
    print("BENCH_JSON " + json.dumps({"in_process_s": time.perf_counter() - START}))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "up")
