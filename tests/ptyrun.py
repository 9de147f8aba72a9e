"""Run the real ``migrator`` CLI on a pseudo-terminal (what a user sees in a terminal)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path


def on_a_pty(args: list[str], cwd: Path, *, columns: int = 160, timeout: float = 300, **env: str) -> str:
    """Run ``migrator ARGS`` with stdout and stderr on a pseudo-terminal; everything it wrote (it must exit 0)."""
    master, slave = pty.openpty()
    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TERM", "COLUMNS")}
    environ.update(TERM="xterm-256color", COLUMNS=str(columns), **env)
    proc = subprocess.Popen([sys.executable, "-m", "migrator", *args], cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=slave, stderr=slave, env=environ)
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the pty
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(timeout=timeout) == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")
