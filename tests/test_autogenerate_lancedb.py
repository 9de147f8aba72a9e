"""`migrator new NAME --autogenerate` and `migrator check` against `target_schemas`, LanceDB backends.

Real LanceDB folders (one case on moto S3); every generated file is applied with `migrator upgrade` and the
comparison then finds nothing.
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import lancedb
import pyarrow as pa
import pytest
from s3 import S3Bucket

from conftest import Project
from migrator.lancedb import Index

DOCS_V1 = '''
    import pyarrow as pa
    from migrator.lancedb import Index

    SCHEMAS = {
        "docs": pa.schema([
            pa.field("id", pa.int64(), nullable=False),
            pa.field("text", pa.string()),
            pa.field("n", pa.int32()),
            pa.field("vector", pa.list_(pa.float32(), 4)),
        ]),
    }
    INDICES = {"docs": [Index("id")]}
'''

# each change kind: the schema of docs after it, a line the generated file must hold, the body of the transform
# that fills the stub (None: no stub), and a line `check` prints before
KINDS: dict[str, tuple[str, str, str | None, str]] = {
    "add nullable": (
        '''pa.field("id", pa.int64(), nullable=False), pa.field("text", pa.string()), pa.field("n", pa.int32()),
           pa.field("vector", pa.list_(pa.float32(), 4)), pa.field("tags", pa.list_(pa.string()))''',
        'add_columns(db, "docs", [pa.field("tags", pa.list_(pa.string()))])', None,
        "docs: add column tags (list<item: string>)"),
    "drop": (
        '''pa.field("id", pa.int64(), nullable=False), pa.field("n", pa.int32()),
           pa.field("vector", pa.list_(pa.float32(), 4))''',
        'drop_columns(db, "docs", ["text"])', None, "docs: drop column text"),
    "rename by metadata": (
        '''pa.field("id", pa.int64(), nullable=False),
           pa.field("body", pa.string(), metadata={"migrator.renamed_from": "text"}),
           pa.field("n", pa.int32()), pa.field("vector", pa.list_(pa.float32(), 4))''',
        'rename_column(db, "docs", "text", "body")', None, "docs: rename column text -> body"),
    "make nullable": (
        '''pa.field("id", pa.int64()), pa.field("text", pa.string()), pa.field("n", pa.int32()),
           pa.field("vector", pa.list_(pa.float32(), 4))''',
        'make_nullable(db, "docs", "id")', None, "docs: make id nullable"),
    "type change": (
        '''pa.field("id", pa.int64(), nullable=False), pa.field("text", pa.string()), pa.field("n", pa.string()),
           pa.field("vector", pa.list_(pa.float32(), 4))''',
        'recreate_table(db, "docs", schema=DOCS_SCHEMA, transform=transform)',
        'return batch.set_column(2, "n", pa.array([f"#{v}" for v in batch.column("n").to_pylist()]))',
        "docs: change the type of n: int32 -> string"),
    "vector dimension": (
        '''pa.field("id", pa.int64(), nullable=False), pa.field("text", pa.string()), pa.field("n", pa.int32()),
           pa.field("vector", pa.list_(pa.float32(), 8))''',
        'recreate_table(db, "docs", schema=DOCS_SCHEMA, transform=transform)',
        'return batch.set_column(3, "vector", pa.array([v + v for v in batch.column("vector").to_pylist()], '
        'pa.list_(pa.float32(), 8)))',
        "docs: change the type of vector: fixed_size_list<item: float>[4] -> fixed_size_list<item: float>[8]"),
    "add not null": (
        '''pa.field("id", pa.int64(), nullable=False), pa.field("text", pa.string()), pa.field("n", pa.int32()),
           pa.field("vector", pa.list_(pa.float32(), 4)), pa.field("score", pa.float64(), nullable=False)''',
        'add_computed_column(db, "docs", pa.field("score", pa.float64(), nullable=False), compute_score)',
        'return pa.array([float(i) for i in batch.column("id").to_pylist()])',
        "docs: add column score (double, not null)"),
    "castable type change": (
        '''pa.field("id", pa.int64(), nullable=False), pa.field("text", pa.string()), pa.field("n", pa.int64()),
           pa.field("vector", pa.list_(pa.float32(), 4))''',
        'cast_column(db, "docs", "n", pa.int64())', None,
        "docs: change the type of n: int32 -> int64"),
    "make not null": (
        '''pa.field("id", pa.int64(), nullable=False), pa.field("text", pa.string(), nullable=False),
           pa.field("n", pa.int32()), pa.field("vector", pa.list_(pa.float32(), 4))''',
        'recreate_table(db, "docs", schema=DOCS_SCHEMA, transform=transform)', "return batch",
        "docs: make text not null"),
    "field metadata": (
        '''pa.field("id", pa.int64(), nullable=False), pa.field("text", pa.string(), metadata={"doc": "the body"}),
           pa.field("n", pa.int32()), pa.field("vector", pa.list_(pa.float32(), 4))''',
        'recreate_table(db, "docs", schema=DOCS_SCHEMA)  # the values are copied', None,
        "docs: change the field metadata of text"),
}


# -- the project ----------------------------------------------------------------------------------------------------


def lance_models(tmp_path: Path, capsys: pytest.CaptureFixture[str], uri: str = "data/lance",
                 storage: dict[str, str] | None = None) -> Project:
    """A project with one LanceDB backend ``vectors`` (migrations in migrations/db) and no target yet."""
    root = tmp_path / "proj"
    (root / "migrations" / "db").mkdir(parents=True)
    options = ""
    if storage:
        options = "storage_options = { " + ", ".join(f'{k} = "{v}"' for k, v in storage.items()) + " }\n"
    (root / "base.toml").write_text(textwrap.dedent(f'''\
        default_backend = "vectors"

        [backends.vectors]
        type = "lancedb"
        uri = "{uri}"
        migrations = "migrations/db"
        ''') + options, encoding="utf-8")
    (root / "migrator.toml").write_text((root / "base.toml").read_text(), encoding="utf-8")
    return Project(root, uri, capsys)


def schemas(project: Project, text: str) -> str:
    """Write ``text`` as a module of its own (modules stay imported) and point target_schemas at its SCHEMAS."""
    module = f"schemas_{uuid.uuid4().hex[:12]}"
    (project.root / f"{module}.py").write_text(textwrap.dedent(text), encoding="utf-8")
    target(project, f'"{module}:SCHEMAS"')
    return module


def target(project: Project, value: str) -> None:
    base = (project.root / "base.toml").read_text(encoding="utf-8")
    (project.root / "migrator.toml").write_text(base + f"target_schemas = {value}\n", encoding="utf-8")


def docs_schema(fields: str) -> str:
    return ("import pyarrow as pa\nfrom migrator.lancedb import Index\n\n"
            f"SCHEMAS = {{\"docs\": pa.schema([\n{textwrap.dedent(fields).strip()}\n])}}\n"
            'INDICES = {"docs": [Index("id")]}\n')


def files(project: Project) -> list[str]:
    return sorted(p.name for p in project.migrations.iterdir() if p.suffix == ".py")


def generate(project: Project, name: str) -> list[Path]:
    made = project.cli("new", name, "--autogenerate")
    assert made.code == 0, made.err
    return [Path(line.removeprefix("created ")) for line in made.out.splitlines() if line.startswith("created ")]


def upgraded(project: Project) -> None:
    result = project.cli("upgrade")
    assert result.code == 0, result.err


def checked_clean(project: Project) -> None:
    result = project.cli("check")
    assert (result.code, result.out.strip()) == (0, "up to date"), result.out + result.err


def ruff_accepts(path: Path) -> None:
    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run([str(ruff), "check", "--isolated", "--line-length", "120", "--select",
                             "E,F,W,I,B,UP,SIM,RUF", path.name], capture_output=True, text=True, check=False,
                            cwd=path.parent)  # a project of its own: migrator is a third-party import there
    assert result.returncode == 0, result.stdout + result.stderr


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add(str(node.module))
    return found


def db_of(project: Project) -> Any:
    return lancedb.connect(str(project.root / "data" / "lance"))


def start_docs(project: Project, rows: int = 5) -> None:
    """docs v1 generated from DOCS_V1 and applied, with ``rows`` rows."""
    schemas(project, DOCS_V1)
    generate(project, "create docs")
    upgraded(project)
    db_of(project).open_table("docs").add(
        [{"id": i, "text": f"t{i}", "n": i, "vector": [float(i)] * 4} for i in range(rows)])


def fill_stub(path: Path, body: str) -> None:
    text = path.read_text(encoding="utf-8")
    start = text.index("    raise NotImplementedError(")
    end = text.index("\n", start)
    path.write_text(text[:start] + "    " + body + text[end:], encoding="utf-8")


# -- generating and applying ----------------------------------------------------------------------------------------


def test_a_new_table_becomes_create_table_with_its_declared_indices(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    project = lance_models(tmp_path, capsys)
    schemas(project, DOCS_V1)
    (path,) = generate(project, "create docs")
    assert path.name == "001_create_docs.py"
    text = path.read_text(encoding="utf-8")
    assert '@migration(table="docs", version=1, description="create docs",\n           indices=[Index("id")])' in text
    assert 'db.create_table("docs", schema=DOCS_SCHEMA)' in text
    assert imported_modules(path) == {"pyarrow", "migrator.lancedb"}
    ruff_accepts(path)
    upgraded(project)
    assert [i.name for i in db_of(project).open_table("docs").list_indices()] == ["id_idx"]
    checked_clean(project)


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_change_kind_generates_its_call_and_applying_it_matches_the_schemas(
        kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fields, call, fill, line = KINDS[kind]
    project = lance_models(tmp_path, capsys)
    start_docs(project)
    schemas(project, docs_schema(fields))
    before = project.cli("check")
    assert before.code == 1 and f"vectors: models differ from the database: {line}" in before.out
    (path,) = generate(project, kind)
    text = path.read_text(encoding="utf-8")
    assert path.name == f"002_{kind.replace(' ', '_')}.py"
    assert '@migration(table="docs", version=2,' in text
    assert f"    {call}\n" in text
    assert imported_modules(path) <= {"pyarrow", "migrator.lancedb"}
    ruff_accepts(path)
    assert ("raise NotImplementedError(" in text) == (fill is not None)
    if fill is not None:
        fill_stub(path, fill)
    upgraded(project)
    assert db_of(project).open_table("docs").count_rows() == 5
    checked_clean(project)


def test_an_unfilled_transform_stub_fails_the_upgrade_and_leaves_the_table_as_it_was(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fields = KINDS["type change"][0]
    project = lance_models(tmp_path, capsys)
    start_docs(project)
    before = db_of(project).open_table("docs").to_arrow()
    schemas(project, docs_schema(fields))
    (path,) = generate(project, "retype n")
    text = path.read_text(encoding="utf-8")
    assert "# - 'n': convert every value from int32 to string" in text
    result = project.cli("upgrade")
    assert result.code == 1
    assert "fill in the transform of docs v2" in result.err
    assert db_of(project).open_table("docs").to_arrow().equals(before)


def test_native_steps_run_before_the_recreation_in_one_migration(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    project = lance_models(tmp_path, capsys)
    start_docs(project)
    schemas(project, docs_schema('''
        pa.field("id", pa.int64()), pa.field("body", pa.string(), metadata={"migrator.renamed_from": "text"}),
        pa.field("vector", pa.list_(pa.float32(), 8)), pa.field("tags", pa.list_(pa.string())),
        pa.field("score", pa.float64(), nullable=False)'''))
    (path,) = generate(project, "several")
    body = path.read_text(encoding="utf-8").split("def several(db):\n")[1]
    assert body.splitlines() == [
        '    rename_column(db, "docs", "text", "body")',
        '    drop_columns(db, "docs", ["n"])',
        '    make_nullable(db, "docs", "id")',
        '    add_columns(db, "docs", [pa.field("tags", pa.list_(pa.string()))])',
        '    add_computed_column(db, "docs", pa.field("score", pa.float64(), nullable=False), compute_score)',
        '    recreate_table(db, "docs", schema=DOCS_SCHEMA, transform=transform)',
    ]
    fill_stub(path, KINDS["add not null"][2])  # compute_score comes first, then the transform
    fill_stub(path, 'return batch.set_column(batch.schema.get_field_index("vector"), "vector", pa.array('
                    '[v + v for v in batch.column("vector").to_pylist()], pa.list_(pa.float32(), 8)))')
    upgraded(project)
    assert db_of(project).open_table("docs").to_arrow().column("body").to_pylist() == [f"t{i}" for i in range(5)]
    checked_clean(project)


def test_a_recreation_keeps_every_declared_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = lance_models(tmp_path, capsys)
    start_docs(project)
    fields, _, fill, _ = KINDS["vector dimension"]
    assert fill is not None
    schemas(project, docs_schema(fields).replace('[Index("id")]', '[Index("id"), Index("n", kind="BITMAP")]'))
    (path,) = generate(project, "wider")
    assert 'indices=[Index("id"), Index("n", kind="BITMAP")])' in path.read_text(encoding="utf-8")
    fill_stub(path, fill)
    upgraded(project)
    assert {i.name for i in db_of(project).open_table("docs").list_indices()} == {"id_idx", "n_idx"}
    checked_clean(project)


def test_an_undeclared_index_is_reported_and_no_file_is_written_for_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = lance_models(tmp_path, capsys)
    start_docs(project)
    schemas(project, DOCS_V1.replace('INDICES = {"docs": [Index("id")]}', 'INDICES = {"docs": []}'))
    made = project.cli("new", "indices", "--autogenerate")
    assert made.code == 0
    assert made.out.splitlines() == [
        "vectors: docs: index id_idx is not declared in INDICES (left alone)",
        "vectors: nothing written: migrator never drops a table or an index by itself",
    ]
    assert files(project) == ["001_create_docs.py"]
    assert [i.name for i in db_of(project).open_table("docs").list_indices()] == ["id_idx"]


def test_a_rename_without_the_metadata_key_is_a_drop_and_an_add(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    project = lance_models(tmp_path, capsys)
    start_docs(project)
    schemas(project, docs_schema('''
        pa.field("id", pa.int64(), nullable=False), pa.field("body", pa.string()), pa.field("n", pa.int32()),
        pa.field("vector", pa.list_(pa.float32(), 4))'''))
    (path,) = generate(project, "body")
    text = path.read_text(encoding="utf-8")
    assert "rename_column" not in text
    assert 'drop_columns(db, "docs", ["text"])' in text and 'pa.field("body", pa.string())' in text


def test_a_changed_index_goes_into_the_decorator_and_is_rebuilt(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    project = lance_models(tmp_path, capsys)
    start_docs(project)
    schemas(project, DOCS_V1.replace('INDICES = {"docs": [Index("id")]}',
                                     'INDICES = {"docs": [Index("id", kind="BITMAP"), Index("text", kind="FTS")]}'))
    check = project.cli("check")
    assert check.code == 1
    assert 'docs: change index id_idx: Index("id") -> Index("id", kind="BITMAP")' in check.out
    assert "docs: add index text_idx (FTS on text)" in check.out
    (path,) = generate(project, "indices")
    text = path.read_text(encoding="utf-8")
    assert 'indices=[Index("id", kind="BITMAP"), Index("text", kind="FTS")])' in text
    ruff_accepts(path)
    upgraded(project)
    kinds = {i.name: i.index_type for i in db_of(project).open_table("docs").list_indices()}
    assert kinds == {"id_idx": "Bitmap", "text_idx": "FTS"}
    checked_clean(project)


def test_each_changed_table_gets_its_own_file_and_its_own_next_version(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    project = lance_models(tmp_path, capsys)
    start_docs(project)
    two = docs_schema(KINDS["add nullable"][0]).replace(
        "])}", '''
        ]), "users": pa.schema([pa.field("name", pa.string())])}''')
    schemas(project, two)
    paths = generate(project, "next")
    assert [p.name for p in paths] == ["002_next_docs.py", "003_next_users.py"]
    assert '@migration(table="docs", version=2,' in paths[0].read_text(encoding="utf-8")
    assert '@migration(table="users", version=1,' in paths[1].read_text(encoding="utf-8")
    upgraded(project)
    checked_clean(project)


def test_schema_literals_round_trip_exactly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wanted = pa.schema([
        pa.field("id", pa.uint64(), nullable=False, metadata={"doc": "primary key", "quote": "it's \"x\""}),
        pa.field("vector", pa.list_(pa.float16(), 3), nullable=False),
        pa.field("named", pa.list_(pa.field("v", pa.float32()), 2)),
        pa.field("tags", pa.large_list(pa.large_string())),
        pa.field("at", pa.timestamp("us", tz="Europe/Paris")),
        pa.field("day", pa.date32()), pa.field("t", pa.time64("ns")), pa.field("d", pa.duration("ms")),
        pa.field("price", pa.decimal128(12, 3)), pa.field("hash", pa.binary(16)), pa.field("raw", pa.binary()),
        pa.field("props", pa.struct([pa.field("a", pa.int8(), nullable=False), pa.field("b", pa.bool_())])),
        pa.field("attrs", pa.map_(pa.string(), pa.float64())),
        pa.field("kind", pa.dictionary(pa.int32(), pa.string())),
    ], metadata={"app": "notes", "ünï": "çødé"})
    from migrator.backends.lancedb.autogen import schema_code

    assert eval(schema_code(wanted), {"pa": pa}).equals(wanted, check_metadata=True)

    project = lance_models(tmp_path, capsys)
    module = f"schemas_{uuid.uuid4().hex[:12]}"
    sys.modules.pop(module, None)
    project.root.joinpath(f"{module}.py").write_text("", encoding="utf-8")
    target(project, f'"{module}:SCHEMAS"')
    sys.path.insert(0, str(project.root))
    try:
        importlib.import_module(module).SCHEMAS = {"everything": wanted}  # type: ignore[attr-defined]
        (path,) = generate(project, "everything")
    finally:
        sys.path.remove(str(project.root))
    spec = importlib.util.spec_from_file_location("generated", path)
    assert spec is not None and spec.loader is not None
    generated = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generated)
    assert generated.EVERYTHING_SCHEMA.equals(wanted, check_metadata=True)
    ruff_accepts(path)
    upgraded(project)
    assert project.cli("new", "again", "--autogenerate").out.strip() == (
        "vectors: no changes: the database matches the models; nothing written")


# -- nothing to do, tables left alone, check --------------------------------------------------------------------------


def test_nothing_to_do_says_so_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = lance_models(tmp_path, capsys)
    start_docs(project)
    schemas(project, DOCS_V1)
    result = project.cli("new", "nothing", "--autogenerate")
    assert (result.code, result.out.strip()) == (
        0, "vectors: no changes: the database matches the models; nothing written")
    assert files(project) == ["001_create_docs.py"]


def test_a_table_missing_from_the_schemas_is_reported_by_check_and_never_dropped(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = lance_models(tmp_path, capsys)
    start_docs(project)
    db_of(project).create_table("stray", data=[{"a": 1}])
    result = project.cli("check")
    assert result.code == 1
    assert ("vectors: models differ from the database: table stray is in the database but not in "
            "target_schemas (left alone, never dropped)") in result.out
    assert "table_migrations" not in result.out
    made = project.cli("new", "drop stray?", "--autogenerate")
    assert made.code == 0 and "nothing written" in made.out
    assert files(project) == ["001_create_docs.py"]
    assert "stray" in db_of(project).list_tables().tables


def test_check_for_the_backend_fails_listing_every_difference(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    project = lance_models(tmp_path, capsys)
    start_docs(project)
    schemas(project, docs_schema(KINDS["drop"][0]).replace(
        "])}", ''']), "users": pa.schema([pa.field("name", pa.string())])}'''))
    result = project.cli("check", "--backend", "vectors")
    assert result.code == 1
    assert result.out.splitlines() == [
        "vectors: models differ from the database: docs: drop column text",
        "vectors: models differ from the database: users: create table users (1 column)",
    ]


def test_check_compares_a_database_that_does_not_exist_yet_without_creating_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = lance_models(tmp_path, capsys)
    schemas(project, DOCS_V1)
    result = project.cli("check")
    assert result.code == 1 and "vectors: models differ from the database: docs: create table docs (4 columns)" \
        in result.out
    assert not (project.root / "data").exists()


# -- config errors ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "module", "expected"), [
    ("5", None, "target_schemas must be a string 'package.module:attribute' (got int)"),
    ('"no_colon"', None, "target_schemas 'no_colon' must have the form 'package.module:attribute'"),
    ('"missing_module_xyz:SCHEMAS"', None, "target_schemas 'missing_module_xyz:SCHEMAS': cannot import "
                                           "'missing_module_xyz': ModuleNotFoundError"),
    ('"{m}:NOPE"', "SCHEMAS = {}\n", "has no attribute 'NOPE'"),
    ('"{m}:SCHEMAS"', "SCHEMAS = [1]\n", "is a list, not a dict of table name -> pyarrow.Schema"),
    ('"{m}:SCHEMAS"', "SCHEMAS = {'docs': 'text'}\n", "table 'docs' maps to a str, not a pyarrow.Schema"),
    ('"{m}:SCHEMAS"', "SCHEMAS = {'bad name!': None}\n", "'bad name!' is not a LanceDB table name"),
    ('"{m}:SCHEMAS"', "import pyarrow as pa\nSCHEMAS = {'docs': pa.schema([('a', pa.int8())])}\n"
                      "INDICES = {'docs': ['id']}\n", "table 'docs' holds 'id', not an Index(...)"),
    ('"{m}:SCHEMAS"', "import pyarrow as pa\nfrom migrator.lancedb import Index\n"
                      "SCHEMAS = {'docs': pa.schema([('a', pa.int8())])}\nINDICES = {'docs': [Index('b')]}\n",
     "table 'docs' index 'b_idx': column 'b' is not in its schema"),
    ('"{m}:SCHEMAS"', "import pyarrow as pa\nSCHEMAS = {'table_migrations_history': pa.schema([('a', pa.int8())])}\n",
     "table 'table_migrations_history' is migrator's own bookkeeping table"),
])
@pytest.mark.parametrize("command", [("check",), ("new", "x", "--autogenerate")])
def test_a_bad_target_schemas_is_one_line_naming_file_key_and_table(
        value: str, module: str | None, expected: str, command: tuple[str, ...], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    project = lance_models(tmp_path, capsys)
    name = f"schemas_{uuid.uuid4().hex[:12]}"
    if module is not None:
        (project.root / f"{name}.py").write_text(module, encoding="utf-8")
    target(project, value.replace("{m}", name))
    result = project.cli(*command)
    assert result.code == 2
    (line,) = result.err.strip().splitlines()
    assert line.startswith(f"error: {project.root / 'migrator.toml'} [backends.vectors]: ")
    assert expected in line
    assert files(project) == [] and not (project.root / "data").exists()


# -- object storage --------------------------------------------------------------------------------------------------


def test_autogenerate_and_check_on_s3(s3_bucket: S3Bucket, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    project = lance_models(tmp_path, capsys, uri=s3_bucket.uri(), storage=s3_bucket.storage_options)
    schemas(project, DOCS_V1)
    generate(project, "create docs")
    upgraded(project)
    checked_clean(project)
    schemas(project, docs_schema(KINDS["add nullable"][0]))
    (path,) = generate(project, "tags")
    assert 'add_columns(db, "docs", [pa.field("tags", pa.list_(pa.string()))])' in path.read_text(encoding="utf-8")
    upgraded(project)
    checked_clean(project)
    assert "s3cr3t" not in capsys.readouterr().out


def test_index_specs_render_back_to_the_same_index() -> None:
    from migrator.backends.lancedb.autogen import index_code
    from migrator.backends.lancedb.indices import same_index

    for spec in [Index("id"), Index("v", kind="IVF_PQ", metric="cosine", num_sub_vectors=8, num_partitions=4),
                 Index("t", kind="FTS", name="t_fts", options={"with_position": True}), Index("a", min_rows=10)]:
        assert same_index(eval(index_code(spec), {"Index": Index}), spec)


def test_odd_table_and_column_names_make_files_that_load_and_apply(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    project = lance_models(tmp_path, capsys)
    schemas(project, '''
        import pyarrow as pa

        SCHEMAS = {
            "my-docs.v2": pa.schema([pa.field("it's", pa.string()), pa.field('naïve "col"', pa.int64())]),
            "2024": pa.schema([pa.field("class", pa.string())]),
        }
    ''')
    paths = generate(project, "class")
    assert [p.name for p in paths] == ["001_class_my_docs_v2.py", "002_class_2024.py"]
    for path in paths:
        ruff_accepts(path)
    assert "def migrate_class(db):" in paths[0].read_text(encoding="utf-8")
    assert "T2024_SCHEMA = pa.schema([" in paths[1].read_text(encoding="utf-8")
    upgraded(project)
    assert db_of(project).open_table("my-docs.v2").schema.names == ["it's", 'naïve "col"']
    checked_clean(project)


def test_a_long_table_name_keeps_the_transform_stub_within_the_line_length() -> None:
    from migrator.backends.lancedb.autogen import RENDERERS, Change, render_create

    name = "t" * 100
    live, wanted = pa.field("n", pa.int32()), pa.field("n", pa.string())
    _, preamble = RENDERERS["recreate_table"](name, [Change("type", "n", wanted, live)], pa.schema([wanted]), 7)
    stub = preamble[1]
    assert "raise NotImplementedError(" in stub
    assert max(len(line) for line in stub.splitlines()) <= 120
    assert render_create(name, pa.schema([wanted]), [], 1).body.startswith("db.create_table(")
