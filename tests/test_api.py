"""The library API: Migrator over a config, and the seed-shaped MigrationRunner."""

from __future__ import annotations

import sqlalchemy as sa

from conftest import Project
from migrator import MigrationFailed, MigrationRunner, Migrator
from migrator.events import Event, MigrationDone, PlanReady

UP = """\
def up(db):
    db.execute("CREATE TABLE t{n} (id INTEGER)")

def down(db):
    db.execute("DROP TABLE t{n}")
"""


def fill(project: Project, count: int = 3) -> None:
    for n in range(1, count + 1):
        project.write(f"{n:03d}_t{n}.py", UP.format(n=n))


def test_status_is_typed_per_backend_and_line(project: Project) -> None:
    fill(project)
    m = Migrator.from_config(project.root / "migrator.toml")
    m.upgrade("db", to=2)
    line = m.status()["db"].line()
    assert line is not None
    assert (line.current, [p.version for p in line.pending]) == (2, [3])


def test_rollback_returns_what_it_undid(project: Project) -> None:
    fill(project)
    m = Migrator.from_config(project.root / "migrator.toml")
    m.upgrade()
    result = m.rollback(1, backend="db")
    assert [s.migration.version for s in result.steps] == [3, 2]


def test_listener_receives_the_runner_events(project: Project) -> None:
    fill(project, 2)
    events: list[Event] = []
    Migrator.from_config(project.root / "migrator.toml", listener=events.append).upgrade()
    assert isinstance(events[0], PlanReady)
    assert [e.migration.version for e in events if isinstance(e, MigrationDone)] == [1, 2]


def test_upgrade_raises_migration_failed_naming_the_file(project: Project) -> None:
    project.write("001_bad.py", "def up(db):\n    db.execute('SELECT * FROM nowhere')\n")
    m = Migrator.from_config(project.root / "migrator.toml")
    try:
        m.upgrade()
    except MigrationFailed as exc:
        assert "001_bad.py" in str(exc) and exc.exit_code == 1 and exc.version == 1
    else:
        raise AssertionError("upgrade did not raise")


def test_migration_runner_takes_a_url_and_a_folder(project: Project) -> None:
    fill(project)
    runner = MigrationRunner(project.url, project.migrations)
    try:
        assert runner.get_current_version() == 0
        assert runner.run_migrations() == [1, 2, 3]
        assert runner.rollback(1) == [3, 2]
        assert runner.get_current_version() == 1
    finally:
        runner.close()


def test_migration_runner_takes_an_engine(project: Project) -> None:
    fill(project, 1)
    engine = sa.create_engine(project.url)
    try:
        runner = MigrationRunner(engine, project.migrations)
        runner.run_migrations()
        with engine.connect() as conn:
            assert sa.inspect(conn).has_table("t1")
        runner.close()
    finally:
        engine.dispose()
