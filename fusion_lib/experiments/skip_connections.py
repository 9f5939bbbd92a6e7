"""Experiments of the chapter on skip connections.

`skip_depth`: a 10-block stack with no skips, residual (add) skips or dense (concat)
skips, trained on the digits; train and test accuracy, and `measure_stack` on every
trained network, measured the way the papers measure it: the lesion test (Veit et al.,
2016), the relative size of each residual branch (Jastrzebski et al., 2018), how
strongly each dense layer weights each earlier layer's features (Huang et al., 2017)
and the training loss along random filter-normalised directions around the trained
weights (Li et al., 2018). The first seed's trained networks are stored with the
results (`fusion_lib.experiments.network`), so the chapter measures them live.
`unet_skips`: a two-level U-Net with concatenated, added or no skips on generated
shapes-on-texture images, scored by the IoU of the predicted foreground.
Taught in the chapter on skip connections.
"""

from __future__ import annotations

import functools

import numpy as np

from fusion_lib.data import load_digits_with_train, load_shapes_segmentation
from fusion_lib.experiments import Experiment, predict, register

DEPTH = 10
# The loss landscape: the first LANDSCAPE_IMAGES training images, SLICES 1-D slices
# along directions 0..SLICES-1 at ALPHAS, and a 2-D surface on GRID x GRID spanned by
# directions 0 and 1 (the slices along them are its middle row and column).
LANDSCAPE_IMAGES = 512
SLICES = 4
ALPHAS = np.linspace(-1.0, 1.0, 21)
GRID = np.linspace(-1.0, 1.0, 11)


def _one_torch_thread(measure):
    """Run a measurement of a torch model on one thread (restored afterwards): on these
    8x8 maps a second thread only waits, and on a busy machine OpenMP's
    synchronisation made the landscape ten times slower. Keras models are left alone."""

    @functools.wraps(measure)
    def wrapper(framework, *args, **kwargs):
        if framework != "torch":
            return measure(framework, *args, **kwargs)
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return measure(framework, *args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    return wrapper


@_one_torch_thread
def accuracy(framework: str, model, X: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of a direct call in inference mode. Keras' `predict` would reuse a
    graph traced before `model.lesion` changed (and trace one for every new model)."""
    if framework == "torch":
        import torch

        model.eval()
        with torch.no_grad():
            logits = model(torch.as_tensor(X)).numpy()
    else:
        logits = np.asarray(model(X, training=False))
    return float((logits.argmax(-1) == np.asarray(y)).mean())


@_one_torch_thread
def lesion(framework: str, model, X: np.ndarray, y: np.ndarray) -> list[float]:
    """Accuracy on (X, y) with block i deleted, for each i (Veit et al., 2016)."""
    accuracies = []
    for i in range(model.depth):
        model.lesion = {i}
        accuracies.append(round(accuracy(framework, model, X, y), 5))
    model.lesion = set()
    return accuracies


@_one_torch_thread
def residual_ratios(framework: str, model, X: np.ndarray) -> list[float]:
    """||F_l(h_{l-1})|| / ||h_{l-1}|| for each block of a residual (add) stack, over
    the whole batch X (Jastrzebski et al., 2018)."""
    ratios = []
    if framework == "torch":
        import torch

        with torch.no_grad():
            model.eval()
            h = model.stem(torch.as_tensor(X))
            for i, block in enumerate(model.blocks):
                ratios.append(round((block.residual(h).norm() / h.norm()).item(), 5))
                h = model.block(i, h)
        return ratios
    h = model.stem(X, training=False)
    for i, block in enumerate(model.blocks):
        f = block.residual(h, training=False)
        ratios.append(round(float(np.linalg.norm(f) / np.linalg.norm(h)), 5))
        h = model.block(i, h, training=False)
    return ratios


def source_weights(framework: str, model) -> list[list[float]]:
    """For each dense layer, the mean |w| of its 1x1 convolution's weights on each
    source's channels, stem first (Huang et al., 2017)."""
    if framework == "torch":
        kernels = [b.conv1.weight.detach().numpy()[:, :, 0, 0] for b in model.blocks]
    else:
        kernels = [np.asarray(b.conv1.kernel)[0, 0].T for b in model.blocks]
    # kernel (out, in): columns 0..C_0-1 read the stem, then k columns per layer.
    width, k = kernels[0].shape[1], model.growth_rate
    return [
        [round(float(np.abs(w[:, :width]).mean()), 5)]
        + [
            round(float(np.abs(w[:, width + s * k :][:, :k]).mean()), 5)
            for s in range(layer)
        ]
        for layer, w in enumerate(kernels)
    ]


def _weights(framework: str, model) -> tuple[list, list[int | None]]:
    """The trainable weights and each one's filter axis (None for biases and
    BatchNorm's scale and shift, which the directions leave alone)."""
    if framework == "torch":
        weights = [p for p in model.parameters() if p.requires_grad]
        return weights, [0 if p.ndim > 1 else None for p in weights]
    weights = list(model.trainable_weights)
    return weights, [len(w.shape) - 1 if len(w.shape) > 1 else None for w in weights]


def filter_normalised_direction(framework: str, model, seed: int) -> list:
    """A random direction in weight space, scaled filter by filter (Li et al., 2018).

    d ~ N(0, I) for every convolution and linear kernel, then each filter (one output
    channel or unit) rescaled to the norm of the same filter of the trained weights:
    d_f <- d_f ||theta_f|| / ||d_f||. Biases and BatchNorm parameters get 0, as in the
    paper. Returns one array (or None) per trainable weight, in the framework's layout.
    """
    rng = np.random.default_rng(seed)
    weights, axes = _weights(framework, model)
    direction = []
    for w, axis in zip(weights, axes):
        if axis is None:
            direction.append(None)
            continue
        theta = w.detach().numpy() if framework == "torch" else np.asarray(w)
        d = rng.standard_normal(theta.shape).astype(np.float32)
        others = tuple(a for a in range(theta.ndim) if a != axis)
        scale = np.sqrt((theta**2).sum(others, keepdims=True)) / (
            np.sqrt((d**2).sum(others, keepdims=True)) + 1e-10
        )
        direction.append(d * scale)
    return direction


@_one_torch_thread
def loss_landscape(
    framework: str, model, X: np.ndarray, y: np.ndarray, steps: list, directions: list
) -> list[float]:
    """Mean cross-entropy on (X, y) in inference mode at theta + sum_j a_j d_j, for
    each tuple (a_1, a_2, ...) in `steps`, with `directions` from
    `filter_normalised_direction`; the trained weights are restored afterwards."""
    weights, _ = _weights(framework, model)
    if framework == "torch":
        import torch

        model.eval()
        theta = [w.detach().clone() for w in weights]
        ds = [
            [None if v is None else torch.as_tensor(v) for v in d] for d in directions
        ]
        X_t, y_t, losses = torch.as_tensor(X), torch.as_tensor(y), []
        with torch.no_grad():
            for step in steps:
                for i, (w, t) in enumerate(zip(weights, theta)):
                    moved = [a * d[i] for a, d in zip(step, ds) if d[i] is not None]
                    w.copy_(t + sum(moved) if moved else t)
                loss = torch.nn.functional.cross_entropy(model(X_t), y_t)
                losses.append(round(loss.item(), 5))
            for w, t in zip(weights, theta):
                w.copy_(t)
        return losses
    import keras

    theta = [np.asarray(w) for w in weights]
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    losses = []
    for step in steps:
        for i, (w, t) in enumerate(zip(weights, theta)):
            moved = [a * d[i] for a, d in zip(step, directions) if d[i] is not None]
            w.assign(t + sum(moved) if moved else t)
        loss = cross_entropy(y, model(X, training=False))
        losses.append(round(float(loss), 5))
    for w, t in zip(weights, theta):
        w.assign(t)
    return losses


def landscape(framework: str, model, X: np.ndarray, y: np.ndarray) -> dict:
    """SLICES 1-D slices at ALPHAS and the GRID x GRID surface over directions 0, 1."""
    directions = [
        filter_normalised_direction(framework, model, s) for s in range(SLICES)
    ]
    slices = [
        loss_landscape(framework, model, X, y, [(a,) for a in ALPHAS], [d])
        for d in directions
    ]
    steps = [(a, b) for b in GRID for a in GRID]
    flat = loss_landscape(framework, model, X, y, steps, directions[:2])
    surface = [flat[i : i + len(GRID)] for i in range(0, len(flat), len(GRID))]
    return {"loss_slices": slices, "loss_surface": surface}


def nonconvex_share(surface) -> float:
    """The share of a 2-D loss surface's inner grid points where it curves down in some
    direction: the smaller eigenvalue of its finite-difference Hessian is negative (the
    grid analogue of Li et al.'s map of Hessian eigenvalues)."""
    Z = np.asarray(surface, dtype=float)
    zxx = Z[1:-1, 2:] - 2 * Z[1:-1, 1:-1] + Z[1:-1, :-2]
    zyy = Z[2:, 1:-1] - 2 * Z[1:-1, 1:-1] + Z[:-2, 1:-1]
    zxy = (Z[2:, 2:] - Z[2:, :-2] - Z[:-2, 2:] + Z[:-2, :-2]) / 4
    smaller = (zxx + zyy) / 2 - np.sqrt(((zxx - zyy) / 2) ** 2 + zxy**2)
    return float((smaller < 0).mean())


def measure_stack(framework: str, model, train: tuple, tests: dict) -> dict:
    """Every analysis of a trained SkipStack: lesion accuracies on the test set, the
    residual-branch ratios (add) on the test set, the dense source weights (concat),
    and the loss landscape on the first LANDSCAPE_IMAGES training images."""
    X, y = tests["test"]
    out = {"lesion": lesion(framework, model, X, y)}
    if model.skip == "add":
        out["residual_ratio"] = residual_ratios(framework, model, X)
    if model.skip == "concat":
        out["source_weight"] = source_weights(framework, model)
    X_tr, y_tr = train
    n = LANDSCAPE_IMAGES
    return {**out, **landscape(framework, model, X_tr[:n], y_tr[:n])}


register(
    Experiment(
        name="skip_depth",
        chapter="Skip connections",
        question="does a 10-block stack train better with add or concat skips?",
        model="SkipStack",
        # width 8 / growth 4: the dense stack has within 6 % of the others' parameters.
        variants={
            "none": {"skip": "none", "depth": DEPTH, "width": 8},
            "add": {"skip": "add", "depth": DEPTH, "width": 8},
            "concat": {"skip": "concat", "depth": DEPTH, "width": 8, "growth_rate": 4},
        },
        data=load_digits_with_train,
        fit={"epochs": 10, "batch_size": 128, "lr": 1e-2},
        measure=measure_stack,
        keep_network=True,
    )
)


def iou(logits: np.ndarray, masks: np.ndarray) -> float:
    """Intersection over union of the predicted foreground (argmax over the last axis,
    the classes, == 1) with the true masks, pooled over every pixel of every image."""
    predicted = logits.argmax(-1) == 1
    truth = np.asarray(masks) == 1
    return float((predicted & truth).sum() / max((predicted | truth).sum(), 1))


def predicted_masks(framework: str, model, train: tuple, tests: dict) -> dict:
    """The masks predicted for the first 3 test images, one string of 0s and 1s per
    row (`decode_masks` turns them back into arrays)."""
    masks = predict(framework, model, tests["test"][0][:3]).argmax(-1)
    return {"masks": [["".join(map(str, row)) for row in mask] for mask in masks]}


def decode_masks(masks: list) -> np.ndarray:
    """(images, H, W) int array from `predicted_masks`' strings."""
    return np.array([[[int(c) for c in row] for row in mask] for mask in masks])


register(
    Experiment(
        name="unet_skips",
        chapter="Skip connections",
        question="does a U-Net segment better with concatenated, added or no skips?",
        model="TinyUNet",
        variants={
            "concat": {"skip": "concat"},
            "add": {"skip": "add"},
            "none": {"skip": "none"},
        },
        # the book's classifier training applied per pixel: both frameworks'
        # cross-entropies accept (N, H, W) labels
        data=load_shapes_segmentation,
        fit={"epochs": 15, "batch_size": 32, "lr": 3e-3},
        metric=iou,
        measure=predicted_masks,
    )
)
