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
FRAMEWORK_IMPORT = {
    "pytorch": re.compile(
        r"^\s*(import|from) tensorflow|^\s*(import|from) keras", re.M
    ),
    "tensorflow": re.compile(r"^\s*(import|from) torch\b", re.M),
}


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


def test_page_opens_with_its_title_then_the_folded_setup_cell(nb):
    title, setup = nb["cells"][0], nb["cells"][1]
    assert title["cell_type"] == "markdown" and src(title).startswith("# ")
    assert setup["cell_type"] == "code" and "setup" in tags(setup)
    assert src(setup) == book.setup_source(), "run `make stamp`, then re-execute"
    assert "hide-cell" in tags(setup), "the environment report is folded"


def test_setup_silences_tensorflow_before_any_import(nb):
    setup = src(nb["cells"][1])
    quiet = setup.index('TF_CPP_MIN_LOG_LEVEL"] = "2"')
    assert quiet < setup.index("import fusion_lib")


def test_setup_installs_only_when_missing_and_fails_in_one_sentence():
    setup = book.setup_source()
    assert "except ImportError" in setup and "check=True" not in setup
    assert book.repository_url() in setup, "the URL comes from _config.yml"


def test_stored_executed_in_order_with_clean_outputs(nb):
    counts = [c["execution_count"] for c in code_cells(nb)]
    assert counts == list(range(1, len(counts) + 1)), (
        "re-execute in a fresh kernel: make run NB=..."
    )
    assert (
        book.problems_in(__import__("nbformat").reads(json.dumps(nb), as_version=4))
        == []
    )


def test_gpu_cells_skip_themselves_without_cuda(nb):
    for cell in code_cells(nb):
        if "gpu" in tags(cell) or "cuda" in src(cell):
            assert {"gpu", "nbval-ignore-output"} <= tags(cell), src(cell)[:80]
            assert "skip-execution" not in tags(cell), "gpu cells run where CUDA is"
            assert src(cell).startswith("if fusion_lib.cuda_or_skip():"), src(cell)[:80]


def test_every_framework_cell_has_its_twin(nb):
    """A pytorch cell is followed by its tensorflow twin (one tab bar, two tabs)."""
    cells = nb["cells"]
    for i, cell in enumerate(cells):
        if "pytorch" in tags(cell):
            twin = cells[i + 1] if i + 1 < len(cells) else {}
            assert "tensorflow" in tags(twin), f"no tensorflow twin: {src(cell)[:60]}"
        if "tensorflow" in tags(cell):
            assert i > 0 and "pytorch" in tags(cells[i - 1]), (
                f"no pytorch twin before: {src(cell)[:80]}"
            )


def test_figures_are_numbered_captioned_and_described(nb):
    figures = [c for c in code_cells(nb)
               if any("image/png" in o.get("data", {}) for o in c.get("outputs", []))]
    assert len(figures) >= 3, "each chapter has at least 3 figures"
    names = []
    for cell in figures:
        meta = cell.get("metadata", {}).get("mystnb", {})
        assert meta.get("figure", {}).get("caption"), f"no caption: {src(cell)[:60]}"
        assert meta.get("image", {}).get("alt"), f"alt text missing: {src(cell)[:80]}"
        names.append(meta["figure"].get("name"))
    assert None not in names and len(set(names)) == len(names), "unique figure names"


def test_lines_fit_88_columns(nb):
    for cell in code_cells(nb):
        for line in src(cell).splitlines():
            assert len(line) <= 88, f"code line of {len(line)} columns: {line[:60]}"
        for out in cell.get("outputs", []):
            text = out.get("text") or out.get("data", {}).get("text/plain", "")
            text = "".join(text) if isinstance(text, list) else text
            if "image/png" in out.get("data", {}):
                continue
            for line in text.splitlines():
                assert len(line) <= 88, f"printed {len(line)} columns: {line[:60]}"


TRAINING = re.compile(r"\b(fit_classifier|train_classifier|experiments\.run)\(")


def test_cells_that_train_are_compared_with_the_stated_tolerance(nb):
    for cell in code_cells(nb):
        if TRAINING.search(src(cell)) and cell.get("outputs"):
            assert "approx" in tags(cell), f"tag it approx: {src(cell)[:80]}"


def test_framework_cells_use_only_their_framework(nb):
    for cell in code_cells(nb):
        for framework, other in FRAMEWORK_IMPORT.items():
            if framework in tags(cell):
                assert not other.search(src(cell)), (
                    f"a {framework} cell imports the other framework"
                )


def test_both_frameworks_appear(nb):
    all_tags = set().union(*(tags(c) for c in code_cells(nb)))
    assert {"pytorch", "tensorflow"} <= all_tags


def _notebook(nb):
    import nbformat

    return nbformat.reads(json.dumps(nb), as_version=4)


def test_exercises_solutions_and_a_check(nb):
    found = book.exercises_of(_notebook(nb))
    assert len(found) >= 3, "each chapter has at least 3 exercises"
    unsolved = [e["label"] for e in found if not e["roles"]]
    assert not unsolved, f"exercises without a solution: {unsolved}"
    assert any(e["auto"] for e in found), "one auto-checked exercise"
    assert any(
        "fusion_lib.exercises import check_" in src(c) for c in code_cells(nb)
    ), "checked by fusion_lib.exercises"


def test_exercises_are_in_nbgrader_markup(nb):
    """README, "Adding a chapter", step 4: the markup nbgrader and the student edition
    read, as `python tools/book.py nbgrader-markup` writes it."""
    import nbformat
    from nbgrader.nbgraderformat import MetadataValidator

    notebook = _notebook(nb)
    assert nbformat.writes(book.nbgrader_markup(notebook)) == nbformat.writes(
        notebook
    ), "run `python tools/book.py nbgrader-markup chapters/<this>.ipynb`, then make run"
    MetadataValidator().validate_nb(notebook)
    for cell in notebook.cells:
        if book.BEGIN in cell.source or book.END in cell.source:
            assert book.role(cell) == "answer", "solution regions only in answer cells"
            assert cell.source.count(book.BEGIN) == cell.source.count(book.END) == 1
        if book.role(cell) == "check":
            assert book.CHECK_CALL.search(cell.source), "a check cell calls a check"


def test_the_student_edition_holds_no_solution_and_all_the_lesson(nb):
    from test_grading import assert_no_solution

    chapter = _notebook(nb)
    marked = book.nbgrader_markup(chapter)
    student = book.student_edition(chapter)
    assert_no_solution(student, marked, "student edition")
    assert len(student.cells) == len(marked.cells)
    for mine, theirs in zip(student.cells, marked.cells):
        if book.role(theirs) is None:  # the lesson: as it is, outputs included
            assert mine == theirs
        else:
            assert mine.cell_type == theirs.cell_type
    exercises = [c for c in student.cells if book.role(c) == "statement"]
    assert len(exercises) == len(book.exercises_of(chapter)), "exercises kept"


def test_citations_exist_in_references_bib(nb):
    bib = (ROOT / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    cited = set(
        re.findall(r"\{cite\}`([^`]+)`", "\n".join(src(c) for c in nb["cells"]))
    )
    assert cited, "each chapter cites its sources"
    assert cited <= keys, f"unknown citation keys: {cited - keys}"


def test_no_pinned_frameworks_in_notebooks(nb):
    for cell in nb["cells"]:
        assert not re.search(r"(torch|tensorflow|keras)==", src(cell)), (
            "never pin torch/TF in a notebook"
        )


def test_introduction_map_links_every_chapter_in_the_toc():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    chapters = [e["file"] for e in toc["chapters"] if e["file"].startswith("chapters/")]
    intro = load(ROOT / f"{toc['root']}.ipynb")
    text = "\n".join(src(c) for c in intro["cells"] if c["cell_type"] == "markdown")
    linked = set(re.findall(r"\]\((\d\d_\w+)\.ipynb\)", text))
    assert linked == {c.removeprefix("chapters/") for c in chapters}, (
        "the introduction's map links exactly the chapters in _toc.yml"
    )
