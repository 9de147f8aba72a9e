"""Turn events and results into terminal output (rich) or stable JSON. Used by the CLI only."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from migrator.events import (
    BackendProgress,
    BackupTaken,
    Event,
    LineSkipped,
    MigrationDone,
    MigrationFailedEvent,
    MigrationProgress,
    MigrationStarted,
    PlanReady,
    SeedDone,
    SeedsReady,
)
from migrator.model import ISSUE_INTERRUPTED, AppliedMigration, Direction, InterruptedStep, Issue, Migration, Status
from migrator.progress import Activity, RowsProgress, format_duration

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

JSON_SCHEMA_VERSION = 1


def _verb(direction: Direction, done: bool = False) -> str:
    if direction is Direction.UP:
        return "applied" if done else "applying"
    return "rolled back" if done else "rolling back"


class EventRenderer:
    """Listener for the runner: bars and spinners on a terminal, plain lines otherwise; nothing when ``quiet``.

    On a terminal a run of several migrations shows a bar of migrations, and a long step shows its own line: a
    bar with rows, rows/s and ETA for a :class:`~migrator.progress.RowsProgress`, a spinner with the elapsed time
    for an :class:`~migrator.progress.Activity` (until the migration's next line). Off a terminal the same steps
    print plain lines, a rows line every few seconds (the *notable* ones).
    """

    def __init__(self, console: Console, *, progress_bar: bool | None = None, quiet: bool = False) -> None:
        self.console = console
        # asked once: rich's is_terminal reads several environment variables on every call (per output line)
        self._terminal = console.is_terminal
        self.use_bar = self._terminal if progress_bar is None else progress_bar
        self.quiet = quiet
        self._progress: Progress | None = None
        self._task: TaskID | None = None                      # the plan's bar of migrations
        self._planned = (0, 0)                                # the plan's bar: (done, of)
        self._steps: dict[tuple[str, str], tuple[TaskID, bool]] = {}  # (backend, migration) -> (its line, rows?)

    def _line(self, text: str, style: str | None = None, *, result: bool = False) -> None:
        """One output line: rich on a terminal; a plain write otherwise (2,000 lines cost ms, not 180 ms).

        ``quiet`` drops every line but a ``result`` (what a dry run would do: the answer the command was asked for).
        """
        if self.quiet and not result:
            return
        if self._terminal:
            self.console.print(text, style=style, markup=False, highlight=False)
        else:
            file = self.console.file
            file.write(text + "\n")
            file.flush()

    def _advance(self) -> None:
        if self._progress is not None and self._task is not None:
            done, count = self._planned[0] + 1, self._planned[1]
            self._planned = (done, count)
            self._progress.update(self._task, completed=done, detail=f"{done}/{count} migrations")

    def __call__(self, event: Event) -> None:
        if isinstance(event, PlanReady):
            self._plan(event)
        elif isinstance(event, BackendProgress):
            self._line(f"{event.backend}: {event.message}")
        elif isinstance(event, BackupTaken):
            self._line(f"{event.backend}: backup at {event.location}")
        elif isinstance(event, MigrationStarted):
            if self._progress is not None and self._task is not None:
                self._progress.update(self._task, description=f"{event.backend}: {event.migration.label}")
            else:
                self._line(f"{event.backend}: {_verb(event.direction)} {event.migration.label}")
        elif isinstance(event, MigrationProgress):
            self._step_progress(event)
        elif isinstance(event, MigrationDone):
            self._end_step(event.backend, event.migration)
            self._advance()
            self._line(f"{event.backend}: {_verb(event.direction, True)} {event.migration.label} "
                       f"({format_duration(event.duration_ms / 1000)})")
        elif isinstance(event, MigrationFailedEvent):
            self._end_step(event.backend, event.migration)
            self._advance()
            self._line(f"{event.backend}: failed {event.migration.label}", style="red")
        elif isinstance(event, LineSkipped):
            self._line(f"{event.backend}: skipped {event.line}: {event.reason}")
        elif isinstance(event, SeedsReady):
            self._seeds(event)
        elif isinstance(event, SeedDone):
            self._line(f"{event.backend}: seeded {event.seed} ({event.detail})")

    def _seeds(self, event: SeedsReady) -> None:
        if not event.seeds:
            self._line(f"{event.backend}: no seeds")
        elif event.dry_run:
            for label in event.seeds:
                self._line(f"{event.backend}: would seed {label}")

    def _step_progress(self, event: MigrationProgress) -> None:
        message, key = event.message, (event.backend, event.migration.label)
        text = f"{event.backend}: {event.migration.label}: {message}"
        if self.quiet:
            return
        if not isinstance(message, RowsProgress | Activity) or not self.use_bar:
            self._end_step(event.backend, event.migration)
            if not isinstance(message, RowsProgress) or message.notable:
                self._line(text)
            return
        if isinstance(message, Activity):
            self._end_step(event.backend, event.migration)
            self._line(text)
            progress = self._live()
            self._steps[key] = (progress.add_task(f"{event.backend}: {event.migration.label}: {message}",
                                                  total=None, detail=""), False)
            progress.refresh()
            return
        progress = self._live()
        detail = f"{message.done:,}/{message.total:,} rows, {message.rate:,.0f} rows/s" + (
            f", ETA {format_duration(message.eta_s)}" if message.eta_s is not None else "")
        task, rows = self._steps.get(key, (None, False))
        if task is None or not rows:
            self._end_step(event.backend, event.migration)
            task = progress.add_task(f"{event.backend}: {event.migration.label}: {message.action}",
                                     total=max(message.total, 1), detail=detail)
            self._steps[key] = (task, True)
        progress.update(task, completed=message.done, total=max(message.total, 1), detail=detail, refresh=True)
        if message.final:
            self._end_step(event.backend, event.migration)
            self._line(text)

    def _live(self) -> Progress:
        """The live display of bars and spinners (rich.progress imported here, only when one is shown)."""
        if self._progress is None:
            from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), BarColumn(),
                                      TextColumn("{task.fields[detail]}", markup=False), TimeElapsedColumn(),
                                      console=self.console, transient=True)
            self._progress.start()
        return self._progress

    def _end_step(self, backend: str, migration: Migration) -> None:
        """The migration's long step is over: its bar or spinner goes (the display too when nothing is left)."""
        step = self._steps.pop((backend, migration.label), None)
        if step is None or self._progress is None:
            return
        self._progress.remove_task(step[0])
        if self._task is None and not self._steps:
            self.close()

    def _plan(self, event: PlanReady) -> None:
        self.close()
        count = len(event.migrations)
        if event.dry_run:
            verb = "would apply" if event.direction is Direction.UP else "would roll back"
            if not event.migrations:
                self._line(f"{event.backend}: nothing to do", result=True)
            for migration in event.migrations:
                self._line(f"{event.backend}: {verb} {migration.label}", result=True)
            return
        if not count:
            self._line(f"{event.backend}: up to date" if event.direction is Direction.UP
                       else f"{event.backend}: nothing to roll back")
            return
        if self.use_bar and count > 1 and not self.quiet:
            self._planned = (0, count)
            self._task = self._live().add_task(event.backend, total=count, detail=f"0/{count} migrations")

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        self._task = None
        self._steps.clear()


def _iso(record: AppliedMigration) -> str | None:
    return record.applied_at.isoformat() if record.applied_at else None


def issue_json(issue: Issue) -> dict[str, Any]:
    return {"kind": issue.kind, "message": issue.message, "line": issue.line, "version": issue.version}


def interrupted_json(step: InterruptedStep) -> dict[str, Any]:
    return {"line": step.line, "version": step.version, "name": step.name, "direction": step.direction.value,
            "state": "running" if step.running else "interrupted",
            "started_at": step.started_at.isoformat() if step.started_at else None, "host": step.host,
            "pid": step.pid, "error": step.error, "settled_by": step.settled_by, "message": step.message}


def status_json(status: Status) -> str:
    """The documented ``status --json`` shape (see README, "JSON output")."""
    backends = []
    for backend in status.backends:
        backends.append({
            "name": backend.backend,
            "type": backend.type,
            "location": backend.location,
            "pending": backend.pending_count,
            "lines": [{
                "line": line.line,
                "current": line.current,
                "latest": line.latest,
                "applied": [r.version for r in line.applied],
                "baseline": max((r.version for r in line.applied if r.baseline), default=None),
                "pending": [{"version": m.version, "name": m.name, "file": m.path.name} for m in line.pending],
            } for line in backend.lines],
            "issues": [issue_json(i) for i in backend.issues],
            "waiting": [{
                "line": w.migration.line, "version": w.migration.version, "name": w.migration.name,
                "file": w.migration.path.name,
                "requires": {"backend": w.requirement.backend, "line": w.requirement.line,
                             "version": w.requirement.version},
                "current": w.current,
            } for w in backend.waiting],
            "interrupted": [interrupted_json(step) for step in backend.interrupted],
        })
    return json.dumps({"schema": JSON_SCHEMA_VERSION, "backends": backends}, indent=2)


def history_json(histories: Mapping[str, Iterable[AppliedMigration]]) -> str:
    """The documented ``history --json`` shape."""
    backends = []
    for name, records in histories.items():
        backends.append({"name": name, "history": [{
            "line": r.line, "version": r.version, "name": r.name, "checksum": r.checksum,
            "applied_at": _iso(r), "duration_ms": r.duration_ms,
            **{k: v for k, v in r.extra.items() if isinstance(v, str | int | float | bool) or v is None},
        } for r in records]})
    return json.dumps({"schema": JSON_SCHEMA_VERSION, "backends": backends}, indent=2)


def plain_console(*, stderr: bool = False) -> Console:
    """The CLI's console: user text (names, descriptions, paths, messages) is printed as it is, never as
    rich markup (``[red]``, ``[/]``) or emoji codes (``:smile:``), on a terminal and off it."""
    no_color = os.environ.get("NO_COLOR", "") != ""  # https://no-color.org: no style codes at all, not just no hue
    return Console(stderr=stderr, highlight=False, markup=False, emoji=False, soft_wrap=True,
                   color_system=None if no_color else "auto")


def _text(value: str, style: str = "") -> Text:
    return Text(value, style=style, no_wrap=False)


def print_status(console: Console, status: Status) -> None:
    for backend in status.backends:
        console.print(Text.assemble((backend.backend, "bold"), f" ({backend.type}) {backend.location}"),
                      highlight=False)
        per_table = backend.per_table_lines or any(line.line for line in backend.lines)
        table = Table(box=None, pad_edge=False, show_header=True)
        if per_table:
            table.add_column("table")
        table.add_column("current", justify="right")
        table.add_column("latest", justify="right")
        table.add_column("state")
        if not backend.lines:
            console.print(_text("  no migrations"))
        for line in backend.lines:
            if line.pending:
                state = f"{len(line.pending)} pending: " + ", ".join(
                    m.path.name if not m.line else f"v{m.version} {m.name}" for m in line.pending[:3])
                if len(line.pending) > 3:
                    state += ", ..."
            else:
                state = "up to date"
            row = [_text(str(line.current)), _text(str(line.latest)), _text(state)]
            table.add_row(*([_text(line.line)] if per_table else []), *row)
        if backend.lines:
            console.print(table)
        for step in backend.interrupted:  # the interrupted issues say the same: printed once, here
            kind = ("running", "cyan") if step.running else ("interrupted", "red")
            console.print(Text.assemble("  ", kind, f": {step.message}"), highlight=False)
        for issue in backend.issues:
            if issue.kind != ISSUE_INTERRUPTED:
                console.print(Text.assemble("  ", (issue.kind, "yellow"), f": {issue.message}"), highlight=False)
        for wait in backend.waiting:
            name = wait.migration.label if wait.migration.line else wait.migration.path.name
            console.print(Text.assemble("  ", ("waiting", "cyan"), f": {name} requires {wait.requirement.label} "
                                        f"(now at {wait.current})"), highlight=False)


def print_history(console: Console, histories: Mapping[str, list[AppliedMigration]]) -> None:
    for name, records in histories.items():
        console.print(_text(name, "bold"))
        if not records:
            console.print(_text("  nothing applied"))
            continue
        table = Table(box=None, pad_edge=False)
        for column in ("applied at", "table", "version", "name", "took", "checksum"):
            table.add_column(column)
        for r in records:
            cells = (_iso(r) or "", r.line, str(r.version), r.name,
                     "" if r.duration_ms is None else format_duration(r.duration_ms / 1000), (r.checksum or "")[:12])
            table.add_row(*(_text(cell) for cell in cells))
        console.print(table)


def print_issues(console: Console, issues: Mapping[str, list[Issue]]) -> int:
    count = 0
    for name, items in issues.items():
        for issue in items:
            console.print(_text(f"{name}: {issue.kind}: {issue.message}"), highlight=False)
            count += 1
    return count


def print_line(console: Console, text: str) -> None:
    """One line of user-derived text (a path, a name), printed literally."""
    console.print(_text(text), highlight=False)
