"""The chapters as nbgrader assignments, graded as an instructor grades them.

For the introduction (in `make test`; every chapter with FUSION_GRADE_ALL=1, which is
`make test-grading`): write a course directory (`tools/book.py nbgrader-course`), run
`nbgrader generate_assignment` and check that the student notebook holds no solution,
then `nbgrader autograde` three submissions: the solutions (every automatic point), the
student notebook untouched (zero, and no crash), and one with a wrong answer to each
auto-checked exercise (zero for that exercise, the rest kept).

Also, without running nbgrader: the instructors' page is current, every chapter has its
prerequisites, objectives and a fresh run time, and the student bundle holds what
colab/student/ holds.
"""

import contextlib
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import book  # noqa: E402

import colab  # noqa: E402

CHAPTERS = [d for d in colab.toc_files() if (ROOT / f"{d}.ipynb").exists()]
GRADED = CHAPTERS if os.environ.get("FUSION_GRADE_ALL") == "1" else [CHAPTERS[0]]
STUDENTS = ("correct", "untouched", "wrong")
# nbgrader runs `alembic` (its gradebook's migrations) from PATH: the venv's own.
PATH = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def nbgrader(course: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBGRADER")}
    env.pop("FUSION_LIB_GRADING", None)
    env["PATH"] = PATH
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, f"nbgrader {' '.join(args)}:\n{done.stderr[-3000:]}"
    return done.stderr


def solution_lines(nb) -> list[str]:
    """The lines only a solution holds: inside regions, and whole solution cells."""
    found = []
    for cell in nb.cells:
        if book.role(cell) not in ("answer", "written"):
            continue
        lines, inside = cell.source.split("\n"), book.BEGIN not in cell.source
        for line in lines:
            if book.BEGIN in line or book.END in line:
                inside = book.BEGIN in line
                continue
            if inside and len(line.strip()) > 12:  # skip `)`, `:::` and the like
                found.append(line.strip())
    return found


def assert_no_solution(student, source, where: str) -> None:
    text = "\n".join(c.source for c in student.cells)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "{solution", "<summary>Solution"):
        assert marker not in text, f"{where}: {marker!r} survives"
    def lines(cells):
        return {line.strip() for c in cells for line in c.source.split("\n")}

    shown = lines(student.cells)
    lesson = lines(c for c in source.cells if book.role(c) not in ("answer", "written"))
    leaked = [
        line for line in solution_lines(source) if line in shown and line not in lesson
    ]
    assert not leaked, f"{where}: solution lines survive: {leaked[:3]}"
    for cell in student.cells:
        if book.role(cell) in ("answer", "check"):
            assert not cell.get("outputs"), f"{where}: a solution's output survives"
    assert text.count("raise NotImplementedError") == sum(
        book.role(c) == "answer" for c in source.cells
    )
    assert text.count("YOUR ANSWER HERE") == sum(
        book.role(c) == "written" for c in source.cells
    )


def wrong_answer(source: str) -> str:
    """The answer cell with its solution replaced by `return None`: wrong for every
    check, which diagnoses it."""
    lines, out, inside = source.split("\n"), [], False
    for line in lines:
        if book.BEGIN in line:
            inside = True
            out.append(line.replace(book.BEGIN, "return None"))
        elif book.END in line:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def submission(release, source, student: str):
    """What a student hands back: the release with answers filled in (or not)."""
    nb = nbformat.from_dict(json.loads(json.dumps(release)))
    if student == "untouched":
        return nb
    answers = {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in source.cells
        if book.role(c) in ("answer", "written")
    }
    for cell in nb.cells:
        if book.role(cell) in ("answer", "written"):
            cell.source = answers[cell.metadata["nbgrader"]["grade_id"]]
            if student == "wrong" and book.BEGIN in cell.source:
                cell.source = wrong_answer(cell.source)
    return nb


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course with the graded chapters, each generated and autograded."""
    root = tmp_path_factory.mktemp("course")
    names = book.nbgrader_course(root, GRADED)
    for name in names:
        nbgrader(root, "generate_assignment", name, "--force")
        release = nbformat.read(root / "release" / name / f"{name}.ipynb", 4)
        source = nbformat.read(root / "source" / name / f"{name}.ipynb", 4)
        for student in STUDENTS:
            folder = root / "submitted" / student / name
            folder.mkdir(parents=True)
            nbformat.write(
                submission(release, source, student), folder / f"{name}.ipynb"
            )
        nbgrader(root, "autograde", name, "--force")
    return root


@contextlib.contextmanager
def venv_on_path():
    before, os.environ["PATH"] = os.environ.get("PATH", ""), PATH
    try:
        yield
    finally:
        os.environ["PATH"] = before


def grades(course: Path, name: str, student: str) -> dict:
    from nbgrader.api import Gradebook

    with venv_on_path():
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "feature-fusion") as gb:
            found = gb.find_submission_notebook(name, name, student)
            return {g.name: (g.auto_score, g.max_score) for g in found.grades}


def name_of(docname: str) -> str:
    return Path(docname).name


@pytest.mark.parametrize("docname", GRADED)
def test_the_student_notebook_holds_no_solution(course, docname):
    name = name_of(docname)
    release = nbformat.read(course / "release" / name / f"{name}.ipynb", 4)
    source = nbformat.read(course / "source" / name / f"{name}.ipynb", 4)
    assert_no_solution(release, source, name)
    assert len(release.cells) == len(source.cells), "nbgrader keeps every cell"


@pytest.mark.parametrize("docname", GRADED)
def test_nbgraders_student_notebook_is_the_books_student_edition(course, docname):
    """One rule for every student edition: nbgrader's release, cell by cell, is what
    tools/book.py `student_edition` makes of the same source (and writes to
    colab/student/, keeping the lesson's outputs, which nbgrader clears)."""
    name = name_of(docname)
    release = nbformat.read(course / "release" / name / f"{name}.ipynb", 4)
    source = nbformat.read(course / "source" / name / f"{name}.ipynb", 4)
    edition = book.student_edition(source, name)
    assert [c.source for c in release.cells] == [c.source for c in edition.cells]


@pytest.mark.parametrize("docname", GRADED)
def test_a_correct_submission_gets_every_automatic_point(course, docname):
    scores = grades(course, name_of(docname), "correct")
    checks = {k: v for k, v in scores.items() if re.search(r"-check(-\d+)?$", k)}
    assert checks, "at least one auto-checked exercise"
    assert all(auto == top > 0 for auto, top in checks.values()), checks
    written = {k: v for k, v in scores.items() if k not in checks}
    assert all(auto is None for auto, _ in written.values()), "written: graded by hand"


@pytest.mark.parametrize("docname", GRADED)
def test_an_untouched_submission_scores_zero(course, docname):
    scores = grades(course, name_of(docname), "untouched")
    assert scores and all(auto == 0 for auto, _ in scores.values()), scores


@pytest.mark.parametrize("docname", GRADED)
def test_a_wrong_answer_scores_zero_for_its_exercise_only(course, docname):
    name = name_of(docname)
    scores = grades(course, name, "wrong")
    autograded = course / "autograded" / "wrong" / name / f"{name}.ipynb"
    graded = nbformat.read(autograded, 4)
    for cell in graded.cells:
        if book.role(cell) == "check":
            grade_id = cell.metadata["nbgrader"]["grade_id"]
            assert scores[grade_id][0] == 0, grade_id
            errors = [o for o in cell.outputs if o.output_type == "error"]
            assert errors and errors[0].ename == "WrongAnswer", "the check's diagnosis"
            assert "returned None" in errors[0].evalue
    assert [c.source for c in graded.cells if book.role(c) != "answer"] == [
        c.source
        for c in nbformat.read(course / "source" / name / f"{name}.ipynb", 4).cells
        if book.role(c) != "answer"
    ], "the wrong answer changed only its answer cell"


def test_nbgrader_takes_a_chapter_as_it_is(tmp_path):
    """The chapters themselves (MyST) carry the markup too (nbgrader driven from
    Python this time, as a course's own scripts may)."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    docname = CHAPTERS[0]
    name = name_of(docname)
    (tmp_path / "source" / name).mkdir(parents=True)
    chapter = nbformat.read(ROOT / f"{docname}.ipynb", 4)
    nbformat.write(chapter, tmp_path / "source" / name / f"{name}.ipynb")
    config = Config()
    config.CourseDirectory.root = str(tmp_path)
    with venv_on_path():
        done = NbGraderAPI(config=config).generate_assignment(name, force=True)
    assert done["success"], done["log"]
    release = nbformat.read(tmp_path / "release" / name / f"{name}.ipynb", 4)
    assert_no_solution(release, chapter, name)
    mine = book.student_edition(chapter, name)
    assert [c.source for c in release.cells] == [c.source for c in mine.cells]


# -- without nbgrader runs ------------------------------------------------------------


def test_the_instructors_page_is_current():
    assert (ROOT / "instructors.md").read_text() == book.instructors_page(), (
        "run `python tools/book.py instructors`"
    )


@pytest.mark.parametrize("docname", CHAPTERS)
def test_every_chapter_has_objectives_and_a_fresh_run_time(docname):
    import yaml

    goals = yaml.safe_load(book.GOALS.read_text())
    assert goals.get(docname, {}).get("objectives"), f"add {docname} to instructors.yml"
    assert "prerequisites" in goals[docname]
    nb = nbformat.read(ROOT / f"{docname}.ipynb", 4)
    run = book.run_times().get(Path(docname).name)
    assert run and run["code"] == book.code_digest(nb), (
        f"no run time for its current code: make run NB={docname}.ipynb"
    )


def test_the_student_bundle_is_the_student_edition(tmp_path):
    names = book.student_bundle(tmp_path / "bundle.zip")
    expected = colab.student_notebooks()
    assert names == sorted(expected)
    with zipfile.ZipFile(tmp_path / "bundle.zip") as bundle:
        for docname in names:
            text = bundle.read(f"student-notebooks/{Path(docname).name}.ipynb").decode()
            assert text == expected[docname]
