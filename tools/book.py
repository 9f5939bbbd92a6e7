"""Notebook maintenance for the book: stamp the setup cell, re-execute chapters in place.

    python tools/book.py stamp                      # rewrite every chapter's first cell from SETUP
    python tools/book.py execute chapters/01_concatenation.ipynb [...]
    python tools/book.py execute --all

`execute` runs a notebook top to bottom in a fresh kernel (cwd = chapters/), skips cells tagged
`gpu` when CUDA is absent, and refuses to save a notebook whose outputs hold an error, stderr,
or a path of this machine: strict nbval and readers would see those.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import nbformat
import yaml

from fusion_lib.env import cuda_available

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
SETUP_TAG = "setup"

SETUP = '''\
# Setup (stamped by `make stamp` from tools/book.py: edit it there, not here)
import os
import sys
import warnings

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"  # silence TensorFlow's C++ log; must precede its import
warnings.filterwarnings("ignore", module="keras")
if "google.colab" in sys.modules:  # Colab only: its own torch and TF stay, so --no-deps
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "git+{url}"], check=True)

import fusion_lib

fusion_lib.seed_everything(0)
print(fusion_lib.environment_report())'''


def repository_url() -> str:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    return config["repository"]["url"]


def setup_source() -> str:
    return SETUP.format(url=repository_url())


def chapter_paths() -> list[Path]:
    return sorted(CHAPTERS.glob("*.ipynb"))


def stamp(paths: list[Path]) -> None:
    source = setup_source()
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        first = nb.cells[0] if nb.cells else None
        if first is None or first.cell_type != "code" or SETUP_TAG not in first.metadata.get("tags", []):
            nb.cells.insert(0, nbformat.v4.new_code_cell(source, metadata={"tags": [SETUP_TAG]}))
        elif first.source != source:
            first.source = source
        else:
            continue
        nbformat.write(nb, path)
        print(f"stamped {path.relative_to(ROOT)} (re-execute it: python tools/book.py execute {path.relative_to(ROOT)})")


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
            text = out.get("text", "") if out.output_type == "stream" else str(out.get("data", {}).get("text/plain", ""))
            if local := LOCAL_PATH.search(text):
                found.append(f"cell {i} prints a local path: {local.group(0)}")
    return found


def coalesce_streams(outputs: list) -> list:
    """Merge consecutive prints to the same stream, as nbval does before comparing."""
    merged = []
    for out in outputs:
        if merged and out.output_type == "stream" and merged[-1].output_type == "stream" and merged[-1].name == out.name:
            merged[-1].text += out.text
        else:
            merged.append(out)
    return merged


def execute(path: Path, timeout: int = 600) -> float:
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(CHAPTERS)}})
    run_gpu = cuda_available()
    start = time.perf_counter()
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            if "gpu" in cell.metadata.get("tags", []) and not run_gpu:
                cell.outputs, cell.execution_count = [], None
                continue
            client.execute_cell(cell, index)
    seconds = time.perf_counter() - start
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = coalesce_streams(cell.outputs)
    found = problems_in(nb)
    if found:
        raise SystemExit(f"{path.name}: not saved, fix these first:\n  " + "\n  ".join(found))
    nbformat.write(nb, path)
    return seconds


SOLUTION_START = re.compile(r"^:::\{solution-start\}")
SOLUTION_END = re.compile(r"^:::\{solution-end\}")
SOLUTION = re.compile(r"^:::\{solution\} ")


def strip_solutions(nb) -> int:
    """Drop every solution (plain blocks, and gated blocks with the cells between them)."""
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
    """A copy of the book's sources without solutions, for instructors (`make book-student`).

    sphinx-exercise's own `hide_solutions` option crashes on gated solutions (1.2.1:
    "unknown node type: solution_end_node"), so the solutions are removed from the sources.
    """
    import shutil

    if dest.exists():
        shutil.rmtree(dest)
    (dest / "chapters").mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml", "references.bib", "references.md", "_static", "_vendor"):
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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("stamp", help="rewrite every chapter's setup cell from tools/book.py")
    ex = sub.add_parser("execute", help="re-execute notebooks in place in a fresh kernel")
    ex.add_argument("notebooks", nargs="*", type=Path)
    ex.add_argument("--all", action="store_true", help="every chapter")
    st = sub.add_parser("student", help="copy the book's sources without solutions into DEST")
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
