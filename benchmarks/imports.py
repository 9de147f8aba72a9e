"""What a command imports, from ``python -X importtime`` (``PYTHONPROFILEIMPORTTIME=1`` for console scripts)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import clean_env, process_output

HEAVY = ("lancedb", "pyarrow", "lance")
_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")


def import_profile(cmd: Sequence[str | Path], cwd: Path | None = None, top: int = 12) -> dict[str, Any]:
    """Run ``cmd`` with import timing on: total import time, heavy packages seen, the costliest top-level imports."""
    done = process_output(cmd, cwd=cwd, env=clean_env(PYTHONPROFILEIMPORTTIME="1"))
    modules: list[tuple[str, int, int, int]] = []  # name, self us, cumulative us, depth
    for line in done.stderr.splitlines():
        m = _LINE.match(line)
        if m:
            modules.append((m[4], int(m[1]), int(m[2]), len(m[3]) // 2))
    heavy = sorted({name.split(".")[0] for name, *_ in modules if name.split(".")[0] in HEAVY})
    roots = [(name, cum) for name, _self, cum, depth in modules if depth == 0]
    roots.sort(key=lambda x: -x[1])
    return {
        "command": " ".join(str(c) for c in cmd),
        "exit_code": done.returncode,
        "modules": len(modules),
        "total_ms": sum(s for _, s, _, _ in modules) / 1000,
        "heavy": heavy,
        "top_ms": {name: round(cum / 1000, 1) for name, cum in roots[:top]},
    }
