"""The benchmark script runs, and its stored results (which the chapters show) are
complete.
"""

import json
import subprocess
import sys

import pytest

pytest.importorskip("torch")

from fusion_lib.bench import concat_reduce  # noqa: E402


def test_quick_run_writes_a_complete_table(tmp_path):
    out = tmp_path / "bench.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "fusion_lib.bench.concat_reduce",
            "--quick",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    results = json.loads(out.read_text())
    assert {(r["pass"], r["form"]) for r in results["rows"]} == {
        ("inference", "concat"),
        ("inference", "split"),
    }
    assert all(r["median_ms"] > 0 for r in results["rows"])
    concat = next(r for r in results["rows"] if r["form"] == "concat")
    assert concat["peak_mib"] > 0, (
        "the concatenated tensor alone is 0.5 MiB: the measurement must see it"
    )


def test_stored_cpu_results_cover_every_configuration():
    results = concat_reduce.load_results("cpu")
    keys = {(r["pass"], r["size"], r["form"]) for r in results["rows"]}
    sizes = {r["size"] for r in results["rows"]}
    assert keys == {
        (p, s, f)
        for p in concat_reduce.PASSES
        for s in sizes
        for f in concat_reduce.FORMS
    }
    assert 256 in sizes and results["rows"][0]["channels"] == 128
    table = concat_reduce.format_table(results)
    assert table.count("\n") == 1 + len(keys) // 2
