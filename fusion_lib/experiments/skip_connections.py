"""Experiments of the chapter on skip connections.

`skip_depth` (the shared runner): a 10-block stack with no skips, residual (add) skips
or dense (concat) skips, trained on the digits; train and test accuracy.
`analyse` (this module, stored in results/skip_analysis.json): the same three networks,
trained with the same budget, then measured the way the papers measure them: the
lesion test (Veit et al., 2016), the relative size of each residual branch
(Jastrzebski et al., 2018) and how strongly each dense layer weights each earlier
layer's features (Huang et al., 2017).
"""

from __future__ import annotations

import json
import time

import numpy as np

from fusion_lib.data import load_digits_with_train
from fusion_lib.experiments import RESULTS, Experiment, _half, get, register

DEPTH = 10
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
    )
)

ANALYSIS = RESULTS / "skip_analysis.json"


def _eager_accuracy(framework: str, model, X: np.ndarray, y: np.ndarray) -> float:
    """Accuracy from a direct call in inference mode. Keras' `predict` would reuse a
    graph traced before `model.lesion` changed."""
    if framework == "torch":
        import torch

        model.eval()
        with torch.no_grad():
            logits = model(torch.as_tensor(X)).numpy()
    else:
        logits = np.asarray(model(X, training=False))
    return float((logits.argmax(-1) == np.asarray(y)).mean())


def measure_stack(framework: str, model, X: np.ndarray, y: np.ndarray) -> dict:
    """Lesion accuracies, residual-branch ratios and dense source weights of a trained
    SkipStack; X in the framework's layout."""
    out = {"lesion": []}
    for i in range(model.depth):
        model.lesion = {i}
        out["lesion"].append(round(_eager_accuracy(framework, model, X, y), 5))
    model.lesion = set()
    if framework == "torch":
        import torch

        with torch.no_grad():
            model.eval()
            h = model.stem(torch.as_tensor(X))
            ratios = []
            for i, block in enumerate(model.blocks):
                if model.skip == "add":
                    r = block.residual(h).norm() / h.norm()
                    ratios.append(round(r.item(), 5))
                h = model.block(i, h)
        kernels = [b.conv1.weight.detach().numpy()[:, :, 0, 0] for b in model.blocks]
    else:
        h = model.stem(X, training=False)
        ratios = []
        for i, block in enumerate(model.blocks):
            if model.skip == "add":
                f = block.residual(h, training=False)
                r = np.linalg.norm(f) / np.linalg.norm(h)
                ratios.append(round(float(r), 5))
            h = model.block(i, h, training=False)
        kernels = [np.asarray(b.conv1.kernel)[0, 0].T for b in model.blocks]
    out["residual_ratio"] = ratios
    if model.skip == "concat":
        # kernel (out, in): columns 0..C_0-1 read the stem, then k columns per layer.
        width = kernels[0].shape[1]
        k = model.growth_rate
        out["source_weight"] = [
            [round(float(np.abs(w[:, :width]).mean()), 5)]
            + [
                round(float(np.abs(w[:, width + s * k :][:, :k]).mean()), 5)
                for s in range(layer)
            ]
            for layer, w in enumerate(kernels)
        ]
    return out


def analyse(frameworks=("torch", "tf"), seeds=(0, 1, 2), **fit) -> dict:
    """Train skip_depth's variants (its budget unless fit overrides it); measure each.

    Returns {"config", "results": {framework: {variant: {"lesion": [per seed: test
    accuracy with block i deleted, for each i], "intact": [per seed], "residual_ratio":
    [per seed: ||F_l(h)|| / ||h|| per block] (add only), "source_weight": [per seed:
    per layer, mean |1x1 weight| per source, stem first] (concat only)}}}.
    """
    from fusion_lib.env import seed_everything

    exp = get("skip_depth")
    fit_args = {**exp.fit, **fit}
    out = {"config": {**exp.config(), "fit": fit_args, "seeds": list(seeds)}}
    out["results"] = {}
    start = time.perf_counter()
    data = {seed: exp.data(seed) for seed in seeds}
    for framework in frameworks:
        models, training, layout = _half(framework)
        for variant, kwargs in exp.variants.items():
            row = out["results"].setdefault(framework, {}).setdefault(variant, {})
            for seed in seeds:
                X_tr, y_tr, tests = data[seed]
                X_te, y_te = tests["test"]
                seed_everything(seed)
                model = getattr(models, exp.model)(**kwargs)
                training.train_classifier(
                    model, layout(X_tr), y_tr, seed=seed, **fit_args
                )
                intact = training.accuracy(model, layout(X_te), y_te)
                row.setdefault("intact", []).append(round(intact, 5))
                for key, value in measure_stack(
                    framework, model, layout(X_te), y_te
                ).items():
                    if value:
                        row.setdefault(key, []).append(value)
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out


def load_analysis() -> dict:
    """The stored `analyse()` results; refuses them if skip_depth's definition
    changed."""
    stored = json.loads(ANALYSIS.read_text())
    if stored["config"] != json.loads(json.dumps(get("skip_depth").config())):
        raise ValueError(
            "stored skip_analysis.json is stale (skip_depth changed): re-run "
            "`python -m fusion_lib.experiments.skip_connections`."
        )
    return stored


SEGMENTATION = RESULTS / "unet_skips.json"
UNET = {
    "model": "TinyUNet",
    "variants": {
        "concat": {"skip": "concat"},
        "add": {"skip": "add"},
        "none": {"skip": "none"},
    },
    "data": "fusion_lib.data.load_shapes_segmentation",
    "fit": {"epochs": 15, "batch_size": 32, "lr": 3e-3},
    "seeds": [0, 1, 2],
}


def iou(logits: np.ndarray, masks: np.ndarray, axis: int) -> float:
    """Intersection over union of the predicted foreground (argmax over `axis` == 1)
    with the true masks, pooled over every pixel of every image."""
    predicted = logits.argmax(axis) == 1
    truth = np.asarray(masks) == 1
    return float((predicted & truth).sum() / max((predicted | truth).sum(), 1))


def segment(frameworks=("torch", "tf"), seeds=None, variants=None, **fit) -> dict:
    """Train TinyUNet with each skip on the shapes-on-texture images; score IoU.

    Uses the book's classifier training (per-pixel cross-entropy: both frameworks'
    losses accept (N, H, W) labels). Returns {"config", "results": {framework:
    {variant: {"params", "iou": [per seed], "loss": [per seed, per epoch], "masks":
    predicted masks of the first 3 test images (first seed)}}}}.
    """
    from fusion_lib.data import load_shapes_segmentation
    from fusion_lib.env import seed_everything

    seeds = list(UNET["seeds"] if seeds is None else seeds)
    chosen = list(UNET["variants"] if variants is None else variants)
    fit_args = {**UNET["fit"], **fit}
    out = {"config": {**UNET, "fit": fit_args, "seeds": seeds}, "results": {}}
    start = time.perf_counter()
    data = {seed: load_shapes_segmentation(seed) for seed in seeds}
    for framework in frameworks:
        models, training, layout = _half(framework)
        for variant in chosen:
            row = (
                out["results"]
                .setdefault(framework, {})
                .setdefault(variant, {"iou": [], "loss": []})
            )
            for seed in seeds:
                X_tr, y_tr, tests = data[seed]
                X_te, y_te = tests["test"]
                seed_everything(seed)
                model = getattr(models, UNET["model"])(**UNET["variants"][variant])
                loss = training.train_classifier(
                    model, layout(X_tr), y_tr, seed=seed, **fit_args
                )
                logits = _logits(framework, model, layout(X_te))
                axis = 1 if framework == "torch" else -1
                row["params"] = training.count_params(model)
                row["loss"].append([round(v, 5) for v in loss])
                row["iou"].append(round(iou(logits, y_te, axis), 5))
                if "masks" not in row:
                    row["masks"] = logits[:3].argmax(axis).astype(int).tolist()
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out


def _logits(framework: str, model, X: np.ndarray) -> np.ndarray:
    if framework == "torch":
        import torch

        model.eval()
        with torch.no_grad():
            return model(torch.as_tensor(X)).numpy()
    return np.asarray(model.predict(X, batch_size=256, verbose=0))


def load_segmentation() -> dict:
    """The stored `segment()` results; refuses them if UNET's definition changed."""
    stored = json.loads(SEGMENTATION.read_text())
    if stored["config"] != json.loads(json.dumps(UNET)):
        raise ValueError(
            "stored unet_skips.json is stale (UNET changed): re-run "
            "`python -m fusion_lib.experiments.skip_connections --segment`."
        )
    return stored


if __name__ == "__main__":
    import sys

    if "--segment" in sys.argv:
        result, path = segment(), SEGMENTATION
    else:
        result, path = analyse(), ANALYSIS
    path.write_text(json.dumps(result, indent=1) + "\n")
    print("stored", path, f"in {result['seconds']:.0f} s")
