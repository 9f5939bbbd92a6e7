"""Training and measuring the small networks of the book's experiments (NHWC).

Taught in the chapter on addition; every chapter with an experiment uses it, usually
through `fusion_lib.experiments`.
"""

from __future__ import annotations

import keras
import numpy as np

from fusion_lib._checks import check_batch_order


def count_params(module) -> int:
    """Number of trainable scalars."""
    return int(sum(np.prod(w.shape) for w in module.trainable_weights))


def train_classifier(
    model,
    X: np.ndarray,
    y: np.ndarray,
    epochs: int = 20,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    order: str | None = None,
) -> list[float]:
    """Adam on cross-entropy; returns the mean training loss of each epoch.

    X: (N, H, W, C) float32, or a tuple of arrays for a model of several inputs (the
    model is then called with the tuple, e.g. (images, questions)); y: (N,) int
    labels. Seeds Keras (Python, NumPy, TF) with `seed`, so a run repeats exactly on
    one machine. The batch order: order None, this framework's own, is `fit(...,
    shuffle=True)`, which after `keras.utils.set_random_seed` replays the permutation
    of its first epoch in every epoch; "reshuffled" draws a new permutation every epoch
    and "replayed" the first one only, both from NumPy's generator seeded with `seed`,
    fed one epoch at a time (the chapter on self-attention measures the difference).
    Ends by recomputing the BatchNorm statistics with the final weights
    (`recalibrate_batchnorm`).
    """
    check_batch_order(order)
    keras.utils.set_random_seed(seed)
    X = tuple(X) if isinstance(X, list) else X  # a list would also mean inputs
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    if order is None:
        fitted = model.fit(
            X, y, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0
        )
        history = fitted.history["loss"]
    else:
        history = _fit_in_order(model, X, y, epochs, batch_size, seed, order)
    recalibrate_batchnorm(model, X, batch_size)
    return [float(v) for v in history]


def _fit_in_order(model, X, y, epochs, batch_size, seed, order) -> list[float]:
    y, rng, history, perm = np.asarray(y), np.random.default_rng(seed), [], None
    for _ in range(epochs):
        if perm is None or order == "reshuffled":
            perm = rng.permutation(len(y))
        rows = tuple(x[perm] for x in X) if isinstance(X, tuple) else X[perm]
        fitted = model.fit(
            rows, y[perm], batch_size=batch_size, epochs=1, shuffle=False, verbose=0
        )
        history.append(fitted.history["loss"][0])
    return history


def accuracy(model, X: np.ndarray, y: np.ndarray) -> float:
    """Fraction of X classified as y, in inference mode."""
    X = tuple(X) if isinstance(X, list) else X
    logits = model.predict(X, batch_size=512, verbose=0)
    return float((logits.argmax(1) == np.asarray(y)).mean())


def fit_classifier(model, data, epochs=20, batch_size=64, lr=3e-3, seed=0):
    """Train on data = (X_train, y_train, X_test, y_test); return the test accuracy."""
    X_tr, y_tr, X_te, y_te = data
    train_classifier(model, X_tr, y_tr, epochs, batch_size, lr, seed)
    return accuracy(model, X_te, y_te)


def recalibrate_batchnorm(model, X, batch_size: int = 64) -> None:
    """Recompute every BatchNormalization's statistics with the final weights ("precise
    BN").

    During training the moving mean and variance average batches seen by *earlier*
    weights;
    after a fast schedule they lag the final network and inference-mode accuracy
    collapses.
    Setting momentum to 1 - 1/k for the k-th batch makes the moving statistics the
    equal-weight average over one pass of X, as `update_bn` does in the PyTorch twin.
    A model without BatchNorm is left untouched.
    """
    X = tuple(X) if isinstance(X, (tuple, list)) else X
    n = len(X[0]) if isinstance(X, tuple) else len(X)
    norms = [
        layer
        for layer in model._flatten_layers()
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    if not norms:
        return
    momenta = [bn.momentum for bn in norms]
    for k, start in enumerate(range(0, n, batch_size), start=1):
        for bn in norms:
            bn.momentum = 1.0 - 1.0 / k  # k = 1 overwrites the old statistics
        rows = slice(start, start + batch_size)
        batch = tuple(x[rows] for x in X) if isinstance(X, tuple) else X[rows]
        model(batch, training=True)
    for bn, momentum in zip(norms, momenta):
        bn.momentum = momentum
