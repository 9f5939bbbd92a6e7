"""Benchmark: element-wise fusions against the machine's copy bandwidth (a roofline).

    # CPU, both frameworks, writes results/bandwidth_cpu.json (a few minutes at most)
    python -m fusion_lib.bench.bandwidth
    # a smoke run (the tests use it)
    python -m fusion_lib.bench.bandwidth --quick --out /tmp/x.json

An element-wise op does one or two floating-point operations per element and moves 4
bytes per element per tensor it touches, so its speed is set by memory bandwidth, not
arithmetic. Bytes moved per call, for inputs of B bytes each (float32: 4 per element):

- copy `dst.copy_(src)`: read src + write dst = 2B (the roof: the fastest any op that
  reads and writes memory can go; dst is allocated once and warmed first);
- add, multiply `a + b`, `a * b`: read a + read b + write out = 3B (in place, a += b:
  read a + read b + write a, also 3B);
- concat of two maps: read a + read b + write out (2B) = 4B.

GB/s = bytes moved / median time; "fraction of copy" divides by the copy's GB/s at the
same input size B. Forms, torch (eager, no autograd, torch's default threads):
`fresh` (a + b, torch.mul, torch.cat: a new output every call), `library`
(AddFusion()([a, b]) etc.), `library_out` (the same with out=buf, buf allocated once),
`inplace` (a.add_(b), a.mul_(ones): the second factor is 1 so repeated calls keep the
values finite; concat has no in-place form), `channels_last` (fresh, both inputs in
torch.channels_last memory format). For concat followed by a 1x1 conv, `cat_conv`
(ConcatReduce(split_weights=False)) and `split` (split_weights=True, which never builds
the concatenation) are timed too; they are dominated by the convolution, so their rows
report time, and bytes count only the concat's 4B. Keras (TensorFlow backend, eager):
`fresh` (keras.ops), `library` (AddFusion etc.), `library_out` (out= a keras.Variable:
the result is computed then assigned into it), `xla` (tf.function(jit_compile=True) of
the keras.ops call) and `xla_out` (the same with the assign inside the function).

All forms of one size, the copy among them, are timed in interleaved rounds (`--rounds`,
each `--calls` calls of every form) after two warm-up calls; each stores its least
per-round median, the round least disturbed by other jobs on a shared machine, and the
minor page faults per call (`ru_minflt`), which show where a fresh output is mapped
anew. All runs in one process with the allocator settings a reader gets.

Written for an appendix on the performance of fusion operators, not yet in the book.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
from pathlib import Path

from fusion_lib.bench._measure import machine, median_ms, write

RESULTS = Path(__file__).resolve().parent / "results"
OPS = ("add", "multiply", "concat")
# (N, C, H, W) of each input, float32: 0.25 MiB to 128 MiB per input; "large" is well
# beyond the last-level cache (32 MiB here), where every byte comes from memory
SHAPES = (
    (1, 64, 32, 32),
    (1, 64, 128, 128),
    (4, 64, 128, 128),
    (16, 64, 128, 128),
    (32, 64, 128, 128),
)
QUICK_SHAPES = ((1, 8, 16, 16), (1, 16, 32, 32))
# the 1x1 conv after a concat costs FLOPs, not bytes: time it up to this input size
SPLIT_MAX_BYTES = 8 * 2**20
# bytes moved per call, in units of one input's bytes
UNITS = {"copy": 2, "add": 3, "multiply": 3, "concat": 4}


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def measure(forms: dict, rounds: int = 7, calls: int = 5) -> dict:
    """Time every form of `forms` ({key: call}) in interleaved rounds: two warm-up
    calls each, then `rounds` rounds that each time `calls` calls of every form in
    turn. Returns {key: {"median_ms": the least per-round median, "faults_per_call"}}:
    on a shared machine the least disturbed round is the best record of the op."""
    for call in forms.values():
        call()
        call()
    times = {key: [] for key in forms}
    faults = dict.fromkeys(forms, 0)
    for _ in range(rounds):
        for key, call in forms.items():
            before = _faults()
            times[key].append(median_ms(call, lambda: None, calls))
            faults[key] += _faults() - before
    return {
        key: {
            "median_ms": min(times[key]),
            "faults_per_call": faults[key] / (rounds * calls),
        }
        for key in forms
    }


def _torch_forms(shape, ops=OPS) -> dict:
    """{("torch", op, form): call}, the copy included."""
    import torch

    import fusion_lib.torch as ft
    from fusion_lib.torch.reduce import ConcatReduce

    torch.manual_seed(0)
    a, b = torch.randn(shape), torch.randn(shape)
    dst, ones = torch.empty_like(a), torch.ones(shape)
    dst.copy_(a)
    n, c, h, w = shape
    both = torch.empty(n, 2 * c, h, w)
    last = [x.contiguous(memory_format=torch.channels_last) for x in (a, b)]
    forms = {
        "copy": {"copy": lambda: dst.copy_(a)},
        "add": {
            "fresh": lambda: a + b,
            "library": lambda: ft.AddFusion()([a, b]),
            "library_out": lambda: ft.AddFusion()([a, b], out=dst),
            "inplace": lambda: dst.add_(b),
            "channels_last": lambda: last[0] + last[1],
        },
        "multiply": {
            "fresh": lambda: a * b,
            "library": lambda: ft.ProductFusion()([a, b]),
            "library_out": lambda: ft.ProductFusion()([a, b], out=dst),
            "inplace": lambda: dst.mul_(ones),
            "channels_last": lambda: last[0] * last[1],
        },
        "concat": {
            "fresh": lambda: torch.cat([a, b], 1),
            "library": lambda: ft.ConcatFusion()([a, b]),
            "library_out": lambda: ft.ConcatFusion()([a, b], out=both),
            "channels_last": lambda: torch.cat(last, 1),
        },
    }
    if a.numel() * 4 <= SPLIT_MAX_BYTES:
        for split in (False, True):
            fuse = ConcatReduce([c, c], c, norm=False, act=False, split_weights=split)
            forms["concat"]["split" if split else "cat_conv"] = lambda fuse=fuse: fuse(
                [a, b]
            )

    def no_grad(call):
        def run():
            with torch.no_grad():
                call()

        return run

    return {
        ("torch", op, form): no_grad(call)
        for op in ("copy", *ops)
        for form, call in forms[op].items()
    }


def _assigning(fn, out):
    # a closure, not a default argument: tf.function would trace a default as an input
    def assign(x, y):
        return out.assign(fn(x, y))

    return assign


def _keras_forms(shape, ops=OPS) -> dict:
    """{("keras", op, form): call}; inputs NHWC of the same sizes as torch's."""
    import keras
    import numpy as np
    import tensorflow as tf

    import fusion_lib.tf as fk

    n, c, h, w = shape
    rng = np.random.default_rng(0)
    a, b = (
        tf.constant(rng.standard_normal((n, h, w, c), dtype="float32"))
        for _ in range(2)
    )
    eager = {
        "add": keras.ops.add,
        "multiply": keras.ops.multiply,
        "concat": lambda x, y: keras.ops.concatenate([x, y], axis=-1),
    }
    layers = {
        "add": fk.AddFusion(),
        "multiply": fk.ProductFusion(),
        "concat": fk.ConcatFusion(),
    }
    forms = {}
    for op in ops:
        width = 2 * c if op == "concat" else c
        out = keras.Variable(np.zeros((n, h, w, width), "float32"))
        fn, layer = eager[op], layers[op]
        xla = tf.function(fn, jit_compile=True)
        xla_out = tf.function(_assigning(fn, out), jit_compile=True)
        calls = {
            "fresh": lambda fn=fn: fn(a, b),
            "library": lambda layer=layer: layer([a, b]),
            "library_out": lambda layer=layer, out=out: layer([a, b], out=out),
            "xla": lambda xla=xla: xla(a, b),
            "xla_out": lambda xla_out=xla_out: xla_out(a, b),
        }
        for form, call in calls.items():
            # reading one element waits for the op: TF may run eager ops async
            def one_pass(call=call):
                r = call()
                (r.value if hasattr(r, "value") else r)[0, 0, 0, 0].numpy()

            forms[("keras", op, form)] = one_pass
    return forms


def run_benchmark(
    shapes=SHAPES,
    frameworks=("torch", "keras"),
    rounds: int = 5,
    calls: int = 3,
    ops=OPS,
) -> dict:
    """Measure every framework, shape, op and form (all forms of one shape in the
    same interleaved rounds, the copy among them); returns {"meta": ..., "rows":
    [...]}, as saved to JSON."""
    import torch

    load_before = os.getloadavg()[0]
    rows = []
    for shape in shapes:
        shape = tuple(shape)
        forms = _torch_forms(shape, ops)  # the copy, the roof, is always measured
        if "torch" not in frameworks:
            forms = {k: v for k, v in forms.items() if k[1] == "copy"}
        if "keras" in frameworks:
            forms.update(_keras_forms(shape, ops))
        nbytes = 4 * _prod(shape)
        for (fw, op, form), timing in measure(forms, rounds, calls).items():
            moved = UNITS[op] * nbytes
            rows.append(
                {
                    "framework": fw,
                    "op": op,
                    "form": form,
                    "shape": list(shape),
                    "bytes": moved,
                    "gbps": moved / timing["median_ms"] / 1e6,
                    **timing,
                }
            )
    meta = {
        **machine("cpu"),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "rounds": rounds,
        "calls": calls,
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    if "keras" in frameworks:
        import keras
        import tensorflow as tf

        meta.update(tensorflow=tf.__version__, keras=keras.__version__)
    return {"meta": meta, "rows": rows}


def load_results(device: str = "cpu") -> dict:
    """The stored results of `python -m fusion_lib.bench.bandwidth`."""
    return json.loads((RESULTS / f"bandwidth_{device}.json").read_text())


def copy_gbps(results: dict) -> dict:
    """{input shape: the copy's GB/s}."""
    return {tuple(r["shape"]): r["gbps"] for r in results["rows"] if r["op"] == "copy"}


def fractions(results: dict) -> dict:
    """{(framework, op, form): {input shape: fraction of the copy's GB/s}}."""
    roof = copy_gbps(results)
    out = {}
    for r in results["rows"]:
        if r["op"] != "copy":
            key = (r["framework"], r["op"], r["form"])
            out.setdefault(key, {})[tuple(r["shape"])] = (
                r["gbps"] / roof[tuple(r["shape"])]
            )
    return out


def _mib(shape) -> str:
    n = 4
    for d in shape:
        n *= d
    return f"{n / 2**20:g}"


def format_table(results: dict) -> str:
    """GB/s of the copy per input size, then every op and form as a percentage of it
    (a dash where a form was not timed at that size)."""
    m = results["meta"]
    roof = copy_gbps(results)
    shapes = sorted(roof, key=_prod)
    lines = [
        f"cpu ({m['device_name']}, {m['threads']} threads), torch {m['torch']}"
        + (f", TF {m['tensorflow']}" if "tensorflow" in m else "")
        + f"; load average {m['load_average'][0]} before",
        f"{'input MiB':<30}" + "".join(f"{_mib(s):>8}" for s in shapes),
        f"{'copy GB/s':<30}" + "".join(f"{roof[s]:>8.1f}" for s in shapes),
        f"{'% of copy':<30}",
    ]
    for (fw, op, form), by_shape in fractions(results).items():
        cells = "".join(
            f"{100 * by_shape[s]:>8.0f}" if s in by_shape else f"{'-':>8}"
            for s in shapes
        )
        lines.append(f"{fw + ' ' + op + ' ' + form:<30}" + cells)
    return "\n".join(lines)


def _prod(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def plot_roofline(results: dict, framework: str = "torch", axes=None):
    """One panel per op: GB/s against bytes moved per call (log x), one line per form,
    the copy's GB/s at the same input size as the roof (black)."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, len(OPS), figsize=(10.5, 3.3), sharey=True)
    rows = results["rows"]
    copy = sorted((r for r in rows if r["op"] == "copy"), key=lambda r: r["bytes"])
    for ax, op in zip(axes, OPS):
        units = UNITS[op] / UNITS["copy"]  # the roof drawn at this op's bytes
        ax.plot(
            [r["bytes"] * units for r in copy],
            [r["gbps"] for r in copy],
            "k-",
            lw=2.5,
            label="copy (roof)",
        )
        forms = sorted(
            {r["form"] for r in rows if r["framework"] == framework and r["op"] == op}
        )
        for i, form in enumerate(forms):
            mine = sorted(
                (
                    r
                    for r in rows
                    if r["framework"] == framework
                    and r["op"] == op
                    and r["form"] == form
                ),
                key=lambda r: r["bytes"],
            )
            ax.plot(
                [r["bytes"] for r in mine],
                [r["gbps"] for r in mine],
                "o-",
                color=f"C{i}",
                ms=4,
                label=form,
            )
        ax.set(xscale="log", xlabel="bytes moved per call", title=f"{framework}: {op}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("GB/s")
    return axes


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="two small sizes, 2 rounds: checks the script runs",
    )
    parser.add_argument(
        "--out", type=Path, help="JSON path (default: results/bandwidth_cpu.json)"
    )
    args = parser.parse_args(argv)
    shapes, rounds = (QUICK_SHAPES, 2) if args.quick else (SHAPES, args.rounds)
    results = run_benchmark(shapes, rounds=rounds, calls=args.calls)
    out = write(results, args.out or RESULTS / "bandwidth_cpu.json")
    print(format_table(results))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
