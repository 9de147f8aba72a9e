"""``did you mean ...?`` for a mistyped name: the closest known one by :mod:`difflib`, or nothing."""

from __future__ import annotations

from collections.abc import Iterable

CUTOFF = 0.6  # difflib's default: `migration` -> `migrations`, `lock_timout` -> `lock_timeout`; `x` -> nothing


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to ``word`` (compared case-insensitively), or None when none is close."""
    import difflib  # only when a message needs it: kept off every start-up

    by_folded: dict[str, str] = {}
    for choice in sorted(choices):
        by_folded.setdefault(choice.casefold(), choice)
    found = difflib.get_close_matches(word.casefold(), list(by_folded), n=1, cutoff=CUTOFF)
    return by_folded[found[0]] if found and found[0] != word else None


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` to end a message with, or ``""``."""
    if not isinstance(word, str):
        return ""
    match = closest(word, choices)
    return f" (did you mean {match!r}?)" if match is not None else ""
