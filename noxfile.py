"""Sessions: tests (default suite), package (the wheel without extras), slow (tests kept out of the default suite for
time), crash (long kill -9 trials), ray (the Ray engine on a local Ray), lint, typecheck, bench, demo."""

from __future__ import annotations

import shutil
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent

nox.options.sessions = ["tests", "package", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = None  # the interpreter nox runs on


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole default suite: SQLite, embedded PostgreSQL, LanceDB, a few crash trials."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def package(session: nox.Session) -> None:
    """Build the wheel, install it into a fresh venv without extras, run the SQLite main job there.

    Only pytest is installed here: the test builds and installs migrator itself (tests/test_packaging.py).
    """
    session.install("pytest>=8", "pytest-timeout>=2.3")
    session.run("pytest", "--noconftest", "-m", "slow", "-p", "no:cacheprovider", "tests/test_packaging.py",
                *session.posargs)


@nox.session(python=PYTHON)
def slow(session: nox.Session) -> None:
    """Tests kept out of the default session for time: more of the example app and the plugin on it, S3 races."""
    session.install("-e", ".[test]")
    session.run("pytest", "-m", "slow", "--ignore", "tests/test_packaging.py", *session.posargs)


@nox.session(python=PYTHON)
def crash(session: nox.Session) -> None:
    """Hundreds of kill -9 trials on every backend (slow)."""
    session.install("-e", ".[test]")
    session.run("pytest", "-m", "crash", "-p", "no:randomly", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package as installed: backends/ is checked as migrator.backends.

    mypy cannot follow setuptools' package-dir mapping, so the installed layout is
    mirrored in a temporary folder (error paths point there; the file names match).
    """
    session.install("-e", ".[typecheck]")
    tree = Path(session.create_tmp()) / "typecheck"
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(ROOT / "migrator", tree / "migrator")
    shutil.copytree(ROOT / "backends", tree / "migrator" / "backends")
    session.chdir(tree)
    session.run("mypy", "--config-file", str(ROOT / "pyproject.toml"), "migrator")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Side-by-side benchmarks; writes benchmarks/results/ and prints the README table."""
    session.install("-e", ".[bench]")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The README's main job inside a fresh venv: apply the example migrations (and seeds) to ./data."""
    session.install("-e", ".[all]")
    session.run("migrator", "upgrade")
    session.run("migrator", "seed")
    session.run("migrator", "status")


@nox.session(python=PYTHON)
def ray(session: nox.Session) -> None:
    """engine="ray" on a real local Ray with 2 CPUs, compared with the local engine (the `ray` extra, large)."""
    session.install("-e", ".[ray,test]")
    session.run("pytest", "-m", "ray", "-p", "no:randomly", *session.posargs)
