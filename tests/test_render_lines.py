"""The CLI's event renderer off a terminal: plain lines, and no per-line work that does not change per line."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from migrator.events import MigrationDone, MigrationStarted, PlanReady
from migrator.model import Direction, Migration
from migrator.render import EventRenderer


class CountingConsole(Console):
    asked = 0

    @property
    def is_terminal(self) -> bool:
        CountingConsole.asked += 1
        return False


def test_the_renderer_asks_whether_stdout_is_a_terminal_once_not_per_line() -> None:
    """rich reads several environment variables each time it is asked: 2,000 times for W(1000) before."""
    out = io.StringIO()
    console = CountingConsole(file=out)
    CountingConsole.asked = 0  # rich's own start-up asks too
    renderer = EventRenderer(console)
    migrations = [Migration(version=v, name=f"m{v}", path=Path(f"{v:03d}_m{v}.up.sql"),
                            checksum="0" * 64) for v in range(1, 51)]
    renderer(PlanReady("db", Direction.UP, migrations, dry_run=False))
    for migration in migrations:
        renderer(MigrationStarted("db", migration, Direction.UP))
        renderer(MigrationDone("db", migration, Direction.UP, 3))

    assert CountingConsole.asked == 1
    lines = out.getvalue().splitlines()
    assert len(lines) == 100 and lines[-1] == f"db: applied {migrations[-1].label} (3 ms)"
