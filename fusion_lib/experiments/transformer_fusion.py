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
import time
import warnings

import numpy as np

from fusion_lib.data import load_digits_tests
from fusion_lib.experiments import RESULTS, Experiment, get, register, save

NAME = "transformer_fusion"
# width per fusion, chosen so that every network has 17,874 to 18,170 parameters
# (within 2 % of the transformer's 17,898); the chapter prints the counts.
WIDTHS = {"concat": 35, "se": 34, "cbam": 34, "nonlocal": 32, "transformer": 32}
ORDERS = ("reshuffled", "replayed")
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


def batch_order(framework: str, n: int = 200, epochs: int = 3, batch_size: int = 64):
    """The order in which the library's `train_classifier` of `framework` feeds n
    examples, epoch by epoch: a list of `epochs` arrays of example indices. Trains a
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
            train_classifier(recorder, X, y, epochs, batch_size, seed=0)
    finally:
        if framework != "torch":
            tf.config.run_functions_eagerly(False)
    # Keras calls the model once more, on the first batch, as it builds the step
    per_epoch = -(-n // batch_size)
    flat = np.concatenate(recorder.seen[-epochs * per_epoch :])
    return [flat[i * n : (i + 1) * n] for i in range(epochs)]


def train_in_order(
    framework: str,
    model,
    X: np.ndarray,
    y: np.ndarray,
    order: str,
    epochs: int = 20,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
) -> list[float]:
    """The library's `train_classifier` (Adam on cross-entropy, BatchNorm statistics
    recomputed at the end; X in the framework's layout) with the batch order chosen:
    "reshuffled", a new permutation every epoch, or "replayed", the first epoch's
    permutation in every epoch. Returns the mean training loss of each epoch. In
    PyTorch "reshuffled" is exactly `fusion_lib.torch.training.train_classifier`."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}; got {order!r}.")
    if framework == "torch":
        return _torch_in_order(model, X, y, order, epochs, batch_size, lr, seed)
    if framework == "tf":
        return _keras_in_order(model, X, y, order, epochs, batch_size, lr, seed)
    raise ValueError(f"framework must be 'torch' or 'tf'; got {framework!r}.")


def _torch_in_order(model, X, y, order, epochs, batch_size, lr, seed) -> list[float]:
    import torch
    from torch import nn

    from fusion_lib.torch.training import recalibrate_batchnorm

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the library's training does
    try:
        X, y = torch.as_tensor(X), torch.as_tensor(y)
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        model.train()
        history, perm = [], None
        for _ in range(epochs):
            if perm is None or order == "reshuffled":
                perm = torch.randperm(len(y), generator=gen)
            total = 0.0
            for idx in perm.split(batch_size):
                opt.zero_grad()
                loss = nn.functional.cross_entropy(model(X[idx]), y[idx])
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            history.append(total / len(y))
        recalibrate_batchnorm(model, X, batch_size)
        return history
    finally:
        torch.set_num_threads(threads)


def _keras_in_order(model, X, y, order, epochs, batch_size, lr, seed) -> list[float]:
    import keras

    from fusion_lib.tf.training import recalibrate_batchnorm

    keras.utils.set_random_seed(seed)
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng, history, perm = np.random.default_rng(seed), [], None
    for _ in range(epochs):
        if perm is None or order == "reshuffled":
            perm = rng.permutation(len(y))
        fitted = model.fit(
            X[perm], y[perm], batch_size=batch_size, epochs=1, shuffle=False, verbose=0
        )
        history.append(float(fitted.history["loss"][0]))
    recalibrate_batchnorm(model, X, batch_size)
    return history


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
    framework's batch order (SWAPPED_ORDER), all else as `experiments.run` of the
    stored experiment; returns a dict in `experiments.run`'s form."""
    from fusion_lib.env import seed_everything
    from fusion_lib.experiments import _half

    exp = get(NAME)
    seeds = tuple(exp.seeds if seeds is None else seeds)
    variants = list(exp.variants if variants is None else variants)
    fit_args = {**exp.fit, **fit}
    out = {
        "name": f"{NAME}_orders",
        "metric": exp.score,
        "config": orders_config(seeds, variants, fit_args),
        "results": {},
    }
    start = time.perf_counter()
    data = {seed: exp.data(seed) for seed in seeds}
    for framework in frameworks:
        models, training, layout = _half(framework)
        table = out["results"].setdefault(framework, {})
        for variant in variants:
            row = table.setdefault(
                variant, {"params": None, "accuracy": {}, "loss": []}
            )
            for seed in seeds:
                X_tr, y_tr, tests = data[seed]
                seed_everything(seed)
                model = getattr(models, exp.model)(**exp.variants[variant])
                loss = train_in_order(
                    framework,
                    model,
                    layout(X_tr),
                    y_tr,
                    SWAPPED_ORDER[framework],
                    seed=seed,
                    **fit_args,
                )
                row["params"] = training.count_params(model)
                row["loss"].append([round(v, 5) for v in loss])
                for test, (X, y) in tests.items():
                    value = training.accuracy(model, layout(X), y)
                    row["accuracy"].setdefault(test, []).append(round(value, 5))
                if progress:
                    print(f"{framework} {variant} seed {seed}: {value:.3f}", flush=True)
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out


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
