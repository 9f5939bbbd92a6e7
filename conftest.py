"""Root conftest: always loaded, also by `pytest --nbval chapters/` (tests/conftest.py is not).

- Skips notebook cells tagged `gpu` where CUDA is absent (CI never has a GPU).
- Enforces the per-chapter budget: each notebook must run top to bottom, kernel start
  included, within NB_BUDGET_S seconds; a slower one fails the run with its time named.
"""

import os
import time

import pytest

from fusion_lib.env import cuda_available

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before any kernel or test imports TensorFlow

NB_BUDGET_S = float(os.environ.get("NB_BUDGET_S", "60"))
_notebook_spans: dict[str, list[float]] = {}


def _is_cell(item) -> bool:
    return hasattr(item, "cell") and str(item.fspath).endswith(".ipynb")


def pytest_collection_modifyitems(config, items):
    cells = [i for i in items if _is_cell(i) and "gpu" in i.cell.metadata.get("tags", [])]
    if cells and not cuda_available():
        skip = pytest.mark.skip(reason="cell tagged gpu, and CUDA is not available here")
        for item in cells:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    start = time.perf_counter()
    yield
    if _is_cell(item):
        span = _notebook_spans.setdefault(os.path.basename(str(item.fspath)), [start, start])
        span[1] = time.perf_counter()


def _over_budget():
    return {nb: end - start for nb, (start, end) in _notebook_spans.items() if end - start > NB_BUDGET_S}


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    if _over_budget() and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if not _notebook_spans:
        return
    terminalreporter.section(f"chapter budget ({NB_BUDGET_S:.0f} s each, kernel start included)")
    for nb, (start, end) in sorted(_notebook_spans.items()):
        flag = "  OVER BUDGET" if end - start > NB_BUDGET_S else ""
        terminalreporter.write_line(f"{nb:40s} {end - start:6.1f} s{flag}")
    if _over_budget():
        terminalreporter.write_line("FAILED: chapters over budget: " + ", ".join(sorted(_over_budget())))
