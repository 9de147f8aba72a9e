"""What the command prints: -v/-q anywhere, click's usage errors in one line, init's next steps, durations,
no escape codes off a terminal or with NO_COLOR (https://no-color.org), colour on a terminal otherwise."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ptyrun import on_a_pty

from conftest import Project, write_config

CREATE = "def up(db):\n    db.execute('CREATE TABLE t (id INTEGER)')\n\ndef down(db):\n    db.execute('DROP TABLE t')\n"
SLOW = "import time\n\ndef up(db):\n    time.sleep(1.05)\n    db.execute('CREATE TABLE s (id INTEGER)')\n"


@pytest.mark.parametrize("args", [["-v", "status"], ["status", "-v"], ["status", "--verbose"]])
def test_verbose_before_or_after_the_subcommand_shows_the_traceback(sqlite_project: Project, args: list[str]) -> None:
    (sqlite_project.root / "migrator.toml").write_text("backends = 3\n")
    result = sqlite_project.cli(*args)
    assert result.code == 2
    assert "Traceback (most recent call last)" in result.err
    assert result.err.strip().splitlines()[-1].startswith("error: ")


@pytest.mark.parametrize("args", [["-q", "upgrade"], ["upgrade", "-q"], ["upgrade", "--quiet"]])
def test_quiet_before_or_after_the_subcommand_prints_no_progress(sqlite_project: Project, args: list[str]) -> None:
    sqlite_project.write("001_t.py", CREATE)
    result = sqlite_project.cli(*args)
    assert result.code == 0, result.err
    assert result.out == "" and result.err == ""
    assert "up to date" in sqlite_project.cli("status").out


def test_quiet_still_prints_what_a_dry_run_would_do(sqlite_project: Project) -> None:
    sqlite_project.write("001_t.py", CREATE)
    result = sqlite_project.cli("upgrade", "--dry-run", "-q")
    assert result.code == 0 and result.out == "db: would apply 001_t\n"


@pytest.mark.parametrize("args", [["-v", "upgrade", "-q"], ["upgrade", "-q", "-v"], ["-q", "-v", "status"]])
def test_verbose_and_quiet_together_are_a_usage_error(sqlite_project: Project, args: list[str]) -> None:
    result = sqlite_project.cli(*args)
    assert result.code == 2
    (line,) = result.err.splitlines()
    assert line.startswith("error: -v (--verbose) and -q (--quiet) do not go together (see 'migrator "), line


@pytest.mark.parametrize(("args", "says"), [
    (["upgrade", "--frob"], "error: No such option '--frob'."),
    (["new"], "error: Missing argument 'NAME'."),
    (["upgrade", "--jobs", "zero"], "error: Invalid value for '--jobs' / '-j': 'zero' is not a valid integer"),
    (["stauts"], "error: No such command 'stauts'. Did you mean 'status'?"),
    (["history", "extra"], "error: Got unexpected extra argument (extra)"),
])
def test_click_usage_errors_are_one_migrator_line_and_exit_2(sqlite_project: Project, args: list[str],
                                                             says: str) -> None:
    result = sqlite_project.cli(*args)
    assert result.code == 2
    (line,) = result.err.splitlines()
    assert line.startswith(says), line
    assert line.endswith("--help')") and "Usage:" not in result.err and result.out == ""


def test_a_suggested_option_is_kept_in_the_one_line(sqlite_project: Project) -> None:
    result = sqlite_project.cli("upgrade", "--dry-rn")
    assert result.code == 2
    assert "Did you mean '--dry-run'?" in result.err, result.err
    assert "(see 'migrator upgrade --help')" in result.err


def test_init_prints_the_next_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = Project(tmp_path, "", capsys).cli("init")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[:2] == [f"created {tmp_path / 'migrator.toml'}", f"created {tmp_path / 'migrations' / 'sqlite'}"]
    steps = "\n".join(lines[2:])
    assert lines[2] == "next steps:"
    for what in ("edit migrator.toml", "migrator new create_users", "--sql", "--table", "migrator upgrade",
                 "migrator status", "unedited template"):
        assert what in steps


def test_init_quiet_prints_only_what_it_created(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = Project(tmp_path, "", capsys).cli("init", "-q")
    assert result.code == 0 and "next steps" not in result.out and result.out.count("created ") == 2


def test_a_step_over_a_second_is_shown_in_seconds_below_in_ms(sqlite_project: Project) -> None:
    sqlite_project.write("001_t.py", CREATE)
    sqlite_project.write("002_slow.py", SLOW)
    result = sqlite_project.cli("upgrade")
    assert result.code == 0, result.err
    fast, slow = (line for line in result.out.splitlines() if line.startswith("db: applied "))
    assert fast.startswith("db: applied 001_t (") and fast.endswith(" ms)")
    assert slow.startswith("db: applied 002_slow (1.") and slow.endswith(" s)")
    history = sqlite_project.cli("history").out
    assert "took" in history and " ms " in history and re.search(r" [1-9]\.[0-9] s ", history), history


def _on_a_pty(args: list[str], cwd: Path, **env: str) -> str:
    return on_a_pty(args, cwd, columns=120, timeout=120, **env)


def _pending_project(root: Path) -> Path:
    (root / "migrations" / "db").mkdir(parents=True)
    write_config(root, "sqlite:///app.db")
    (root / "migrations" / "db" / "001_t.py").write_text(CREATE)
    return root


def test_status_on_a_terminal_is_styled(tmp_path: Path) -> None:
    text = _on_a_pty(["status"], _pending_project(tmp_path))
    assert "\x1b[1m" in text and "1 pending" in text


@pytest.mark.parametrize("args", [["status"], ["upgrade"], ["history"], ["new", "second"]])
def test_no_color_on_a_terminal_prints_no_style_code(tmp_path: Path, args: list[str]) -> None:
    text = _on_a_pty(args, _pending_project(tmp_path), NO_COLOR="1")
    assert "\x1b[" not in text, repr(text)


@pytest.mark.parametrize("args", [["status"], ["upgrade"], ["history"]])
def test_off_a_terminal_nothing_is_styled(tmp_path: Path, args: list[str]) -> None:
    root = _pending_project(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    proc = subprocess.run([sys.executable, "-m", "migrator", *args], cwd=root, capture_output=True, text=True,
                          env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout + proc.stderr and proc.stdout
