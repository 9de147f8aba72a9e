"""Run a docs/*.md page: every fenced block, in order, in one project folder.

What a page may hold, and what happens to it:

* ```` ```console ````: lines starting with ``$ `` are commands, run one by one by ``bash -c`` in the project
  folder with this venv's ``bin`` first on ``PATH`` (so ``migrator``, ``python`` and ``pytest`` are the ones under
  test), stderr merged into stdout as on a terminal. A command must exit 0: a page shows a failing exit code
  with ``; echo "exit code $?"`` and puts ``exit code 1`` in the expected output. The lines under a command are
  its expected output, compared loosely: each must match one line of the real output, in order (other lines
  may come between), whitespace runs count as one space, and ``...`` stands for any text.
* ```` ```python ````, ```` ```toml ````, ```` ```sql ````, ```` ```ini ````, ```` ```bash ````: a first line
  ``# file: PATH`` (``-- file: PATH`` in SQL) writes the rest of the block to PATH in the project (the
  annotation line itself is left out: a SQL file's own first line may matter). A python block without it is a
  script run with ``python -`` in the project folder; it must exit 0, and a ```` ```text ```` block after it
  holds its expected output.
* Anything else fails the page: no block goes unexecuted. ``<!-- not-run: reason -->`` on the line before a
  block opts it out (for what cannot run here, such as a PostgreSQL URL).
* ``<!-- requires: FEATURE -->`` anywhere in a page: the page needs FEATURE (see ``FEATURES`` in test_docs.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w+-]*)\s*$")
NOT_RUN = re.compile(r"^\s*<!--\s*not-run:\s*(?P<reason>\S.*?)\s*-->\s*$")
REQUIRES = re.compile(r"<!--\s*requires:\s*(?P<feature>[\w-]+)\s*-->")
FILE_MARK = re.compile(r"^\s*(?:#|--)\s*file:\s*(?P<path>\S.*?)\s*$")
FILE_LANGS = {"python", "toml", "sql", "ini", "bash"}
COMMAND_TIMEOUT = 300


class PageError(AssertionError):
    """A block that failed, or that the runner does not know how to run: names the page and line."""


@dataclass(frozen=True)
class Block:
    page: Path
    line: int                       # 1-based line of the opening fence
    lang: str
    text: str
    not_run: str | None = None      # the reason given by <!-- not-run: reason -->

    @property
    def where(self) -> str:
        return f"{self.page.name}:{self.line}"


@dataclass(frozen=True)
class Command:
    line: int
    command: str
    expected: list[str] = field(default_factory=list)


def parse(page: Path) -> list[Block]:
    """The fenced blocks of ``page`` in order; an unclosed fence is an error."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        start, indent = index, len(opening["indent"])
        body: list[str] = []
        index += 1
        while index < len(lines) and not (FENCE.match(lines[index]) and lines[index].strip() == "```"):
            line = lines[index]
            body.append(line[indent:] if not line[:indent].strip() else line.lstrip())
            index += 1
        if index == len(lines):
            raise PageError(f"{page.name}:{start + 1}: a ``` block that is never closed")
        marker = next((NOT_RUN.match(lines[i]) for i in range(start - 1, -1, -1) if lines[i].strip()), None)
        blocks.append(Block(page, start + 1, opening["lang"], "\n".join(body) + "\n",
                            marker["reason"] if marker else None))
        index += 1
    return blocks


def required_features(page: Path) -> list[str]:
    return REQUIRES.findall(page.read_text(encoding="utf-8"))


def commands(block: Block) -> list[Command]:
    """The ``$ `` commands of a console block with the expected output under each (``\\`` continues a line)."""
    found: list[Command] = []
    pending: str | None = None
    for offset, raw in enumerate(block.text.splitlines(), start=1):
        if pending is not None:
            pending += " " + raw.strip()
            if pending.endswith("\\"):
                pending = pending[:-1].rstrip()
                continue
            found[-1] = Command(found[-1].line, pending)
            pending = None
        elif raw.startswith("$ "):
            text = raw[2:].strip()
            found.append(Command(block.line + offset, text.rstrip("\\").rstrip()))
            if text.endswith("\\"):
                pending = found[-1].command
        elif not found:
            if raw.strip():
                raise PageError(f"{block.where}: a console block must start with a `$ ` command, not {raw!r}")
        elif raw.strip():
            found[-1].expected.append(raw)
    if not found:
        raise PageError(f"{block.where}: a console block without any `$ ` command")
    return found


def normalize(line: str) -> str:
    return " ".join(line.split())


def pattern(expected: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part.strip()) for part in normalize(expected).split("...")))


def missing_lines(expected: list[str], actual: str) -> list[str]:
    """The expected lines not matched, in order, by lines of ``actual`` (empty: all matched)."""
    lines = [normalize(line) for line in actual.splitlines()]
    position = 0
    for number, want in enumerate(expected):
        regex = pattern(want)
        while position < len(lines) and not regex.fullmatch(lines[position]):
            position += 1
        if position == len(lines):
            return expected[number:]
        position += 1
    return []


def environment() -> dict[str, str]:
    """The environment of a page's commands: this venv first, nothing of the outer test session's config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MIGRATOR_", "PYTEST_", "COV_"))}
    env.pop("VIRTUAL_ENV", None)
    env.update(PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
               NO_COLOR="1", TERM="dumb", COLUMNS="120", PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")
    return env


class PageRun:
    """One page's blocks run in order in ``project``."""

    def __init__(self, project: Path) -> None:
        self.project = project
        self.env = environment()
        self.last_script: tuple[Block, str] | None = None   # a python script's block and output, for ```text

    def run(self, blocks: list[Block]) -> Iterator[Block]:
        """Run every block; yields each block once it ran (or was opted out)."""
        for block in blocks:
            if block.not_run is None:
                self.run_block(block)
            yield block

    def run_block(self, block: Block) -> None:
        script, self.last_script = self.last_script, None
        if block.lang == "console":
            for command in commands(block):
                self.run_command(block, command)
        elif block.lang == "text":
            if script is None:
                raise PageError(f"{block.where}: a ```text block must follow a python script (its output)")
            self.compare(block, "python script", block.text.splitlines(), script[1])
        elif block.lang in FILE_LANGS and (mark := FILE_MARK.match(block.text.splitlines()[0])):
            self.write(block, mark["path"])
        elif block.lang == "python":
            done = self.execute(["python", "-"], block.text, block.where)
            self.last_script = (block, done)
        else:
            how = "needs a first line `# file: PATH`" if block.lang in FILE_LANGS else "is not a kind the runner knows"
            raise PageError(f"{block.where}: a ```{block.lang} block {how} (or mark it <!-- not-run: reason -->)")

    def write(self, block: Block, relative: str) -> None:
        target = (self.project / relative).resolve()
        if not target.is_relative_to(self.project.resolve()):
            raise PageError(f"{block.where}: `file: {relative}` is outside the project folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.text.split("\n", 1)[1], encoding="utf-8")

    def run_command(self, block: Block, command: Command) -> None:
        where = f"{block.page.name}:{command.line}"
        output = self.execute(["bash", "-c", command.command], None, where)
        self.compare(block, f"`$ {command.command}`", command.expected, output, line=command.line)

    def execute(self, argv: list[str], stdin: str | None, where: str) -> str:
        try:
            done = subprocess.run(argv, cwd=self.project, env=self.env, input=stdin, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            raise PageError(f"{where}: still running after {COMMAND_TIMEOUT} s: {argv[-1] if stdin is None else ''}"
                            ) from exc
        if done.returncode != 0:
            shown = argv[-1] if stdin is None else "the python block"
            raise PageError(f"{where}: {shown!r} exited with {done.returncode} (a page shows an expected failure "
                            f"with `; echo \"exit code $?\"`); output:\n{done.stdout}")
        return done.stdout

    def compare(self, block: Block, what: str, expected: list[str], actual: str, line: int | None = None) -> None:
        missing = missing_lines([e for e in expected if e.strip()], actual)
        if missing:
            raise PageError(f"{block.page.name}:{line or block.line}: {what}: expected line {missing[0]!r} "
                            f"not found (in order); the output was:\n{actual}")
