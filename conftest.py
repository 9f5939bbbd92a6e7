"""Root conftest: always loaded, also by `pytest --nbval chapters/` (tests/conftest.py
is not).

- Cells tagged `approx` print results of training: their decimals are compared with the
  tolerance stated once, in tools/nbval_approx.py; everything else stays exact.
- Cells tagged `gpu` run everywhere: each begins `if fusion_lib.cuda_or_skip():` and so
  prints one line where CUDA is absent; their output is not compared
  (nbval-ignore-output).
- Enforces the per-chapter budget: each notebook must run top to bottom, kernel start
  included, within NB_BUDGET_S seconds; a slower one fails the run with its time named,
  and the summary prints every chapter's time.
"""

import os
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before a kernel imports TF
sys.path.insert(0, str(Path(__file__).parent / "tools"))
import nbval_approx  # noqa: E402

NB_BUDGET_S = float(os.environ.get("NB_BUDGET_S", "60"))  # CI's hard limit
NB_TARGET_S = 45.0  # what a chapter may take on an idle 2-core machine
_notebook_spans: dict[str, list[float]] = {}


def _is_cell(item) -> bool:
    return hasattr(item, "cell") and str(item.fspath).endswith(".ipynb")


def pytest_configure(config):
    """Wrap nbval's comparison so cells tagged `approx` get the tolerance rule."""
    try:
        from nbval.plugin import IPyNbCell
    except ImportError:
        return
    if getattr(IPyNbCell.compare_outputs, "approx_rule", False):
        return
    exact = IPyNbCell.compare_outputs

    def compare_outputs(self, test, ref, skip_compare=None):
        if nbval_approx.TAG in self.cell.metadata.get("tags", []):
            test, ref = self.sanitize_outputs(test), self.sanitize_outputs(ref)
            nbval_approx.align_outputs(test, ref)
        return exact(self, test, ref, skip_compare)

    compare_outputs.approx_rule = True
    IPyNbCell.compare_outputs = compare_outputs


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    start = time.perf_counter()
    yield
    if _is_cell(item):
        span = _notebook_spans.setdefault(
            os.path.basename(str(item.fspath)), [start, start]
        )
        span[1] = time.perf_counter()


def _over_budget():
    return {
        nb: end - start
        for nb, (start, end) in _notebook_spans.items()
        if end - start > NB_BUDGET_S
    }


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    if _over_budget() and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if not _notebook_spans:
        return
    terminalreporter.section(
        f"chapter budget ({NB_BUDGET_S:.0f} s each, kernel start included)"
    )
    for nb, (start, end) in sorted(_notebook_spans.items()):
        took = end - start
        flag = "  OVER BUDGET" if took > NB_BUDGET_S else ""
        flag = flag or ("  (over the 45 s idle target)" if took > NB_TARGET_S else "")
        terminalreporter.write_line(f"{nb:40s} {took:6.1f} s{flag}")
    if _over_budget():
        terminalreporter.write_line(
            "FAILED: chapters over budget: " + ", ".join(sorted(_over_budget()))
        )
