"""Finding migration files: versions from names, checksums, import errors naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrator.errors import LoaderError
from migrator.loader import checksum, import_file, parse_name, scan


def test_version_and_name_come_from_the_file_name(tmp_path: Path) -> None:
    assert parse_name(tmp_path / "002_add_indexes.py", ".py") == (2, "add_indexes")


def test_a_file_without_a_leading_version_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(LoaderError, match=r"add_users\.py: migration file names must start with a version"):
        parse_name(tmp_path / "add_users.py", ".py")


def test_version_zero_is_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(LoaderError, match=r"out of range"):
        parse_name(tmp_path / "0_init.py", ".py")


def test_huge_version_is_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(LoaderError, match=r"out of range"):
        parse_name(tmp_path / f"{10**30}_big.py", ".py")


def test_scan_sorts_by_number_not_text_and_ignores_other_files(tmp_path: Path) -> None:
    for name in ["10_c.py", "2_b.py", "1_a.py", "__init__.py", ".hidden.py", "notes.txt"]:
        (tmp_path / name).write_text("")
    assert [f.version for f in scan(tmp_path, [".py"])] == [1, 2, 10]


def test_longest_suffix_wins(tmp_path: Path) -> None:
    (tmp_path / "1_a.up.sql").write_text("")
    (found,) = scan(tmp_path, [".sql", ".up.sql"])
    assert (found.kind, found.name) == (".up.sql", "a")


def test_checksum_covers_every_file_in_order(tmp_path: Path) -> None:
    up, down = tmp_path / "u", tmp_path / "d"
    up.write_bytes(b"up")
    down.write_bytes(b"down")
    assert checksum(up, down) != checksum(down, up) != checksum(up)


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "001_bad.py"
    path.write_text("def up(db):\n    return (\n")
    with pytest.raises(LoaderError, match=r"001_bad\.py:\d+: syntax error"):
        import_file(path)


def test_import_failure_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "001_bad.py"
    path.write_text("import does_not_exist_anywhere\n")
    with pytest.raises(LoaderError, match=r"001_bad\.py: failed to import: ModuleNotFoundError"):
        import_file(path)


def test_sys_exit_at_import_is_an_error_not_an_exit(tmp_path: Path) -> None:
    path = tmp_path / "001_bad.py"
    path.write_text("import sys\nsys.exit(3)\n")
    with pytest.raises(LoaderError, match=r"called sys\.exit\(3\)"):
        import_file(path)


def test_imported_module_sees_edits_on_reimport(tmp_path: Path) -> None:
    path = tmp_path / "001_a.py"
    path.write_text("VALUE = 1\n")
    assert import_file(path).VALUE == 1
    path.write_text("VALUE = 2\n")
    assert import_file(path).VALUE == 2


@given(st.text(min_size=1, max_size=40).filter(lambda s: "/" not in s and "\x00" not in s))
def test_any_file_name_either_parses_or_raises_loader_error(name: str) -> None:
    try:
        version, _ = parse_name(Path(name + ".py"), ".py")
    except LoaderError as exc:
        assert ".py" in str(exc)
    else:
        assert version >= 1
