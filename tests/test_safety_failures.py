"""Failure on the SQL backends: migrations that break, exit, print or manage transactions themselves;
databases that refuse (wrong password, read-only, full disk).

Each case: one ``error:`` line naming the migration (or backend and URL), exit 1 for a failed
migration and 2 for a usage or configuration problem, no traceback without ``-v``, no password
anywhere even with ``-v``, and the data exactly as before (schema + version table).
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from snapshots import (
    assert_clean_error,
    assert_no_secret,
    run_cli_process,
    snapshot,
    sqlite_integrity,
    versions,
)

from conftest import Project, write_config

CREATE_A = "CREATE TABLE a (id INTEGER PRIMARY KEY, name TEXT);\n"

# Child processes are forked with preexec_fn; lance (imported by other test modules) warns about forks.
pytestmark = pytest.mark.filterwarnings("ignore:lance is not fork-safe")


def base(project: Project) -> dict[str, object]:
    """Version 1 applied: the state every failing case must leave exactly as it found it."""
    project.write("001_a.up.sql", CREATE_A)
    project.write("001_a.down.sql", "DROP TABLE a;\n")
    assert project.cli("upgrade").code == 0
    return snapshot(project.url)


def py(body: str, *, header: str = "") -> str:
    """A Python migration whose up() creates table t, then runs ``body``."""
    lines = "\n".join("    " + line for line in body.splitlines())
    return f"{header}def up(db):\n    db.execute('CREATE TABLE t (id INTEGER)')\n{lines}\n"


# --------------------------------------------------------------------------- migrations that break


def test_a_migration_that_fails_to_import_stops_the_run_before_any_change(project: Project) -> None:
    before = base(project)
    project.write("002_fine.up.sql", "CREATE TABLE fine (id INTEGER);\n")
    project.write("003_broken.py", "import no_such_module_anywhere\n\ndef up(db):\n    pass\n")
    line = assert_clean_error(project.cli("upgrade"), 2, "003_broken.py", "no_such_module_anywhere")
    assert "failed to import" in line
    assert snapshot(project.url) == before  # 002 did not run either: the whole plan is loaded first


def test_a_sql_file_that_is_not_utf8_is_refused_by_name_before_any_change(project: Project) -> None:
    before = base(project)
    (project.migrations / "002_binary.up.sql").write_bytes(b"CREATE TABLE t (x TEXT);\n\xff\xfe\x00garbage\n")
    assert_clean_error(project.cli("upgrade"), 2, "002_binary.up.sql", "not UTF-8")
    assert snapshot(project.url) == before


def test_a_python_file_with_null_bytes_is_refused_by_name_before_any_change(project: Project) -> None:
    before = base(project)
    (project.migrations / "002_nul.py").write_bytes(b"def up(db):\n    pass\x00\n")
    assert_clean_error(project.cli("upgrade"), 2, "002_nul.py", "null bytes")
    assert snapshot(project.url) == before


def test_a_python_file_with_null_bytes_is_named_without_a_none_line(sqlite_project: Project) -> None:
    (sqlite_project.migrations / "001_nul.py").write_bytes(b"def up(db):\n    pass\x00\n")
    line = assert_clean_error(sqlite_project.cli("upgrade"), 2, "001_nul.py")
    assert ":None:" not in line


def test_a_migration_that_raises_is_rolled_back_and_named(project: Project) -> None:
    before = base(project)
    project.write("002_raises.py", py("raise ValueError('no good')"))
    assert_clean_error(project.cli("upgrade"), 1, "002_raises.py", "line 3", "ValueError: no good")
    assert snapshot(project.url) == before


def test_a_failure_stops_the_run_at_that_migration(project: Project) -> None:
    before = base(project)
    project.write("002_raises.py", py("raise ValueError('no good')"))
    project.write("003_after.up.sql", "CREATE TABLE after_it (id INTEGER);\n")
    assert project.cli("upgrade").code == 1
    assert snapshot(project.url) == before


def test_a_migration_that_prints_does_not_break_the_run(project: Project) -> None:
    base(project)
    project.write("002_chatty.py", py("for i in range(500):\n    print('progress', i, '%s {} [red]x[/red]')"))
    result = project.cli("upgrade")
    assert result.code == 0, result.err
    assert "progress 499" in result.out and result.err == ""
    assert versions(project.url) == [1, 2]


def test_a_failing_migration_that_printed_still_gives_one_error_line(project: Project) -> None:
    before = base(project)
    project.write("002_chatty.py", py("print('about to fail')\nraise RuntimeError('boom')"))
    result = project.cli("upgrade")
    assert_clean_error(result, 1, "002_chatty.py", "boom")
    assert "about to fail" in result.out
    assert snapshot(project.url) == before


@pytest.mark.parametrize("code", [0, 3, None, "a message"])
def test_sys_exit_in_up_is_a_failed_migration_rolled_back(project: Project, code: object) -> None:
    before = base(project)
    project.write("002_exits.py", py(f"import sys\nsys.exit({code!r})"))
    project.write("003_after.up.sql", "CREATE TABLE after_it (id INTEGER);\n")
    assert_clean_error(project.cli("upgrade"), 1, "002_exits.py", f"sys.exit({code!r})", "line 4")
    assert snapshot(project.url) == before


@pytest.mark.parametrize("code", [0, 3])
def test_sys_exit_in_up_fails_the_process_with_exit_1(sqlite_project: Project, code: int) -> None:
    before = base(sqlite_project)
    sqlite_project.write("002_exits.py", py(f"import sys\nsys.exit({code})"))
    result = run_cli_process(sqlite_project.root, "upgrade")
    assert_clean_error(result, 1, "002_exits.py", f"sys.exit({code})")
    assert snapshot(sqlite_project.url) == before


def _upgrade_into_a_closed_pipe(root: Path) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIGRATOR_")}
    child = subprocess.Popen([sys.executable, "-m", "migrator", "upgrade"], cwd=root, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.readline()
    child.stdout.close()  # like `migrator upgrade | head -1`
    err = child.stderr.read()
    return child.wait(timeout=60), err


def test_a_migration_printing_into_a_closed_pipe_fails_and_is_rolled_back(sqlite_project: Project) -> None:
    before = base(sqlite_project)
    sqlite_project.write("002_chatty.py", py("for i in range(50000):\n    print('line', i)"))
    code, _ = _upgrade_into_a_closed_pipe(sqlite_project.root)
    assert code == 1
    assert snapshot(sqlite_project.url) == before


def test_a_migration_printing_into_a_closed_pipe_still_reports_on_stderr(sqlite_project: Project) -> None:
    base(sqlite_project)
    sqlite_project.write("002_chatty.py", py("for i in range(50000):\n    print('line', i)"))
    code, err = _upgrade_into_a_closed_pipe(sqlite_project.root)
    assert code == 1 and err.startswith("error: ") and "002_chatty.py" in err


INTERRUPTED = py("import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(5)")


def with_ctrl_c() -> None:
    """In the child: SIGINT as a terminal delivers it (a shell's background job inherits it ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_during_a_migration_rolls_it_back(sqlite_project: Project) -> None:
    before = base(sqlite_project)
    sqlite_project.write("002_interrupted.py", INTERRUPTED)
    result = run_cli_process(sqlite_project.root, "upgrade", preexec_fn=with_ctrl_c)
    assert result.code != 0
    assert snapshot(sqlite_project.url) == before


def test_ctrl_c_during_a_migration_reports_one_line_without_a_traceback(sqlite_project: Project) -> None:
    base(sqlite_project)
    sqlite_project.write("002_interrupted.py", INTERRUPTED)
    result = run_cli_process(sqlite_project.root, "upgrade", preexec_fn=with_ctrl_c)
    assert "Traceback" not in result.err
    assert result.err.startswith("error: ") and len(result.err.strip().splitlines()) == 1


def test_sys_exit_in_down_is_a_failed_rollback_that_keeps_the_version(project: Project) -> None:
    base(project)
    project.write("002_b.py", "import sys\n\ndef up(db):\n    db.execute('CREATE TABLE b (id INTEGER)')\n\n"
                              "def down(db):\n    db.execute('DROP TABLE b')\n    sys.exit(0)\n")
    assert project.cli("upgrade").code == 0
    before = snapshot(project.url)
    assert_clean_error(project.cli("rollback", "1"), 1, "002_b.py", "sys.exit(0)")
    assert snapshot(project.url) == before


def test_sys_exit_in_a_non_transactional_migration_says_it_was_not_atomic(project: Project) -> None:
    base(project)
    project.write("002_exits.py", py("import sys\nsys.exit(0)", header="transactional = False\n\n"))
    line = assert_clean_error(project.cli("upgrade"), 1, "002_exits.py", "sys.exit(0)", "not atomic")
    assert "version is not recorded" in line
    assert versions(project.url) == [1]
    assert "t" in snapshot(project.url)["tables"]  # outside a transaction its first statement stays


def test_verbose_shows_the_traceback_of_a_failed_migration(project: Project) -> None:
    base(project)
    project.write("002_raises.py", py("raise ValueError('no good')"))
    result = project.cli("-v", "upgrade")
    assert result.code == 1 and "Traceback" in result.err and "ValueError: no good" in result.err


# --------------------------------------------------------------------------- migrations that manage transactions


@pytest.mark.parametrize(("body", "command", "line"), [
    ("CREATE TABLE t (id INTEGER);\nCOMMIT;\nCREATE TABLE u (id INTEGER);\n", "COMMIT", 2),
    ("BEGIN;\nCREATE TABLE t (id INTEGER);\nCOMMIT;\n", "BEGIN", 1),
    ("CREATE TABLE t (id INTEGER);\nROLLBACK;\nCREATE TABLE u (id INTEGER);\n", "ROLLBACK", 2),
    ("CREATE TABLE t (id INTEGER);\n-- done\nEND TRANSACTION;\n", "END", 3),
    ("CREATE TABLE t (id INTEGER);\n/* commit */ START TRANSACTION;\n", "START TRANSACTION", 2),
])
def test_a_sql_file_that_ends_the_transaction_itself_is_refused_before_any_change(
    project: Project, body: str, command: str, line: int,
) -> None:
    before = base(project)
    project.write("002_manual.up.sql", body)
    message = assert_clean_error(project.cli("upgrade"), 2, f"002_manual.up.sql:{line}:", f"is {command}",
                                 "-- migrator: no-transaction")
    assert "Traceback" not in message
    assert snapshot(project.url) == before


def test_a_down_file_that_commits_is_refused_when_loaded_even_for_an_upgrade(project: Project) -> None:
    before = base(project)
    project.write("002_b.up.sql", "CREATE TABLE b (id INTEGER);\n")
    project.write("002_b.down.sql", "DROP TABLE b;\nCOMMIT;\n")
    assert_clean_error(project.cli("upgrade"), 2, "002_b.down.sql:2:", "is COMMIT")
    assert snapshot(project.url) == before


def test_savepoints_inside_a_transactional_sql_file_are_fine(project: Project) -> None:
    base(project)
    project.write("002_savepoint.up.sql", "CREATE TABLE t (id INTEGER);\nSAVEPOINT s1;\n"
                                          "INSERT INTO t VALUES (1);\nROLLBACK TO SAVEPOINT s1;\n"
                                          "RELEASE SAVEPOINT s1;\nINSERT INTO t VALUES (2);\n")
    assert project.cli("upgrade").code == 0
    assert versions(project.url) == [1, 2]


def test_a_no_transaction_file_may_commit_by_itself(project: Project) -> None:
    base(project)
    project.write("002_manual.up.sql", "-- migrator: no-transaction\nBEGIN;\nCREATE TABLE t (id INTEGER);\n"
                                       "COMMIT;\n")
    assert project.cli("upgrade").code == 0
    assert versions(project.url) == [1, 2] and "t" in snapshot(project.url)["tables"]


def test_a_no_transaction_file_that_leaves_its_transaction_open_is_committed_with_its_version(
    project: Project,
) -> None:
    base(project)
    project.write("002_open.up.sql", "-- migrator: no-transaction\nBEGIN;\nCREATE TABLE t (id INTEGER);\n")
    project.write("003_next.up.sql", "CREATE TABLE next_one (id INTEGER);\n")
    result = project.cli("upgrade")
    assert result.code == 0, result.err
    assert versions(project.url) == [1, 2, 3]
    assert {"t", "next_one"} <= set(snapshot(project.url)["tables"])
    assert project.cli("rollback", "1").code == 2  # no down files; and the database is not left locked


def test_a_non_transactional_python_migration_that_leaves_a_transaction_open_is_committed(
    project: Project,
) -> None:
    base(project)
    project.write("002_open.py", "transactional = False\n\ndef up(db):\n    db.execute('BEGIN')\n"
                                 "    db.execute('CREATE TABLE t (id INTEGER)')\n")
    project.write("003_next.up.sql", "CREATE TABLE next_one (id INTEGER);\n")
    result = project.cli("upgrade")
    assert result.code == 0, result.err
    assert versions(project.url) == [1, 2, 3]
    assert {"t", "next_one"} <= set(snapshot(project.url)["tables"])


@pytest.mark.parametrize(("body", "named"), [
    ("db.execute('COMMIT')", "COMMIT refused"),
    ("db.execute('  commit;')", "COMMIT refused"),
    ("db.execute('ROLLBACK')", "ROLLBACK refused"),
    ("db.execute('BEGIN')", "BEGIN refused"),
    ("db.connection.exec_driver_sql('END')", "END refused"),
    ("db.connection.commit()", "connection.commit() refused"),
    ("db.connection.rollback()", "connection.rollback() refused"),
])
def test_a_python_migration_that_ends_the_transaction_itself_changes_nothing(
    project: Project, body: str, named: str,
) -> None:
    before = base(project)
    project.write("002_manual.py", py(body + "\ndb.execute('CREATE TABLE u (id INTEGER)')"))
    assert_clean_error(project.cli("upgrade"), 1, "002_manual.py", "line 3", named, "transactional = False")
    assert snapshot(project.url) == before


@pytest.mark.parametrize("body", ["db.connection.rollback()", "db.connection.commit()", "db.execute('COMMIT')"])
def test_a_refused_transaction_end_prints_one_line_and_no_warning(sqlite_project: Project, body: str) -> None:
    before = base(sqlite_project)
    sqlite_project.write("002_manual.py", py(body))
    result = run_cli_process(sqlite_project.root, "upgrade")
    assert_clean_error(result, 1, "002_manual.py", "refused")
    assert "Warning" not in result.err
    assert snapshot(sqlite_project.url) == before


def test_a_python_migration_that_swallows_the_refusal_still_fails_and_changes_nothing(project: Project) -> None:
    before = base(project)
    project.write("002_sly.py", py("try:\n    db.connection.commit()\nexcept Exception:\n    pass\n"
                                   "db.execute('CREATE TABLE u (id INTEGER)')"))
    assert_clean_error(project.cli("upgrade"), 1, "002_sly.py", "connection.commit() refused")
    assert snapshot(project.url) == before


def test_a_python_migration_that_commits_through_the_driver_is_reported(project: Project) -> None:
    base(project)
    project.write("002_raw.py", py("raw = db.connection.connection.dbapi_connection\nraw.commit()"))
    line = assert_clean_error(project.cli("upgrade"), 1, "002_raw.py", "ended migrator's transaction itself")
    assert "may stay committed" in line
    assert versions(project.url) == [1]


@pytest.mark.postgres
def test_a_postgresql_migration_that_swallows_a_database_error_fails_and_changes_nothing(
    postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "proj"
    (root / "migrations" / "db").mkdir(parents=True)
    write_config(root, postgres_url)
    project = Project(root, postgres_url, capsys)
    before = base(project)
    project.write("002_swallow.py", py("try:\n    db.execute('SELECT * FROM nowhere')\nexcept Exception:\n"
                                       "    pass\ndb.execute('CREATE TABLE u (id INTEGER)')"))
    assert_clean_error(project.cli("upgrade"), 1, "002_swallow.py", "current transaction is aborted")
    assert snapshot(project.url) == before


def test_savepoints_in_a_python_migration_are_fine(project: Project) -> None:
    base(project)
    project.write("002_nested.py", py("with db.connection.begin_nested() as sp:\n"
                                      "    db.execute('INSERT INTO t VALUES (1)')\n    sp.rollback()\n"
                                      "db.execute('INSERT INTO t VALUES (2)')"))
    result = project.cli("upgrade")
    assert result.code == 0, result.err
    assert versions(project.url) == [1, 2]


def test_the_connection_is_usable_after_a_refused_commit(project: Project) -> None:
    base(project)
    project.write("002_manual.py", py("db.execute('COMMIT')"))
    assert project.cli("upgrade").code == 1
    project.write("002_manual.py", py("db.execute('INSERT INTO t VALUES (1)')"))
    result = project.cli("upgrade")
    assert result.code == 0, result.err
    assert versions(project.url) == [1, 2]


# --------------------------------------------------------------------------- passwords in every error path

SECRET = "Zq9-pass-w0rd"


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    user = parts.username or "user"
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}{port}"))


COMMANDS = [("status",), ("upgrade",), ("history",), ("validate",), ("rollback", "0"), ("stamp", "1"),
            ("check",), ("upgrade", "--dry-run")]


def assert_every_command_fails_without_the_password(project: Project, url: str, *secrets: str,
                                                    named: str = "") -> None:
    write_config(project.root, url)
    project.write("001_a.up.sql", CREATE_A)
    for command in COMMANDS:
        result = project.cli(*command)
        assert_clean_error(result, 2, "db: cannot open", named, secrets=secrets)
        verbose = project.cli("-v", *command)
        assert verbose.code == 2 and "Traceback" in verbose.err
        assert_no_secret(verbose, secrets)


def test_an_unreachable_server_never_shows_the_password(sqlite_project: Project) -> None:
    url = f"postgresql+psycopg://app:{SECRET}@127.0.0.1:1/app"
    assert_every_command_fails_without_the_password(sqlite_project, url, SECRET, named="app:***@127.0.0.1:1")


def test_a_wrong_password_on_postgresql_never_shows_either_password(sqlite_project: Project,
                                                                    postgres_url: str) -> None:
    real = urlsplit(postgres_url).password
    assert real
    url = with_password(postgres_url, SECRET)
    assert_every_command_fails_without_the_password(sqlite_project, url, SECRET, real,
                                                    named="password authentication failed")


def test_a_wrong_password_in_the_query_string_is_masked(sqlite_project: Project, postgres_url: str) -> None:
    parts = urlsplit(postgres_url)
    url = urlunsplit(parts._replace(netloc=f"{parts.username}@{parts.hostname}:{parts.port}",
                                    query=f"password={SECRET}"))
    assert_every_command_fails_without_the_password(sqlite_project, url, SECRET)


def test_a_database_that_does_not_exist_never_shows_the_password(sqlite_project: Project,
                                                                 postgres_url: str) -> None:
    parts = urlsplit(postgres_url)
    url = urlunsplit(parts._replace(path="/no_such_database_here"))
    real = parts.password
    assert real
    assert_every_command_fails_without_the_password(sqlite_project, url, real, named="no_such_database_here")


def test_a_missing_driver_never_shows_the_password(sqlite_project: Project) -> None:
    url = f"mysql+pymysql://app:{SECRET}@db.invalid/app"
    assert_every_command_fails_without_the_password(sqlite_project, url, SECRET, named="driver is missing")


def test_a_password_given_through_the_environment_is_masked(sqlite_project: Project,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIGRATOR_DB_URL", f"postgresql+psycopg://app:{SECRET}@127.0.0.1:1/app")
    sqlite_project.write("001_a.up.sql", CREATE_A)
    for args in (("upgrade",), ("-v", "upgrade"), ("status", "--json")):
        result = sqlite_project.cli(*args)
        assert result.code == 2
        assert_no_secret(result, [SECRET])


def test_a_failing_migration_on_postgresql_never_shows_the_password(postgres_url: str, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "proj"
    (root / "migrations" / "db").mkdir(parents=True)
    write_config(root, postgres_url)
    project = Project(root, postgres_url, capsys)
    real = urlsplit(postgres_url).password
    assert real
    project.write("001_bad.py", "def up(db):\n    db.execute(\"SELECT * FROM nowhere WHERE p = :p\", "
                                f"{{'p': '{real}'}})\n")
    result = project.cli("upgrade")
    assert_clean_error(result, 1, "001_bad.py", secrets=[real])
    assert_no_secret(project.cli("-v", "upgrade"), [real])


def test_a_password_with_a_space_is_masked_by_the_sql_backend(sqlite_project: Project) -> None:
    write_config(sqlite_project.root, "postgresql+psycopg://app:my secret pw@127.0.0.1:1/app")
    for args in (("status",), ("-v", "upgrade"), ("status", "--json")):
        result = sqlite_project.cli(*args)
        assert result.code == 2
        assert_no_secret(result, ["my secret pw", "secret"])


def test_mask_url_masks_a_password_with_a_space() -> None:
    from migrator.redact import mask_url

    assert "secret" not in mask_url("postgresql://app:my secret pw@db/app")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(password=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20))
def test_any_password_stays_hidden_when_the_server_is_unreachable(sqlite_project: Project, password: str) -> None:
    secret = "Zq9" + password
    write_config(sqlite_project.root, f"postgresql+psycopg://app:{quote(secret, safe='')}@127.0.0.1:1/app")
    for args in (("status",), ("-v", "upgrade")):
        result = sqlite_project.cli(*args)
        assert result.code == 2
        assert_no_secret(result, [secret, quote(secret, safe=""), "Zq9"])


# --------------------------------------------------------------------------- a read-only database

_libc = ctypes.CDLL(None, use_errno=True)
PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


def _as_unprivileged() -> None:
    """In the child: drop the capabilities that let root write read-only files (for the exec'd program too)."""
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            os._exit(97)


def permission_bits_apply() -> Callable[[], None] | None:
    """How to run a child for which chmod 0444 means read-only; skip when there is no way."""
    if os.geteuid() != 0:
        return None
    probe = run_cli_process(Path("/"), "--version", preexec_fn=_as_unprivileged)
    if probe.code == 97:
        pytest.skip("running as root and cannot drop CAP_DAC_OVERRIDE: chmod would not stop writes")
    return _as_unprivileged


@pytest.fixture
def readonly_file(sqlite_project: Project) -> tuple[Project, bytes, Callable[[], None] | None]:
    base(sqlite_project)
    sqlite_project.write("002_b.up.sql", "CREATE TABLE b (id INTEGER);\n")
    db = sqlite_project.root / "app.db"
    preexec = permission_bits_apply()
    db.chmod(0o444)
    return sqlite_project, db.read_bytes(), preexec


def test_a_read_only_database_file_fails_the_migration_and_stays_unchanged(
    readonly_file: tuple[Project, bytes, Callable[[], None] | None],
) -> None:
    project, before, preexec = readonly_file
    result = run_cli_process(project.root, "upgrade", preexec_fn=preexec)
    assert_clean_error(result, 1, "002_b.up.sql", "readonly database")
    assert (project.root / "app.db").read_bytes() == before


def test_a_read_only_database_folder_is_a_clear_error_and_changes_nothing(sqlite_project: Project) -> None:
    base(sqlite_project)
    sqlite_project.write("002_b.up.sql", "CREATE TABLE b (id INTEGER);\n")
    (sqlite_project.root / "app.db.migrator-lock").unlink()
    before = (sqlite_project.root / "app.db").read_bytes()
    preexec = permission_bits_apply()
    sqlite_project.root.chmod(0o555)
    try:
        result = run_cli_process(sqlite_project.root, "upgrade", preexec_fn=preexec)
    finally:
        sqlite_project.root.chmod(0o755)
    assert_clean_error(result, 2, "cannot create the lock file", "app.db.migrator-lock", "Permission denied")
    assert (sqlite_project.root / "app.db").read_bytes() == before


def test_a_read_only_sqlite_url_fails_cleanly_and_leaves_the_file_alone(sqlite_project: Project) -> None:
    before = base(sqlite_project)
    sqlite_project.write("002_b.up.sql", "CREATE TABLE b (id INTEGER);\n")
    db = sqlite_project.root / "app.db"
    content = db.read_bytes()
    write_config(sqlite_project.root, f"sqlite:///file:{db}?mode=ro&uri=true")
    result = sqlite_project.cli("upgrade")
    assert result.code in (1, 2)
    assert_clean_error(result, result.code, "readonly database")
    assert db.read_bytes() == content
    assert snapshot(sqlite_project.url) == before


# --------------------------------------------------------------------------- a full disk


def _file_size_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() fails with EFBIG instead of killing us
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="no RLIMIT_FSIZE on this platform")
def test_a_full_disk_during_a_migration_fails_it_and_keeps_the_previous_version(sqlite_project: Project) -> None:
    before = base(sqlite_project)
    db = sqlite_project.root / "app.db"
    sqlite_project.write("002_big.py", "def up(db):\n    db.execute('CREATE TABLE big (id INTEGER, v TEXT)')\n"
                                       "    for i in range(100):\n"
                                       "        db.execute('INSERT INTO big VALUES (:i, :v)',\n"
                                       "                   {'i': i, 'v': 'x' * 50000})\n")
    limit = db.stat().st_size + 1_000_000
    result = run_cli_process(sqlite_project.root, "upgrade", preexec_fn=_file_size_limit(limit))
    assert_clean_error(result, 1, "002_big.py", "disk")
    assert sqlite_integrity(db) == "ok"
    assert snapshot(sqlite_project.url) == before
    again = run_cli_process(sqlite_project.root, "upgrade")  # space is back: the same migration now applies
    assert again.code == 0, again.err
    assert versions(sqlite_project.url) == [1, 2]

