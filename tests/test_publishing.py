"""Publishing: the workflows (.github/workflows), the PDF (tools/pdf.py) and the
compatibility job (tools/compat.py, requirements-colab.txt, requirements-oldest.txt).

Fast: nothing here builds the book. The PDF's pieces run on a tiny two-page site with
equations and a PyTorch/TensorFlow pair, printed by the same Chromium and MathJax as
`make pdf`.
"""

import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
sys.path.insert(0, str(ROOT / "tools"))
import compat  # noqa: E402
import pdf  # noqa: E402


def workflow(name):
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True
    data["on"] = data.pop(True, data.get("on"))
    return data


def steps(data):
    return [step for job in data["jobs"].values() for step in job["steps"]]


def readme_test_command():
    """The README's test command: the `make test` line of "The two commands"."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## The two commands.*?```bash\n(.*?)```", text, re.S).group(1)
    lines = [ln.split("#")[0].strip() for ln in block.splitlines()]
    return next(ln for ln in lines if ln.startswith("make test"))


@pytest.mark.parametrize("name", ["test.yml", "publish.yml", "compat.yml"])
def test_workflow_parses_and_every_step_does_something(name):
    data = workflow(name)
    assert data["on"] and data["jobs"]
    for step in steps(data):
        assert "uses" in step or "run" in step, f"{name}: empty step {step}"


def test_test_workflow_runs_the_readme_command_on_every_push():
    data = workflow("test.yml")
    assert {"push", "pull_request"} <= set(data["on"])
    assert data["on"]["push"] is None, "every push: no branch filter"
    runs = [step.get("run", "").strip() for step in steps(data)]
    assert readme_test_command() in runs
    assert readme_test_command() in (ROOT / ".ci" / "run").read_text()
    python = [
        s for s in steps(data) if s.get("uses", "").startswith("actions/setup-python")
    ]
    assert python and python[0]["with"]["python-version"] == "3.11"


def test_publish_deploys_book_and_student_edition_to_pages():
    data = workflow("publish.yml")
    assert data["on"]["push"]["branches"] == ["main"]
    uses = [step.get("uses", "") for step in steps(data)]
    assert any(u.startswith("actions/deploy-pages@") for u in uses)
    upload = next(
        s for s in steps(data) if "upload-pages-artifact" in s.get("uses", "")
    )
    assert upload["with"]["path"] == "_build/site"
    assert "make site" in [s.get("run", "").strip() for s in steps(data)]
    makefile = (ROOT / "Makefile").read_text()
    site = re.search(r"^site:.*?(?=^\S|\Z)", makefile, re.S | re.M).group(0)
    assert "cp -r _build/html/. _build/site/" in site
    assert "_build/student/_build/html _build/site/student" in site


def test_compat_workflow_is_scheduled_and_runs_both_jobs():
    data = workflow("compat.yml")
    assert data["on"]["schedule"] and "workflow_dispatch" in data["on"]
    runs = " ".join(step.get("run", "") for step in steps(data))
    assert "make compat-colab" in runs and "make compat-oldest" in runs
    versions = {
        job: next(
            s["with"]["python-version"]
            for s in spec["steps"]
            if "setup-python" in s.get("uses", "")
        )
        for job, spec in data["jobs"].items()
    }
    assert versions == {
        "colab": compat.ENVS["colab"][0],
        "oldest": compat.ENVS["oldest"][0],
    }


def lower_bounds():
    """pyproject.toml's `name>=version` bounds, e.g. {"torch": "2.4"}."""
    text = (ROOT / "pyproject.toml").read_text()
    return {
        m.group(1).lower(): m.group(2)
        for m in re.finditer(r'"([A-Za-z0-9_-]+)>=([0-9.]+)"', text)
    }


def test_oldest_pins_are_the_declared_lower_bounds():
    bounds, pinned = lower_bounds(), compat.pins(ROOT / "requirements-oldest.txt")
    for name in ["torch", "tensorflow", "keras", "numpy", "matplotlib", "scikit-learn"]:
        assert name in bounds, f"pyproject.toml declares no lower bound for {name}"
        assert compat.version_matches(pinned[name], bounds[name] + ".*") or (
            pinned[name] == bounds[name]
        ), (
            f"requirements-oldest.txt pins {name} {pinned[name]}, "
            f"pyproject.toml's lower bound is {bounds[name]}"
        )


def test_colab_pins_lie_within_the_declared_bounds():
    bounds, pinned = lower_bounds(), compat.pins(ROOT / "requirements-colab.txt")

    def key(v):
        return tuple(int(x) for x in v.replace(".*", "").split(".")[:2])

    for name, bound in bounds.items():
        if name in pinned:
            assert key(pinned[name]) >= key(bound), (name, pinned[name], bound)


def test_version_matching():
    assert compat.version_matches("2.11.0+cu130", "2.11.0")
    assert compat.version_matches("3.13.2", "3.13.*")
    assert not compat.version_matches("3.14.0", "3.13.*")
    assert not compat.version_matches("3.130.0", "3.13.*")
    assert not compat.version_matches("2.1.0", "2.11.0")


def test_book_tests_left_out_of_the_compat_job_exist():
    for path in compat.BOOK_TESTS:
        assert (ROOT / path).is_file(), path


def test_urls_are_rewritten_for_the_joined_document():
    docs = ["chapters/00_intro", "chapters/01_concat", "references"]
    fragment = (
        '<img src="../_images/fig.png"> <a href="01_concat.html#axis">x</a> '
        '<a href="../references.html">refs</a> <a href="#local">y</a> '
        '<a href="https://example.org/a.html">z</a> '
        '<script src="../_static/../mathjax/tex.js"></script>'
    )
    out = pdf.rewrite_urls(fragment, "chapters/00_intro.html", docs)
    assert 'src="_images/fig.png"' in out
    assert 'href="#axis"' in out
    assert f'href="#{pdf.anchor("references")}"' in out
    assert 'href="#local"' in out and 'href="https://example.org/a.html"' in out
    assert 'src="mathjax/tex.js"' in out


CHAPTER = """<!DOCTYPE html><html><head><title>{title}</title>
<script>window.MathJax = {{"options": {{"processHtmlClass": "math"}}}}</script>
<script defer src="../mathjax/tex-chtml-full.js"></script>
</head><body><article class="bd-article"><section><h1>{title}</h1>
<p>Inline <span class="math notranslate nohighlight">\\(C_1 + C_2\\)</span>.</p>
<div class="math notranslate nohighlight">\\[y = \\sum_i w_i x_i\\]</div>
{wide}
<div class="framework-tabs"><div class="framework-tabbar"><button>PyTorch</button></div>
<div class="cell tag_pytorch"><pre>torch code</pre></div>
<div class="cell tag_tensorflow" hidden><pre>keras code</pre></div></div>
<a href="{other}.html">next</a></section></article></body></html>"""


@pytest.fixture(scope="module")
def tiny_site(tmp_path_factory):
    mathjax = ROOT / "_vendor" / "mathjax"
    if not (mathjax / "tex-chtml-full.js").exists():
        pytest.fail("no MathJax in _vendor/: run `make env`", pytrace=False)
    site = tmp_path_factory.mktemp("site")
    shutil.copytree(mathjax, site / "mathjax")
    (site / "chapters").mkdir()
    wide = (
        '<div class="math notranslate nohighlight">\\['
        + " + ".join(f"w_{{{i}}} x_{{{i}}}" for i in range(60))
        + "\\]</div>"
    )
    for doc, title, other, extra in [
        ("one", "Alpha chapter", "two", wide),
        ("two", "Beta chapter", "one", ""),
    ]:
        (site / "chapters" / f"{doc}.html").write_text(
            CHAPTER.format(title=title, other=other, wide=extra)
        )
    return site


def test_assemble_joins_pages_in_order(tiny_site):
    doc = pdf.assemble(tiny_site, ["chapters/one", "chapters/two"], "Tiny", "Us")
    assert doc.index("Alpha chapter") < doc.index("Beta chapter")
    assert doc.count('class="pdf-chapter"') == 2
    assert f'href="#{pdf.anchor("chapters/two")}"' in doc
    assert 'src="mathjax/tex-chtml-full.js"' in doc  # head taken from the first page


def test_print_typesets_math_shows_both_frameworks_and_breaks_pages(
    tiny_site, tmp_path
):
    if not Path(pdf.CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: `make chromium`", pytrace=False)
    doc = pdf.assemble(tiny_site, ["chapters/one", "chapters/two"], "Tiny", "Us")
    out = tmp_path / "tiny.pdf"
    report = pdf.print_pdf(tiny_site, doc, out, timeout_s=60)
    assert pdf.problems(report) == []
    assert report["equations"] == 5  # each typeset by MathJax
    assert report["shrunkEquations"] == 1  # the 60-term sum, set smaller to fit
    assert report["frameworkCells"] == 4 and report["hiddenFrameworkCells"] == 0
    assert (
        report["pages"] == 3
    )  # the title page, then each chapter on a page of its own
    assert out.read_bytes().startswith(b"%PDF")
    if shutil.which("pdftotext"):
        import subprocess

        text = subprocess.check_output(["pdftotext", str(out), "-"], text=True)
        for word in [
            "Alpha chapter",
            "Beta chapter",
            "PyTorch",
            "TensorFlow",
            "keras code",
        ]:
            assert word in text


def test_problems_name_what_is_wrong():
    bad = pdf.problems(
        {
            "mathErrors": 2,
            "rawMath": 1,
            "hiddenFrameworkCells": 3,
            "brokenImages": ["a.png"],
            "outside": ["https://cdn"],
        }
    )
    assert len(bad) == 5
    assert pdf.problems({"equations": 3, "pages": 2}) == []


def test_editing_a_comment_does_not_rebuild_an_environment(tmp_path):
    a, b, c = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "c.txt"
    a.write_text("# one comment\ntorch==2.4.0\n")
    b.write_text("# another comment\ntorch==2.4.0  # why\n")
    c.write_text("torch==2.5.0\n")
    assert compat.requirements_digest(a) == compat.requirements_digest(b)
    assert compat.requirements_digest(a) != compat.requirements_digest(c)


def test_compat_environments_stay_out_of_the_book_build():
    excluded = yaml.safe_load((ROOT / "_config.yml").read_text())["exclude_patterns"]
    for _, _, venv, _ in compat.ENVS.values():
        assert venv.split("/")[0] in excluded, f"Sphinx would read {venv}"
