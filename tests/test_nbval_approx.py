"""The tolerance rule for cells tagged `approx` (tools/nbval_approx.py), and that it
bites.

Unit cases for the rule, then strict nbval itself on a small notebook whose stored
outputs
were edited: a drift inside the tolerance passes, a real difference still fails.
"""

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from nbval_approx import ABS_TOL, align  # noqa: E402


@pytest.mark.parametrize(
    "got, stored",
    [
        ("accuracy 0.898 ± 0.009", "accuracy 0.897 ± 0.011"),
        ("add: 0.912, concat: 0.930", "add: 0.905, concat: 0.944"),
        ("loss 12.40", "loss 13.10"),  # 10 % of a large value
        ("gap +0.020", "gap -0.010"),
    ],
)
def test_drift_within_tolerance_passes(got, stored):
    assert align(got, stored) == stored


@pytest.mark.parametrize(
    "got, stored, why",
    [
        (
            "accuracy 0.700",
            "accuracy 0.898",
            "a decimal off by more than the tolerance",
        ),
        ("3,066 parameters, acc 0.90", "3,067 parameters, acc 0.90", "an integer"),
        ("add: 0.90", "concat: 0.90", "the text around the numbers"),
        ("acc 0.90 0.91", "acc 0.90", "a missing number"),
        ("loss 12.40", "loss 15.00", "a large value off by more than 10 %"),
    ],
)
def test_real_difference_fails(got, stored, why):
    assert align(got, stored) == got, why


def test_tolerance_is_stated_once():
    assert ABS_TOL == 0.05, "README and the chapters state 0.05: change them together"


def _notebook(tmp_path, printed, stored, tags):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(f"print({printed!r})", metadata={"tags": tags})
    cell.execution_count = 1
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stored + "\n")]
    nb.cells = [cell]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = tmp_path / "drift.ipynb"
    nbformat.write(nb, path)
    return path


def _strict_nbval(path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "conftest",
        "--nbval",
        "--nbval-current-env",
        str(path),
    ]
    return subprocess.run(cmd, cwd=path.parent, env=env, capture_output=True, text=True)


@pytest.mark.parametrize(
    "printed, stored, tags, passes",
    [
        ("accuracy 0.898", "accuracy 0.897", ["approx"], True),
        ("accuracy 0.898", "accuracy 0.797", ["approx"], False),
        ("accuracy 0.898", "accuracy 0.897", [], False),  # untagged cells stay exact
        ("3,066 parameters", "3,067 parameters", ["approx"], False),
    ],
)
def test_strict_nbval_applies_the_rule(tmp_path, printed, stored, tags, passes):
    result = _strict_nbval(_notebook(tmp_path, printed, stored, tags))
    assert (result.returncode == 0) is passes, result.stdout[-2000:]
