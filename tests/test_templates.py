"""A migration file `migrator new` wrote and nobody edited fails by name instead of applying nothing.

The Python template's up() and down() raise; an .up.sql / .down.sql template (its marker comment and no statement)
is refused when loaded, before anything runs. Once edited, the same files apply and roll back.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from conftest import Project


def tables(project: Project) -> set[str]:
    engine = sa.create_engine(project.url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def applied(project: Project) -> list[int]:
    (backend,) = json.loads(project.cli("status", "--json").out)["backends"]
    return sorted(v for line in backend["lines"] for v in line["applied"])


def test_an_unedited_python_template_fails_naming_the_file(project: Project) -> None:
    assert project.cli("new", "add users").code == 0
    result = project.cli("upgrade")
    assert result.code == 1
    (line,) = result.err.splitlines()
    assert "001_add_users.py" in line and "NotImplementedError: write up(db)" in line, line
    assert applied(project) == []


def test_an_unedited_python_down_fails_the_rollback_naming_the_file(project: Project) -> None:
    assert project.cli("new", "add users").code == 0
    path = project.migrations / "001_add_users.py"
    path.write_text(path.read_text().replace(
        'raise NotImplementedError("write up(db)', 'db.execute("CREATE TABLE users (id INTEGER)")  # ("write up(db)'))
    assert project.cli("upgrade").code == 0
    result = project.cli("rollback", "0")
    assert result.code == 1
    (line,) = result.err.splitlines()
    assert "001_add_users.py" in line and "NotImplementedError: write down(db)" in line, line
    assert "users" in tables(project) and applied(project) == [1]


@pytest.mark.parametrize("unedited", ["up", "down"])
def test_an_unedited_sql_template_is_refused_by_name_before_anything_runs(project: Project, unedited: str) -> None:
    project.write("001_first.up.sql", "CREATE TABLE first (id INTEGER);\n")
    assert project.cli("new", "add users", "--sql").code == 0
    edited = "down" if unedited == "up" else "up"
    path = project.migrations / f"002_add_users.{edited}.sql"
    path.write_text(path.read_text() + ("CREATE TABLE users (id INTEGER);\n" if edited == "up" else
                                        "DROP TABLE users;\n"))
    result = project.cli("upgrade")
    assert result.code == 2
    (line,) = result.err.splitlines()
    assert f"002_add_users.{unedited}.sql: still the template `migrator new` wrote" in line, line
    assert "first" not in tables(project) and applied(project) == []


def test_edited_templates_apply_and_roll_back(project: Project) -> None:
    assert project.cli("new", "add users", "--sql").code == 0
    assert project.cli("new", "add notes").code == 0
    up, down = (project.migrations / f"001_add_users.{d}.sql" for d in ("up", "down"))
    up.write_text(up.read_text() + "CREATE TABLE users (id INTEGER);\n")    # the template's comment is kept
    down.write_text(down.read_text() + "DROP TABLE users;\n")
    notes = project.migrations / "002_add_notes.py"
    text = notes.read_text().replace('raise NotImplementedError("write up(db)',
                                     'db.execute("CREATE TABLE notes (id INTEGER)")#')
    notes.write_text(text.replace('raise NotImplementedError("write down(db)', 'db.execute("DROP TABLE notes")#'))
    assert project.cli("upgrade").code == 0
    assert {"users", "notes"} <= tables(project) and sorted(applied(project)) == [1, 2]
    assert project.cli("rollback", "0").code == 0
    assert not {"users", "notes"} & tables(project)


def test_a_hand_written_sql_file_without_statements_still_runs(project: Project) -> None:
    project.write("001_nothing.up.sql", "-- nothing to do on this database\n")
    assert project.cli("upgrade").code == 0
    assert applied(project) == [1]
