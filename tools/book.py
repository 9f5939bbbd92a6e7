"""Notebook maintenance for the book: stamp the setup cell, re-execute chapters.

    python tools/book.py stamp       # setup cells (from SETUP) and exercise markup
    python tools/book.py execute chapters/01_concatenation.ipynb [...]
    python tools/book.py execute --all
    python tools/book.py nbgrader-markup [chapters/NN_topic.ipynb ...]
    python tools/book.py student DEST             # the book's sources, student edition
    python tools/book.py bundle ZIP               # the student notebooks, zipped
    python tools/book.py nbgrader-course DIR [chapters/NN_topic ...]
    python tools/book.py instructors [--check]    # (re)write instructors.md

`execute` runs a notebook top to bottom in a fresh kernel (cwd = chapters/); `gpu` cells
run too and skip themselves without CUDA (`fusion_lib.cuda_or_skip`). It refuses to save
a notebook whose outputs hold an error, stderr, or a path of this machine: strict nbval
and readers would see those. It records the run's time in chapters/run_times.json (with
the machine's cores and load) and rewrites the instructors' page, which prints it.

`nbgrader-markup` puts a chapter's exercises in nbgrader's markup (see "exercises as
nbgrader assignments" below); it is idempotent, and `stamp` applies it too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
RUN_TIMES = CHAPTERS / "run_times.json"  # written by `execute`, read by instructors.md
SETUP_TAG = "setup"

SETUP = """\
# Setup: stamped by `make stamp` from tools/book.py (edit it there, not here).
import os
import warnings

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"  # quiet TF's C++ log; set before importing TF
warnings.filterwarnings("ignore", module="keras")
try:
    import fusion_lib
except ImportError:  # e.g. in Colab: install it, keeping the runtime's own torch and TF
    import subprocess
    import sys

    REPO = "git+{url}"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", REPO]
    if subprocess.run(pip, capture_output=True).returncode != 0:
        fix = f"connect to the internet or run `pip install --no-deps {{REPO}}`"
        msg = f"Could not install fusion_lib: {{fix}}, then run this cell again."
        raise SystemExit(msg) from None
    import fusion_lib

fusion_lib.seed_everything(0)
print(fusion_lib.environment_report())"""
SETUP_TAGS = [SETUP_TAG, "hide-cell"]  # hide-cell: folded in the HTML book


def repository_url() -> str:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    return config["repository"]["url"]


def setup_source() -> str:
    return SETUP.format(url=repository_url())


def chapter_paths() -> list[Path]:
    return sorted(CHAPTERS.glob("*.ipynb"))


def stamp(paths: list[Path]) -> None:
    """Put the setup cell right after each chapter's title cell (pages open with it)."""
    source = setup_source()
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        title = nb.cells[0] if nb.cells else None
        if not title or not title.source.startswith("# ") or title.cell_type == "code":
            raise SystemExit(f"{path.name}: the first cell must be Markdown: '# Title'")
        setup = [c for c in nb.cells if SETUP_TAG in c.metadata.get("tags", [])]
        current = nb.cells[1] if len(nb.cells) > 1 else None
        if setup == [current] and current.source == source:
            if current.metadata.get("tags") == SETUP_TAGS:
                continue
        nb.cells = [c for c in nb.cells if c not in setup]
        cell = nbformat.v4.new_code_cell(source, metadata={"tags": SETUP_TAGS})
        nb.cells.insert(1, cell)
        nbformat.write(nb, path)
        rel = path.relative_to(ROOT)
        print(f"stamped {rel} (re-execute it: python tools/book.py execute {rel})")


LOCAL_PATH = re.compile(r"(/root/|/home/|/Users/|/tmp/|site-packages)")


def problems_in(nb) -> list[str]:
    """What strict nbval and readers would trip over in a stored notebook."""
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                found.append(f"cell {i} raised {out.ename}: {out.evalue}")
            elif out.output_type == "stream" and out.name == "stderr":
                found.append(f"cell {i} wrote to stderr: {out.text[:200]!r}")
            text = (
                out.get("text", "")
                if out.output_type == "stream"
                else str(out.get("data", {}).get("text/plain", ""))
            )
            if local := LOCAL_PATH.search(text):
                found.append(f"cell {i} prints a local path: {local.group(0)}")
    return found


# What TensorFlow writes at import on some CPUs whatever TF_CPP_MIN_LOG_LEVEL says (absl
# logs before its own initialisation): machine noise, dropped from stored outputs.
TF_IMPORT_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written "
    r"to STDERR|I0000 .*\] oneDNN custom operations are on.*)$"
)


def drop_tf_import_noise(outputs: list) -> list:
    kept = []
    for out in outputs:
        if out.output_type == "stream" and out.name == "stderr":
            lines = [x for x in out.text.splitlines() if x.strip()]
            lines = [x for x in lines if not TF_IMPORT_NOISE.match(x)]
            if not lines:
                continue
            out.text = "\n".join(lines) + "\n"
        kept.append(out)
    return kept


def coalesce_streams(outputs: list) -> list:
    """Merge consecutive prints to the same stream, as nbval does before comparing."""
    merged = []
    for out in outputs:
        if (
            merged
            and out.output_type == "stream"
            and merged[-1].output_type == "stream"
            and merged[-1].name == out.name
        ):
            merged[-1].text += out.text
        else:
            merged.append(out)
    return merged


def execute(path: Path, timeout: int = 600) -> float:
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(CHAPTERS)}},
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    start = time.perf_counter()
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                client.execute_cell(cell, index)
    seconds = time.perf_counter() - start
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = coalesce_streams(drop_tf_import_noise(cell.outputs))
    found = problems_in(nb)
    if found:
        raise SystemExit(
            f"{path.name}: not saved, fix these first:\n  " + "\n  ".join(found)
        )
    nbformat.write(nb, path)
    record_run_time(path, nb, seconds, load)
    return seconds


def code_digest(nb) -> str:
    """What a run time belongs to: the code it ran (a changed cell makes it stale)."""
    code = "\0".join(c.source for c in nb.cells if c.cell_type == "code")
    return hashlib.sha1(code.encode()).hexdigest()[:12]


def run_times() -> dict:
    return json.loads(RUN_TIMES.read_text()) if RUN_TIMES.exists() else {}


def record_run_time(path: Path, nb, seconds: float, load: float | None) -> None:
    times = run_times()
    times[path.stem] = {
        "seconds": round(seconds, 1),
        "cpus": os.cpu_count(),
        "load": None if load is None else round(load, 1),
        "code": code_digest(nb),
    }
    RUN_TIMES.write_text(json.dumps(dict(sorted(times.items())), indent=1) + "\n")


# -- exercises as nbgrader assignments -------------------------------------------------
#
# One markup serves the book, the student edition and nbgrader (README, "Adding a
# chapter", step 4). After an exercise (`:::{exercise}` with a `:label:` L):
#
# - an auto-checked exercise has an *answer cell*, the reader's function with its body
#   between `### BEGIN SOLUTION` and `### END SOLUTION` (nbgrader: solution), then a
#   *check cell* calling `fusion_lib.exercises.check_*` (nbgrader: autograded test,
#   1 point, locked);
# - code that is all solution (a coding exercise's cells, PyTorch and TensorFlow twins)
#   is one nbgrader solution cell each, without markers: nbgrader replaces a solution
#   cell without a region whole;
# - a written answer is a Markdown cell `:::{solution} L` (nbgrader: manually graded
#   answer, 1 point); nbgrader replaces it whole by "YOUR ANSWER HERE";
# - the exercise's statement is locked (read-only).
# In the book, answer cells are folded (`hide-cell`, "Show the solution's code"), the
# check's verdict too (`hide-output`), and `:::{solution}` is a dropdown. nbgrader's own
# ClearSolutions makes the student edition from exactly these markers.

EXERCISE = re.compile(r"^ {0,3}(:{3,}|`{3,})\{exercise\}")
LABEL = re.compile(r"^:label:\s*(\S+)", re.M)
GATE_START = re.compile(r"^ {0,3}(:{3,}|`{3,})\{solution-start\}\s*(\S+)")
GATE_END = re.compile(r"^ {0,3}(:{3,}|`{3,})\{solution-end\}")
WRITTEN = re.compile(r"^ {0,3}(:{3,}|`{3,})\{solution\}\s*(\S+)")
STUB = re.compile(r"^(?P<indent>\s*)raise NotImplementedError\b.*$", re.M)
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CHECK_CALL = re.compile(r"\bcheck_\w+\(")
GRADE_ID = re.compile(r"^(?P<label>.+)-(?P<kind>code|check|answer)(-\d+)?$")
FOLDS = {  # what the HTML book folds, and its toggle's words
    "answer": ("hide-cell", "Show the solution's code", "Hide the solution's code"),
    "check": ("hide-output", "Show what the check says", "Hide what the check says"),
}
POINTS = 1  # per autograded check and per written answer


def _nbgrader(grade_id, *, solution=False, grade=False, locked=False) -> dict:
    meta = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": locked,
        "schema_version": 3,
        "solution": solution,
    }
    if grade:
        meta["points"] = POINTS
    return meta


def role(cell) -> str | None:
    """What a cell is in an exercise: statement, answer (solution code), check
    (autograded test), written (manually graded Markdown answer), or None."""
    meta = cell.metadata.get("nbgrader")
    if not meta:
        return None
    if cell.cell_type == "markdown":
        return "written" if meta.get("solution") else "statement"
    return "answer" if meta.get("solution") else "check" if meta.get("grade") else None


def _label(cell) -> str | None:
    if cell.cell_type == "markdown" and EXERCISE.match(cell.source):
        found = LABEL.search(cell.source)
        if not found:
            raise SystemExit(f"an exercise without a :label:: {cell.source[:80]!r}")
        return found.group(1)
    return None


def _written(label: str, text: str) -> str:
    """A gated solution's Markdown as a `:::{solution}` block (fence longer than any
    colon fence inside)."""
    runs = [len(m) for m in re.findall(r"^ {0,3}(:{3,})", text, re.M)]
    fence = ":" * max([3] + [n + 1 for n in runs])
    return f"{fence}{{solution}} {label}\n:class: dropdown\n\n{text.strip()}\n{fence}"


def _split_try_cell(tried, solved, where: str):
    """The reader's try cell (a stub and the check) and the solution cell (the function
    and the check) -> (answer source, check source)."""
    import ast
    import textwrap

    stub = STUB.search(tried.source)
    tree = ast.parse(tried.source)
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    calls = [n for n in tree.body if isinstance(n, ast.Expr)]
    if not stub or len(defs) != 1 or not calls:
        raise SystemExit(f"{where}: a try cell is not `def f: raise ...; check(f)`")
    name = defs[0].name
    solution = ast.parse(solved.source)
    found = [n for n in solution.body if isinstance(n, ast.FunctionDef)]
    if [n.name for n in found] != [name] or any(
        not isinstance(n, (ast.FunctionDef, ast.Expr)) for n in solution.body
    ):
        raise SystemExit(f"{where}: the solution is not `def {name}(...)` and a check")
    lines = solved.source.split("\n")
    body = textwrap.dedent(
        "\n".join(lines[found[0].body[0].lineno - 1 : found[0].end_lineno])
    )
    indent = stub.group("indent")
    region = [f"{indent}{BEGIN}"]
    region += [f"{indent}{line}" if line else "" for line in body.split("\n")]
    region += [f"{indent}{END}"]
    tried_lines = tried.source.split("\n")
    at = tried.source[: stub.start()].count("\n")  # the stub's line
    first_call = calls[0].lineno - 1
    answer = "\n".join(tried_lines[:at] + region + tried_lines[at + 1 : first_call])
    check = "\n".join(tried_lines[first_call:]).strip()
    return answer.rstrip(), check


def _convert_gates(nb, where: str) -> None:
    """Today's form -> nbgrader's: a try cell plus a gated solution (solution-start ...
    solution-end) become an answer cell, a check cell and solution cells."""
    cells, out, label, tried = nb.cells, [], None, None
    i = 0
    while i < len(cells):
        cell = cells[i]
        label = _label(cell) or label
        if (
            cell.cell_type == "code"
            and role(cell) is None
            and STUB.search(cell.source)
            and CHECK_CALL.search(cell.source)
        ):
            tried = cell  # held until its solution is found
            i += 1
            continue
        start = GATE_START.match(cell.source) if cell.cell_type == "markdown" else None
        if not start:
            out.append(cell)
            i += 1
            continue
        gate_label = start.group(2)
        end = next(
            (
                j
                for j in range(i + 1, len(cells))
                if cells[j].cell_type == "markdown" and GATE_END.match(cells[j].source)
            ),
            None,
        )
        if end is None:
            raise SystemExit(f"{where}: solution-start {gate_label} without its end")
        for inner in cells[i + 1 : end]:
            if inner.cell_type == "markdown":
                inner.source = _written(gate_label, inner.source)
                inner.metadata["nbgrader"] = _nbgrader("", solution=True, grade=True)
                out.append(inner)
            elif tried is not None and CHECK_CALL.search(inner.source):
                answer_src, check_src = _split_try_cell(tried, inner, where)
                answer = nbformat.v4.new_code_cell(answer_src)
                answer["id"], answer.metadata = inner.get("id"), inner.metadata
                answer.metadata["nbgrader"] = _nbgrader("", solution=True)
                check = nbformat.v4.new_code_cell(check_src)
                check["id"] = tried.get("id")
                check.metadata["nbgrader"] = _nbgrader("", grade=True, locked=True)
                out += [answer, check]
                tried = None
            else:
                inner.metadata["nbgrader"] = _nbgrader("", solution=True)
                out.append(inner)
        i = end + 1
    if tried is not None:
        raise SystemExit(f"{where}: a `raise NotImplementedError` without a solution")
    nb.cells = out


def _fold(cell, kind: str) -> None:
    tag, show, hide = FOLDS[kind]
    tags = cell.metadata.setdefault("tags", [])
    if tag not in tags:
        tags.append(tag)
    cell.metadata.setdefault("mystnb", {}).update(
        {"code_prompt_show": show, "code_prompt_hide": hide}
    )


def _stamp_exercises(nb, where: str) -> None:
    """nbgrader metadata from the structure: grade ids `L`, `L-code[-n]`, `L-check[-n]`,
    `L-answer[-n]`; the folds of the HTML book."""
    blocks: list[tuple[str, list]] = []
    for cell in nb.cells:
        label = _label(cell)
        if label:
            blocks.append((label, [cell]))
        elif blocks:
            blocks[-1][1].append(cell)
    for label, cells in blocks:
        statement, rest = cells[0], cells[1:]
        statement.metadata["nbgrader"] = _nbgrader(label, locked=True)
        answers, checks, written = [], [], []
        for cell in rest:
            if cell.cell_type == "markdown" and (m := WRITTEN.match(cell.source)):
                if m.group(2) != label:
                    raise SystemExit(f"{where}: solution {m.group(2)} after {label}")
                written.append(cell)
            elif cell.cell_type == "code" and (
                role(cell) == "answer" or BEGIN in cell.source
            ):
                answers.append(cell)
            elif cell.cell_type == "code" and (
                role(cell) == "check" or (answers and CHECK_CALL.search(cell.source))
            ):
                checks.append(cell)
            elif cell.cell_type == "markdown" and (
                GATE_START.match(cell.source) or GATE_END.match(cell.source)
            ):
                raise SystemExit(f"{where}: {label} still has a gated solution")

        def grade_id(kind, k, label=label):
            return f"{label}-{kind}" + (f"-{k + 1}" if k else "")

        for k, cell in enumerate(written):
            cell.metadata["nbgrader"] = _nbgrader(
                grade_id("answer", k), solution=True, grade=True
            )
        for k, cell in enumerate(checks):
            cell.metadata["nbgrader"] = _nbgrader(
                grade_id("check", k), grade=True, locked=True
            )
            _fold(cell, "check")
        for k, cell in enumerate(answers):
            # Graded by hand only when nothing else grades the exercise.
            by_hand = k == 0 and not written and not checks
            cell.metadata["nbgrader"] = _nbgrader(
                grade_id("code", k), solution=True, grade=by_hand
            )
            _fold(cell, "answer")
        if not (written or checks or answers):
            raise SystemExit(f"{where}: exercise {label} has no solution")


def nbgrader_markup(nb, where: str = "notebook"):
    """The notebook with its exercises in nbgrader's markup (idempotent: a converted
    notebook comes back unchanged). Returns a new notebook."""
    import copy

    nb = copy.deepcopy(nb)
    _convert_gates(nb, where)
    _stamp_exercises(nb, where)
    return nb


def apply_nbgrader_markup(paths: list[Path]) -> list[Path]:
    """Rewrite the notebooks whose exercise markup is not current; returns them."""
    changed = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        marked = nbgrader_markup(nb, path.name)
        if nbformat.writes(marked) != nbformat.writes(nb):
            nbformat.write(marked, path)
            changed.append(path)
    return changed


def student_edition(nb, where: str = "notebook"):
    """The student's notebook: nbgrader's own ClearSolutions and LockCells on the
    exercise markup, so it is what `nbgrader generate_assignment` hands out, except that
    the lesson's stored outputs stay (nbgrader clears them all). Answer and check
    cells lose their outputs and the book's folds: they are the student's to fill."""
    from nbgrader.preprocessors import ClearSolutions, LockCells

    nb = nbgrader_markup(nb, where)
    resources: dict = {}
    nb, resources = ClearSolutions().preprocess(nb, resources)
    nb, resources = LockCells().preprocess(nb, resources)
    for cell in nb.cells:
        if role(cell) in ("answer", "check", "written"):
            tags = [
                t
                for t in cell.metadata.get("tags", [])
                if t not in {f[0] for f in FOLDS.values()}
            ]
            if tags:
                cell.metadata["tags"] = tags
            else:
                cell.metadata.pop("tags", None)
            mystnb = cell.metadata.get("mystnb", {})
            for key in ("code_prompt_show", "code_prompt_hide"):
                mystnb.pop(key, None)
            if not mystnb:
                cell.metadata.pop("mystnb", None)
        if role(cell) in ("answer", "check"):
            cell.outputs, cell.execution_count = [], None
    return nb


def exercises_of(nb) -> list[dict]:
    """Each exercise: label, title, kind (auto-checked, coding, written) and points."""
    found = []
    for cell in nbgrader_markup(nb).cells:
        if label := _label(cell):
            title = cell.source.split("\n")[0].split("}", 1)[1]
            found.append(
                {"label": label, "title": title.strip(), "roles": [], "points": 0}
            )
        elif found and (r := role(cell)) and r != "statement":
            found[-1]["roles"].append(r)
            found[-1]["points"] += cell.metadata["nbgrader"].get("points", 0)
    for ex in found:
        kinds = []
        if "check" in ex["roles"]:
            kinds.append("auto-checked")
        elif "answer" in ex["roles"]:
            kinds.append("coding")
        if "written" in ex["roles"]:
            kinds.append("written")
        ex["kind"] = " + ".join(kinds)
        ex["auto"] = POINTS * ex["roles"].count("check")
        ex["manual"] = ex["points"] - ex["auto"]
    return found


# -- a course for nbgrader -------------------------------------------------------------

NBGRADER_CONFIG = '''\
# nbgrader course for "{title}" (written by `python tools/book.py nbgrader-course`).
# One assignment per chapter: source/NN_topic/NN_topic.ipynb, the chapter in plain
# Markdown (as Colab shows it) with its solutions and nbgrader's cell metadata.
c = get_config()  # noqa: F821 (nbgrader provides it)
c.CourseDirectory.course_id = "feature-fusion"
c.CourseDirectory.root = {root!r}
# A chapter may take up to 60 s in all (CI's limit) and most of it in one training cell,
# more on a busy machine: nbgrader's default limit of 30 s per cell is too tight.
c.Execute.timeout = 300
'''


def nbgrader_course(dest: Path, docnames: list[str] | None = None) -> list[str]:
    """An nbgrader course directory: nbgrader_config.py and source/<chapter>/; returns
    the assignment names. Its solutions are the book's; keep it away from students."""
    import colab

    sources = colab.nbgrader_sources()
    if docnames:
        sources = {d: nb for d, nb in sources.items() if d in docnames}
    dest.mkdir(parents=True, exist_ok=True)
    title = yaml.safe_load((ROOT / "_config.yml").read_text())["title"]
    (dest / "nbgrader_config.py").write_text(
        NBGRADER_CONFIG.format(title=title, root=str(dest.resolve()))
    )
    names = []
    for docname, nb in sources.items():
        name = Path(docname).name
        (dest / "source" / name).mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, dest / "source" / name / f"{name}.ipynb")
        names.append(name)
    return names


def student_copy(dest: Path) -> None:
    """The book's sources with every chapter in its student edition (`make
    book-student`): the Colab button opens the student Colab edition, and the download
    button serves the student notebook (the page's own source)."""
    import shutil

    if dest.exists():
        shutil.rmtree(dest)
    (dest / "chapters").mkdir(parents=True)
    for name in (
        "_toc.yml",
        "references.bib",
        "_static",
        "_ext",
        "_vendor",
        *(p.name for p in ROOT.glob("*.md") if p.name != "README.md"),
    ):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        elif src.exists():
            shutil.copy2(src, dest / name)
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["title"] = f"{config['title']} (student edition)"
    config["sphinx"]["config"]["colab_edition_dir"] = "colab/student"
    (dest / "_config.yml").write_text(
        "# The student edition's configuration, written by tools/book.py student.\n"
        + yaml.safe_dump(config, sort_keys=False)
    )
    for path in chapter_paths():
        nb = nbformat.read(path, as_version=4)
        student = student_edition(nb, path.name)
        n = sum(role(c) in ("answer", "written") for c in student.cells)
        print(f"{path.name}: {n} answer cells left for the student")
        nbformat.write(student, dest / "chapters" / path.name)


def student_bundle(zip_path: Path) -> list[str]:
    """A zip of the student notebooks (the student Colab edition: plain Markdown, no
    solutions), one folder, for handing out by hand or on a course page."""
    import zipfile

    import colab

    files = colab.student_notebooks()
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as bundle:
        for docname, text in files.items():
            bundle.writestr(f"student-notebooks/{Path(docname).name}.ipynb", text)
    return sorted(files)


# -- the instructors' page ----------------------------------------------------------

INSTRUCTORS = ROOT / "instructors.md"
TEMPLATE = ROOT / "tools" / "instructors_template.md"
GOALS = ROOT / "tools" / "instructors.yml"


def _chapter_ref(item: str) -> str:
    return f"{{doc}}`{item}`" if (ROOT / f"{item}.ipynb").exists() else item


def instructors_page() -> str:
    """instructors.md: the template with its tables, every number from the chapters'
    exercise markup and the recorded run times."""
    import colab

    goals = yaml.safe_load(GOALS.read_text())
    times = run_times()
    docnames = [d for d in colab.toc_files() if (ROOT / f"{d}.ipynb").exists()]
    chapters, exercises, links = [], [], []
    exercises.append("| Exercise | Chapter | Kind | Points, automatic | By hand |")
    exercises.append("| --- | --- | --- | ---: | ---: |")
    totals = [0, 0]
    for docname in docnames:
        path = ROOT / f"{docname}.ipynb"
        nb = nbformat.read(path, as_version=4)
        found = exercises_of(nb)
        goal = goals.get(docname)
        if goal is None:
            raise SystemExit(f"{GOALS.name}: no prerequisites, objectives: {docname}")
        run = times.get(path.stem)
        if run is None or run["code"] != code_digest(nb):
            # tests/test_grading.py fails on this line until the chapter is re-run.
            took = f"not measured since its code changed: `make run NB={docname}.ipynb`"
        else:
            load = "" if run["load"] is None else f", load {run['load']}"
            took = f"{run['seconds']:.1f} s ({run['cpus']} cores{load})"
        items = ", ".join(_chapter_ref(p) for p in goal["prerequisites"])
        auto, manual = sum(e["auto"] for e in found), sum(e["manual"] for e in found)
        totals = [totals[0] + auto, totals[1] + manual]
        chapters += [
            f"### {{doc}}`{docname}`",
            "",
            f"- **Prerequisites:** {items}.",
            f"- **Runs in:** {took}.",
            f"- **Exercises:** {len(found)}, worth {auto} automatic and {manual} "
            "hand-graded points.",
            "- **Objectives:** the reader can",
            *(f"  - {' '.join(str(o).split())};" for o in goal["objectives"][:-1]),
            f"  - {' '.join(str(goal['objectives'][-1]).split())}.",
            "",
        ]
        for e in found:
            exercises.append(
                f"| {{numref}}`{e['label']}`: {e['title']} | {{doc}}`{docname}` | "
                f"{e['kind']} | {e['auto']} | {e['manual']} |"
            )
        title = nb.cells[0].source.split("\n")[0].lstrip("# ").strip()
        url = colab.colab_url(docname, student=True)
        links.append(f"  - [{title}]({url})")
    exercises.append(f"| **All** | | | **{totals[0]}** | **{totals[1]}** |")
    page = TEMPLATE.read_text()
    for name, lines in (
        ("chapters", chapters),
        ("exercises", exercises),
        ("colab", links),
    ):
        marker = f"<!-- generated: {name} -->"
        if marker not in page:
            raise SystemExit(f"{TEMPLATE.name}: the marker {marker} is missing")
        page = page.replace(marker, "\n".join(lines).strip("\n"))
    note = "% Written by `python tools/book.py instructors` from tools/"
    return f"{note}instructors_template.md: edit that.\n{page}"


def write_instructors_page() -> bool:
    text = instructors_page()
    if INSTRUCTORS.exists() and INSTRUCTORS.read_text() == text:
        return False
    INSTRUCTORS.write_text(text)
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "stamp",
        help="rewrite every chapter's setup cell and exercise markup (tools/book.py)",
    )
    ex = sub.add_parser(
        "execute", help="re-execute notebooks in place in a fresh kernel"
    )
    ex.add_argument("notebooks", nargs="*", type=Path)
    ex.add_argument("--all", action="store_true", help="every chapter")
    mk = sub.add_parser(
        "nbgrader-markup",
        help="put the exercises of notebooks (default: every chapter) in nbgrader's "
        "markup; idempotent",
    )
    mk.add_argument("notebooks", nargs="*", type=Path)
    st = sub.add_parser(
        "student", help="copy the book's sources, chapters in their student edition"
    )
    st.add_argument("dest", type=Path)
    bu = sub.add_parser("bundle", help="zip the student notebooks into ZIP")
    bu.add_argument("zip", type=Path)
    co = sub.add_parser(
        "nbgrader-course", help="write an nbgrader course directory (with solutions)"
    )
    co.add_argument("dest", type=Path)
    co.add_argument("chapters", nargs="*", help="e.g. chapters/01_concatenation")
    ins = sub.add_parser("instructors", help="rewrite instructors.md from the chapters")
    ins.add_argument("--check", action="store_true", help="exit 1 if it is stale")
    args = parser.parse_args(argv)
    if args.command == "stamp":
        stamp(chapter_paths())
        for path in apply_nbgrader_markup(chapter_paths()):
            rel = path.relative_to(ROOT)
            print(f"exercise markup of {rel} (re-execute it: make run NB={rel})")
        _refresh_instructors_page()
        return
    if args.command == "nbgrader-markup":
        paths = [p.resolve() for p in args.notebooks] or chapter_paths()
        changed = apply_nbgrader_markup(paths)
        for path in paths:
            state = "converted" if path in changed else "already current"
            print(f"{path.name}: {state}")
        if changed:
            print("re-execute the converted ones: make run NB=...")
            _refresh_instructors_page()
        return
    if args.command == "instructors":
        if args.check:
            current = INSTRUCTORS.exists() and (
                INSTRUCTORS.read_text() == instructors_page()
            )
            print("instructors.md is " + ("up to date" if current else "out of date"))
            return 0 if current else 1
        print("wrote instructors.md" if write_instructors_page() else "up to date")
        return
    if args.command == "student":
        student_copy(args.dest.resolve())
        return
    if args.command == "bundle":
        names = student_bundle(args.zip.resolve())
        print(f"wrote {args.zip} ({len(names)} notebooks)")
        return
    if args.command == "nbgrader-course":
        names = nbgrader_course(args.dest.resolve(), args.chapters or None)
        print(f"wrote {args.dest}: nbgrader_config.py, assignments {', '.join(names)}")
        print(f"next: cd {args.dest} && nbgrader generate_assignment {names[0]}")
        return
    paths = chapter_paths() if args.all else [p.resolve() for p in args.notebooks]
    if not paths:
        parser.error("name notebooks to execute, or pass --all")
    for path in paths:
        print(f"executed {path.name} in {execute(path):.1f} s", flush=True)
    _refresh_instructors_page()


def _refresh_instructors_page() -> None:
    """After a run or a markup change: the page prints both (never fails the run)."""
    try:
        if write_instructors_page():
            print("wrote instructors.md")
    except SystemExit as why:
        print(f"instructors.md not rewritten: {why}")


if __name__ == "__main__":
    sys.exit(main())
