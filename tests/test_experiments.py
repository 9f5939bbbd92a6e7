"""The experiments the chapters read: stored, current, both frameworks, >= 3 seeds."""

import dataclasses
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
    assert experiments.score_name(stored) == exp.score
    for framework, table in stored["results"].items():
        assert list(table) == list(exp.variants), framework
        for variant, row in table.items():
            for test, scores in row[exp.score].items():
                assert len(scores) == len(exp.seeds), (framework, variant, test)
                assert all(0.0 <= a <= 1.0 for a in scores)
            assert len(row["loss"]) == len(exp.seeds)
            assert all(len(curve) == exp.fit["epochs"] for curve in row["loss"])
            measured = row.get("measures", {})
            assert bool(measured) == (exp.measure is not None), (framework, variant)
            assert all(len(v) == len(exp.seeds) for v in measured.values())
            assert ("network" in row) == exp.keep_network, (framework, variant)


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
    text = experiments.summary(result)
    assert first in text
    assert ", 1 seed," in text and "±" not in text  # no spread of one seed


def test_summary_gives_the_population_spread_over_seeds():
    row = {"params": 3, "accuracy": {"test": [0.5, 0.7, 0.9]}}
    text = experiments.summary({"results": {"torch": {"add": row}}})
    want = f"± {np.std([0.5, 0.7, 0.9]):.3f} over 3 seeds"  # ddof=0: 0.163, not 0.200
    assert "0.700 " + want in text


def test_hooks_enter_the_config_only_when_set():
    """Results stored before metrics and measures existed stay current."""
    plain = experiments.get("add_vs_concat")
    assert set(plain.config()) == {"model", "variants", "data", "fit", "seeds"}
    assert plain.score == "accuracy"
    segment = experiments.get("unet_skips")
    assert segment.score == "iou"
    assert segment.config()["metric"].endswith("skip_connections.iou")
    assert experiments.get("skip_depth").config()["keep_network"] is True


@pytest.mark.parametrize(
    "change",
    [{"metric": np.median}, {"measure": None}, {"keep_network": False}],
    ids=["metric", "measure", "keep_network"],
)
def test_results_of_another_metric_or_measure_are_refused(monkeypatch, change):
    changed = dataclasses.replace(experiments.get("skip_depth"), **change)
    monkeypatch.setitem(experiments._REGISTRY, "skip_depth", changed)
    with pytest.raises(ValueError, match="stale"):
        experiments.load("skip_depth")


def tiny_digits(seed):
    from fusion_lib.data import load_digits_with_train

    X, y, tests = load_digits_with_train(seed)
    return X[:64], y[:64], {"test": (X[:32], y[:32])}


def positives(logits, y):
    """A metric that reads the logits it is given: the share of positive ones."""
    return float((logits > 0).mean())


def shapes(framework, model, train, tests):
    return {"train": list(train[0].shape), "test": list(tests["test"][0].shape)}


def test_metric_measure_and_network_reach_the_results(monkeypatch):
    tiny = experiments.Experiment(
        name="tiny",
        chapter="tests",
        question="do the hooks run?",
        model="SkipStack",
        variants={"add": {"skip": "add", "depth": 1, "width": 4}},
        data=tiny_digits,
        fit={"epochs": 1, "batch_size": 32, "lr": 1e-2},
        seeds=(0, 1),
        metric=positives,
        measure=shapes,
        keep_network=True,
    )
    monkeypatch.setitem(experiments._REGISTRY, "tiny", tiny)
    result = experiments.run("tiny")
    assert result["metric"] == "positives"
    assert "test positives" in experiments.summary(result)
    for framework, nchw in [("torch", [64, 1, 8, 8]), ("tf", [64, 8, 8, 1])]:
        row = result["results"][framework]["add"]
        assert len(row["positives"]["test"]) == 2 and "accuracy" not in row
        assert row["measures"]["train"] == [nchw, nchw]
        assert "network" in row
    quiet = experiments.run("tiny", frameworks=("torch",), seeds=(0,), measures=False)
    assert "measures" not in quiet["results"]["torch"]["add"]


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
