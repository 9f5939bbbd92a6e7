"""Experiments of the chapter on choosing a fusion method.

One backbone (`FusionPointNet`), its two branches fused seven ways, trained on two
data sets with the shared runner:

    python -m fusion_lib.experiments capstone_digits capstone_shapes

`capstone_digits`: scikit-learn's 8x8 digits, 10 classes; `capstone_shapes`: the
generated multi-scale shapes (32x32, 3 classes, small and large test sets), the stem
max-pooled to 16x16. Every variant has the same width, so the parameter budgets are
*not* equal: the concatenating fusions widen the head conv (the confound the chapter
names), and `concat_reduce` is the control that concatenates without widening it.

The costs of each variant, measured once on an idle machine (parameters in both
frameworks, FLOPs by `torch.utils.flop_counter` (math and default attention kernels)
against `analytic_flops`, median CPU
latency of one batch in both frameworks on one thread), are stored by

    python -m fusion_lib.experiments.capstone   # results/capstone_costs.json

Taught in the chapter on choosing a fusion method.
"""

from __future__ import annotations

import json
import os

from fusion_lib import costs
from fusion_lib.data import load_digits_tests, load_multiscale_shapes
from fusion_lib.experiments import RESULTS, Experiment, register

FUSIONS = ("concat", "add", "multiply", "se", "cbam", "concat_reduce", "attention")
WIDE = ("concat", "se", "cbam")  # fusions whose output has 2 * width channels
WIDTH, REDUCTION, HEADS = 16, 4, 2
LATENCY_BATCH, LATENCY_REPEATS = 64, 50


def load_capstone_shapes(seed: int = 0):
    """The multi-scale shapes at a smaller size of sets than the chapter on feature
    pyramids uses (600 training images, 300 per test set), so that 42 trainings fit in
    a few minutes: (X_train, y_train, {"large": ..., "small": ...}), NCHW, 32x32, the
    large shapes' test set first (the main one).
    Taught in the chapter on choosing a fusion method.
    """
    X_tr, y_tr, tests = load_multiscale_shapes(seed, n_train=600, n_test=300)
    return X_tr, y_tr, {"large": tests["large"], "small": tests["small"]}


DATASETS = {
    "digits": {
        "data": load_digits_tests,
        "net": {"size": 8, "num_classes": 10, "pool": False},
        "fit": {"epochs": 20, "batch_size": 64, "lr": 3e-3},
    },
    "shapes": {
        "data": load_capstone_shapes,
        "net": {"size": 32, "num_classes": 3, "pool": True},
        "fit": {"epochs": 12, "batch_size": 32, "lr": 1e-2},
    },
}


def variant_args(dataset: str, fusion: str) -> dict:
    """FusionPointNet's arguments for one fusion on one data set."""
    return {
        "fusion": fusion,
        "width": WIDTH,
        "reduction": REDUCTION,
        "num_heads": HEADS,
        **DATASETS[dataset]["net"],
    }


for _name, _spec in DATASETS.items():
    register(
        Experiment(
            name=f"capstone_{_name}",
            chapter="Choosing a fusion method",
            question=f"{_name}: one backbone, its two branches fused by concat, add, "
            "multiply, SE, CBAM, concat + 1x1 reduction or cross-attention, at one "
            "width (raw costs, not equalised)",
            model="FusionPointNet",
            variants={f: variant_args(_name, f) for f in FUSIONS},
            data=_spec["data"],
            fit=_spec["fit"],
        )
    )


def analytic_params(
    fusion: str,
    width: int = WIDTH,
    in_channels: int = 1,
    num_classes: int = 10,
    reduction: int = REDUCTION,
) -> int:
    """FusionPointNet's trainable parameters from the closed forms of
    `fusion_lib.costs`: stem, two branches, the fusion's own weights, head, classifier.
    """
    w, c2 = width, 2 * width
    total = costs.conv2d_params(in_channels, w, 3) + 2 * costs.conv2d_params(w, w, 3)
    if fusion == "se":  # two 1x1 convs with bias on the pooled vector
        total += costs.conv2d_params(c2, c2 // reduction, 1)
        total += costs.conv2d_params(c2 // reduction, c2, 1)
    elif fusion == "cbam":  # shared MLP, then a 7x7 conv 2 -> 1 and a BatchNorm
        total += costs.linear_params(c2, c2 // reduction)
        total += costs.linear_params(c2 // reduction, c2)
        total += costs.conv2d_params(2, 1, 7, bias=False) + costs.batchnorm_params(1)
    elif fusion == "concat_reduce":  # 1x1 conv without bias, BatchNorm
        total += costs.conv2d_params(c2, w, 1, bias=False) + costs.batchnorm_params(w)
    elif fusion == "attention":  # q, k, v and output projections
        total += 4 * costs.linear_params(w, w)
    head_in = c2 if fusion in WIDE else w
    total += costs.conv2d_params(head_in, w, 3) + costs.linear_params(w, num_classes)
    return total


def analytic_flops(
    fusion: str,
    size: int,
    pool: bool,
    width: int = WIDTH,
    in_channels: int = 1,
    num_classes: int = 10,
    reduction: int = REDUCTION,
) -> dict:
    """FLOPs (2 per multiply-add) of one image through FusionPointNet, the
    convolutions and matrix products only (what FlopCounterMode counts), by part:
    {"backbone", "fusion", "attention matmuls", "head", "total"}. With L = H W
    positions after the stem, the attention fusion adds 4 L w^2 x 2 for its four
    projections and 2 L^2 w x 2 for Q K^T and the weighted sum of the values.
    """
    w, c2 = width, 2 * width
    h = size // 2 if pool else size
    n = h * h
    backbone = costs.conv2d_flops(in_channels, w, 3, size, size)
    backbone += 2 * costs.conv2d_flops(w, w, 3, h, h)
    fusion_flops, matmuls = 0, 0
    if fusion == "se":
        fusion_flops = costs.conv2d_flops(c2, c2 // reduction, 1, 1, 1)
        fusion_flops += costs.conv2d_flops(c2 // reduction, c2, 1, 1, 1)
    elif fusion == "cbam":  # the MLP reads the mean and the max vectors
        mlp = costs.linear_flops(c2, c2 // reduction)
        mlp += costs.linear_flops(c2 // reduction, c2)
        fusion_flops = 2 * mlp + costs.conv2d_flops(2, 1, 7, h, h)
    elif fusion == "concat_reduce":
        fusion_flops = costs.conv2d_flops(c2, w, 1, h, h)
    elif fusion == "attention":
        fusion_flops = 4 * n * costs.linear_flops(w, w)
        matmuls = 2 * (2 * n * n * w)
    head_in = c2 if fusion in WIDE else w
    head = costs.conv2d_flops(head_in, w, 3, h, h) + costs.linear_flops(w, num_classes)
    total = backbone + fusion_flops + matmuls + head
    return {
        "backbone": backbone,
        "fusion": fusion_flops,
        "attention matmuls": matmuls,
        "head": head,
        "total": total,
    }


def fused_kernel_flops(model, x) -> int:
    """FLOPs of one forward pass as a plain `FlopCounterMode` counts them, attention
    on the kernel PyTorch picks by default (on a CPU, the fused one, which this
    counter may not know); `fusion_lib.torch.training.measure_flops` forces the math
    backend instead, whose matrix products it does count."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops()


def variant_costs(dataset: str, fusion: str) -> dict:
    """Parameters (both frameworks, and analytic) and FLOPs per image (counted by
    `torch.utils.flop_counter` and analytic) of one variant: deterministic, fast."""
    import torch

    import fusion_lib.tf.models as km
    import fusion_lib.tf.training as kt
    import fusion_lib.torch.models as tm
    import fusion_lib.torch.training as tt

    net = args = variant_args(dataset, fusion)
    model = tm.FusionPointNet(**args).eval()
    x = torch.zeros(1, 1, net["size"], net["size"])
    analytic = analytic_flops(
        fusion, net["size"], net["pool"], num_classes=net["num_classes"]
    )
    return {
        "params_torch": tt.count_params(model),
        "params_tf": kt.count_params(km.FusionPointNet(**args)),
        "params_analytic": analytic_params(fusion, num_classes=net["num_classes"]),
        "flops_counter": int(tt.measure_flops(model, x)),
        "flops_counter_fused": int(fused_kernel_flops(model, x)),
        "flops_analytic": int(analytic["total"]),
        "flops_attention_matmuls": int(analytic["attention matmuls"]),
        "input": [1, 1, net["size"], net["size"]],
    }


def latency_ms(
    framework: str,
    dataset: str,
    fusion: str,
    batch: int = LATENCY_BATCH,
    repeats: int = LATENCY_REPEATS,
) -> float:
    """Median ms of one inference pass over a batch of `batch` images on the CPU, one
    thread (torch.set_num_threads(1); TensorFlow's intra- and inter-op pools set to 1
    before its first op), after 5 warm-up passes; Keras runs the model's call traced
    once by tf.function (graph mode), PyTorch eagerly under no_grad."""
    import numpy as np

    from fusion_lib.bench._measure import median_ms

    args = variant_args(dataset, fusion)
    s = args["size"]
    x = np.random.default_rng(0).normal(size=(batch, 1, s, s)).astype("float32")
    if framework == "torch":
        import torch

        import fusion_lib.torch.models as tm

        torch.set_num_threads(1)
        model, xt = tm.FusionPointNet(**args).eval(), torch.as_tensor(x)

        def one_pass():
            with torch.no_grad():
                model(xt)

    else:
        import tensorflow as tf

        import fusion_lib.tf.models as km

        model = km.FusionPointNet(**args)
        xk = tf.constant(x.transpose(0, 2, 3, 1))
        graph = tf.function(lambda t: model(t, training=False))

        def one_pass():
            graph(xk).numpy()

    for _ in range(5):
        one_pass()
    return round(median_ms(one_pass, lambda: None, repeats), 4)


def run_costs() -> dict:
    """Every variant's costs on both data sets (see the module docstring)."""
    import tensorflow as tf

    from fusion_lib.bench._measure import machine

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    out = {"name": "capstone_costs", "results": {}}
    for dataset in DATASETS:
        table = out["results"].setdefault(dataset, {})
        for fusion in FUSIONS:
            row = variant_costs(dataset, fusion)
            for fw in ("torch", "tf"):
                row[f"latency_ms_{fw}"] = latency_ms(fw, dataset, fusion)
            table[fusion] = row
    out["meta"] = {
        **machine("cpu"),
        "threads": 1,
        "batch": LATENCY_BATCH,
        "repeats": LATENCY_REPEATS,
        "loadavg": [round(v, 2) for v in os.getloadavg()],
        "command": "python -m fusion_lib.experiments.capstone",
    }
    return out


def load_costs() -> dict:
    """The stored costs (results/capstone_costs.json)."""
    path = RESULTS / "capstone_costs.json"
    if not path.exists():
        raise ValueError(
            "no stored capstone costs: run `python -m fusion_lib.experiments.capstone`."
        )
    return json.loads(path.read_text())


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    results = run_costs()
    path = RESULTS / "capstone_costs.json"
    path.write_text(json.dumps(results, indent=1) + "\n")
    print("stored", path)
    for dataset, table in results["results"].items():
        for fusion, row in table.items():
            print(f"{dataset:>6} {fusion:>13}: {row}")
