"""engine="ray": recreate_table on a real local 2-CPU Ray gives what the local engine gives, and fails as safely.

Run with ``nox -s ray`` (or ``pytest -m ray``): not in the default session (Ray is a large optional extra and
starting it takes seconds). Every comparison runs the same migration files twice, once per engine, on two
databases made the same way.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("lance_ray")

import lancedb  # noqa: E402
import pyarrow as pa  # noqa: E402
from lance_scripts.testlib import assert_seed_view_true, backend, upgrade, write_files  # noqa: E402

from migrator.backends.lancedb import LanceBackend  # noqa: E402
from migrator.errors import BackendUnavailable, MigrationFailed  # noqa: E402
from migrator.lancedb import recreate_table, reembed, table_stamp  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.lancedb]

TESTS = Path(__file__).resolve().parent

# v1: 1,200 memos in four fragments (one per append), a BTREE, a BITMAP and an IVF_PQ index with parameters
CREATE = '''
    import numpy as np
    import pyarrow as pa
    from migrator.lancedb import Index, migration

    def memos(start, n):
        ids = np.arange(start, start + n, dtype=np.int64)
        rng = np.random.default_rng(start)
        return pa.table({
            "id": ids,
            "title": [f"memo {i}" for i in ids],
            "category": [("work", "home", "misc")[i % 3] for i in ids],
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(rng.random(n * 8, dtype=np.float32)), 8),
        })

    @migration(table="memos", version=1, description="create memos", indices=[
        Index("id"), Index("category", kind="BITMAP"),
        Index("vector", kind="IVF_PQ", metric="cosine", num_partitions=2, num_sub_vectors=2)])
    def create_memos(db):
        table = db.create_table("memos", data=memos(0, 300))
        for start in (300, 600, 900):
            table.add(memos(start, 300))
    '''

# v2: a new column computed from the row, a changed type, a dropped column; the engine comes from ENGINE
RECREATE = '''
    import pyarrow as pa
    import pyarrow.compute as pc
    from migrator.lancedb import migration, recreate_table

    def rewrite(batch):
        {hook}
        title = batch.column("title")
        return pa.RecordBatch.from_arrays(
            [batch.column("id"), title, batch.column("vector"), pc.utf8_length(title).cast(pa.int32())],
            names=["id", "title", "vector", "title_len"])

    @migration(table="memos", version=2, description="rewrite memos")
    def rewrite_memos(db):
        recreate_table(db, "memos", transform=rewrite, batch_size=100{engine})
    '''


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Any:
    """A real local Ray with 2 CPUs; test modules importable on its workers (as an app's own code would be)."""
    path = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR",
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield ray
    ray.shutdown()


def project(root: Path, *, engine_arg: str | None = None, hook: str = "pass") -> Path:
    """Migration files under ``root/migrations``; ``engine_arg`` is written into the recreate_table call."""
    return write_files(root / "migrations", {
        "001_create.py": CREATE,
        "002_rewrite.py": RECREATE.replace("{hook}", hook).replace(
            "{engine}", f", engine={engine_arg!r}" if engine_arg else ""),
    })


def run(root: Path, *, engine: str = "local", engine_arg: str | None = None, hook: str = "pass",
        to: int | None = None, lines: list[str] | None = None) -> tuple[LanceBackend, list[str]]:
    """Upgrade ``root/db`` with the backend's ``engine`` key; progress lines into ``lines`` (kept on failure)."""
    migrations = project(root, engine_arg=engine_arg, hook=hook)
    b = backend(root / "db", migrations)
    b.engine = engine
    lines = [] if lines is None else lines
    upgrade(b, to=to, report=lines.append)
    return b, lines


def copied_on_ray(lines: list[str]) -> bool:
    return any("copying on Ray: 4 fragment(s), one task each" in line for line in lines)


def snapshot(root: Path) -> dict[str, Any]:
    """What a user sees of the table: rows in order, schema with metadata, indices, stamp, seed bookkeeping."""
    db = lancedb.connect(str(root / "db"))
    table = db.open_table("memos")
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    return {
        "rows": table.to_arrow().to_pylist(),
        "schema": table.schema.remove_metadata(),
        "metadata": meta,
        "indices": sorted((i.name, i.index_type, tuple(i.columns)) for i in table.list_indices()),
        "stamp": table_stamp(db, "memos"),
        "books": assert_seed_view_true(root / "db"),
    }


def test_a_recreation_on_ray_leaves_what_the_local_engine_leaves(tmp_path: Path) -> None:
    run(tmp_path / "local", engine="local")
    _, lines = run(tmp_path / "ray", engine="ray")
    local, on_ray = snapshot(tmp_path / "local"), snapshot(tmp_path / "ray")
    assert copied_on_ray(lines), lines
    assert len(on_ray["rows"]) == 1200 and on_ray["rows"][5]["title_len"] == len("memo 5")
    assert on_ray["rows"] == local["rows"]                  # same rows, same order
    assert on_ray["schema"] == local["schema"]
    assert on_ray["metadata"] == local["metadata"]
    assert on_ray["indices"] == local["indices"] == [("id_idx", "BTree", ("id",)),
                                                     ("vector_idx", "IvfPq", ("vector",))]
    assert on_ray["stamp"] == local["stamp"] == 2
    assert on_ray["books"] == local["books"] == {"memos": 2}


def test_the_recreate_table_argument_overrides_the_backend_engine_key(tmp_path: Path) -> None:
    _, on_ray = run(tmp_path / "a", engine="local", engine_arg="ray")
    _, local = run(tmp_path / "b", engine="ray", engine_arg="local")
    assert copied_on_ray(on_ray), on_ray
    assert not any("Ray" in line for line in local), local
    assert snapshot(tmp_path / "a")["rows"] == snapshot(tmp_path / "b")["rows"]


def test_a_transform_failing_on_a_ray_worker_leaves_the_table_at_its_old_version_and_stamp(tmp_path: Path) -> None:
    root = tmp_path / "p"
    run(root, engine="ray", to=1)
    before = snapshot(root)
    version = lancedb.connect(str(root / "db")).open_table("memos").version
    hook = 'if 1000 in batch.column("id").to_pylist(): raise ValueError("memo 1000 cannot be rewritten")'
    lines: list[str] = []
    with pytest.raises(MigrationFailed) as err:
        run(root, engine="ray", hook=hook, lines=lines)
    assert copied_on_ray(lines), lines
    (line,) = str(err.value).splitlines()
    assert "memos v2" in line and "ValueError: memo 1000 cannot be rewritten" in line, line
    assert lancedb.connect(str(root / "db")).open_table("memos").version == version
    after = snapshot(root)
    assert after == before and after["stamp"] == 1 and after["books"] == {"memos": 1}


def test_a_transform_that_drops_rows_on_ray_is_refused_like_on_the_local_engine(tmp_path: Path) -> None:
    errors = {}
    for engine in ("local", "ray"):
        root = tmp_path / engine
        run(root, engine=engine, to=1)
        before = snapshot(root)
        lines: list[str] = []
        with pytest.raises(MigrationFailed) as err:
            run(root, engine=engine, hook='batch = batch.slice(1)', lines=lines)
        assert copied_on_ray(lines) == (engine == "ray"), lines
        errors[engine] = str(err.value).split(" failed: ", 1)[1].split(";")[0]
        assert snapshot(root) == before
    assert errors["ray"] == errors["local"] == \
        "RowCountMismatch: recreate_table('memos'): the transform turned 1,200 rows into 1,188"


def test_rows_an_application_appends_during_the_ray_copy_are_transformed_and_kept(tmp_path: Path) -> None:
    """A real second writer: the first Ray task appends one row (once, across processes) while the copy runs."""
    root = tmp_path / "p"
    run(root, engine="ray", to=1)
    marker, uri = tmp_path / "appended", root / "db"
    hook = textwrap.dedent(f'''\
        import os
        if 600 in batch.column("id").to_pylist():  # the third fragment: a Ray task, not the driver
            try:
                os.close(os.open({str(marker)!r}, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                pass
            else:
                import lancedb
                from lance_scripts.testlib import memo_rows
                row = memo_rows(1, start=5000, dim=8).select(["id", "title", "category", "vector"])
                lancedb.connect({str(uri)!r}).open_table("memos").add(row)
    ''').replace("\n", "\n        ")
    _, lines = run(root, engine="ray", hook=hook)
    assert copied_on_ray(lines) and marker.exists()
    rows = snapshot(root)["rows"]
    assert len(rows) == 1201 and rows[-1]["id"] == 5000 and rows[-1]["title_len"] == len("memo 5000")
    assert any("caught up with 1 row(s)" in line for line in lines), lines
    assert snapshot(root)["stamp"] == 2


def test_a_transform_the_ray_workers_cannot_import_is_one_line_and_commits_nothing(tmp_path: Path) -> None:
    root = tmp_path / "p"
    run(root, engine="ray", to=1)
    (tmp_path / "driver_only").mkdir()
    (tmp_path / "driver_only" / "onlyhere.py").write_text("def same(batch):\n    return batch\n")
    sys.path.insert(0, str(tmp_path / "driver_only"))
    try:
        import onlyhere
        db = lancedb.connect(str(root / "db"))
        version = db.open_table("memos").version
        with pytest.raises(BackendUnavailable) as err:
            recreate_table(db, "memos", transform=onlyhere.same, engine="ray")
    finally:
        sys.path.remove(str(tmp_path / "driver_only"))
        sys.modules.pop("onlyhere", None)
    (line,) = str(err.value).splitlines()
    assert line.startswith("memos: the Ray workers cannot import onlyhere"), line
    assert db.open_table("memos").version == version


def test_an_unknown_engine_argument_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    db = lancedb.connect(str(tmp_path / "db"))
    db.create_table("t", data=pa.table({"id": [1]}))
    with pytest.raises(ValueError, match=r"^recreate_table: engine must be one of 'local', 'ray' \(got 'spark'\)$"):
        recreate_table(db, "t", engine="spark")
    assert db.open_table("t").version == 1


def test_migrator_upgrade_starts_its_own_local_ray_when_ray_address_is_unset(tmp_path: Path) -> None:
    """The CLI in a child process: no Ray running there, RAY_ADDRESS unset, engine = "ray" in the config."""
    project(tmp_path)
    (tmp_path / "migrator.toml").write_text('[backends.vec]\ntype = "lancedb"\nuri = "db"\n'
                                            'migrations = "migrations"\nengine = "ray"\n')
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.run([sys.executable, "-m", "migrator", "upgrade"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "connecting to a local Ray" in proc.stdout + proc.stderr
    assert "copying on Ray: 4 fragment(s)" in proc.stdout + proc.stderr
    assert snapshot(tmp_path)["stamp"] == 2


def test_kill_9_of_the_migrating_process_during_the_ray_copy_commits_nothing_and_the_next_run_finishes(
        tmp_path: Path) -> None:
    """SIGKILL the `migrator upgrade` process while a Ray task is copying; then upgrade again (local engine)."""
    import psutil

    marker = tmp_path / "copying"
    hook = (f'if 600 in batch.column("id").to_pylist():\n'
            f'            open({str(marker)!r}, "w").close()\n'
            f'            import time; time.sleep(60)')
    project(tmp_path, hook=hook)
    (tmp_path / "migrator.toml").write_text('[backends.vec]\ntype = "lancedb"\nuri = "db"\n'
                                            'migrations = "migrations"\nengine = "ray"\n')
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    with open(tmp_path / "out.txt", "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "migrator", "upgrade"], cwd=tmp_path, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    started: list[Any] = []
    try:
        for _ in range(3000):  # the Ray task reached the third fragment
            if marker.exists() or proc.poll() is not None:
                break
            subprocess.run(["sleep", "0.1"], check=True)
        assert marker.exists(), (tmp_path / "out.txt").read_text()
        started = psutil.Process(proc.pid).children(recursive=True)   # the local Ray it started
        proc.kill()
        proc.wait()
    finally:
        for child in started:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        if proc.poll() is None:
            proc.kill()
    killed = snapshot(tmp_path)
    assert killed["stamp"] == 1 and killed["books"] == {"memos": 1}
    assert "title_len" not in killed["schema"].names and len(killed["rows"]) == 1200
    run(tmp_path, engine="local")
    done = snapshot(tmp_path)
    assert done["stamp"] == 2 and done["books"] == {"memos": 2}
    assert [r["title_len"] for r in done["rows"]] == [len(f"memo {i}") for i in range(1200)]


# -- reembed on Ray --------------------------------------------------------------------------------------------

REEMBED_DIM = 32


def counting_embedder(counter: Path, dim: int, fail_at: int | None = None) -> Any:
    """lance_scripts' deterministic embedder that appends each call's row count to ``counter`` (from any process)."""
    from lance_scripts.reembed_lib import embedder, ids_of

    inner = embedder(dim)

    def embed(batch: pa.RecordBatch) -> Any:
        if fail_at is not None and fail_at in ids_of(batch):
            raise ValueError(f"the embedding service is down at doc {fail_at}")
        with open(counter, "a", encoding="utf-8") as f:
            f.write(f"{batch.num_rows}\n")
        return inner(batch)

    return embed


def docs(root: Path) -> Any:
    """3,000 docs in three fragments with a BTREE, a BITMAP and an IVF_PQ index (test_lancedb_reembed's table)."""
    from test_lancedb_reembed import make_docs

    db = lancedb.connect(str(root))
    make_docs(db)
    return db


def test_reembed_on_ray_leaves_what_the_local_engine_leaves(tmp_path: Path) -> None:
    from lance_scripts.reembed_lib import embedded_rows
    from test_lancedb_reembed import VECTOR_INDEX, assert_embedded, data_files

    results, tables, lines = {}, {}, []
    for engine in ("local", "ray"):
        db = docs(tmp_path / engine)
        before = data_files(db.open_table("docs"), {"id", "text", "category"})
        results[engine] = reembed(db, "docs", embed=counting_embedder(tmp_path / f"{engine}.count", REEMBED_DIM),
                                  model="m2", dim=REEMBED_DIM, batch_size=250, index=VECTOR_INDEX, engine=engine,
                                  report=lines.append if engine == "ray" else None)
        tables[engine] = db.open_table("docs")
        assert data_files(tables[engine], {"id", "text", "category"}) == before   # nothing else rewritten
        assert embedded_rows(str(tmp_path / f"{engine}.count")) == 3000
    assert any("computing on Ray: 3 fragment(s), one task each" in line for line in lines), lines
    local, on_ray = tables["local"], tables["ray"]
    assert_embedded(on_ray, REEMBED_DIM)
    assert on_ray.to_arrow().equals(local.to_arrow())                             # rows, order, schema, metadata
    assert sorted((i.name, i.index_type, tuple(i.columns)) for i in on_ray.list_indices()) == \
        sorted((i.name, i.index_type, tuple(i.columns)) for i in local.list_indices())
    assert results["ray"].rows == results["local"].rows == 3000
    assert results["ray"].indices_built == results["local"].indices_built == ("vector_idx",)


def test_reembed_on_ray_resumes_from_the_fragments_its_failed_run_finished(tmp_path: Path) -> None:
    from lance_scripts.reembed_lib import embedded_rows
    from test_lancedb_reembed import assert_embedded

    db = docs(tmp_path / "db")
    version = db.open_table("docs").version
    first, second = tmp_path / "first.count", tmp_path / "second.count"
    with pytest.raises(RuntimeError, match="the embedding service is down at doc 2500"):
        reembed(db, "docs", embed=counting_embedder(first, REEMBED_DIM, fail_at=2500), model="m2", dim=REEMBED_DIM,
                batch_size=250, engine="ray")
    table = db.open_table("docs")
    assert table.version == version and "vector_model" not in table.schema.names   # nothing committed
    result = reembed(db, "docs", embed=counting_embedder(second, REEMBED_DIM), model="m2", dim=REEMBED_DIM,
                     batch_size=250, engine="ray")
    assert_embedded(db.open_table("docs"), REEMBED_DIM)
    again = embedded_rows(str(second))
    assert result.rows_resumed >= 1000 and again == 3000 - result.rows_resumed   # finished fragments not again


def test_the_backend_engine_key_runs_a_migrations_reembed_on_ray(tmp_path: Path) -> None:
    files = write_files(tmp_path / "migrations", {
        "001_docs.py": '''
            from lance_scripts.reembed_lib import doc_rows
            from migrator.lancedb import migration

            @migration(table="docs", version=1, description="create docs")
            def create_docs(db):
                table = db.create_table("docs", data=doc_rows(500))
                table.add(doc_rows(500, 500))
            ''',
        "002_switch.py": f'''
            from lance_scripts.reembed_lib import embedder
            from migrator.lancedb import migration, reembed

            @migration(table="docs", version=2, description="switch the model")
            def switch(db):
                reembed(db, "docs", embed=embedder({REEMBED_DIM}), model="m2", dim={REEMBED_DIM}, batch_size=100)
            ''',
    })
    b = backend(tmp_path / "db", files)
    b.engine = "ray"
    lines: list[str] = []
    upgrade(b, report=lines.append)
    assert any("computing on Ray: 2 fragment(s), one task each" in line for line in lines), lines
    from test_lancedb_reembed import assert_embedded

    db = lancedb.connect(str(tmp_path / "db"))
    assert_embedded(db.open_table("docs"), REEMBED_DIM)
    assert table_stamp(db, "docs") == 2 and assert_seed_view_true(tmp_path / "db") == {"docs": 2}


def test_reembed_of_an_empty_table_on_ray_changes_its_schema_as_the_local_engine_does(tmp_path: Path) -> None:
    from lance_scripts.reembed_lib import doc_rows, embedder

    schemas = {}
    for engine in ("local", "ray"):
        db = lancedb.connect(str(tmp_path / engine))
        db.create_table("docs", data=doc_rows(0))
        reembed(db, "docs", embed=embedder(REEMBED_DIM), model="m2", dim=REEMBED_DIM, engine=engine)
        schemas[engine] = db.open_table("docs").schema
        assert db.open_table("docs").count_rows() == 0
    assert schemas["ray"] == schemas["local"] and "vector_model" in schemas["ray"].names
