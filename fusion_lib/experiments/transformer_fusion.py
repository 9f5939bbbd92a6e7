"""Experiments of the chapter on self-attention.

`transformer_fusion` compares five fusions of a fine and a coarse map (the shared
runner, `python -m fusion_lib.experiments transformer_fusion`). Trained that way the
two frameworks see their mini-batches in different orders: `fusion_lib.torch.training`
draws a new permutation of the training set every epoch, while Keras' `fit(...,
shuffle=True)`, after `keras.utils.set_random_seed` (which `fusion_lib.tf.training`
calls for repeatability), replays the permutation of its first epoch in every epoch
(TensorFlow's seeded shuffle restarts its random sequence with each epoch's
iterator). `batch_order` records the order a framework's training uses, and
`run_batch_orders` trains every variant and seed once more with the order swapped,
PyTorch replaying one permutation and Keras drawing a new one every epoch, all else
as in the stored experiment (same seeds, initial weights, data and budget):

    python -m fusion_lib.experiments.transformer_fusion   # results/NAME_orders.json

Taught in the chapter on self-attention.
"""

from __future__ import annotations

import json
import os
import warnings

import numpy as np

from fusion_lib.data import load_digits_tests
from fusion_lib.experiments import RESULTS, Experiment, get, register, run, save

NAME = "transformer_fusion"
# width per fusion, chosen so that every network has 17,874 to 18,170 parameters
# (within 2 % of the transformer's 17,898); the chapter prints the counts.
WIDTHS = {"concat": 35, "se": 34, "cbam": 34, "nonlocal": 32, "transformer": 32}
# the order each framework's library training uses; run_batch_orders swaps them
LIBRARY_ORDER = {"torch": "reshuffled", "tf": "replayed"}
SWAPPED_ORDER = {"torch": "replayed", "tf": "reshuffled"}

register(
    Experiment(
        name=NAME,
        chapter="Self-attention, non-local blocks and transformer fusion",
        question="fusing a fine and a coarse map: concat + 1x1 reduction (alone, with "
        "SE, with CBAM, with a non-local block) against a transformer encoder block "
        "over the tokens of both maps, at equal parameter budgets",
        model="TwoScaleNet",
        variants={f: {"fusion": f, "width": w} for f, w in WIDTHS.items()},
        data=load_digits_tests,
        fit={"epochs": 30, "batch_size": 64, "lr": 3e-3},
        keep_network=True,  # the chapter shows the trained transformer's attention
    )
)


def batch_order(
    framework: str, n: int = 200, epochs: int = 3, batch_size: int = 64, order=None
):
    """The order in which the library's `train_classifier` of `framework` (with its
    `order`) feeds n examples, epoch by epoch: a list of `epochs` arrays of example
    indices. Trains a
    linear classifier that records the examples it sees (TensorFlow runs its training
    step eagerly for it; the input pipeline, where the shuffle happens, is as ever)."""
    X = np.arange(n, dtype="float32")[:, None, None, None]  # example i holds i
    y = np.zeros(n, dtype="int64")
    if framework == "torch":
        import torch

        from fusion_lib.torch.training import train_classifier

        class Recorder(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.linear, self.seen = torch.nn.Linear(1, 2), []

            def forward(self, x):
                if self.training:
                    self.seen.append(x.flatten().long().tolist())
                return self.linear(x.flatten(1))

    else:
        import keras
        import tensorflow as tf

        from fusion_lib.tf.training import train_classifier

        class Recorder(keras.Model):
            def __init__(self):
                super().__init__()
                self.dense, self.seen = keras.layers.Dense(2), []

            def call(self, x, training=False):
                if training:
                    self.seen.append(np.asarray(x).reshape(-1).astype(int).tolist())
                return self.dense(keras.ops.reshape(x, (-1, 1)))

        tf.config.run_functions_eagerly(True)
    recorder = Recorder()
    try:
        with warnings.catch_warnings():  # TF: "does not apply to tf.data functions"
            warnings.simplefilter("ignore")
            train_classifier(recorder, X, y, epochs, batch_size, seed=0, order=order)
    finally:
        if framework != "torch":
            tf.config.run_functions_eagerly(False)
    # Keras calls the model once more, on the first batch, as it builds the step
    per_epoch = -(-n // batch_size)
    flat = np.concatenate(recorder.seen[-epochs * per_epoch :])
    return [flat[i * n : (i + 1) * n] for i in range(epochs)]


def orders_config(seeds, variants, fit: dict) -> dict:
    """What the stored swapped-order results depend on."""
    exp = get(NAME)
    return {
        **exp.config(),
        "variants": {v: exp.variants[v] for v in variants},
        "fit": fit,
        "seeds": list(seeds),
        "orders": SWAPPED_ORDER,
    }


def run_batch_orders(
    frameworks=("torch", "tf"), seeds=None, variants=None, progress=False, **fit
) -> dict:
    """Train every variant for every seed in each framework with the other
    framework's batch order (SWAPPED_ORDER, `train_classifier`'s `order`), all else as
    `experiments.run` of the stored experiment; returns a dict in its form."""
    exp = get(NAME)
    seeds = tuple(exp.seeds if seeds is None else seeds)
    variants = list(exp.variants if variants is None else variants)
    runs = [
        run(NAME, (fw,), seeds, variants, progress, order=SWAPPED_ORDER[fw], **fit)
        for fw in frameworks
    ]
    return {
        "name": f"{NAME}_orders",
        "metric": exp.score,
        "config": orders_config(seeds, variants, {**exp.fit, **fit}),
        "results": {k: v for r in runs for k, v in r["results"].items()},
        "seconds": round(sum(r["seconds"] for r in runs), 1),
    }


def load_batch_orders() -> dict:
    """The stored results of `run_batch_orders` (all variants, the experiment's seeds
    and budget); refuses them if the experiment's definition changed since."""
    exp = get(NAME)
    path = RESULTS / f"{NAME}_orders.json"
    if not path.exists():
        raise ValueError(
            f"no stored results for {NAME}_orders: run "
            "`python -m fusion_lib.experiments.transformer_fusion`."
        )
    stored = json.loads(path.read_text())
    want = orders_config(exp.seeds, list(exp.variants), exp.fit)
    if stored["config"] != json.loads(json.dumps(want)):
        raise ValueError(
            f"stored results for {NAME}_orders are stale: re-run "
            "`python -m fusion_lib.experiments.transformer_fusion`."
        )
    return stored


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from fusion_lib.experiments import summary

    results = run_batch_orders(progress=True)
    print("stored", save(results))
    print(summary(results))
    print(f"{NAME}_orders: {results['seconds']:.0f} s")
