"""Keep passwords out of everything migrator prints, logs or raises."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@\s]*)@")
# A whole URL: the password runs from the first ':' after the user to the *last* '@' (as SQLAlchemy parses it),
# so it may hold spaces, '/' or '@'.
_WHOLE_URL = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@]*):(?P<password>.*)@(?P<rest>[^@]*)$",
                        re.DOTALL)


def mask_url(url: str) -> str:
    """``postgresql://app:secret@db/app`` -> ``postgresql://app:***@db/app``.

    Query parameters named like secrets (``password``, ``secret``, ``token``, ``key``)
    are masked too. Strings that are not URLs come back unchanged.
    """
    whole = _WHOLE_URL.match(url)
    if whole:
        masked = f"{whole['scheme']}{whole['user']}:{MASK}@{whole['rest']}"
    else:
        masked = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", url)
    try:
        parts = urlsplit(masked)
    except ValueError:
        return masked
    if not parts.query:
        return masked
    pairs = []
    for pair in parts.query.split("&"):
        key, sep, value = pair.partition("=")
        if sep and re.search(r"pass|secret|token|key", key, re.IGNORECASE):
            value = MASK
        pairs.append(f"{key}{sep}{value}")
    return urlunsplit(parts._replace(query="&".join(pairs)))


def secrets_in(url: str) -> list[str]:
    """The literal secrets inside ``url`` (its password and secret-looking query values)."""
    whole = _WHOLE_URL.match(url)
    found = [whole["password"]] if whole and whole["password"] else []
    found += [m["password"] for m in _USERINFO.finditer(url) if m["password"]]
    try:
        query = urlsplit(url).query
    except ValueError:
        query = ""
    for pair in query.split("&"):
        key, sep, value = pair.partition("=")
        if sep and value and re.search(r"pass|secret|token|key", key, re.IGNORECASE):
            found.append(value)
    return found


def scrub(text: str, secrets: list[str]) -> str:
    """Replace every occurrence of each secret in ``text`` (driver messages may echo them)."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= 1:
            text = text.replace(secret, MASK)
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
