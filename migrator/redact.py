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


# Names of keys whose values are secrets: password, sslpassword, aws_secret_access_key, api-key, session_token ...
_SECRET_NAME = (r"[A-Za-z0-9_\-]*(?:password|passwd|passphrase|pwd|secret|token|credentials?"
                r"|(?:api|access|account|private|session|master)[_\-]?key)[A-Za-z0-9_\-]*")
# A secret-named key and its separator: `password=`, `"password": `, `'sslpassword': `, `secret_access_key: Some(`
_SECRET_KEY = re.compile(
    rf"(?<![A-Za-z0-9_\-])(?P<q>[\"']?)(?P<key>{_SECRET_NAME})(?P=q)[ \t]*(?:=|:(?!//))[ \t]*(?:Some\()?",
    re.IGNORECASE,
)


def is_secret_key(name: str) -> bool:
    """Whether a key such as ``password``, ``aws_secret_access_key`` or ``api-key`` names a secret."""
    return re.fullmatch(_SECRET_NAME, name, re.IGNORECASE) is not None


_URL_USER = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:")
_BARE_VALUE = re.compile(r"[^\s,;&)\]}\"']+")
_VALUE_END = " \t\r\n,;&)]}\"'"


def scrub(text: str, secrets: list[str]) -> str:
    """Mask the password positions in ``text`` (a driver message, a traceback), and nothing else.

    Positions: the password field of every URL (``scheme://user:***@``) and the value of every
    secret-named key (``password=***``, ``'password': '***'``, ``token: ***``). The known
    ``secrets`` (the configured URL's password, as written and percent-encoded) tell where such a
    value ends when it holds spaces, ``@`` or quotes. The same characters anywhere else (a host
    ``127.0.0.1`` when the password is ``127``, the scheme ``postgresql`` when it is ``postgres``, a
    word of the message) are left as they are: masking them would both mangle the message and show
    where the password's text occurs.
    """
    known = sorted({s for s in secrets if s}, key=len, reverse=True)
    out: list[str] = []
    pos = 0
    while True:
        url = _URL_USER.search(text, pos)
        key = _SECRET_KEY.search(text, pos)
        found = [m for m in (url, key) if m is not None]
        if not found:
            break
        match = min(found, key=lambda m: m.start())
        span = _url_password(text, match.end(), known) if match is url else _value(text, match.end(), known)
        if span is None:
            out.append(text[pos:match.end()])
            pos = match.end()
            continue
        out.append(text[pos:span[0]])
        out.append(MASK)
        pos = span[1]
    out.append(text[pos:])
    return "".join(out)


def _url_password(text: str, at: int, known: list[str]) -> tuple[int, int] | None:
    """The password of a URL whose ``scheme://user:`` ends at ``at``: up to its ``@``."""
    for secret in known:
        if text.startswith(secret, at) and text.startswith("@", at + len(secret)):
            return at, at + len(secret)
    end = at
    while end < len(text) and text[end] not in "@/" and not text[end].isspace():
        end += 1
    if end > at and text.startswith("@", end):
        return at, end
    return None


def _value(text: str, at: int, known: list[str]) -> tuple[int, int] | None:
    """The value after a secret-named key: a known secret, a quoted string (escapes honoured), or a bare word."""
    for secret in known:  # first: a known secret may itself start with a quote or hold a space
        stop = at + len(secret)
        if text.startswith(secret, at) and (stop == len(text) or text[stop] in _VALUE_END):
            return at, stop
    if at < len(text) and text[at] in "\"'":
        quote, end = text[at], at + 1
        while end < len(text) and text[end] != quote:
            end += 2 if text[end] == "\\" else 1
        if end >= len(text):  # never closed: hide the rest of the line
            newline = text.find("\n", at)
            end = len(text) if newline == -1 else newline
        return at + 1, end
    bare = _BARE_VALUE.match(text, at)
    return (at, bare.end()) if bare else None
