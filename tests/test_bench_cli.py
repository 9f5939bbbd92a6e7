"""`python -m fusion_lib.bench` runs, writes complete JSON and a plot, flags
regressions with --compare; its registry and stored results cover every public operator
class of both halves.
"""

import json
import subprocess
import sys

import pytest

from fusion_lib import costs
from fusion_lib.bench import operators

FIELDS = {
    "framework",
    "operator",
    "size",
    "kwargs",
    "inputs",
    "output",
    "median_ms",
    "peak_mib",
    "params",
    "flops",
    "flops_source",
    "flops_analytic",
}


def bench(*args, check=True):
    return subprocess.run(
        [sys.executable, "-m", "fusion_lib.bench", *args],
        capture_output=True,
        text=True,
        check=check,
    )


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One --quick run of two operators in every installed framework."""
    if not operators.installed_frameworks():
        pytest.skip("neither torch nor TensorFlow is installed")
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    done = bench("--quick", "--operators", "AddFusion", "ConcatReduce", "--out", out)
    return out, done


def test_help_lists_the_options():
    done = bench("--help")
    for option in ("--device", "--frameworks", "--operators", "--quick", "--compare"):
        assert option in done.stdout
    assert "attention" in done.stdout  # a --suite choice


def test_quick_run_writes_json_table_and_plot(quick):
    out, done = quick
    results = json.loads(out.read_text())
    frameworks = operators.installed_frameworks()
    keys = {(r["framework"], r["operator"], r["size"]) for r in results["rows"]}
    assert keys == {
        (f, op, "small") for f in frameworks for op in ("AddFusion", "ConcatReduce")
    }
    for r in results["rows"]:
        assert FIELDS <= set(r)
        assert r["median_ms"] > 0 and r["peak_mib"] >= 0
    assert {"load_average", "device", "threads", "repeats"} <= set(results["meta"])
    assert out.with_suffix(".png").stat().st_size > 1000
    assert f"/{len(frameworks) * 2}] " in done.stderr  # the progress bar
    assert all(len(line) <= 88 for line in done.stdout.splitlines())


def test_registry_covers_every_public_operator(quick):
    """The workers list the classes in each half's __all__: a class added there
    without a benchmark case fails here."""
    public = json.loads(quick[0].read_text())["meta"]["public_operators"]
    assert public
    for framework, names in public.items():
        assert sorted(operators.BY_NAME) == names, framework


def test_compare_flags_a_slowed_entry_and_passes_an_identical_run(quick, tmp_path):
    out = quick[0]
    assert bench("--compare", out, out).returncode == 0
    old = json.loads(out.read_text())
    old["rows"][0]["median_ms"] /= 10  # the old run was 10x faster
    faster = tmp_path / "old.json"
    faster.write_text(json.dumps(old))
    done = bench("--compare", faster, out, check=False)
    assert done.returncode == 1
    r = old["rows"][0]
    assert f"REGRESSION {r['framework']} {r['operator']} small median_ms" in (
        done.stdout
    )
    assert operators.compare(old, old) == []


def test_stored_cpu_results_cover_every_operator_and_agree():
    results = operators.load_results("cpu")
    keys = {(r["framework"], r["operator"], r["size"]) for r in results["rows"]}
    assert keys == {
        (f, op, size)
        for f in operators.FRAMEWORKS
        for op in operators.BY_NAME
        for size in operators.SIZES
    }
    assert "load_average" in results["meta"]
    rows = {(r["framework"], r["operator"], r["size"]): r for r in results["rows"]}
    for (_, op, size), r in rows.items():
        twin = rows[("torch", op, size)]
        assert r["params"] == twin["params"], (op, size)  # the halves are twins
        if r["flops_analytic"] is not None:  # costs.py's formulas = the counter
            assert twin["flops"] == r["flops_analytic"], (op, size)
    s = operators.SIZES["default"]
    assert rows[("torch", "ConcatReduce", "default")]["flops"] == s[
        "n"
    ] * costs.conv2d_flops(2 * s["c"], s["c"], 1, s["hw"], s["hw"])
    table = operators.format_table(results)
    assert all(len(line) <= 88 for line in table.splitlines())
    assert table.count("\n") == 2 + len(operators.BY_NAME) * len(operators.SIZES)
