"""The core stays light: SQL-only commands import neither lancedb nor pyarrow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import write_config

PROBE = """
import sys
from migrator.cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in ("lancedb", "pyarrow", "lance") if m in sys.modules)
print("HEAVY", heavy)
sys.exit(code)
"""


def run(args: list[str], cwd: Path) -> str:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_help_imports_no_adapter(tmp_path: Path) -> None:
    assert "HEAVY []" in run(["--help"], tmp_path)


def test_sql_status_imports_neither_lancedb_nor_pyarrow(tmp_path: Path) -> None:
    (tmp_path / "migrations" / "db").mkdir(parents=True)
    write_config(tmp_path, "sqlite:///app.db", '\n[backends.vec]\ntype = "lancedb"\nuri = "lance"\n'
                                                'migrations = "migrations/db"\n')
    assert "HEAVY []" in run(["status", "--backend", "db"], tmp_path)
