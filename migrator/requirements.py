"""Parsing of cross-backend ``requires`` declarations into :class:`~migrator.model.Requirement` values.

Pure: the adapters find the declaration in their own files (a module-level
``requires`` dict, a ``-- migrator: requires ...`` header line, a decorator
argument) and hand it here; nothing is checked against the config yet
(:mod:`migrator.crossplan` does that once every backend is known).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from migrator.errors import LoaderError
from migrator.model import Requirement

HEADER = re.compile(r"^\ufeff?\s*--\s*migrator\s*:\s*requires\b(?P<items>.*)$", re.IGNORECASE)
_ITEM = re.compile(r"^(?P<backend>[^.=\s]+)(?:\.(?P<line>[^=\s]+))?\s*=\s*(?P<version>[0-9]+)$")
EXAMPLE = '{"vectors": {"chunks": 2}, "sqlite": 5}'
MAX_VERSION = 2**63 - 1


def from_mapping(value: object, where: str) -> tuple[Requirement, ...]:
    """``{"vectors": {"chunks": 2}, "sqlite": 5}``: a table version of a LanceDB backend, a SQL backend's version."""
    if not isinstance(value, Mapping):
        raise LoaderError(f"{where}: requires must be a dict like {EXAMPLE} (got {type(value).__name__})")
    found: list[Requirement] = []
    for backend, spec in value.items():
        if not isinstance(backend, str) or not backend.strip():
            raise LoaderError(f"{where}: requires has the key {backend!r}, not a backend name")
        if isinstance(spec, Mapping):
            if not spec:
                raise LoaderError(f"{where}: requires[{backend!r}] names no table")
            for table, version in spec.items():
                if not isinstance(table, str) or not table.strip():
                    raise LoaderError(f"{where}: requires[{backend!r}] has the key {table!r}, not a table name")
                found.append(Requirement(backend, table, _version(version, where, f"{backend}.{table}")))
        else:
            found.append(Requirement(backend, "", _version(spec, where, backend)))
    return tuple(found)


def from_header(text: str, where: str) -> tuple[Requirement, ...]:
    """Every ``-- migrator: requires vectors.chunks=2, sqlite=5`` line among the file's leading comment lines."""
    found: list[Requirement] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip().lstrip("\ufeff")
        if not stripped:
            continue
        if not stripped.startswith("--"):
            break
        match = HEADER.match(stripped)
        if match is None:
            continue
        items = [item.strip() for item in match.group("items").split(",")]
        if not any(items):
            raise LoaderError(f"{where}:{number}: `-- migrator: requires` names nothing (example: "
                              "`-- migrator: requires vectors.chunks=2, sqlite=5`)")
        for item in items:
            parsed = _ITEM.match(item)
            if parsed is None:
                raise LoaderError(f"{where}:{number}: {item!r} in `-- migrator: requires` is not backend=VERSION "
                                  "or backend.table=VERSION")
            version = int(parsed.group("version"))
            label = item.split("=", 1)[0].strip()
            found.append(Requirement(parsed.group("backend"), parsed.group("line") or "",
                                     _version(version, f"{where}:{number}", label)))
    return tuple(found)


def _version(value: object, where: str, label: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_VERSION:
        raise LoaderError(f"{where}: requires {label}={value!r}: the version must be a positive integer")
    return value
