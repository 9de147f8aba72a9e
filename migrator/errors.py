"""The one exception tree of migrator.

Every error a user can cause is a :class:`MigratorError`. Each carries the exit
code the CLI returns for it (1: a migration or a check failed; 2: usage or
configuration) and a one-line message that names the file, key, table or
migration involved. Messages never contain a password: build them from masked
URLs (:func:`migrator.redact.mask_url`).
"""

from __future__ import annotations

EXIT_FAILED = 1
EXIT_USAGE = 2


class MigratorError(Exception):
    """Root of every error migrator raises on purpose."""

    exit_code: int = EXIT_FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(MigratorError):
    """The configuration is missing, malformed or names something that is not there."""

    exit_code = EXIT_USAGE


class UsageError(MigratorError):
    """A command was called with arguments that cannot work (bad target, unknown backend)."""

    exit_code = EXIT_USAGE


class LoaderError(MigratorError):
    """A migration file cannot be used: bad name, duplicate version, import failure."""

    exit_code = EXIT_USAGE


class BackendUnavailable(MigratorError):
    """The database cannot be opened: unreachable server, not a database, missing driver."""

    exit_code = EXIT_USAGE


class IrreversibleMigration(MigratorError):
    """A rollback would cross a migration that has no ``down``; refused before any change."""

    exit_code = EXIT_USAGE


class LockTimeout(MigratorError):
    """Another process holds the migration lock for longer than the timeout."""

    exit_code = EXIT_FAILED


class LockLost(MigratorError):
    """Another process took the migration lock over while this one held it (a lease that ran out)."""

    exit_code = EXIT_FAILED


class ValidationFailed(MigratorError):
    """Applied files were edited or removed, or versions are out of order."""

    exit_code = EXIT_FAILED


class InterruptedMigration(ValidationFailed):
    """A migration that runs outside a transaction was interrupted; refused until ``migrator stamp`` settles it."""

    exit_code = EXIT_FAILED


class SeedRefused(ValidationFailed):
    """``migrator seed`` while a backend has a pending migration or drift (exit 1, nothing seeded)."""

    exit_code = EXIT_FAILED


class SchemaChangeRefused(MigratorError):
    """A schema change that would lose or break a schema object; refused before anything changed."""

    exit_code = EXIT_FAILED


class MigrationFailed(MigratorError):
    """A migration raised; its changes and its bookkeeping were rolled back together."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, backend: str = "", line: str = "", version: int | None = None) -> None:
        super().__init__(message)
        self.backend = backend
        self.line = line
        self.version = version
