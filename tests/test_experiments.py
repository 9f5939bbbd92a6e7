"""The experiments the chapters read: stored, current, both frameworks, >= 3 seeds."""

import subprocess
import sys

import numpy as np
import pytest

from fusion_lib import experiments

NAMES = sorted(experiments.experiments())


def test_there_are_experiments():
    assert NAMES


@pytest.mark.parametrize("name", NAMES)
def test_stored_results_are_complete_and_current(name):
    stored = experiments.load(name)  # refuses results of an older definition
    exp = experiments.get(name)
    assert set(stored["results"]) == set(experiments.FRAMEWORKS)
    assert len(exp.seeds) >= 3
    for framework, table in stored["results"].items():
        assert list(table) == list(exp.variants), framework
        for variant, row in table.items():
            for test, accs in row["accuracy"].items():
                assert len(accs) == len(exp.seeds), (framework, variant, test)
                assert all(0.0 <= a <= 1.0 for a in accs)
            assert len(row["loss"]) == len(exp.seeds)
            assert all(len(curve) == exp.fit["epochs"] for curve in row["loss"])


@pytest.mark.parametrize("name", NAMES)
def test_params_agree_between_frameworks(name):
    stored = experiments.load(name)
    for variant in experiments.get(name).variants:
        counts = {
            f: stored["results"][f][variant]["params"] for f in experiments.FRAMEWORKS
        }
        assert len(set(counts.values())) == 1, (variant, counts)


def test_a_quick_live_run_trains_both_frameworks():
    name = NAMES[0]
    exp = experiments.get(name)
    first = next(iter(exp.variants))
    result = experiments.run(name, seeds=(0,), variants=[first], epochs=1)
    for framework in experiments.FRAMEWORKS:
        row = result["results"][framework][first]
        assert len(row["loss"][0]) == 1 and np.isfinite(row["loss"][0][0])
    assert first in experiments.summary(result)


def test_unknown_names_are_refused_clearly():
    with pytest.raises(ValueError, match="no experiment named"):
        experiments.get("no_such_experiment")
    with pytest.raises(ValueError, match="has no variants"):
        experiments.run(NAMES[0], variants=["no_such_variant"])


def test_command_line_lists_the_experiments():
    out = subprocess.run(
        [sys.executable, "-m", "fusion_lib.experiments", "--list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert all(name in out for name in NAMES)
