"""Find migration files, read their versions and checksums, import Python ones.

Shared by the adapters: each decides which files it takes and what a file
becomes, but names, versions, duplicates, checksums and import errors are
handled once, here.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import os
import re
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from migrator.errors import LoaderError
from migrator.extras import hint_for

_NAME = re.compile(r"^(?P<version>[0-9]+)(?:[_\-.\s](?P<name>.*))?$")
MAX_VERSION = 2**63 - 1
# in the SQL files `migrator new` writes: such a file with no statement is an unedited template, refused
TEMPLATE_MARKER = "(migrator: an unedited template refuses to run)"
SEPARATOR = ":"  # between the per-file digests of a migration made of several files


@dataclass(frozen=True)
class SourceFile:
    """A migration file on disk: ``002_add_indexes.py`` -> version 2, name ``add_indexes``."""

    path: Path
    version: int
    name: str
    kind: str  # the suffix it matched: ".py", ".up.sql", ".down.sql"
    content: bytes | None = field(default=None, repr=False, compare=False)  # the bytes, when scan(read=True)


def parse_name(path: Path, suffix: str) -> tuple[int, str]:
    """Version and name from a file name without ``suffix``; LoaderError naming the file."""
    stem = path.name[: -len(suffix)] if suffix else path.name
    match = _NAME.match(stem)
    if not match:
        raise LoaderError(
            f"{path}: migration file names must start with a version number (like 001_create_users{suffix})"
        )
    version = int(match["version"])
    if version < 1 or version > MAX_VERSION:
        raise LoaderError(f"{path}: version {match['version']} is out of range (1 to {MAX_VERSION})")
    return version, (match["name"] or "").strip()


def scan(folder: Path, suffixes: Iterable[str], *, read: bool = False) -> list[SourceFile]:
    """Every file in ``folder`` ending with one of ``suffixes`` (longest suffix wins), by version.

    ``read``: each file's bytes in ``SourceFile.content``, read through the one ``open`` that checks
    it is readable (a caller that hashes every file then opens none a second time).

    Hidden files, ``__init__.py`` and files with other suffixes are ignored. A name with a
    migration suffix that cannot be read as a file (a dangling symlink, a symlink loop, a
    folder, a pipe, a file without read permission) is refused by name: skipping it would
    make a missing migration look applied or absent.
    """
    ordered = sorted(suffixes, key=len, reverse=True)
    if not folder.is_dir():
        raise LoaderError(f"migrations folder {folder} does not exist")
    found: list[SourceFile] = []
    with os.scandir(folder) as entries:  # scandir: file types without a stat() per file
        for entry in entries:
            name = entry.name
            if name.startswith((".", "_")):
                continue
            suffix = next((s for s in ordered if name.endswith(s)), None)
            if suffix is None:
                continue
            path = folder / name
            content = _check_readable(path, read)
            version, title = parse_name(path, suffix)
            found.append(SourceFile(path=path, version=version, name=title, kind=suffix, content=content))
    found.sort(key=lambda f: (f.version, f.path.name))
    return found


def _check_readable(path: Path, read: bool = False) -> bytes | None:
    """LoaderError naming ``path`` unless it opens for reading as a regular file (symlinks followed).

    ``read``: the file's bytes, read through the same descriptor.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # O_NONBLOCK: a named pipe must not hang the scan
    except OSError as exc:
        raise LoaderError(f"{path}: {_why_unreadable(path, exc)}") from None
    content = None
    try:
        info = os.fstat(fd)
        regular = stat.S_ISREG(info.st_mode)
        if regular and read:
            content = _read_all(fd, info.st_size)
    except OSError as exc:
        raise LoaderError(f"{path}: cannot be read: {exc.strerror or type(exc).__name__}") from None
    finally:
        os.close(fd)
    if not regular:
        kind = "a folder" if path.is_dir() else "not a regular file"
        raise LoaderError(f"{path}: is {kind}, not a migration file")
    return content


def _read_all(fd: int, size: int) -> bytes:
    """Every byte of the open regular file ``fd`` to its end (``size``: its size when opened), as ``read_bytes``."""
    want = max(size + 1, 1 << 16)
    chunks = []
    while chunk := os.read(fd, want):
        chunks.append(chunk)
        if len(chunk) < want:  # a short read of a regular file: its end
            break
    return b"".join(chunks)


def _why_unreadable(path: Path, exc: OSError) -> str:
    if path.is_symlink():
        target = os.readlink(path)
        if exc.errno == errno.ELOOP:
            return f"is a symlink loop (-> {target}); fix or remove it"
        if exc.errno == errno.ENOENT:
            return f"is a symlink to {target}, which does not exist; fix or remove it"
    return f"cannot be read: {exc.strerror or type(exc).__name__}"


def checksum(*paths: Path) -> str:
    """The checksum of these files, in order (one file: its sha256; a pair: see :func:`digest`)."""
    return digest(*(path.read_bytes() for path in paths))


def digest(*contents: bytes) -> str:
    """The checksum of contents already read: one file's sha256 hex, or each file's joined by ``:``.

    A ``.up.sql``/``.down.sql`` pair stores ``sha256(up):sha256(down)``, so an
    edit names the file that changed (:mod:`migrator.checksums`).
    """
    return SEPARATOR.join(hashlib.sha256(content).hexdigest() for content in contents)


def legacy_digest(*contents: bytes) -> str | None:
    """What migrator 0.1 stored for several files: sha256 of their bytes concatenated (None for one file)."""
    if len(contents) < 2:
        return None
    hasher = hashlib.sha256()
    for content in contents:
        hasher.update(content)
    return hasher.hexdigest()


def seed_folder_names(folder: Path) -> list[str]:
    """The names in a seeds folder, sorted; LoaderError naming the folder when it cannot be read."""
    try:
        return sorted(os.listdir(folder))
    except OSError as exc:
        raise LoaderError(f"seeds folder {folder}: cannot be read: {exc.strerror or type(exc).__name__}") from None


def import_file(path: Path, namespace: str = "migrator_migrations") -> ModuleType:
    """Import a Python migration file as a fresh module; LoaderError naming the file on failure.

    The module is not left in ``sys.modules``: two folders may hold files of the
    same name, and a re-run must see an edited file.
    """
    module_name = f"{namespace}._{abs(hash(str(path))):x}_{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise LoaderError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and typing look the module up while it runs
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        where = f"{path}:{exc.lineno}" if exc.lineno else str(path)
        raise LoaderError(f"{where}: syntax error: {exc.msg}") from exc
    except SystemExit as exc:
        raise LoaderError(f"{path}: called sys.exit({exc.code!r}) while being imported") from exc
    except ImportError as exc:
        hint = hint_for(exc)
        needs = f" (`{hint}`)" if hint else ""
        raise LoaderError(f"{path}: failed to import: {type(exc).__name__}: {exc}{needs}") from exc
    except Exception as exc:
        raise LoaderError(f"{path}: failed to import: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.modules.pop(module_name, None)
    return module
