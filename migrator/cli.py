"""The ``migrator`` command: parse arguments, call the API, render. No logic lives here."""

from __future__ import annotations

import contextlib
import re
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from migrator import render
from migrator.api import Migrator
from migrator.errors import EXIT_FAILED, EXIT_USAGE, MigratorError, UsageError
from migrator.redact import scrub, secrets_in
from migrator.scaffold import init_project

F = TypeVar("F", bound=Callable[..., Any])
EXIT_INTERRUPTED = 130
_STEPS_BACK = re.compile(r"-[0-9]+", re.ASCII)
NEXT_STEPS = (
    "next steps:",
    "  1. edit migrator.toml: set the database url",
    "     (LanceDB: uncomment [backends.vectors] and create its folder migrations/lancedb)",
    "  2. migrator new create_users     (--sql: .up.sql/.down.sql files; LanceDB: --backend vectors --table T)",
    "  3. write the migration in the file it created (an unedited template refuses to run)",
    "  4. migrator upgrade, then migrator status",
)
# click 8.2 raises this for a group run without a command (8.1 prints the help itself and exits 0)
_NO_ARGS_IS_HELP: tuple[type[Exception], ...] = tuple(
    e for e in [getattr(click.exceptions, "NoArgsIsHelpError", None)] if isinstance(e, type))
_CONTROL = {i: f"\\x{i:02x}" for i in (*range(0x20), 0x7F)} | {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): " "}


class State:
    def __init__(self, config: str | None, verbose: bool, quiet: bool = False) -> None:
        self.config_path = config
        self.verbose = verbose
        self.quiet = quiet
        self.out = render.plain_console()
        self.err = render.plain_console(stderr=True)
        self.renderer = render.EventRenderer(self.out, quiet=quiet)
        self.secrets: list[str] = []

    def set_verbosity(self, *, verbose: bool = False, quiet: bool = False) -> None:
        """``-v`` / ``-q``, before the subcommand or after it: the same meaning; both at once is a usage error."""
        if (self.verbose or verbose) and (self.quiet or quiet):
            raise click.UsageError("-v (--verbose) and -q (--quiet) do not go together")
        self.verbose = self.verbose or verbose
        self.quiet = self.renderer.quiet = self.quiet or quiet

    def migrator(self) -> Migrator:
        m = Migrator.from_config(self.config_path, listener=self.renderer)
        self.secrets = [s for cfg in m.config.backends.values() for s in secrets_in(cfg.location)]
        return m


class StepsBack(click.Command):
    """``rollback -1``: a lone ``-N`` is the TARGET argument (steps back), not an unknown short option."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" not in args:
            valued = {o for p in self.params if isinstance(p, click.Option) and not p.is_flag for o in p.opts}
            for index, arg in enumerate(args):
                if _STEPS_BACK.fullmatch(arg) and (index == 0 or args[index - 1] not in valued):
                    args = [*args[:index], *args[index + 1:], "--", arg]
                    break
        return super().parse_args(ctx, args)


def _verbosity(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and isinstance(ctx.obj, State):
        ctx.obj.set_verbosity(**{str(param.name): True})


VERBOSE_HELP = "Show tracebacks on errors."
QUIET_HELP = "Print no progress (results and errors only)."


class Group(click.Group):
    """Every subcommand takes ``-v`` and ``-q`` too (``migrator upgrade -v``), meaning what they mean before it."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        cmd.params.extend([
            click.Option(["--verbose", "-v"], is_flag=True, expose_value=False, callback=_verbosity, help=VERBOSE_HELP),
            click.Option(["--quiet", "-q"], is_flag=True, expose_value=False, callback=_verbosity, help=QUIET_HELP),
        ])
        super().add_command(cmd, name)


def backend_option(f: F) -> F:
    return click.option("--backend", "-b", metavar="NAME", help="Backend name from the config.")(f)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "-c", metavar="PATH", envvar="MIGRATOR_CONFIG",
              help="Config file (default: migrator.toml or [tool.migrator] in pyproject.toml, found upwards).")
@click.option("--verbose", "-v", is_flag=True, help=VERBOSE_HELP)
@click.option("--quiet", "-q", is_flag=True, help=QUIET_HELP)
@click.version_option(package_name="migrator")
@click.pass_context
def cli(ctx: click.Context, config: str | None, verbose: bool, quiet: bool) -> None:
    """Migrations for a SQL database and a LanceDB database, from one config."""
    ctx.obj = State(config, False)
    ctx.obj.set_verbosity(verbose=verbose, quiet=quiet)


@cli.command()
@click.pass_obj
def init(state: State) -> None:
    """Scaffold migrator.toml and a migrations folder here."""
    for path in init_project(Path.cwd()):
        render.print_line(state.out, f"created {path}")
    if not state.quiet:
        for line in NEXT_STEPS:
            render.print_line(state.out, line)


@cli.command()
@click.argument("name")
@backend_option
@click.option("--sql", is_flag=True, help="Write NNN_name.up.sql and .down.sql instead of a Python file.")
@click.option("--table", metavar="T", help="LanceDB: the table the migration belongs to.")
@click.option("--autogenerate", is_flag=True,
              help="Write what brings the database to its models (target_metadata; LanceDB: target_schemas, "
                   "one file per changed table).")
@click.pass_obj
def new(state: State, name: str, backend: str | None, sql: bool, table: str | None, autogenerate: bool) -> None:
    """Create the next migration file."""
    if autogenerate:
        if sql or table:
            raise UsageError("--autogenerate writes a Python migration: drop --sql and --table")
        result = state.migrator().autogenerate(name, backend)
        if not result.changes:
            render.print_line(state.out, f"{result.backend}: no changes: the database matches the models; "
                                         "nothing written")
        for change in result.changes:
            render.print_line(state.out, f"{result.backend}: {change}")
        if result.changes and not result.paths:
            render.print_line(state.out, f"{result.backend}: nothing written: migrator never drops a table or an "
                                         "index by itself")
        for path in result.paths:
            render.print_line(state.out, f"created {path}")
        return
    for path in state.migrator().new(name, backend, sql=sql, table=table):
        render.print_line(state.out, f"created {path}")


@cli.command()
@backend_option
@click.option("--to", "to", metavar="V|+N", help="Stop at version V (inclusive), or after the next N migrations.")
@click.option("--table", metavar="T", help="LanceDB: only this table's line.")
@click.option("--dry-run", is_flag=True, help="Show what would run; change nothing.")
@click.option("--allow-changed", is_flag=True, help="Run even though applied files were edited or removed.")
@click.option("--allow-out-of-order", is_flag=True, help="Apply pending versions older than the newest applied.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), help="LanceDB: tables migrated in parallel.")
@click.option("--fail-fast", is_flag=True,
              help="Stop every line (LanceDB tables, other backends) at the first failure.")
@click.option("--backup/--no-backup", default=None, help="Back up before the first migration (config: backup).")
@click.option("--sql", is_flag=True, help="SQL: print the SQL that would run instead of running it.")
@click.option("--from", "start", type=click.IntRange(min=0), metavar="V",
              help="With --sql: start from version V, without connecting to the database.")
@click.pass_obj
def upgrade(state: State, backend: str | None, to: str | None, table: str | None, dry_run: bool,
            allow_changed: bool, allow_out_of_order: bool, jobs: int | None, fail_fast: bool,
            backup: bool | None, sql: bool, start: int | None) -> None:
    """Apply pending migrations (every backend unless --backend)."""
    if sql or start is not None:
        _refuse_with_sql(sql, start, table=table, dry_run=dry_run, backup=backup, jobs=jobs, fail_fast=fail_fast)
        click.echo(state.migrator().upgrade_sql(backend, to=to, start=start, allow_changed=allow_changed,
                                                allow_out_of_order=allow_out_of_order), nl=False)
        return
    try:
        state.migrator().upgrade(backend, to=to, table=table, dry_run=dry_run, allow_changed=allow_changed,
                                 allow_out_of_order=allow_out_of_order, jobs=jobs, fail_fast=fail_fast,
                                 backup=backup)
    finally:
        state.renderer.close()


@cli.command(cls=StepsBack)
@click.argument("target", metavar="TARGET|-N")
@backend_option
@click.option("--table", metavar="T", help="LanceDB: only this table's line.")
@click.option("--dry-run", is_flag=True, help="Show what would be undone; change nothing.")
@click.option("--backup/--no-backup", default=None, help="Back up before the first step (config: backup).")
@click.option("--cascade", is_flag=True,
              help="First roll back other backends' applied migrations that require what this undoes.")
@click.option("--sql", is_flag=True, help="SQL: print the SQL that would run instead of running it.")
@click.option("--from", "start", type=click.IntRange(min=0), metavar="V",
              help="With --sql: start from version V, without connecting to the database.")
@click.pass_obj
def rollback(state: State, target: str, backend: str | None, table: str | None, dry_run: bool,
             backup: bool | None, cascade: bool, sql: bool, start: int | None) -> None:
    """Undo, newest first, every applied version above TARGET (0 undoes all); -N undoes the N newest."""
    if sql or start is not None:
        _refuse_with_sql(sql, start, table=table, dry_run=dry_run, backup=backup, cascade=cascade)
        click.echo(state.migrator().rollback_sql(target, backend, start=start), nl=False)
        return
    try:
        state.migrator().rollback(target, backend, table=table, dry_run=dry_run, backup=backup, cascade=cascade)
    finally:
        state.renderer.close()


@cli.command()
@backend_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (stable; see README).")
@click.pass_obj
def status(state: State, backend: str | None, as_json: bool) -> None:
    """Current and pending versions of every line."""
    result = state.migrator().status(backend)
    if as_json:
        click.echo(render.status_json(result))
    else:
        render.print_status(state.out, result)


@cli.command()
@backend_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (stable; see README).")
@click.pass_obj
def history(state: State, backend: str | None, as_json: bool) -> None:
    """Every applied migration, oldest first."""
    result = state.migrator().history(backend)
    if as_json:
        click.echo(render.history_json(result))
    else:
        render.print_history(state.out, result)


@cli.command()
@backend_option
@click.option("--repair", is_flag=True, help="Record the new checksums of applied files edited on purpose.")
@click.pass_obj
def validate(state: State, backend: str | None, repair: bool) -> None:
    """Report edited or missing applied files and out-of-order versions (exit 1 if any)."""
    if repair:
        for name, files in state.migrator().repair(backend).items():
            for file in files:
                render.print_line(state.out, f"{name}: recorded the new checksum of {file}")
    found = render.print_issues(state.out, state.migrator().validate(backend))
    if found:
        raise click.exceptions.Exit(EXIT_FAILED)
    state.out.print("valid")


@cli.command()
@backend_option
@click.pass_obj
def check(state: State, backend: str | None) -> None:
    """For CI: exit 1 if anything is pending or invalid."""
    result = state.migrator().check(backend)
    render.print_issues(state.out, result.issues)
    for b in result.status.backends:
        for line in b.lines:
            for migration in line.pending:
                where = f"{line.line} " if line.line else ""
                render.print_line(
                    state.out, f"{b.backend}: pending: {where}{migration.path.name} (version {migration.version})")
    for name, changes in result.models.items():
        for change in changes:
            render.print_line(state.out, f"{name}: models differ from the database: {change}")
    if not result.ok:
        raise click.exceptions.Exit(EXIT_FAILED)
    state.out.print("up to date")


@cli.command()
@click.argument("version", type=click.IntRange(min=0))
@backend_option
@click.option("--table", metavar="T", help="LanceDB: the table whose line to stamp.")
@click.pass_obj
def stamp(state: State, version: int, backend: str | None, table: str | None) -> None:
    """Record every version up to VERSION as applied without running anything (baseline)."""
    cleared = state.migrator().stamp(version, backend, table=table)
    for step in cleared:
        render.print_line(state.out, f"cleared the interrupted mark of {step}")
    state.out.print(f"stamped at version {version}")


@cli.command()
@backend_option
@click.option("--dry-run", is_flag=True, help="List the seeds that would run; change nothing.")
@click.pass_obj
def seed(state: State, backend: str | None, dry_run: bool) -> None:
    """Load seed data (the seeds folder of every backend that has one) after migrations."""
    state.migrator().seed(backend, dry_run=dry_run)


def _refuse_with_sql(sql: bool, start: int | None, **others: object) -> None:
    """``--from`` needs ``--sql``; ``--sql`` runs nothing, so the options of a run do not go with it."""
    if not sql:
        raise UsageError("--from V goes with --sql (the script from version V)")
    given = [f"--{name.replace('_', '-')}" for name, value in others.items() if value not in (None, False)]
    if given:
        raise UsageError(f"--sql prints the SQL and runs nothing: {given[0]} does not go with it")


def main(argv: list[str] | None = None) -> int:
    """Entry point: one line on stderr and an exit code for every MigratorError."""
    ctx: click.Context | None = None
    try:
        ctx = cli.make_context("migrator", list(sys.argv[1:] if argv is None else argv))
        with ctx:
            cli.invoke(ctx)
        return 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except _NO_ARGS_IS_HELP as exc:  # `migrator` alone (click >= 8.2): the help, as click shows it
        assert isinstance(exc, click.ClickException)
        exc.show()
        return EXIT_USAGE
    except click.ClickException as exc:  # click's usage errors: migrator's one line, not click's usage block
        where = exc.ctx.command_path if isinstance(exc, click.UsageError) and exc.ctx is not None else "migrator"
        hint = "" if where == "migrator" and not isinstance(exc, click.UsageError) else f" (see '{where} --help')"
        _report(None, exc, f"{exc.format_message()}{hint}")  # no traceback: the command line is the cause
        return EXIT_USAGE
    except click.Abort:
        click.echo("aborted", err=True)
        return EXIT_FAILED
    except MigratorError as exc:
        _report(_state(ctx), exc, str(exc))
        return exc.exit_code
    except KeyboardInterrupt as exc:
        _report(_state(ctx), exc, "interrupted; the migration in progress was rolled back (SQL) or will be "
                                  "finished or undone by the next upgrade (LanceDB)")
        return EXIT_INTERRUPTED
    except Exception as exc:
        _report(_state(ctx), exc, f"unexpected error: {type(exc).__name__}: {exc}")
        return EXIT_FAILED


def _state(ctx: click.Context | None) -> State | None:
    return ctx.obj if ctx is not None and isinstance(ctx.obj, State) else None


def _report(state: State | None, exc: BaseException, message: str) -> None:
    secrets = state.secrets if state else []
    if state and state.verbose:
        click.echo(scrub("".join(traceback.format_exception(exc)), secrets), err=True)
    with contextlib.suppress(OSError):  # stderr closed too: the exit code is all that is left
        click.echo(f"error: {scrub(message, secrets).translate(_CONTROL)}", err=True)
