"""Where ``upgrade --to`` and ``rollback`` go: an absolute version or a number of steps.

Parsed once here, for the CLI (which passes the text as typed) and the library
(which may pass an int too); resolved against the bookkeeping by
:mod:`migrator.plan`, under the lock. As Alembic users expect:

- ``upgrade --to 3``: every pending version up to 3; ``--to +2``: the next two pending migrations.
- ``rollback 2``: undo every applied version above 2; ``rollback -1``: undo the newest applied one.

Anything else (``rollback +1``, ``--to -1``, ``1.5``, ``abc``, an empty string) is refused with a UsageError:
reading ``+1`` as version 1 once undid three migrations instead of none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from migrator.errors import UsageError

_ABSOLUTE = re.compile(r"[0-9]+", re.ASCII)
_FORWARD = re.compile(r"\+[0-9]+", re.ASCII)
_BACK = re.compile(r"-[0-9]+", re.ASCII)


@dataclass(frozen=True)
class Target:
    """An absolute version (``steps`` is None) or a number of steps along one line (``version`` is None)."""

    version: int | None = None
    steps: int | None = None

    @property
    def relative(self) -> bool:
        return self.steps is not None

    def __str__(self) -> str:
        return str(self.version) if self.steps is None else f"{self.steps} step{'s' if self.steps != 1 else ''}"


def upgrade_target(to: int | str | Target | None) -> Target | None:
    """``upgrade``'s ``to``: None (everything), a version (int or digits) or ``"+N"`` (N >= 1 steps forward)."""
    if to is None or isinstance(to, Target):
        return to
    if isinstance(to, str) and _FORWARD.fullmatch(to):
        return Target(steps=_steps(to, "--to"))
    return Target(version=_version(to, "--to", "a version (3) nor steps forward (+2)", "'+N'"))


def rollback_target(target: int | str | Target) -> Target:
    """``rollback``'s target: a version (int or digits; 0 undoes all) or ``"-N"`` (N >= 1 steps back)."""
    if isinstance(target, Target):
        return target
    if isinstance(target, str) and _BACK.fullmatch(target):
        return Target(steps=_steps(target, "rollback"))
    return Target(version=_version(target, "rollback target", "a version (2; 0 undoes all) nor steps back (-1)",
                                   "'-N'"))


def _version(value: object, what: str, forms: str, steps: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise UsageError(f"{what} {value} is not a version: versions are 0 or a positive number "
                             f"(steps are given as the string {steps})")
        return value
    if isinstance(value, str) and _ABSOLUTE.fullmatch(value):
        return int(value)
    raise UsageError(f"{what} {_show(value)} is neither {forms}")


def _steps(text: str, what: str) -> int:
    steps = int(text[1:])
    if steps < 1:
        raise UsageError(f"{what} {text}: a number of steps is at least 1")
    return steps


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str) else f"{value!r} ({type(value).__name__})"
