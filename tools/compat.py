"""The compatibility job: fusion_lib on other stacks than CI's (requirements.txt).

    python tools/compat.py colab     # _build/venv-colab: Colab's versions, Python
                                     # 3.13; library tests, then every chapter (nbval)
    python tools/compat.py oldest    # _build/venv-oldest: the lower bounds that
                                     # pyproject.toml declares, 3.11; library tests
    python tools/compat.py colab [--no-notebooks | --no-library] [--lax]
        [--notebook chapters/NN_topic.ipynb ...] [--only-install] [-- PYTEST ARGS]

The environments live under _build/ (about 7 GB each), which the book's build
(_config.yml's exclude_patterns) does not read: a venv beside .venv in the repository
root would be read by Sphinx, whose warnings on its packages' Markdown files fail
`make book` (-W). `make clean` removes them.

Each environment is built from its requirements file (requirements-colab.txt,
requirements-oldest.txt) with the interpreter found by `find_python` (a PYTHON_COLAB /
PYTHON_OLDEST variable, else python3.13 / python3.11 on PATH, else pyenv's), then
fusion_lib is added with `pip install --no-deps -e .`, as the chapters' setup cell does
in Colab. It is rebuilt only when its requirements file changes (a digest in
VENV/.compat-installed). Before any test the installed versions are checked against
the pins, so a resolver surprise cannot pass for a result.

Library tests: tests/ minus the book's own checks (BOOK_TESTS: the built HTML, the Colab
editions, the notebooks' conventions, nbgrader), which depend on no framework version.

Notebooks: strict nbval with sanitize.cfg, exactly as CI, so the `approx` rule of the
root conftest.py (tools/nbval_approx.py) is what "loosely" means: training outputs may
drift by 0.05 or 10 %, everything deterministic (shapes, parameter counts, identities)
must match. A cross-version change there is a finding, not noise. `--lax` runs nbval-lax
instead (every cell must run, no output compared) for when a new stack moves training
numbers further than that. The per-chapter time limit is raised (NB_BUDGET_S=600):
this job checks versions, not speed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ENVS = {
    # name: (python version, requirements file, venv dir, runs the notebooks)
    "colab": ("3.13", "requirements-colab.txt", "_build/venv-colab", True),
    "oldest": ("3.11", "requirements-oldest.txt", "_build/venv-oldest", False),
}
BOOK_TESTS = [
    "tests/test_book_html.py",
    "tests/test_colab.py",
    "tests/test_grading.py",
    "tests/test_notebooks.py",
    "tests/test_publishing.py",
]
# distribution name -> module whose __version__ is checked against the pin
CHECKED = {
    "torch": "torch",
    "tensorflow": "tensorflow",
    "keras": "keras",
    "numpy": "numpy",
    "matplotlib": "matplotlib",
    "scikit-learn": "sklearn",
}


def pins(requirements: Path) -> dict[str, str]:
    """The `name==version` lines of a requirements file, e.g. {"torch": "2.11.0"};
    a version may end in `.*`."""
    found = {}
    for line in requirements.read_text().splitlines():
        m = re.match(r"\s*([A-Za-z0-9_.-]+)\s*==\s*([^\s#;]+)", line)
        if m:
            found[m.group(1).lower()] = m.group(2)
    return found


def version_matches(installed: str, pin: str) -> bool:
    """Whether an installed version satisfies an `==` pin: `2.11.0` matches
    `2.11.0+cu130` (a local build tag), `3.13.*` matches `3.13.2`."""
    installed = installed.split("+")[0]
    if pin.endswith(".*"):
        return installed == pin[:-2] or installed.startswith(pin[:-1])
    return installed == pin


def _python_version(python: str) -> str | None:
    """ "3.13" for a working interpreter, None for one that does not run (a pyenv
    shim for a version that is not selected, say)."""
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def find_python(name: str) -> str:
    """The interpreter for environment `name`: $PYTHON_<NAME>, else pythonX.Y on PATH,
    else pyenv's newest X.Y; the first of these that runs and is X.Y."""
    version = ENVS[name][0]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [
        os.environ.get(f"PYTHON_{name.upper()}"),
        shutil.which(f"python{version}"),
    ]
    candidates += [str(p) for p in sorted(pyenv.glob(f"{version}.*/bin/python"))[::-1]]
    for python in filter(None, candidates):
        if _python_version(python) == version:
            return python
    raise SystemExit(
        f"compat {name}: no working Python {version} (tried $PYTHON_{name.upper()}, "
        f"python{version} on PATH, {pyenv}/{version}.*): install it or set "
        f"PYTHON_{name.upper()}=/path/to/python{version}"
    )


def requirements_digest(requirements: Path) -> str:
    """A digest of the requirement lines alone: editing a comment rebuilds nothing."""
    lines = [ln.split("#")[0].strip() for ln in requirements.read_text().splitlines()]
    return hashlib.sha256("\n".join(ln for ln in lines if ln).encode()).hexdigest()


def run(cmd: list[str], **kw) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, **kw)


def build(name: str) -> Path:
    """Create or reuse VENV for `name`; return its python."""
    version, req, venv, _ = ENVS[name]
    venv_dir, requirements = ROOT / venv, ROOT / req
    python = venv_dir / "bin" / "python"
    stamp = venv_dir / ".compat-installed"
    digest = requirements_digest(requirements)
    if stamp.exists() and stamp.read_text().strip() == digest and python.exists():
        print(f"compat {name}: reusing {venv} (matches {req})", flush=True)
        return python
    base = find_python(name)
    if venv_dir.exists():
        shutil.rmtree(venv_dir)
    if run([base, "-m", "venv", venv_dir]):
        raise SystemExit(f"compat {name}: could not create {venv} with {base}")
    got = subprocess.check_output(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], text=True
    ).strip()
    if got != version:
        raise SystemExit(f"compat {name}: {base} is Python {got}, expected {version}")
    if run([python, "-m", "pip", "install", "-q", "-r", requirements]):
        raise SystemExit(f"compat {name}: pip could not install {req}")
    if run([python, "-m", "pip", "install", "-q", "--no-deps", "-e", "."]):
        raise SystemExit(f"compat {name}: pip could not install fusion_lib")
    stamp.write_text(digest + "\n")
    return python


def check_versions(name: str, python: Path) -> None:
    """Fail unless every checked package's version matches its pin."""
    wanted = pins(ROOT / ENVS[name][1])
    code = (
        "import importlib, json\n"
        f"mods = {CHECKED!r}\n"
        "out = {}\n"
        "for dist, mod in mods.items():\n"
        "    out[dist] = importlib.import_module(mod).__version__\n"
        "print(json.dumps(out))\n"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.check_output([python, "-c", code], text=True, env=env, cwd=ROOT)
    import json

    installed = json.loads(out.strip().splitlines()[-1])
    pyver = subprocess.check_output([python, "-V"], text=True).strip()
    print(
        f"compat {name}: {pyver}, "
        + ", ".join(f"{k} {v}" for k, v in installed.items())
    )
    wrong = [
        f"{dist} {installed[dist]} (pinned {wanted[dist]})"
        for dist in CHECKED
        if dist in wanted and not version_matches(installed[dist], wanted[dist])
    ]
    if wrong:
        raise SystemExit(f"compat {name}: not the pinned versions: {', '.join(wrong)}")


def library_tests(python: Path, extra: list[str]) -> int:
    ignores = [f"--ignore={t}" for t in BOOK_TESTS]
    return run(
        [
            python,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/",
            *ignores,
            *extra,
        ]
    )


def notebook_tests(
    python: Path, lax: bool, extra: list[str], notebooks: list[str] | None = None
) -> int:
    mode = (
        ["--nbval-lax"] if lax else ["--nbval", "--nbval-sanitize-with", "sanitize.cfg"]
    )
    env = dict(os.environ, NB_BUDGET_S=os.environ.get("NB_BUDGET_S", "600"))
    return run(
        [
            python,
            "-m",
            "pytest",
            *mode,
            "--nbval-current-env",
            "-p",
            "no:cacheprovider",
            *(notebooks or ["chapters/"]),
            *extra,
        ],
        env=env,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("env", choices=sorted(ENVS))
    parser.add_argument(
        "--no-notebooks", action="store_true", help="colab: library tests only"
    )
    parser.add_argument(
        "--lax",
        action="store_true",
        help="notebooks under nbval-lax: run every cell, compare nothing",
    )
    parser.add_argument(
        "--only-install",
        action="store_true",
        help="build the environment and check its versions, run nothing",
    )
    parser.add_argument(
        "--notebook",
        action="append",
        help="colab: only this chapter (repeatable); default every chapter",
    )
    parser.add_argument(
        "--no-library", action="store_true", help="colab: the notebooks only"
    )
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    args.pytest_args = extra
    python = build(args.env)
    check_versions(args.env, python)
    if args.only_install:
        return 0
    failed = []
    if not args.no_library and library_tests(python, args.pytest_args):
        failed.append("library tests")
    if ENVS[args.env][3] and not args.no_notebooks:
        if notebook_tests(python, args.lax, args.pytest_args, args.notebook):
            failed.append("notebooks")
    if failed:
        print(f"compat {args.env}: FAILED: {', '.join(failed)}", flush=True)
        return 1
    print(f"compat {args.env}: passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
