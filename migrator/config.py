"""Find and parse the configuration (``migrator.toml`` or ``[tool.migrator]``).

Lookup order: an explicit path, then ``MIGRATOR_CONFIG``, then walking up from the
working directory to the first folder with a ``migrator.toml`` or a
``pyproject.toml`` holding ``[tool.migrator]`` (``migrator.toml`` wins).
Relative paths resolve against the config file's folder; in URLs, URIs, migrations folders
and storage options ``${VAR}`` and ``${VAR:-default}`` expand from the environment, ``$$`` is a
literal ``$`` and any other ``$`` is refused; ``MIGRATOR_<NAME>_URL`` overrides a backend's
URL / URI (its value is used as it is).
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from migrator import handles
from migrator.backends import BACKEND_TYPES
from migrator.engines import ENGINES, engine_problem
from migrator.errors import ConfigError
from migrator.redact import is_secret_key, mask_url, secrets_in
from migrator.suggest import did_you_mean

TOP_LEVEL_KEYS = frozenset({"default_backend", "backends", "lock_timeout"})
DEFAULT_LOCK_TIMEOUT = 60.0
# `$$` (a literal `$`), `${VAR}`, `${VAR:-default}` (VAR unset or empty); any other `$` is refused
_DOLLAR = re.compile(r"\$(?:(?P<dollar>\$)|\{(?P<var>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>(?:[^$}]|\$\$)*))?\})")
_SQLITE_URL = re.compile(r"^(?P<scheme>sqlite[a-z0-9+]*:///)(?P<path>[^?]*)(?P<query>\?.*)?$", re.DOTALL)


@dataclass(frozen=True)
class BackendConfig:
    name: str
    type: str
    location: str                # URL (sql) or URI (lancedb), paths made absolute, env expanded
    migrations: Path
    source: str                  # "path/to/pyproject.toml [tool.migrator.backends.NAME]" for messages
    version_table: str | None = None
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    backup: bool = False         # back up before a run unless --no-backup
    jobs: int | None = None      # lines migrated in parallel (LanceDB); None: the runner's default
    lock_lease: float | None = None  # object storage (LanceDB): seconds before a dead holder's lock is taken over
    options: Mapping[str, Any] = field(default_factory=dict)
    seeds: Path | None = None    # the seed data folder (`migrator seed`); None: not configured
    # what the application handed over instead of a URL (Migrator.from_dict): a SQLAlchemy Engine or a
    # sqlite3.Connection (sql), a lancedb connection (lancedb); migrator never disposes or closes it
    handle: Any = field(default=None, compare=False, repr=False)

    @property
    def masked_location(self) -> str:
        return mask_url(self.location)


@dataclass(frozen=True)
class Config:
    path: Path | None
    backends: Mapping[str, BackendConfig]
    default_backend: str | None = None

    def select(self, name: str | None, *, all_if_none: bool) -> list[BackendConfig]:
        """The backends a command acts on: the named one, or all / the default one."""
        if name is not None:
            if name not in self.backends:
                known = ", ".join(sorted(self.backends)) or "none"
                raise ConfigError(f"{self._where()}: unknown backend {name!r} (configured: {known})"
                                  f"{did_you_mean(name, self.backends)}")
            return [self.backends[name]]
        if all_if_none:
            return list(self.backends.values())
        return [self.backends[self.default_name()]]

    def default_name(self) -> str:
        if self.default_backend:
            return self.default_backend
        if len(self.backends) == 1:
            return next(iter(self.backends))
        raise ConfigError(
            f"{self._where()}: several backends are configured and no default_backend is set; pass --backend"
        )

    def _where(self) -> str:
        return str(self.path) if self.path else "configuration"


def find_config_file(start: Path | None = None) -> Path:
    """The config file by the lookup order above; ConfigError when there is none."""
    env = os.environ.get("MIGRATOR_CONFIG")
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"MIGRATOR_CONFIG points to {path}, which is not a file")
        return path
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "migrator.toml"
        if candidate.is_file():
            return candidate
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and _has_tool_migrator(pyproject):
            return pyproject
    raise ConfigError(
        f"no migrator configuration found in {here} or its parents "
        "(looked for migrator.toml and [tool.migrator] in pyproject.toml; run `migrator init`)"
    )


def load_config(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load, validate and resolve the configuration."""
    environ = os.environ if env is None else env
    if path is None:
        file = find_config_file()
    else:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"config file {file} does not exist")
    data = _read_toml(file)
    if file.name == "pyproject.toml" or "tool" in data:
        section = data.get("tool", {}).get("migrator")
        if not isinstance(section, dict):
            raise ConfigError(f"{file}: no [tool.migrator] table")
        prefix = "tool.migrator"
    else:
        section = data
        prefix = ""
    return _parse(section, file, prefix, environ)


FROM_DICT = "Migrator.from_dict"


def load_dict(data: Mapping[str, Any], *, base: str | os.PathLike[str] | None = None,
              env: Mapping[str, str] | None = None) -> Config:
    """A configuration from a dict with the file's keys (``Migrator.from_dict``): same validation, same one-line
    errors, naming ``Migrator.from_dict`` and the key. Relative paths resolve against ``base`` (default: the
    working directory). A SQLAlchemy Engine, a sqlite3.Connection or a lancedb connection may stand in for
    ``url`` / ``uri``."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{FROM_DICT}: expects a dict of the config's keys, not {type(data).__name__}")
    if base is not None and not isinstance(base, (str, os.PathLike)):
        raise ConfigError(f"{FROM_DICT}: base must be a folder (a string or a path), not {type(base).__name__}")
    if "tool" in data:  # a pyproject.toml's shape, as tomllib.load returns it
        section = data["tool"].get("migrator") if isinstance(data["tool"], Mapping) else None
        if not isinstance(section, Mapping):
            raise ConfigError(f"{FROM_DICT}: no 'tool.migrator' table")
        data, prefix = section, "tool.migrator"
    else:
        prefix = ""
    folder = Path(base) if base is not None else Path.cwd()
    return _parse(data, FROM_DICT, prefix, os.environ if env is None else env, base=folder)


def _has_tool_migrator(pyproject: Path) -> bool:
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return False
    if "tool.migrator" not in text:  # cheap pre-check; a real parse decides
        return False
    try:
        return isinstance(tomllib.loads(text).get("tool", {}).get("migrator"), dict)
    except tomllib.TOMLDecodeError:
        return True  # let load_config report the syntax error with its location


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        with file.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: invalid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from exc


def _hint(word: str, known: frozenset[str], kind: str | None = None) -> str:
    """What ends an unknown key's message: where the key belongs when it is another table's, else the closest key
    of this table (``kind``: the backend type whose table it is; None: the top level)."""
    if kind is None and any(word in k.required | k.optional for k in BACKEND_TYPES.values()):
        return " (a key of a [backends.NAME] table)"
    others = sorted(name for name, k in BACKEND_TYPES.items() if name != kind and word in k.required | k.optional)
    if kind is not None and others:
        return f" (a key of {' and '.join(others)} backends)"
    if kind is not None and word in TOP_LEVEL_KEYS:
        return " (a top-level key, above the [backends] tables)"
    return did_you_mean(word, known)


def _key(prefix: str, *parts: str) -> str:
    return ".".join(p for p in (prefix, *parts) if p)


def _parse(section: Mapping[str, Any], file: Path | str, prefix: str, env: Mapping[str, str],
           base: Path | None = None) -> Config:
    """``file``: the config file, or what messages name instead (``Migrator.from_dict``); ``base``: where relative
    paths start (default: the file's folder)."""
    unknown = sorted(set(section) - TOP_LEVEL_KEYS)
    if unknown:
        raise ConfigError(f"{file}: unknown key {_key(prefix, unknown[0])!r}{_hint(unknown[0], TOP_LEVEL_KEYS)}")
    backends_raw = section.get("backends", {})
    if not isinstance(backends_raw, Mapping):
        raise ConfigError(f"{file}: {_key(prefix, 'backends')!r} must be a table")
    lock_timeout = _number(section.get("lock_timeout", DEFAULT_LOCK_TIMEOUT), file, _key(prefix, "lock_timeout"))
    base = (base or Path(file).parent).resolve()
    backends: dict[str, BackendConfig] = {}
    for name, raw in backends_raw.items():
        backends[name] = _parse_backend(name, raw, file, _key(prefix, "backends", name), base, env, lock_timeout)
    default = section.get("default_backend")
    if default is not None:
        if not isinstance(default, str):
            raise ConfigError(f"{file}: {_key(prefix, 'default_backend')!r} must be a string")
        if default not in backends:
            known = ", ".join(sorted(backends)) or "none"
            raise ConfigError(
                f"{file}: {_key(prefix, 'default_backend')!r} names {default!r}, which is not configured "
                f"(configured: {known}){did_you_mean(default, backends)}"
            )
    return Config(path=file if isinstance(file, Path) else None, backends=backends, default_backend=default)


def _parse_backend(
    name: str,
    raw: Any,
    file: Path | str,
    key: str,
    base: Path,
    env: Mapping[str, str],
    lock_timeout: float,
) -> BackendConfig:
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", name):
        raise ConfigError(f"{file}: backend name {name!r} in {key!r} may use only letters, digits, '_' and '-'")
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{file}: {key!r} must be a table")
    kind_name = raw.get("type")
    if not isinstance(kind_name, str) or kind_name not in BACKEND_TYPES:
        known = ", ".join(sorted(BACKEND_TYPES))
        raise ConfigError(f"{file}: {key}.type must be one of {known} (got {kind_name!r})"
                          f"{did_you_mean(kind_name, BACKEND_TYPES)}")
    kind = BACKEND_TYPES[kind_name]
    unknown = sorted(set(raw) - kind.required - kind.optional)
    if unknown:
        raise ConfigError(f"{file}: unknown key {key}.{unknown[0]!r} for a {kind_name} backend"
                          f"{_hint(unknown[0], kind.required | kind.optional, kind_name)}")
    override_var = f"MIGRATOR_{re.sub(r'[^A-Za-z0-9]', '_', name).upper()}_URL"
    location_key = f"{key}.{kind.location_key}"
    handle, live = _live_handle(kind_name, raw.get(kind.location_key), f"{file}: {location_key}")
    if live is not None:  # the application's own Engine / connection: no environment override applies
        options_key = "engine_options" if kind_name == "sql" else "storage_options"
        if options_key in raw:
            what = "Engine" if kind_name == "sql" else "connection"
            raise ConfigError(f"{file}: {key}.{options_key} cannot apply to the {what} given as {location_key} "
                              "(it is already open); configure it where it is created")
        location = live
    elif override_var in env:  # already an environment value: used as it is, `$` included
        location = env[override_var]
    elif kind.location_key in raw:
        location = _text(raw[kind.location_key], file, location_key, env, paths=kind_name == "lancedb")
    else:
        raise ConfigError(f"{file}: missing key {key}.{kind.location_key}")
    location = _absolute_location(kind_name, location, base)
    if kind_name == "lancedb":
        check_lance_folder(location, f"{file}: {override_var if override_var in env else location_key}")
    migrations_key = f"{key}.migrations"
    migrations = base / _text(raw.get("migrations", f"migrations/{name}"), file, migrations_key, env, paths=True)
    try:
        exists = migrations.is_dir()
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{file}: {key}.migrations: {reason}") from exc
    if not exists:
        raise ConfigError(f"{file}: {key}.migrations: folder {migrations} does not exist")
    seeds = _folder(raw["seeds"], file, f"{key}.seeds", env, base) if "seeds" in raw else None
    options = {k: v for k, v in raw.items()
               if k not in {"type", "migrations", kind.location_key, "version_table", "seeds"}}
    if "lock_timeout" in options:
        lock_timeout = _number(options.pop("lock_timeout"), file, f"{key}.lock_timeout")
    backup = options.pop("backup", False)
    if not isinstance(backup, bool):
        raise ConfigError(f"{file}: {key}.backup must be true or false")
    jobs = options.pop("jobs", None)
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ConfigError(f"{file}: {key}.jobs must be a positive integer")
    lock_lease = options.pop("lock_lease", None)
    if lock_lease is not None:
        lock_lease = _number(lock_lease, file, f"{key}.lock_lease", positive=True)
    if "engine" in options:
        problem = engine_problem(options["engine"])
        if problem is not None:
            raise ConfigError(f"{file}: {key}.engine {problem}{did_you_mean(options['engine'], ENGINES)}")
    if "storage_options" in options:
        if not isinstance(options["storage_options"], Mapping):
            raise ConfigError(f"{file}: {key}.storage_options must be a table")
        options["storage_options"] = {
            k: _expand(str(v), file, f"{key}.storage_options.{k}", env) for k, v in options["storage_options"].items()
        }
    version_table = raw.get("version_table")
    if version_table is not None:
        version_table = _string(version_table, file, f"{key}.version_table")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", version_table):
            raise ConfigError(f"{file}: {key}.version_table {version_table!r} is not a plain table name")
    return BackendConfig(
        name=name,
        type=kind_name,
        location=location,
        migrations=migrations,
        source=f"{file} [{key}]",
        version_table=version_table,
        lock_timeout=lock_timeout,
        backup=backup,
        jobs=jobs,
        lock_lease=lock_lease,
        options=options,
        seeds=seeds,
        handle=handle,
    )


def _folder(value: Any, file: Path | str, key: str, env: Mapping[str, str], base: Path) -> Path:
    """An existing folder named by ``key`` (``${VAR}`` expanded, relative to ``base``); ConfigError naming both."""
    folder = base / _text(value, file, key, env, paths=True)
    try:
        exists = folder.is_dir()
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{file}: {key}: {reason}") from exc
    if not exists:
        raise ConfigError(f"{file}: {key}: folder {folder} does not exist")
    return folder


def check_lance_folder(location: str, where: str) -> None:
    """Refuse a local LanceDB folder with ``?`` in its path: lance's dataset reader (``table.to_lance()``)
    takes it for the start of a URL query, so tables made there could not be opened again."""
    if "://" not in location and "?" in location:
        raise ConfigError(
            f"{where}: the LanceDB folder {location} has a '?' in its path, which lance reads as the start of a "
            "URL query (its tables could not be opened); use a folder without '?'"
        )


def _live_handle(kind: str, value: Any, where: str) -> tuple[Any, str | None]:
    """``(handle, its printable location)`` when ``value`` is a live Engine / connection, else ``(None, None)``."""
    if value is None:
        return None, None
    live = handles.sql_location(value, where) if kind == "sql" else handles.lance_location(value, where)
    return (value, live) if live is not None else (None, None)


def _text(value: Any, file: Path | str, key: str, env: Mapping[str, str], *, paths: bool = False) -> str:
    """A string value with ``${VAR}`` expanded; with ``paths``, a path object (from_dict) is taken literally."""
    if paths and isinstance(value, os.PathLike):
        text = os.fspath(value)
        if isinstance(text, str) and text:
            return text
    return _expand(_string(value, file, key), file, key, env)


def _string(value: Any, file: Path | str, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{file}: {key} must be a non-empty string")
    return value


def _number(value: Any, file: Path | str, key: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
        raise ConfigError(f"{file}: {key} must be a {'positive' if positive else 'non-negative'} number of seconds")
    if positive and not (0 < value < math.inf):
        raise ConfigError(f"{file}: {key} must be a positive number of seconds")
    return float(value)


def _expand(value: str, file: Path | str, key: str, env: Mapping[str, str]) -> str:
    """Expand ``${VAR}`` and ``${VAR:-default}``, turn ``$$`` into ``$``; refuse any other ``$`` form."""
    out: list[str] = []
    at = 0
    while (start := value.find("$", at)) != -1:
        out.append(value[at:start])
        match = _DOLLAR.match(value, start)
        if match is None:
            # in a password (or a secret option) the form itself is not shown: it is part of the secret
            secret = is_secret_key(key.rsplit(".", 1)[-1]) or bool(secrets_in(value))
            form = f"a '$' at character {start + 1}" if secret else repr(_dollar_form(value, start))
            raise ConfigError(
                f"{file}: {key} uses {form}, which is not supported (use ${{VAR}} or ${{VAR:-default}}; "
                "write $$ for a literal $)"
            )
        if match["dollar"]:
            out.append("$")
        else:
            var = match["var"]
            if env.get(var):
                out.append(env[var])
            elif match["default"] is not None:
                out.append(match["default"].replace("$$", "$"))
            elif var in env:
                out.append("")
            else:
                raise ConfigError(f"{file}: {key} uses ${{{var}}}, which is not set in the environment")
        at = match.end()
    out.append(value[at:])
    return "".join(out)


def _dollar_form(value: str, start: int) -> str:
    """The unsupported ``$`` form at ``start``, short enough for one line."""
    if value.startswith("${", start):
        end = value.find("}", start)
        return value[start:end + 1] if 0 < end - start < 40 else value[start:start + 12]
    word = re.match(r"\$[A-Za-z0-9_]*", value[start:])
    return word.group() if word and len(word.group()) > 1 else value[start:start + 2]


def _absolute_location(kind: str, location: str, base: Path) -> str:
    """Make file locations absolute against the config folder; leave servers and s3:// alone.

    The config folder's path is inserted into a SQLite URL percent-encoded, so a folder named
    ``a%20b``, ``q?x`` or ``h#x`` means that folder, never URL syntax (SQLAlchemy decodes it back).
    The part of the URL the user wrote is URL syntax and is kept as written.
    """
    if kind == "sql":
        match = _SQLITE_URL.match(location)
        if match:
            path = match["path"]
            if path and path != ":memory:" and not path.startswith("/") and not path.startswith("file:"):
                path = f"{quote(str(base), safe='/')}/{path}"
            return f"{match['scheme']}{path}{match['query'] or ''}"
        return location
    if "://" in location:
        return location
    path = Path(location)
    return str(path if path.is_absolute() else base / path)
