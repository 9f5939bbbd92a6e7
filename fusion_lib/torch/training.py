"""Training and measuring the small networks of the book's experiments (NCHW).

Taught in the chapter on addition; every chapter with an experiment uses it, usually
through `fusion_lib.experiments`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import update_bn

from fusion_lib._checks import check_batch_order


def count_params(module: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def measure_flops(module: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of one forward pass on x, by FlopCounterMode (2 per multiply-add).

    Attention runs on SDPA's math backend while counting: the counter has no formula
    for the fused CPU kernel and would count its matrix products as 0.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    counting = FlopCounterMode(display=False)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counting as counter:
        module(x)
    return counter.get_total_flops()


def train_classifier(
    model: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    epochs: int = 20,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    order: str | None = None,
) -> list[float]:
    """Adam on cross-entropy; returns the mean training loss of each epoch.

    X: (N, C, H, W) float32, or a tuple of arrays for a model of several inputs (the
    model is then called with the tuple of batches, e.g. (images, questions)); y: (N,)
    int labels. The batch order comes from a generator seeded with `seed`, so a run
    repeats exactly on one machine: a new permutation every epoch (order None, this
    framework's own, or "reshuffled"), or the first epoch's permutation in every epoch
    ("replayed", what the Keras half's own order amounts to; the chapter on
    self-attention measures the difference). Ends by recomputing the BatchNorm
    statistics with the final weights (`recalibrate_batchnorm`).

    Trains on one CPU thread: the book's networks are so small that a second thread
    gains little, and on a busy machine OpenMP's thread synchronisation made the same
    run 2-7x slower. The caller's thread count is restored afterwards.
    """
    check_batch_order(order)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(model, X, y, epochs, batch_size, lr, seed, order == "replayed")
    finally:
        torch.set_num_threads(threads)


def _inputs(X):
    """X as a model's input: a tensor, or a tuple of tensors for several inputs."""
    if isinstance(X, (tuple, list)):
        return tuple(torch.as_tensor(x) for x in X)
    return torch.as_tensor(X)


def _rows(X, idx):
    """The examples idx (an index tensor or a slice) of X, a tensor or a tuple."""
    return tuple(x[idx] for x in X) if isinstance(X, tuple) else X[idx]


def _train(model, X, y, epochs, batch_size, lr, seed, replay) -> list[float]:
    X, y = _inputs(X), torch.as_tensor(y)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    history, perm = [], None
    for _ in range(epochs):
        if perm is None or not replay:
            perm = torch.randperm(len(y), generator=gen)
        total = 0.0
        for idx in perm.split(batch_size):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(_rows(X, idx)), y[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        history.append(total / len(y))
    recalibrate_batchnorm(model, X, batch_size)
    return history


def accuracy(model: nn.Module, X: np.ndarray, y: np.ndarray) -> float:
    """Fraction of X classified as y, in inference mode."""
    model.eval()
    with torch.no_grad():
        predicted = model(_inputs(X)).argmax(1)
    return (predicted == torch.as_tensor(y)).float().mean().item()


def fit_classifier(model: nn.Module, data, epochs=20, batch_size=64, lr=3e-3, seed=0):
    """Train on data = (X_train, y_train, X_test, y_test); return the test accuracy."""
    X_tr, y_tr, X_te, y_te = data
    train_classifier(model, X_tr, y_tr, epochs, batch_size, lr, seed)
    return accuracy(model, X_te, y_te)


def recalibrate_batchnorm(
    model: nn.Module, X, batch_size: int = 64
) -> None:
    """Recompute every BatchNorm's running statistics with the final weights ("precise
    BN").

    During training the running mean and variance are moving averages over batches seen
    by
    *earlier* weights; after a fast schedule they lag the final network and
    inference-mode
    accuracy collapses. One pass over X, every batch weighted equally, fixes that: it is
    `torch.optim.swa_utils.update_bn`. A model without BatchNorm is left untouched.
    X: a tensor, or a tuple of tensors for a model of several inputs.
    """
    X = _inputs(X)
    n = len(X[0]) if isinstance(X, tuple) else len(X)
    # update_bn calls the model on a batch's first element when the batch is a tuple
    # (it expects (inputs, labels)): wrap each batch so that element is the inputs.
    batches = [(_rows(X, slice(i, i + batch_size)),) for i in range(0, n, batch_size)]
    with torch.no_grad():
        update_bn(batches, model)
