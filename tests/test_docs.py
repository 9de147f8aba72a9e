"""Every code block in docs/ runs: each page's blocks in order in one temporary project folder (tests/docs_runner.py).

A page that needs a feature not in this tree yet says so with ``<!-- requires: FEATURE -->`` and is skipped only
while ``FEATURES[FEATURE]`` finds it missing; an unknown feature name fails the page.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import pytest
from docs_runner import PageError, PageRun, parse, required_features

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(DOCS.glob("*.md"))


def lancedb_missing() -> str | None:
    if importlib.util.find_spec("lancedb") is None or importlib.util.find_spec("pyarrow") is None:
        return "lancedb and pyarrow are not installed (pip install 'migrator[lancedb]')"
    return None


def pytest_plugin_missing() -> str | None:
    if importlib.util.find_spec("migrator.testing") is None:
        return "the pytest plugin (migrator.testing) is not in this tree yet"
    return None


def lancedb_autogenerate_missing() -> str | None:
    from migrator.backends import BACKEND_TYPES

    if "target_schemas" not in BACKEND_TYPES["lancedb"].optional:
        return "LanceDB autogenerate (the target_schemas key) is not in this tree yet"
    return lancedb_missing()


FEATURES: dict[str, Callable[[], str | None]] = {
    "lancedb": lancedb_missing,
    "pytest-plugin": pytest_plugin_missing,
    "lancedb-autogenerate": lancedb_autogenerate_missing,
}


def page_params() -> list[object]:
    params: list[object] = []
    for page in PAGES:
        marks = [pytest.mark.lancedb] if "lancedb" in required_features(page) else []
        params.append(pytest.param(page, id=page.name, marks=marks))
    return params


def test_docs_folder_has_the_guide_pages() -> None:
    names = {page.name for page in PAGES}
    assert {"getting-started.md", "ci.md", "testing.md", "deploying.md", "recovering.md"} <= names


# A page runs some twenty real processes, a few of which import lancedb (about 4 s of CPU each): under a minute
# on a quiet machine, but several on a loaded one, so the page gets more than the suite's 300 s default.
@pytest.mark.timeout(900)
@pytest.mark.parametrize("page", page_params())
def test_every_block_of_the_page_runs(page: Path, tmp_path: Path) -> None:
    for feature in required_features(page):
        if feature not in FEATURES:
            pytest.fail(f"{page.name}: unknown <!-- requires: {feature} --> (known: {', '.join(FEATURES)})")
        reason = FEATURES[feature]()
        if reason:
            pytest.skip(f"{page.name}: {reason}")
    blocks = parse(page)
    project = tmp_path / "project"
    project.mkdir()
    ran = list(PageRun(project).run(blocks))
    assert len(ran) == len(blocks)


# The runner itself: it must fail on what it cannot check, or a page would pass by running nothing.

def write_page(tmp_path: Path, text: str) -> Path:
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    return page


def run_page(tmp_path: Path, text: str) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    list(PageRun(project).run(parse(write_page(tmp_path, text))))
    return project


def test_runner_fails_on_a_block_kind_it_does_not_know(tmp_path: Path) -> None:
    with pytest.raises(PageError, match=r"page.md:2: a ```yaml block is not a kind the runner knows"):
        run_page(tmp_path, "Text\n```yaml\na: 1\n```\n")


def test_runner_fails_on_a_toml_block_without_a_file_annotation(tmp_path: Path) -> None:
    with pytest.raises(PageError, match=r"needs a first line `# file: PATH`"):
        run_page(tmp_path, "```toml\na = 1\n```\n")


def test_runner_skips_only_the_block_marked_not_run(tmp_path: Path) -> None:
    project = run_page(tmp_path, "<!-- not-run: a PostgreSQL URL -->\n```yaml\na: 1\n```\n"
                                 "```toml\n# file: conf/a.toml\na = 1\n```\n")
    assert (project / "conf" / "a.toml").read_text() == "a = 1\n"


def test_runner_fails_when_expected_output_is_missing(tmp_path: Path) -> None:
    with pytest.raises(PageError, match=r"page.md:2: `\$ echo hello`: expected line 'goodbye' not found"):
        run_page(tmp_path, "```console\n$ echo hello\ngoodbye\n```\n")


def test_runner_matches_output_loosely_in_order_with_ellipsis(tmp_path: Path) -> None:
    run_page(tmp_path, "```console\n$ printf 'a  1\\nnoise\\nb 2 (13 ms)\\n'\na 1\nb 2 (... ms)\n```\n")
    (tmp_path / "again").mkdir()
    with pytest.raises(PageError, match="expected line 'b' not found"):
        run_page(tmp_path / "again", "```console\n$ printf 'b\\na 1\\n'\na 1\nb\n```\n")


def test_runner_fails_on_a_command_that_exits_non_zero(tmp_path: Path) -> None:
    with pytest.raises(PageError, match=r"'exit 3' exited with 3"):
        run_page(tmp_path, "```console\n$ exit 3\n```\n")


def test_runner_checks_a_python_scripts_output_against_the_text_block_after_it(tmp_path: Path) -> None:
    with pytest.raises(PageError, match=r"page.md:4: python script: expected line '2' not found"):
        run_page(tmp_path, "```python\nprint(1)\n```\n```text\n2\n```\n")


def test_runner_fails_on_an_unclosed_block(tmp_path: Path) -> None:
    with pytest.raises(PageError, match=r"page.md:1: a ``` block that is never closed"):
        run_page(tmp_path, "```console\n$ echo hi\n")
