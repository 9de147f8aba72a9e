"""``engine="ray"``: ``recreate_table``'s copy and ``reembed``'s new columns on a Ray cluster, committed once.

Ray is imported here only, and only when a helper runs with ``engine="ray"``
(the call's ``engine=`` or the backend's ``engine`` key, :mod:`migrator.engines`):
importing migrator, or running migrations on the local engine, never imports it.

Where it runs: the cluster ``RAY_ADDRESS`` names; when it is unset, a local Ray
started in this process (``address="local"``: never a cluster another user
started on the same machine). A Ray that the application already initialised
is used as it is.

How ``recreate_table`` runs on it (the model is lance-ray's, DESIGN.md 9: the
work is split per fragment across Ray workers and committed once):

1. The driver pins the table's version ``v`` and works out the new schema and
   the stamp exactly as on the local engine (:mod:`.recreate`).
2. One Ray task per fragment of ``v`` opens the dataset at ``v`` (same URI and
   storage options), streams that fragment through the same ``transform`` and
   the same column conformance (``recreate._stream``), and writes its rows as
   new, uncommitted data files (``lance.fragment.write_fragments`` in
   ``overwrite`` mode, as the local engine does). It returns the fragment
   metadata and its row counts; results are put together in the fragments'
   order, so the rows keep the local engine's order.
3. The driver checks the row counts, then the local engine's catch-up and
   cut-over run unchanged: rows appended meanwhile are transformed and added,
   and one ``Overwrite`` commit guarded on the version caught up to
   (:mod:`.guard`) carries the stamp. A failure anywhere before that commit
   leaves the table at its old version, stamp included; the data files the
   tasks wrote stay unreferenced (like a killed local copy's, DESIGN.md 8a).

Why not lance-ray's own write path: ``lance_ray.write_lance`` (its datasink)
commits the overwrite itself with no read version (an application's append
committed meanwhile would be silently discarded, DESIGN.md 8a), and its
fragment writer writes in append mode, which refuses a schema other than the
table's. So the tasks write with Lance's fragment writer and migrator commits
them with its guarded commit.

How ``reembed`` runs on it (:func:`add_columns`): lance-ray's ``add_columns``
model, one Ray task per fragment running Lance's ``LanceFragment.merge_columns``
with the batch UDF, one ``Merge`` commit on the version read. lance-ray's own
function is not called because Lance refuses a checkpoint inside
``merge_columns``: here the driver keeps ``reembed``'s checkpoint per fragment
(fragments it holds are not computed again; each finished one is recorded, in
the JSON Lance's own checkpoint uses, so a run on either engine resumes the
other's). The catch-up and the guarded swap are ``reembed``'s own, unchanged.

The transform (or embedding function) travels to the workers by pickle
(cloudpickle): one defined in the migration file goes by value; one imported
from an application module must be importable on the workers (install it
there, or pass it in the Ray ``runtime_env``), else one line names the module.
Indices are rebuilt by the driver after the commit, as on the local engine.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from migrator.errors import BackendUnavailable
from migrator.extras import install_command
from migrator.redact import mask_url

from .common import Report, no_report

REQUIRED_MODULES = ("ray", "lance_ray")

PROGRESS_EVERY_S = 10.0

# ray.init is not thread-safe; LanceDB lines migrate in parallel threads (jobs)
_INIT_LOCK = threading.Lock()


def missing_modules() -> list[str]:
    """The modules of the ``ray`` extra that are not installed (found without importing them)."""
    return [name for name in REQUIRED_MODULES if not _installed(name)]


def _installed(name: str) -> bool:
    if name in sys.modules:  # None there: made unimportable on purpose
        return sys.modules[name] is not None
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def connect(name: str, say: Report) -> Any:
    """The ``ray`` module, connected: to ``RAY_ADDRESS``, else a local Ray started here; one line if impossible."""
    missing = missing_modules()
    if missing:
        raise BackendUnavailable(f"{name}: engine='ray' needs `{install_command('ray')}` "
                                 f"({', '.join(missing)} not installed)")
    import ray

    with _INIT_LOCK:
        if ray.is_initialized():
            return ray
        address = os.environ.get("RAY_ADDRESS") or None
        where = f"the Ray cluster at RAY_ADDRESS={mask_url(address)}" if address else "a local Ray"
        say(f"connecting to {where}")
        try:
            with warnings.catch_warnings():
                # lancedb warns at every fork; Ray's start-up forks only to exec its own processes
                warnings.filterwarnings("ignore", message="lancedb fork support", category=RuntimeWarning)
                if address:
                    ray.init(address=address, ignore_reinit_error=True, logging_level="ERROR")
                else:
                    ray.init(address="local", ignore_reinit_error=True, include_dashboard=False,
                             logging_level="ERROR")
        except Exception as exc:
            raise BackendUnavailable(f"{name}: engine='ray' cannot start or reach {where}: "
                                     f"{_first_line(exc)}") from exc
    return ray


def copy_table(dataset: Any, target: Any, transform: Any, *, total: int, batch_size: int, counts: Any, name: str,
               say: Report, allow_row_count_change: bool) -> list[Any]:
    """Write ``dataset`` (pinned) through ``transform`` into uncommitted data files on Ray: their fragment metadata.

    ``counts`` (``recreate._Counts``) gets the rows read and written. Raises what the transform raised (on the
    worker), or RowCountMismatch; nothing is committed either way.
    """
    from .recreate import check_counts

    ray = connect(name, say)
    fragments = [f.fragment_id for f in dataset.get_fragments()]
    say(f"copying on Ray: {len(fragments)} fragment(s), one task each")
    shared = ray.put((target, transform))
    task = ray.remote(num_cpus=1)(_copy_fragment)
    refs = [task.remote(dataset.uri, int(dataset.version), dataset.initial_storage_options, fragment_id, shared,
                        batch_size, name) for fragment_id in fragments]
    results = _gather(ray, refs, name, say, total)
    written: list[Any] = []
    for metadata, read, wrote in results:
        written.extend(metadata)
        counts.read += read
        counts.written += wrote
    check_counts(counts, total, name, allow_row_count_change)
    return written


def add_columns(dataset: Any, compute: Callable[[Any], Any], output_schema: Any, *, read_columns: list[str],
                batch_size: int, checkpoint: Any, progress: Callable[[int], None], name: str, say: Report) -> None:
    """``dataset.add_columns`` of a batch UDF, on Ray: one task per fragment, one ``Merge`` commit on its version.

    lance-ray's ``add_columns`` runs Lance's ``LanceFragment.merge_columns`` per fragment on Ray workers and
    commits one ``Merge``; this does the same, and keeps Lance's checkpoint at the fragment level (Lance refuses a
    checkpoint inside ``merge_columns``): fragments ``checkpoint`` already holds are not computed again, and each
    fragment a task finishes is recorded there by the driver. The commit reads on ``dataset.version``: a writer that
    appended meanwhile makes Lance refuse it, as with the local ``add_columns`` (the caller retries; the
    checkpoint answers for the fragments done). ``compute(batch) -> batch`` travels to the workers by pickle.
    """
    import lance
    from lance.fragment import FragmentMetadata

    fragments = [int(f.fragment_id) for f in dataset.get_fragments()]
    if not fragments:  # an empty table: only the schema changes, nothing to spread
        dataset.add_columns(lance.batch_udf(output_schema=output_schema)(compute), read_columns=read_columns,
                            batch_size=batch_size)
        return
    ray = connect(name, say)
    done: dict[int, Any] = {}
    for fragment_id in fragments:
        cached = checkpoint.get_fragment(fragment_id) if checkpoint is not None else None
        if cached is not None:
            done[fragment_id] = FragmentMetadata.from_json(cached)
    todo = [f for f in fragments if f not in done]
    if not todo:  # the Merge needs the new schema, which a computed fragment gives: redo the last
        todo = [fragments[-1]]
    say(f"computing on Ray: {len(todo)} fragment(s), one task each"
        + (f" ({len(done)} from the checkpoint)" if done else ""))
    shared = ray.put((compute, output_schema))
    task = ray.remote(num_cpus=1)(_merge_fragment)
    refs = [task.remote(dataset.uri, int(dataset.version), dataset.initial_storage_options, fragment_id, shared,
                        read_columns, batch_size, name) for fragment_id in todo]
    schema: Any = None

    def finished(index: int, result: Any) -> None:
        nonlocal schema
        metadata, schema, rows = result
        done[todo[index]] = metadata
        if checkpoint is not None:
            checkpoint.insert_fragment(todo[index], json.dumps(metadata.to_json()))  # the JSON Lance's own holds
        progress(rows)

    _gather(ray, refs, name, no_report, 0, on_result=finished)
    operation = lance.LanceOperation.Merge([done[f] for f in fragments], schema)
    lance.LanceDataset.commit(dataset.uri, operation, read_version=int(dataset.version),
                              storage_options=dataset.initial_storage_options)


def _gather(ray: Any, refs: list[Any], name: str, say: Report, total: int,
            on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
    """Every task's result, in the order of ``refs``; the first failure cancels the rest and is raised."""
    results: dict[Any, Any] = {}
    position = {ref: i for i, ref in enumerate(refs)}
    pending = list(refs)
    last = time.monotonic()
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=PROGRESS_EVERY_S)
            for ref in ready:
                results[ref] = ray.get(ref)
                if on_result is not None:
                    on_result(position[ref], results[ref])
            if time.monotonic() - last >= PROGRESS_EVERY_S:
                last = time.monotonic()
                done = sum(r[1] for r in results.values())
                say(f"{done:,} of {total:,} rows rewritten on Ray ({len(results)} of {len(refs)} fragments)")
    except BaseException as exc:
        for ref in pending:
            ray.cancel(ref)
        raise _unwrap(ray, exc, name) from exc
    return [results[ref] for ref in refs]


def _unwrap(ray: Any, exc: BaseException, name: str) -> BaseException:
    """What to raise for a failed task: the worker's own exception (the transform's), else one line."""
    errors = ray.exceptions
    cause = getattr(exc, "cause", None) if isinstance(exc, errors.RayTaskError) else \
        getattr(exc, "client_exc", None) if isinstance(exc, errors.RaySystemError) else None
    module = _missing_module(cause)
    if module is not None:  # the transform (pickled by reference) or something it imports
        return BackendUnavailable(
            f"{name}: the Ray workers cannot import {module} (the transform's module, or one it imports): define "
            "the transform in the migration file, or install that module on the cluster (or pass it in Ray's "
            "runtime_env); nothing was committed")
    if isinstance(exc, errors.RayTaskError) and isinstance(cause, BaseException):
        return cause
    if isinstance(exc, errors.RayError):
        return RuntimeError(f"{name}: copying the table on Ray failed, nothing was committed: {_first_line(exc)}")
    return exc


def _missing_module(cause: Any) -> str | None:
    if isinstance(cause, ModuleNotFoundError):
        return cause.name or "a module"
    found = re.search(r"No module named '([^']+)'", str(cause)) if cause is not None else None
    return found.group(1) if found else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _copy_fragment(uri: str, version: int, storage_options: dict[str, str] | None, fragment_id: int,
                   shared: tuple[Any, Any], batch_size: int, name: str) -> tuple[list[Any], int, int]:
    """On a Ray worker: one fragment of version ``version`` through the transform into new data files."""
    import lance
    import pyarrow as pa

    from .common import no_report
    from .recreate import READ_AHEAD_BYTES, _apply, _Counts, _stream, _write

    target, transform = shared
    dataset = lance.dataset(uri, version=version, storage_options=storage_options)
    fragment = dataset.get_fragment(fragment_id)
    if fragment is None:  # the version is pinned: only a damaged table gets here
        raise RuntimeError(f"{name}: fragment {fragment_id} of Lance version {version} cannot be read")
    batches = iter(dataset.scanner(fragments=[fragment], batch_size=batch_size, io_buffer_size=READ_AHEAD_BYTES)
                   .to_batches())
    first = next(batches, None)
    if first is None:
        first = pa.RecordBatch.from_pylist([], schema=dataset.schema)
    counts = _Counts()
    # row counts are checked for the whole table by the driver (the same message as the local engine's)
    stream = _stream(name, first, _apply(transform, first), batches, transform, target, int(fragment.count_rows()),
                     counts, no_report, True)
    written = _write(dataset, target, stream, counts, name)
    return written, counts.read, counts.written


def _merge_fragment(uri: str, version: int, storage_options: dict[str, str] | None, fragment_id: int,
                    shared: tuple[Any, Any], read_columns: list[str], batch_size: int,
                    name: str) -> tuple[Any, Any, int]:
    """On a Ray worker: the new columns' data file of one fragment (``LanceFragment.merge_columns``), uncommitted."""
    import lance

    compute, output_schema = shared
    dataset = lance.dataset(uri, version=version, storage_options=storage_options)
    fragment = dataset.get_fragment(fragment_id)
    if fragment is None:  # the version is pinned: only a damaged table gets here
        raise RuntimeError(f"{name}: fragment {fragment_id} of Lance version {version} cannot be read")
    udf = lance.batch_udf(output_schema=output_schema)(compute)
    metadata, schema = fragment.merge_columns(udf, columns=read_columns, batch_size=batch_size)
    return metadata, schema, int(fragment.metadata.physical_rows or 0)
