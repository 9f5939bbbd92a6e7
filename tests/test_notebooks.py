"""The notebook conventions, enforced (README: 'Adding a chapter')."""

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import book  # noqa: E402

NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))
FRAMEWORK_IMPORT = {"pytorch": re.compile(r"^\s*(import|from) tensorflow|^\s*(import|from) keras", re.M),
                    "tensorflow": re.compile(r"^\s*(import|from) torch\b", re.M)}


def load(path):
    return json.loads(path.read_text())


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def src(cell):
    return "".join(cell["source"])


def tags(cell):
    return set(cell.get("metadata", {}).get("tags", []))


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.name)
def nb(request):
    return load(request.param)


def test_every_chapter_is_in_the_toc():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    listed = {toc["root"]} | {e["file"] for e in toc["chapters"]}
    assert {f"chapters/{p.stem}" for p in NOTEBOOKS} <= listed


def test_first_cell_is_the_stamped_setup_cell(nb):
    first = nb["cells"][0]
    assert first["cell_type"] == "code" and "setup" in tags(first)
    assert src(first) == book.setup_source(), "run `make stamp`, then re-execute the notebook"


def test_setup_silences_tensorflow_before_any_import(nb):
    setup = src(nb["cells"][0])
    assert setup.index('TF_CPP_MIN_LOG_LEVEL"] = "2"') < setup.index("import fusion_lib")


def test_stored_executed_in_order_with_clean_outputs(nb):
    counts = [c["execution_count"] for c in code_cells(nb) if "gpu" not in tags(c)]
    assert counts == list(range(1, len(counts) + 1)), "re-execute in a fresh kernel: make run NB=..."
    assert book.problems_in(__import__("nbformat").reads(json.dumps(nb), as_version=4)) == []


def test_gpu_cells_are_tagged_to_be_skipped(nb):
    for cell in code_cells(nb):
        if "gpu" in tags(cell) or "cuda" in src(cell):
            assert {"gpu", "skip-execution", "nbval-ignore-output"} <= tags(cell), src(cell)[:80]


def test_framework_cells_use_only_their_framework(nb):
    for cell in code_cells(nb):
        for framework, other in FRAMEWORK_IMPORT.items():
            if framework in tags(cell):
                assert not other.search(src(cell)), f"a {framework} cell imports the other framework"


def test_both_frameworks_appear(nb):
    all_tags = set().union(*(tags(c) for c in code_cells(nb)))
    assert {"pytorch", "tensorflow"} <= all_tags


def test_exercises_solutions_and_a_check(nb):
    markdown = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    exercises = re.findall(r":::\{exercise\}.*\n:label: (\S+)", markdown)
    assert len(exercises) >= 3, "each chapter has at least 3 exercises"
    solved = set(re.findall(r":::\{solution(?:-start)?\} (\S+)", markdown))
    assert set(exercises) <= solved, f"exercises without a solution: {set(exercises) - solved}"
    assert any("fusion_lib.exercises import check_" in src(c) for c in code_cells(nb)), "one auto-checked exercise"


def test_citations_exist_in_references_bib(nb):
    bib = (ROOT / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    cited = set(re.findall(r"\{cite\}`([^`]+)`", "\n".join(src(c) for c in nb["cells"])))
    assert cited, "each chapter cites its sources"
    assert cited <= keys, f"unknown citation keys: {cited - keys}"


def test_no_pinned_frameworks_in_notebooks(nb):
    for cell in nb["cells"]:
        assert not re.search(r"(torch|tensorflow|keras)==", src(cell)), "never pin torch/TF in a notebook"


def test_student_copy_drops_every_solution_and_keeps_exercises(nb):
    import nbformat

    notebook = nbformat.reads(json.dumps(nb), as_version=4)
    n_exercises = sum(":::{exercise}" in c.source for c in notebook.cells)
    assert book.strip_solutions(notebook) > 0
    text = "\n".join(c.source for c in notebook.cells)
    assert ":::{solution" not in text
    assert sum(":::{exercise}" in c.source for c in notebook.cells) == n_exercises
    assert "raise NotImplementedError" in text, "the reader's exercise cells stay"
