"""Benchmark: what fusion_lib's input checks cost per call, against the bare framework
call.

    # CPU, both halves, writes results/overhead_cpu.json
    python -m fusion_lib.bench.overhead
    # a smoke run (the tests use it)
    python -m fusion_lib.bench.overhead --quick --out /tmp/x.json

Every element-wise, concatenating or pooling operator is timed against the one framework
call it wraps, on the same tensors: `AddFusion()([a, b])` against `a + b`,
`ConcatFusion()([a, b])` against `torch.cat([a, b], 1)`, and so on (Keras: the
`keras.ops` call). The torch half also times a bare `nn.Module` whose `forward` is only
the framework call: the part of the overhead that is torch's own module dispatch, which
no check can remove.

The machine may be shared, so the variants are interleaved (round r times every variant
once, about 1 ms of calls in a row) and each per-call time is the minimum over
`--rounds` rounds: the run least disturbed by other jobs. Medians are stored too. torch
runs once per `--threads` count (default 1 and 2: on a loaded machine a 2-thread op
waits for its second thread, so the 1-thread rows are the steadier record of what the
checks themselves cost), eagerly, without autograd; Keras eagerly on its default
TensorFlow backend, inputs already converted to tensors.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from fusion_lib.bench._measure import machine, write

RESULTS = Path(__file__).resolve().parent / "results"
SMALL, LARGE = (2, 64, 16, 16), (8, 64, 128, 128)


def _torch_cases(shape):
    """(name, operator call, bare call, bare module or None) on NCHW tensors."""
    import torch
    from torch import nn

    import fusion_lib.torch as F

    class Floor(nn.Module):
        """nn.Module dispatch around the bare call, and nothing else."""

        def __init__(self, fn):
            super().__init__()
            self.fn = fn

        def forward(self, xs):
            return self.fn(xs)

    n, c, h, w = shape
    a, b = torch.randn(shape), torch.randn(shape)
    skip = torch.randn(n, c, h + 2, w + 2)
    add, cat, prod = F.AddFusion(), F.ConcatFusion(), F.ProductFusion()
    merge, avg, mx = F.UNetSkipMerge("crop"), F.GlobalPool("avg"), F.GlobalPool("max")
    small = (h - 2, w - 2)
    big = (2 * h, 2 * w)

    def bare_merge(xs):
        return torch.cat([xs[0], xs[1][:, :, 1 : h + 1, 1 : w + 1]], 1)

    def bare_crop(x):
        return x[:, :, 1 : h - 1, 1 : w - 1]

    def bare_resize(x):
        return nn.functional.interpolate(x, size=big, mode="bilinear")

    def bare_channel_pool(x):
        return torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], 1)

    def plus(xs):
        return xs[0] + xs[1]

    def times(xs):
        return xs[0] * xs[1]

    def concat(xs):
        return torch.cat(xs, 1)

    floors = {
        k: Floor(f)
        for k, f in {
            "add": plus,
            "cat": concat,
            "mul": times,
            "merge": bare_merge,
            "mean": lambda x: x.mean((2, 3)),
            "amax": lambda x: x.amax((2, 3)),
        }.items()
    }
    return [
        (
            "AddFusion",
            lambda: add([a, b]),
            lambda: a + b,
            lambda: floors["add"]([a, b]),
        ),
        (
            "ConcatFusion",
            lambda: cat([a, b]),
            lambda: torch.cat([a, b], 1),
            lambda: floors["cat"]([a, b]),
        ),
        (
            "ProductFusion",
            lambda: prod([a, b]),
            lambda: a * b,
            lambda: floors["mul"]([a, b]),
        ),
        (
            "UNetSkipMerge",
            lambda: merge([a, skip]),
            lambda: bare_merge([a, skip]),
            lambda: floors["merge"]([a, skip]),
        ),
        (
            "GlobalPool(avg)",
            lambda: avg(a),
            lambda: a.mean((2, 3)),
            lambda: floors["mean"](a),
        ),
        (
            "GlobalPool(max)",
            lambda: mx(a),
            lambda: a.amax((2, 3)),
            lambda: floors["amax"](a),
        ),
        ("center_crop", lambda: F.center_crop(a, small), lambda: bare_crop(a), None),
        ("resize_to", lambda: F.resize_to(a, big), lambda: bare_resize(a), None),
        ("channel_pool", lambda: F.channel_pool(a), lambda: bare_channel_pool(a), None),
    ]


def _keras_cases(shape):
    """(name, layer call, keras.ops call, None) on NHWC tensors."""
    import keras

    import fusion_lib.tf as K

    n, c, h, w = shape
    rng = keras.random.SeedGenerator(0)
    a = keras.random.normal((n, h, w, c), seed=rng)
    b = keras.random.normal((n, h, w, c), seed=rng)
    skip = keras.random.normal((n, h + 2, w + 2, c), seed=rng)
    add, cat, prod = K.AddFusion(), K.ConcatFusion(), K.ProductFusion()
    merge, avg, mx = K.UNetSkipMerge("crop"), K.GlobalPool("avg"), K.GlobalPool("max")
    small, big = (h - 2, w - 2), (2 * h, 2 * w)
    ops = keras.ops

    def bare_channel_pool(x):
        return ops.concatenate(
            [ops.max(x, -1, keepdims=True), ops.mean(x, -1, keepdims=True)], -1
        )

    return [
        ("AddFusion", lambda: add([a, b]), lambda: ops.add(a, b), None),
        (
            "ConcatFusion",
            lambda: cat([a, b]),
            lambda: ops.concatenate([a, b], -1),
            None,
        ),
        ("ProductFusion", lambda: prod([a, b]), lambda: ops.multiply(a, b), None),
        (
            "UNetSkipMerge",
            lambda: merge([a, skip]),
            lambda: ops.concatenate([a, skip[:, 1 : h + 1, 1 : w + 1]], -1),
            None,
        ),
        ("GlobalPool(avg)", lambda: avg(a), lambda: ops.mean(a, (1, 2)), None),
        ("GlobalPool(max)", lambda: mx(a), lambda: ops.max(a, (1, 2)), None),
        (
            "center_crop",
            lambda: K.center_crop(a, small),
            lambda: a[:, 1 : h - 1, 1 : w - 1],
            None,
        ),
        (
            "resize_to",
            lambda: K.resize_to(a, big),
            lambda: ops.image.resize(a, big, antialias=False),
            None,
        ),
        ("channel_pool", lambda: K.channel_pool(a), lambda: bare_channel_pool(a), None),
    ]


def _per_call(fn, number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def measure(framework: str, shape, rounds: int, round_s: float = 0.001) -> list[dict]:
    """Interleaved timings of every case: min and median per-call microseconds. Each
    case makes as many calls in a row as fill about `round_s` seconds of its bare call.
    """
    cases = _torch_cases(shape) if framework == "torch" else _keras_cases(shape)
    variants = []
    for name, op, bare, floor in cases:
        _per_call(op, 3)  # warm-up: first calls allocate caches and kernels
        number = max(3, int(round_s / _per_call(bare, 3)))
        variants += [(name, "op", op, number), (name, "bare", bare, number)]
        if floor is not None:
            variants.append((name, "floor", floor, number))
    times = {(name, kind): [] for name, kind, *_ in variants}
    for _ in range(rounds):
        for name, kind, fn, number in variants:
            times[(name, kind)].append(_per_call(fn, number))
    rows = []
    for name, *_ in cases:
        row = {"framework": framework, "op": name, "shape": list(shape)}
        for kind in ("op", "bare", "floor"):
            if (name, kind) in times:
                t = times[(name, kind)]
                row[f"{kind}_us"] = 1e6 * min(t)
                row[f"{kind}_median_us"] = 1e6 * statistics.median(t)
        row["ratio"] = row["op_us"] / row["bare_us"]
        if "floor_us" in row:
            row["floor_ratio"] = row["floor_us"] / row["bare_us"]
        rows.append(row)
    return rows


def run_benchmark(
    frameworks=("torch", "keras"),
    shapes=(SMALL, LARGE),
    rounds: int = 60,
    threads=(1, 2),
) -> dict:
    """Every (framework, shape, operator), torch once per thread count; returns
    {"meta": ..., "rows": [...]}, as saved to JSON.
    """
    meta = {
        **machine("cpu"),
        "rounds": rounds,
        "statistic": "minimum over interleaved rounds of the mean per-call time",
    }
    rows = []
    for framework in frameworks:
        if framework == "torch":
            import torch

            meta.update(torch=torch.__version__)
            for n in threads:
                torch.set_num_threads(n)
                for shape in shapes:
                    rows += [
                        {**r, "threads": n} for r in measure(framework, shape, rounds)
                    ]
        else:
            import keras

            meta.update(keras=keras.__version__, keras_backend=keras.backend.backend())
            for shape in shapes:
                rows += measure(framework, shape, rounds)
    return {"meta": meta, "rows": rows}


def load_results(device: str = "cpu") -> dict:
    """The stored results of `python -m fusion_lib.bench.overhead`."""
    return json.loads((RESULTS / f"overhead_{device}.json").read_text())


def format_table(results: dict) -> str:
    """The results as a fixed-width text table (microseconds per call; ratios to the
    bare framework call).
    """
    m = results["meta"]
    lines = [
        f"per-call cost, {m['statistic']} ({m['rounds']} rounds)",
        f"{'framework':<9} {'threads':>7} {'shape':<14} {'operator':<16} {'op us':>9} "
        f"{'bare us':>9} {'ratio':>6} {'module':>7}",
    ]
    for r in results["rows"]:
        floor = f"{r['floor_ratio']:>7.2f}" if "floor_ratio" in r else f"{'':>7}"
        shape = "x".join(str(d) for d in r["shape"])
        threads = r.get("threads", "")
        lines.append(
            f"{r['framework']:<9} {threads:>7} {shape:<14} {r['op']:<16} "
            f"{r['op_us']:>9.1f} {r['bare_us']:>9.1f} {r['ratio']:>6.2f} {floor}"
        )
    lines.append(
        "ratio = operator / bare call; module = a bare nn.Module around the call / "
        "bare call (torch's own dispatch)"
    )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts"
    )
    parser.add_argument(
        "--frameworks",
        nargs="+",
        default=["torch", "keras"],
        choices=["torch", "keras"],
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the small shape, 2 rounds: checks the script runs",
    )
    parser.add_argument(
        "--out", type=Path, help="JSON path (default: results/overhead_cpu.json)"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    shapes = (SMALL,) if args.quick else (SMALL, LARGE)
    rounds = 2 if args.quick else args.rounds
    results = run_benchmark(tuple(args.frameworks), shapes, rounds, tuple(args.threads))
    out = write(results, args.out or RESULTS / "overhead_cpu.json")
    print(format_table(results))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
