"""Notebook maintenance for the book: stamp the setup cell, re-execute chapters.

    python tools/book.py stamp       # (re)write each chapter's setup cell from SETUP
    python tools/book.py execute chapters/01_concatenation.ipynb [...]
    python tools/book.py execute --all

`execute` runs a notebook top to bottom in a fresh kernel (cwd = chapters/); `gpu` cells
run too and skip themselves without CUDA (`fusion_lib.cuda_or_skip`). It refuses to save
a notebook whose outputs hold an error, stderr, or a path of this machine: strict nbval
and readers would see those.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
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
    return seconds


SOLUTION_START = re.compile(r"^:::\{solution-start\}")
SOLUTION_END = re.compile(r"^:::\{solution-end\}")
SOLUTION = re.compile(r"^:::\{solution\} ")


def strip_solutions(nb) -> int:
    """Drop every solution (plain blocks, and gated blocks with the cells inside)."""
    kept, inside, dropped = [], False, 0
    for cell in nb.cells:
        text = cell.source.lstrip() if cell.cell_type == "markdown" else ""
        if SOLUTION_START.match(text):
            inside = True
        if inside or SOLUTION.match(text):
            dropped += 1
            if SOLUTION_END.match(text):
                inside = False
            continue
        kept.append(cell)
    nb.cells = kept
    return dropped


def student_copy(dest: Path) -> None:
    """A copy of the book's sources without solutions, for instructors (`make
    book-student`).

    sphinx-exercise's own `hide_solutions` option crashes on gated solutions (1.2.1:
    "unknown node type: solution_end_node"), so the solutions are removed from the
    sources.
    """
    import shutil

    if dest.exists():
        shutil.rmtree(dest)
    (dest / "chapters").mkdir(parents=True)
    for name in (
        "_config.yml",
        "_toc.yml",
        "references.bib",
        "references.md",
        "_static",
        "_ext",
        "_vendor",
    ):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        else:
            shutil.copy2(src, dest / name)
    for path in chapter_paths():
        nb = nbformat.read(path, as_version=4)
        print(f"{path.name}: removed {strip_solutions(nb)} solution cells")
        nbformat.write(nb, dest / "chapters" / path.name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "stamp", help="rewrite every chapter's setup cell from tools/book.py"
    )
    ex = sub.add_parser(
        "execute", help="re-execute notebooks in place in a fresh kernel"
    )
    ex.add_argument("notebooks", nargs="*", type=Path)
    ex.add_argument("--all", action="store_true", help="every chapter")
    st = sub.add_parser(
        "student", help="copy the book's sources without solutions into DEST"
    )
    st.add_argument("dest", type=Path)
    args = parser.parse_args(argv)
    if args.command == "stamp":
        stamp(chapter_paths())
        return
    if args.command == "student":
        student_copy(args.dest.resolve())
        return
    paths = chapter_paths() if args.all else [p.resolve() for p in args.notebooks]
    if not paths:
        parser.error("name notebooks to execute, or pass --all")
    for path in paths:
        print(f"executed {path.name} in {execute(path):.1f} s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
