"""The Colab editions (colab/ and colab/student/, by tools/colab.py): in sync,
readable, answers folded in the book's and absent from the student's."""

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import book  # noqa: E402

import colab  # noqa: E402

FORM = re.compile(r'^# @title Solution to Exercise \d+ \{ display-mode: "form" \}\n')
RAW_MYST = {
    "a directive": re.compile(r"^ {0,3}(`{3,}|:{3,})\{", re.M),
    "a role": re.compile(r"\{(cite|numref|ref|eq|doc|math)(:\w+)?\}`"),
    "a target": re.compile(r"^\s*\([^()\s]+\)=\s*$", re.M),
    "a directive option": re.compile(r"^:(label|class|name):", re.M),
}
CHAPTERS = [d for d in colab.toc_files() if (ROOT / f"{d}.ipynb").exists()]


def outside_code(text):
    """Markdown without its fenced code blocks (which may show MyST on purpose)."""
    return re.sub(
        r"^ {0,3}(`{3,}|~{3,})[^{\n]*\n.*?^ {0,3}\1\s*$", "", text, flags=re.M | re.S
    )


def markdown(nb):
    return [c.source for c in nb.cells if c.cell_type == "markdown"]


def solutions(nb):
    """A chapter's solution cells: nbgrader's (answer code, written answers), or those
    inside a gated solution (solution-start ... -end, the form before the markup)."""
    inside, found = False, []
    for cell in nb.cells:
        if cell.cell_type == "markdown" and colab.GATE_START.search(cell.source):
            inside = True
        elif cell.cell_type == "markdown" and colab.GATE_END.search(cell.source):
            inside = False
        elif inside or book.role(cell) in ("answer", "written"):
            found.append(cell)
    return found


@pytest.fixture(scope="module")
def editions():
    """{docname: (chapter, Colab edition)} for every chapter, as committed."""
    return {
        d: (
            nbformat.read(ROOT / f"{d}.ipynb", as_version=4),
            nbformat.read(ROOT / "colab" / f"{d}.ipynb", as_version=4),
        )
        for d in CHAPTERS
    }


@pytest.fixture(scope="module")
def bib():
    return colab.Bibliography()


def test_the_committed_edition_is_up_to_date():
    assert colab.stale() == [], (
        "run `make colab` (python tools/colab.py) and commit colab/"
    )


def test_the_chapters_convert_without_warnings():
    assert colab.build()[1] == []


@pytest.mark.parametrize("docname", CHAPTERS)
def test_no_raw_myst_in_the_edition(editions, docname):
    _, edition = editions[docname]
    for i, text in enumerate(markdown(edition)):
        for what, pattern in RAW_MYST.items():
            assert not pattern.search(outside_code(text)), (
                f"markdown cell {i} shows {what}:\n{text[:300]}"
            )


@pytest.mark.parametrize("docname", CHAPTERS)
def test_code_cells_outputs_and_metadata_are_kept(editions, docname):
    chapter, edition = editions[docname]
    assert edition.cells[0].id == chapter.cells[0].id, (
        "the chapter's first cell stays first"
    )
    cells = {c.id: c for c in edition.cells}
    for cell in chapter.cells:
        if cell.cell_type != "code":
            continue
        copy = cells[cell.id]
        assert copy.outputs == cell.outputs and copy.metadata == cell.metadata
        assert FORM.sub("", copy.source) == cell.source
    assert [c.id for c in edition.cells if c.cell_type == "code"] == [
        c.id for c in chapter.cells if c.cell_type == "code"
    ]


@pytest.mark.parametrize("docname", CHAPTERS)
def test_every_solution_is_folded(editions, docname):
    chapter, edition = editions[docname]
    cells = {c.id: c for c in edition.cells}
    inside = solutions(chapter)
    assert inside or any(":::{solution}" in t for t in markdown(chapter))
    for cell in inside:
        if cell.cell_type == "code":
            assert FORM.match(cells[cell.id].source), (
                "a gated solution's code cell is folded (Colab form)"
            )
        elif cell.cell_type == "markdown" and cell.id in cells:
            text = cells[cell.id].source
            assert text.startswith(
                "<details>\n<summary>Solution to Exercise"
            ) and text.endswith("</details>")
    n_plain = sum(t.count(":::{solution}") for t in markdown(chapter))
    n_details = sum(
        t.count("<details>\n<summary>Solution to Exercise") for t in markdown(edition)
    )
    assert n_details >= n_plain
    visible = [
        c.source
        for c in edition.cells
        if c.cell_type == "code" and c.id not in {x.id for x in inside}
    ]
    assert not any(FORM.match(s) for s in visible), "only solutions are folded"


def test_exercises_are_kept_and_numbered_through_the_book_in_toc_order(editions):
    numbers = []
    for docname in CHAPTERS:
        chapter, edition = editions[docname]
        count = sum(
            len(re.findall(r"^ {0,3}:{3,}\{exercise(-start)?\}", t, re.M))
            for t in markdown(chapter)
        )
        found = [
            int(n)
            for t in markdown(edition)
            for n in re.findall(r"^#+ Exercise (\d+)", t, re.M)
        ]
        assert len(found) == count, (
            f"{docname}: {count} exercises in the chapter, {len(found)} in the edition"
        )
        numbers += found
    # The HTML book (sphinx-exercise) numbers them in one sequence over the book too.
    assert numbers == list(range(1, len(numbers) + 1))


@pytest.mark.parametrize("docname", CHAPTERS)
def test_citations_read_author_year_with_a_reference_list(editions, bib, docname):
    chapter, edition = editions[docname]
    cited = [
        k.strip()
        for t in markdown(chapter)
        for ks in re.findall(r"\{cite\}`([^`]+)`", t)
        for k in ks.split(",")
    ]
    text = "\n".join(markdown(edition))
    for key in cited:
        authors, year = bib.labels[key]
        assert re.search(r"\([^()]*" + re.escape(f"{authors}, {year}"), text), (
            f"{key} is not cited author-year"
        )
        assert re.fullmatch(
            r"[A-Z][\w\s.'-]*( et al\.| and [\w\s.'-]+)?", authors, re.U
        ), authors
    references = edition.cells[-1].source
    assert references.startswith("## References\n")
    for key in set(cited):
        authors, year = bib.labels[key]
        assert f"- **{authors}, {year}.** " in references
    assert references.count("\n- ") == len(set(cited))


def test_every_edition_is_a_valid_notebook():
    for docname in CHAPTERS:
        nbformat.validate(
            nbformat.read(ROOT / "colab" / f"{docname}.ipynb", as_version=4)
        )


# -- the student edition (colab/student/) ----------------------------------------------


@pytest.fixture(scope="module")
def students():
    """{docname: (nbgrader source, full edition, student edition)}, as committed."""
    sources = colab.nbgrader_sources()
    return {
        d: (
            sources[d],
            nbformat.read(ROOT / "colab" / f"{d}.ipynb", as_version=4),
            nbformat.read(ROOT / "colab" / "student" / f"{d}.ipynb", as_version=4),
        )
        for d in CHAPTERS
    }


@pytest.mark.parametrize("docname", CHAPTERS)
def test_the_student_edition_holds_no_solution(students, docname):
    from test_grading import assert_no_solution

    source, _, student = students[docname]
    assert_no_solution(student, source, docname)
    assert not any(FORM.match(c.source) for c in student.cells), "nothing to fold"
    text = "\n".join(markdown(student))
    assert "Solution to Exercise" not in text and "<details>" not in text


@pytest.mark.parametrize("docname", CHAPTERS)
def test_the_student_edition_keeps_the_lesson_and_its_outputs(students, docname):
    _, full, student = students[docname]
    lesson = {c.id: c for c in full.cells if book.role(c) is None}
    kept = {c.id: c for c in student.cells if book.role(c) is None}
    assert lesson.keys() == kept.keys()
    *body, references = lesson  # written answers' citations are not listed
    for key in body:
        assert kept[key] == lesson[key], "the lesson and its outputs, as in the book"
    listed = set(kept[references].source.split("\n- "))
    assert listed <= set(lesson[references].source.split("\n- "))
    exercises = [c.source for c in student.cells if book.role(c) == "statement"]
    assert exercises == [c.source for c in full.cells if book.role(c) == "statement"]
    for cell in student.cells:
        if book.role(cell) in ("answer", "check"):
            assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.parametrize("docname", CHAPTERS)
def test_the_student_edition_links_to_student_editions(students, docname):
    _, _, student = students[docname]
    text = "\n".join(markdown(student))
    assert "/colab/chapters/" not in text, "a link into the edition with solutions"
    nbformat.validate(student)


# -- the converter, on a small notebook that uses every construct ----------------------

BIB = r"""
@article{he2016resnet, title={Deep Residual Learning}, journal={CVPR}, year={2016},
  author={He, Kaiming and Zhang, Xiangyu and Ren, Shaoqing}}
@article{huang2017densenet, title={Densely Connected}, journal={CVPR}, year={2017},
  author={Huang, Gao and van der Maaten, Laurens}}
@article{solo2019, title={Alone}, author={Doll{\'a}r, Piotr}, journal={X}, year={2019}}
"""


def lines(*parts):
    return "\n".join(parts)


INTRO = lines(
    "# Title",
    "",
    "Fusion {cite}`he2016resnet,huang2017densenet`",
    "and {cite:t}`solo2019`;",
    "see",
    "{numref}`fig-demo`, {ref}`sec-x`, {eq}`eq-sum`, {numref}`ex-b`,",
    "{ref}`text <sec-x>`.",
    "% a MyST comment",
    "",
    "(sec-x)=",
    "## The section",
    "",
    "$$",
    "a + b",
    "$$ (eq-sum)",
    "",
    ":::{note}",
    "A note with $x^2$.",
    ":::",
    "",
    "```{warning} Careful",
    "Hot.",
    "```",
    "",
    ":::{admonition} Custom title",
    ":class: dropdown",
    "Hidden *body*.",
    ":::",
    "",
    "![a plot](img/a.png)",
    "",
    "```python",
    ":::{exercise} code, not a directive",
    "```",
)
PLOT = nbformat.v4.new_output("display_data", data={"text/plain": "<Figure>"})
FIGURE = {"mystnb": {"figure": {"name": "fig-demo", "caption": "A {cite}`solo2019`."}}}


@pytest.fixture
def converted(tmp_path):
    (tmp_path / "refs.bib").write_text(BIB)
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    cells = [
        md(INTRO),
        code("plt.plot([1])", metadata=FIGURE, outputs=[PLOT]),
        md("## Exercises"),
        md(
            lines(":::{exercise} First one", ":label: ex-a", "", "Do $y$.", "", "")
            + lines("```{tip}", "Inside.", "```", ":::")
        ),
        md(
            lines(
                ":::{solution} ex-a", ":class: dropdown", "", "Answer with $z$:", "", ""
            )
            + lines("```python", "print(1)", "```", ":::")
        ),
        md(
            lines(
                "::::{exercise}", ":label: ex-b", ":::{hint}", "Nested.", ":::", "::::"
            )
        ),
        code("raise NotImplementedError"),
        md(lines(":::{solution-start} ex-b", ":class: dropdown", ":::")),
        md("Explain."),
        code("print(2)", outputs=[nbformat.v4.new_output("stream", text="2\n")]),
        md(lines(":::{solution-end}", ":::")),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    before = json.dumps(nb, sort_keys=True)
    bib = colab.Bibliography(tmp_path / "refs.bib")
    out, warnings = colab.convert_book({"chapters/x": nb}, bib)
    assert json.dumps(nb, sort_keys=True) == before, "the chapter is left as it is"
    assert warnings == []
    return nb, out["chapters/x"]


def test_converter_roles_targets_and_admonitions(converted):
    _, edition = converted
    first = edition.cells[0].source
    assert first.startswith(
        lines(
            "# Title",
            "",
            "Fusion (He et al., 2016; Huang and van der Maaten, 2017)",
            "and Dollár (2019);",
            "see",
            "Figure 1, The section, (1), Exercise 2,",
            "text.",
            "",
            "## The section",
        )
    )
    assert "MyST comment" not in first and "(sec-x)=" not in first
    assert lines("$$", "a + b", r"\tag{1}", "$$") in first
    assert lines("> **Note**", ">", "> A note with $x^2$.") in first
    assert lines("> **Warning**", ">", "> Careful", "> Hot.") in first
    summary = "<summary><b>Custom title</b></summary>"
    assert lines("<details>", summary, "", "Hidden *body*.", "", "</details>") in first
    repo, branch = colab.repository()
    raw = f"https://raw.githubusercontent.com/{repo}/{branch}/chapters/img/a.png"
    assert f"![a plot]({raw})" in first, "Colab opens one file: images by URL"
    code_block = lines("```python", ":::{exercise} code, not a directive", "```")
    assert first.endswith(code_block), "code blocks stay verbatim"


def test_converter_figures_exercises_and_solutions(converted):
    chapter, edition = converted
    sources = [c.source for c in edition.cells]
    assert sources[1] == "plt.plot([1])"
    assert sources[2] == "**Figure 1.** A (Dollár, 2019)."
    tip = lines("> **Tip**", ">", "> Inside.")
    assert sources[4] == lines("### Exercise 1: First one", "", "Do $y$.", "", tip)
    assert sources[5] == lines(
        "<details>",
        "<summary>Solution to Exercise 1</summary>",
        "",
        "Answer with $z$:",
        "",
        lines("```python", "print(1)", "```"),
        "",
        "</details>",
    )
    assert sources[6] == lines("### Exercise 2", "", "> **Hint**", ">", "> Nested.")
    assert sources[7] == "raise NotImplementedError", "the reader's cell is not folded"
    assert sources[8].startswith("**Solution to Exercise 2.** Its code is folded")
    summary = "<summary>Solution to Exercise 2</summary>"
    assert sources[9] == lines("<details>", summary, "", "Explain.", "", "</details>")
    form = '# @title Solution to Exercise 2 { display-mode: "form" }'
    assert sources[10] == lines(form, "print(2)")
    assert edition.cells[10].outputs == chapter.cells[9].outputs, "outputs stay"
    assert len(sources) == 12, "the end marker is dropped, the references added"
    assert sources[11].startswith(
        lines("## References", "", "- **Dollár, 2019.** Piotr Dollár. Alone.")
    )
    assert "- **He et al., 2016.** Kaiming He" in sources[11]
    ids = [c.id for c in edition.cells]
    assert len(set(ids)) == len(ids) and ids[2] == f"{chapter.cells[1].id}-figure"


def test_check_lists_missing_outdated_and_orphaned_files(tmp_path):
    for name in ("_config.yml", "references.bib"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: chapters/a\nchapters:\n  - file: chapters/b\n"
    )
    (tmp_path / "chapters").mkdir()
    for name in ("a", "b"):
        nb = nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_markdown_cell(f"# {name}\n\n{{cite}}`he2016resnet`")]
        )
        nbformat.write(nb, tmp_path / "chapters" / f"{name}.ipynb")
    assert colab.stale(tmp_path) == [
        "missing  colab/chapters/a.ipynb",
        "missing  colab/chapters/b.ipynb",
        "missing  colab/student/chapters/a.ipynb",
        "missing  colab/student/chapters/b.ipynb",
    ]
    colab.write(tmp_path)
    assert colab.stale(tmp_path) == []
    (tmp_path / "colab" / "chapters" / "old.ipynb").write_text("{}")
    nb = nbformat.read(tmp_path / "chapters" / "b.ipynb", as_version=4)
    nb.cells[0].source += " again"
    nbformat.write(nb, tmp_path / "chapters" / "b.ipynb")
    assert colab.stale(tmp_path) == [
        "outdated colab/chapters/b.ipynb",
        "outdated colab/student/chapters/b.ipynb",
        "orphaned colab/chapters/old.ipynb",
    ]
    colab.write(tmp_path)
    assert (
        colab.stale(tmp_path) == []
        and not (tmp_path / "colab" / "chapters" / "old.ipynb").exists()
    )


def test_converter_folds_nbgrader_solutions_and_the_student_edition_clears_them(
    tmp_path,
):
    (tmp_path / "refs.bib").write_text(BIB)
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    legacy = nbformat.v4.new_notebook(
        cells=[
            md("# T"),
            md(lines(":::{exercise} Tie", ":label: ex-t", "Write f.", ":::")),
            code("def f(x):\n    raise NotImplementedError  # yours\n\n\ncheck_f(f)"),
            md(lines(":::{solution-start} ex-t", ":class: dropdown", ":::")),
            code("def f(x):\n    return x + 1\n\n\ncheck_f(f)"),
            md("Because {cite}`solo2019`."),
            md(lines(":::{solution-end}", ":::")),
        ]
    )
    marked = book.nbgrader_markup(legacy)
    assert [book.role(c) for c in marked.cells] == [
        None, "statement", "answer", "check", "written"
    ]
    region = ["    ### BEGIN SOLUTION", "    return x + 1", "    ### END SOLUTION"]
    assert marked.cells[2].source == lines("def f(x):", *region)
    bib = colab.Bibliography(tmp_path / "refs.bib")
    full = colab.convert_book({"chapters/t": marked}, bib)[0]["chapters/t"]
    form = '# @title Solution to Exercise 1 { display-mode: "form" }'
    assert full.cells[2].source.startswith(form + "\ndef f(x):")
    assert full.cells[3].source == "check_f(f)", "the check stays visible"
    assert full.cells[4].source.startswith("<details>\n<summary>Solution to Exercise 1")
    assert "Dollár, 2019" in full.cells[-1].source
    source = colab.convert_book({"chapters/t": marked}, bib, fold=False)[0]
    source = source["chapters/t"]
    assert source.cells[2].source == marked.cells[2].source, "nbgrader's source"
    answer = "**Solution to Exercise 1.**\n\nBecause (Dollár, 2019)."
    assert source.cells[4].source == answer
    assert "## References" not in source.cells[-1].source, "only the answer cites"
    student = book.student_edition(source)
    assert student.cells[2].source == lines(
        "def f(x):", "    # YOUR CODE HERE", "    raise NotImplementedError()"
    )
    assert student.cells[4].source == "YOUR ANSWER HERE"
