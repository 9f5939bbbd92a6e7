"""Benchmark: every public operator class of fusion_lib, in each installed framework.

    # CPU, every operator, both sizes, writes results/operators_cpu.json (+ .png)
    python -m fusion_lib.bench
    # a smoke run on two operators (what CI runs)
    python -m fusion_lib.bench --quick --operators AddFusion CBAM --out /tmp/x.json
    # flag regressions of a new run against stored results
    python -m fusion_lib.bench --compare fusion_lib/bench/results/operators_cpu.json

`CASES` holds one benchmark case per public class of `fusion_lib.torch` and
`fusion_lib.tf` (the classes named in their `__all__`): constructor arguments and
inputs for a "small" and a "default" size, the same numbers in both halves (maps NCHW
for torch, NHWC for Keras; vectors (N, F); token sequences (N, L, E)).

Per (framework, operator, size), forward only in inference mode (torch: `eval()` under
`torch.inference_mode()`; Keras: an eager call with `training=False`):
- latency: the median wall time of `repeats` passes after `warmup` passes;
- peak memory: what one pass adds on top of what exists (inputs, weights), by
  `fusion_lib.bench._measure.peak_bytes`: torch on a CPU the resident-memory
  high-water mark (one worker process per framework, started with glibc's mmap
  threshold at 64 KiB, so every large tensor is unmapped on release and none freed by
  an earlier case can hide an allocation; heap blocks under 64 KiB can be reused
  unseen), TensorFlow its allocator's peak, CUDA the allocators' peaks;
- parameters: trainable scalars (`count_params` of each half);
- FLOPs: `torch.utils.flop_counter` on the torch module (2 per multiply-add of matmuls,
  convolutions and attention kernels; element-wise work, normalisation and pooling
  count 0). Keras rows carry the count of their torch twin (same architecture and
  inputs) when the torch half ran, else the analytic count from `fusion_lib.costs`
  where one is defined; "flops_source" says which. "flops_analytic" is that
  closed-form count wherever the case defines one, a cross-check of the counter.

How to run it: the README's section "Benchmarks".
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fusion_lib import costs
from fusion_lib.bench._measure import machine, median_ms, peak_bytes

RESULTS = Path(__file__).resolve().parent / "results"
FRAMEWORKS = ("torch", "tf")
# n batch, c channels, hw map side, f vector features, l tokens, e embedding width,
# heads attention heads, r channel reduction ratio
SIZES = {
    "small": {"n": 2, "c": 8, "hw": 8, "f": 16, "l": 8, "e": 16, "heads": 2, "r": 4},
    "default": {
        "n": 4, "c": 64, "hw": 32, "f": 256, "l": 64, "e": 64, "heads": 4, "r": 16,
    },
}  # fmt: skip
# Peaks below this are not resolved (4 KiB pages, allocator bins): compare() skips them
MEMORY_FLOOR_MIB = 1.0


def _map(s, c=None, hw=None):
    return ("map", s["n"], c or s["c"], hw or s["hw"], hw or s["hw"])


def _vec(s, f=None):
    return ("vec", s["n"], f or s["f"])


def _seq(s, length=None, e=None):
    return ("seq", s["n"], length or s["l"], e or s["e"])


@dataclass(frozen=True)
class Case:
    """One operator's benchmark: size -> constructor keyword arguments, size -> input
    specs ("map", N, C, H, W) | ("vec", N, F) | ("seq", N, L, E), and how it is called:
    "list" op(xs), "one" op(xs[0]), "args" op(*xs). analytic: size -> FLOPs of the
    batch from `fusion_lib.costs`, or None.
    """

    name: str
    kwargs: Callable[[dict], dict]
    inputs: Callable[[dict], list]
    call: str = "list"
    analytic: Callable[[dict], int] | None = field(default=None, compare=False)


def _conv(s, c_in, c_out, k, hw=None):
    hw = hw or s["hw"]
    return s["n"] * costs.conv2d_flops(c_in, c_out, k, hw, hw)


def _lin(s, f_in, f_out, rows=1):
    return s["n"] * rows * costs.linear_flops(f_in, f_out)


def _channel_mlp(s, times=1):
    c, h = s["c"], s["c"] // s["r"]
    return times * (_lin(s, c, h) + _lin(s, h, c))


def _dense_layer(s, c_in, k):
    return _conv(s, c_in, 4 * k, 1) + _conv(s, 4 * k, k, 3)


def _pyramid(s):
    c, hw = s["c"], s["hw"]
    levels = [(c, hw), (2 * c, hw // 2), (4 * c, hw // 4)]
    return sum(_conv(s, ci, c, 1, h) + _conv(s, c, c, 3, h) for ci, h in levels)


def _mhsa(s):
    n, length, e = s["n"], s["l"], s["e"]
    return _lin(s, e, 3 * e, length) + _lin(s, e, e, length) + n * 4 * length**2 * e


def _cross_attention(s):
    n, length, e = s["n"], s["l"], s["e"]
    keys = length // 2
    return (
        2 * _lin(s, e, e, length)
        + 2 * _lin(s, e // 2, e, keys)
        + n * 4 * length * keys * e
    )


def _non_local(s):
    c, inner, hw = s["c"], s["c"] // 2, s["hw"]
    keys = (hw // 2) ** 2  # phi and g max-pooled 2x2
    return (
        3 * _conv(s, c, inner, 1)
        + _conv(s, inner, c, 1)
        + s["n"] * 4 * hw**2 * keys * inner
    )


CASES = (
    Case("AddFusion", lambda s: {}, lambda s: [_map(s), _map(s)], analytic=lambda s: 0),
    Case(
        "AggregationNode",
        lambda s: {"in_channels": [s["c"], s["c"]], "out_channels": s["c"]},
        lambda s: [_map(s), _map(s)],
        analytic=lambda s: _conv(s, 2 * s["c"], s["c"], 1),
    ),
    Case(
        "BAM",
        lambda s: {"channels": s["c"], "reduction": s["r"]},
        lambda s: [_map(s)],
        "one",
        lambda s: (
            _channel_mlp(s)
            + _conv(s, s["c"], s["c"] // s["r"], 1)
            + 2 * _conv(s, s["c"] // s["r"], s["c"] // s["r"], 3)
            + _conv(s, s["c"] // s["r"], 1, 1)
        ),
    ),
    Case(
        "CBAM",
        lambda s: {"channels": s["c"], "reduction": s["r"]},
        lambda s: [_map(s)],
        "one",
        lambda s: _channel_mlp(s, 2) + _conv(s, 2, 1, 7),
    ),
    Case(
        "ChannelAttention",
        lambda s: {"channels": s["c"], "reduction": s["r"]},
        lambda s: [_map(s)],
        "one",
        lambda s: _channel_mlp(s, 2),
    ),
    Case(
        "ConcatFusion", lambda s: {}, lambda s: [_map(s), _map(s)], analytic=lambda s: 0
    ),
    Case(
        "ConcatReduce",
        lambda s: {"in_channels": [s["c"], s["c"]], "out_channels": s["c"]},
        lambda s: [_map(s), _map(s)],
        analytic=lambda s: _conv(s, 2 * s["c"], s["c"], 1),
    ),
    Case(
        "CrossAttention",
        lambda s: {
            "query_dim": s["e"],
            "context_dim": s["e"] // 2,
            "num_heads": s["heads"],
        },
        lambda s: [_seq(s), _seq(s, s["l"] // 2, s["e"] // 2)],
        "args",
        _cross_attention,
    ),
    Case(
        "DenseBlock",
        lambda s: {"num_layers": 4, "in_channels": s["c"], "growth_rate": s["c"] // 4},
        lambda s: [_map(s)],
        "one",
        lambda s: sum(
            _dense_layer(s, s["c"] + i * (s["c"] // 4), s["c"] // 4) for i in range(4)
        ),
    ),
    Case(
        "DenseLayer",
        lambda s: {"in_channels": s["c"], "growth_rate": s["c"] // 4},
        lambda s: [_map(s)],
        "one",
        lambda s: _dense_layer(s, s["c"], s["c"] // 4),
    ),
    Case(
        "FeaturePyramid",
        lambda s: {
            "in_channels": [s["c"], 2 * s["c"], 4 * s["c"]],
            "out_channels": s["c"],
        },
        lambda s: [
            _map(s),
            _map(s, 2 * s["c"], s["hw"] // 2),
            _map(s, 4 * s["c"], s["hw"] // 4),
        ],
        analytic=_pyramid,
    ),
    Case(
        "FiLM",
        lambda s: {"cond_features": s["f"], "channels": s["c"]},
        lambda s: [_map(s), _vec(s)],
        "args",
        lambda s: _lin(s, s["f"], 2 * s["c"]),
    ),
    Case(
        "FlattenHead",
        lambda s: {
            "in_channels": s["c"],
            "height": s["hw"],
            "width": s["hw"],
            "num_classes": 10,
        },
        lambda s: [_map(s)],
        "one",
        lambda s: _lin(s, s["c"] * s["hw"] ** 2, 10),
    ),
    Case(
        "GAPHead",
        lambda s: {"in_channels": s["c"], "num_classes": 10},
        lambda s: [_map(s)],
        "one",
        lambda s: _lin(s, s["c"], 10),
    ),
    Case(
        "GatedFusion",
        lambda s: {"channels": s["c"]},
        lambda s: [_map(s), _map(s)],
        analytic=lambda s: _conv(s, s["c"], s["c"], 1),
    ),
    Case(
        "GatedMultimodalUnit",
        lambda s: {"in_features": [s["f"], s["f"] // 2], "out_features": s["f"]},
        lambda s: [_vec(s), _vec(s, s["f"] // 2)],
        analytic=lambda s: (
            _lin(s, s["f"], s["f"])
            + _lin(s, s["f"] // 2, s["f"])
            + _lin(s, s["f"] + s["f"] // 2, s["f"])
        ),
    ),
    Case("GlobalPool", lambda s: {}, lambda s: [_map(s)], "one", analytic=lambda s: 0),
    Case(
        "LowRankBilinear",
        lambda s: {"in_features": [s["f"], s["f"] // 2], "out_features": s["f"]},
        lambda s: [_vec(s), _vec(s, s["f"] // 2)],
        analytic=lambda s: (
            _lin(s, s["f"], 5 * s["f"]) + _lin(s, s["f"] // 2, 5 * s["f"])
        ),
    ),
    Case(
        "MultiHeadSelfAttention",
        lambda s: {"embed_dim": s["e"], "num_heads": s["heads"]},
        lambda s: [_seq(s)],
        "one",
        _mhsa,
    ),
    Case(
        "NonLocalBlock",
        lambda s: {"channels": s["c"]},
        lambda s: [_map(s)],
        "one",
        _non_local,
    ),
    Case(
        "ProductFusion",
        lambda s: {},
        lambda s: [_map(s), _map(s)],
        analytic=lambda s: 0,
    ),
    Case(
        "ResidualBlock",
        lambda s: {"in_channels": s["c"], "out_channels": s["c"]},
        lambda s: [_map(s)],
        "one",
        lambda s: 2 * _conv(s, s["c"], s["c"], 3),
    ),
    Case(
        "SpatialAttention",
        lambda s: {},
        lambda s: [_map(s)],
        "one",
        lambda s: _conv(s, 2, 1, 7),
    ),
    Case(
        "SqueezeExcitation",
        lambda s: {"channels": s["c"], "reduction": s["r"]},
        lambda s: [_map(s)],
        "one",
        lambda s: _channel_mlp(s),
    ),
    Case(
        "TransformerEncoderBlock",
        lambda s: {"dim": s["e"], "num_heads": s["heads"]},
        lambda s: [_seq(s)],
        "one",
        lambda s: _mhsa(s) + 2 * _lin(s, s["e"], 2 * s["e"], s["l"]),
    ),
    Case(
        "TransformerFusion",
        lambda s: {
            "in_channels": [s["c"], 2 * s["c"]],
            "dim": s["e"],
            "num_heads": s["heads"],
            "sizes": [[s["hw"] // 2] * 2, [s["hw"] // 4] * 2],
        },
        lambda s: [
            _map(s, s["c"], s["hw"] // 2),
            _map(s, 2 * s["c"], s["hw"] // 4),
        ],
    ),
    Case(
        "Transition",
        lambda s: {"in_channels": s["c"], "out_channels": s["c"] // 2},
        lambda s: [_map(s)],
        "one",
        lambda s: _conv(s, s["c"], s["c"] // 2, 1),
    ),
    Case(
        "UNetSkipMerge",
        lambda s: {},
        lambda s: [_map(s), _map(s, hw=s["hw"] + 4)],
        analytic=lambda s: 0,
    ),
    Case(
        "UNetUp",
        lambda s: {
            "in_channels": 2 * s["c"],
            "skip_channels": s["c"],
            "out_channels": s["c"],
        },
        lambda s: [_map(s, 2 * s["c"], s["hw"] // 2), _map(s, hw=s["hw"] + 4)],
    ),
)
BY_NAME = {case.name: case for case in CASES}


def installed_frameworks() -> tuple[str, ...]:
    """The halves whose framework is installed: "torch", "tf" (TensorFlow and Keras)."""
    found = {
        "torch": importlib.util.find_spec("torch") is not None,
        "tf": all(importlib.util.find_spec(m) for m in ("tensorflow", "keras")),
    }
    return tuple(f for f in FRAMEWORKS if found[f])


def public_operators(framework: str) -> list[str]:
    """The classes named in `fusion_lib.torch.__all__` (nn.Module subclasses) or
    `fusion_lib.tf.__all__` (Keras layers): what `CASES` must cover. Imports the half.
    """
    if framework == "torch":
        import torch

        import fusion_lib.torch as half

        base = torch.nn.Module
    else:
        import keras

        import fusion_lib.tf as half

        base = keras.layers.Layer
    return sorted(
        name
        for name in half.__all__
        if inspect.isclass(getattr(half, name))
        and issubclass(getattr(half, name), base)
    )


def shape(spec, framework: str) -> tuple[int, ...]:
    """An input spec as this framework's tensor shape (maps NCHW or NHWC)."""
    kind, *dims = spec
    if kind == "map" and framework == "tf":
        n, c, h, w = dims
        return (n, h, w, c)
    return tuple(dims)


def _invoke(op, xs, call: str, **kwargs):
    if call == "list":
        return op(xs, **kwargs)
    if call == "one":
        return op(xs[0], **kwargs)
    return op(*xs, **kwargs)


def _first_shape(out) -> list[int]:
    return list((out[0] if isinstance(out, (list, tuple)) else out).shape)


def _torch_case(case: Case, s: dict, device: str, warmup: int, repeats: int):
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    import fusion_lib.torch as half
    from fusion_lib.torch.training import count_params, measure_flops

    torch.manual_seed(0)
    op = getattr(half, case.name)(**case.kwargs(s)).to(device).eval()
    xs = [torch.randn(shape(spec, "torch"), device=device) for spec in case.inputs(s)]

    def one_pass():
        with torch.inference_mode():
            return _invoke(op, xs, case.call)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    class Bound(torch.nn.Module):
        """The operator called the way its case says, as measure_flops calls it."""

        def __init__(self):
            super().__init__()
            self.op = op

        def forward(self, xs):
            # the counter has no formula for CPU's fused attention kernel (it would
            # count 0): the math backend does the same matmuls as counted ops
            with sdpa_kernel(SDPBackend.MATH):
                return _invoke(self.op, xs, case.call)

    for _ in range(warmup):
        out = one_pass()
    sync()
    memory = "cuda" if device == "cuda" else "rss"
    return {
        "output": _first_shape(out),
        "peak_mib": peak_bytes(one_pass, sync, memory) / 2**20,
        "median_ms": median_ms(one_pass, sync, repeats),
        "params": count_params(op),
        "flops": int(measure_flops(Bound(), xs)),
        "flops_source": "torch.utils.flop_counter",
    }


def _tf_case(case: Case, s: dict, device: str, warmup: int, repeats: int):
    import keras
    import numpy as np
    import tensorflow as tf

    import fusion_lib.tf as half
    from fusion_lib.bench.attention import _tf_gpu_peak_bytes
    from fusion_lib.tf.training import count_params

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    op = getattr(half, case.name)(**case.kwargs(s))
    xs = [
        keras.ops.convert_to_tensor(
            rng.standard_normal(shape(spec, "tf"), dtype=np.float32)
        )
        for spec in case.inputs(s)
    ]

    def one_pass():
        return _invoke(op, xs, case.call, training=False)

    def sync():
        if device == "cuda":
            tf.test.experimental.sync_devices()  # eager GPU kernels run async

    for _ in range(warmup):
        out = one_pass()
    sync()
    if device == "cuda":
        peak = _tf_gpu_peak_bytes(lambda: (one_pass(), sync()))
    else:
        peak = peak_bytes(one_pass, sync, "tf")
    analytic = case.analytic(s) if case.analytic else None
    return {
        "output": _first_shape(out),
        "peak_mib": peak / 2**20,
        "median_ms": median_ms(one_pass, sync, repeats),
        "params": count_params(op),
        "flops": analytic,
        "flops_source": "fusion_lib.costs" if analytic is not None else None,
    }


def measure_framework(config: dict) -> dict:
    """Run every case of config["operators"] x config["sizes"] for one framework in
    this process (the worker); appends "OPERATOR SIZE" to config["progress"] as each
    case starts. Returns {"rows": [...], "public_operators": [...], "versions": ...}.
    """
    framework, device = config["framework"], config["device"]
    threads = config["threads"]
    if framework == "torch":
        import torch

        if device == "cpu":
            torch.set_num_threads(threads)
        versions = {"torch": torch.__version__}
        run = _torch_case
    else:
        import keras
        import tensorflow as tf

        if device == "cpu":  # before TensorFlow runs its first op
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        elif not tf.config.list_physical_devices("GPU"):
            raise RuntimeError(
                "--device cuda: TensorFlow sees no GPU (it would run on the CPU); "
                "install a GPU build of TensorFlow or use --device cpu."
            )
        versions = {"tensorflow": tf.__version__, "keras": keras.__version__}
        run = _tf_case
    rows = []
    for name in config["operators"]:
        case = BY_NAME[name]
        for size in config["sizes"]:
            if config.get("progress"):
                with open(config["progress"], "a") as progress:
                    progress.write(f"{name} {size}\n")
            s = SIZES[size]
            measured = run(case, s, device, config["warmup"], config["repeats"])
            rows.append(
                {
                    "framework": framework,
                    "operator": name,
                    "size": size,
                    "kwargs": case.kwargs(s),
                    "inputs": [list(shape(x, framework)) for x in case.inputs(s)],
                    **measured,
                    "flops_analytic": case.analytic(s) if case.analytic else None,
                }
            )
    return {
        "rows": rows,
        "public_operators": public_operators(framework),
        "versions": versions,
    }


def _cuda_check(device: str, frameworks) -> None:
    if device != "cuda" or "torch" not in frameworks:
        return
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError(
            "--device cuda: torch sees no CUDA device (torch.cuda.is_available() is "
            "False); run on a machine with a GPU or use --device cpu."
        )


def run_benchmark(
    device: str = "cpu",
    frameworks=None,
    operators=None,
    sizes=("small", "default"),
    warmup: int = 3,
    repeats: int = 20,
    threads: int = 1,
    progress=None,
) -> dict:
    """Measure every (framework, operator, size), one worker process per framework;
    returns {"meta": ..., "rows": [...]}, as saved to JSON. progress(done, total,
    label) is called as cases start (the CLI draws its bar with it).
    """
    import tempfile
    import time
    from concurrent.futures import ThreadPoolExecutor

    from fusion_lib.bench._measure import in_subprocess

    frameworks = tuple(frameworks or installed_frameworks())
    operators = list(operators or BY_NAME)
    unknown = sorted(set(operators) - set(BY_NAME))
    if unknown:
        raise ValueError(
            f"no benchmark case for {unknown}; expected names from {sorted(BY_NAME)}."
        )
    if device == "cpu" and not Path("/proc/self/clear_refs").exists():
        raise RuntimeError(
            "CPU peak memory is read from Linux's /proc/self/status; run this on Linux."
        )
    _cuda_check(device, frameworks)
    total = len(frameworks) * len(operators) * len(sizes)
    load_before = os.getloadavg()
    started = time.perf_counter()
    rows, public, versions, done = [], {}, {}, 0
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(1) as pool:
        for framework in frameworks:
            log = Path(tmp) / f"{framework}.log"
            config = {
                "framework": framework,
                "device": device,
                "operators": operators,
                "sizes": list(sizes),
                "warmup": warmup,
                "repeats": repeats,
                "threads": threads,
                "progress": str(log),
            }
            job = pool.submit(in_subprocess, "fusion_lib.bench", config)
            shown = None
            while True:
                finished = job.done()
                lines = log.read_text().splitlines() if log.exists() else []
                if progress and lines and lines[-1] != shown:
                    shown = lines[-1]
                    progress(done + len(lines), total, f"{framework} {shown}")
                if finished:
                    break
                time.sleep(0.2)
            result = job.result()  # raises the worker's error, with its stderr
            done += len(operators) * len(sizes)
            rows += result["rows"]
            public[framework] = result["public_operators"]
            versions.update(result["versions"])
    twins = {
        (r["operator"], r["size"]): r["flops"]
        for r in rows
        if r["framework"] == "torch"
    }
    for r in rows:
        if r["framework"] == "tf" and (r["operator"], r["size"]) in twins:
            r["flops"] = twins[(r["operator"], r["size"])]
            r["flops_source"] = "torch.utils.flop_counter on the torch twin"
    meta = {
        **machine(device),
        **versions,
        "threads": threads if device == "cpu" else None,
        "warmup": warmup,
        "repeats": repeats,
        "sizes": {size: SIZES[size] for size in sizes},
        "pass": "forward, inference mode",
        "statistic": "median wall time of the repeats after warm-up",
        "memory": {
            "torch": "CUDA allocator peak" if device == "cuda" else "VmHWM - VmRSS",
            "tf": "TensorFlow allocator peak",
        },
        "public_operators": public,
        "wall_s": round(time.perf_counter() - started, 1),
        # other jobs on the machine slow every row: the 1, 5, 15-minute load
        # averages before and after the run
        "load_average": {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in os.getloadavg()],
        },
    }
    return {"meta": meta, "rows": rows}


def load_results(device: str = "cpu") -> dict:
    """The stored results of `python -m fusion_lib.bench --device DEVICE`."""
    return json.loads((RESULTS / f"operators_{device}.json").read_text())


def _cell(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def format_table(results: dict) -> str:
    """The results as a fixed-width text table, one line per (operator, size): median
    latency (ms) and peak extra memory (MiB) per framework, parameters, MFLOPs.
    """
    m = results["meta"]
    by_key = {(r["operator"], r["size"], r["framework"]): r for r in results["rows"]}
    keys = sorted(
        {(r["operator"], r["size"]) for r in results["rows"]},
        key=lambda k: (k[0], list(SIZES).index(k[1])),
    )
    threads = f", {m['threads']} thread(s)" if m.get("threads") else ""
    lines = [
        f"{m['device']} ({m['device_name']}{threads}); median of {m['repeats']} "
        f"after {m['warmup']} warm-up; forward, inference mode",
        f"{'operator':<23} {'size':<7} {'ms torch':>8} {'ms tf':>8} "
        f"{'MiB tor':>7} {'MiB tf':>7} {'params':>9} {'MFLOPs':>9}",
    ]
    for op, size in keys:
        t, k = by_key.get((op, size, "torch"), {}), by_key.get((op, size, "tf"), {})
        any_row = t or k
        flops = any_row.get("flops")
        lines.append(
            f"{op:<23} {size:<7} {_cell(t.get('median_ms'), '8.3f'):>8} "
            f"{_cell(k.get('median_ms'), '8.3f'):>8} "
            f"{_cell(t.get('peak_mib'), '7.2f'):>7} "
            f"{_cell(k.get('peak_mib'), '7.2f'):>7} "
            f"{_cell(any_row.get('params'), 'd'):>9} "
            f"{_cell(None if flops is None else flops / 1e6, '9.2f'):>9}"
        )
    lines.append("MFLOPs: matmuls and convolutions only (torch.utils.flop_counter)")
    return "\n".join(lines)


def plot(results: dict, ax=None, size: str | None = None):
    """Median latency per operator, one horizontal bar per framework, log axis, for
    one size (default: the largest measured)."""
    import matplotlib.pyplot as plt

    sizes = [s for s in SIZES if any(r["size"] == s for r in results["rows"])]
    size = size or sizes[-1]
    rows = [r for r in results["rows"] if r["size"] == size]
    names = sorted({r["operator"] for r in rows}, reverse=True)
    frameworks = [f for f in FRAMEWORKS if any(r["framework"] == f for r in rows)]
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.28 * len(names) + 1.2))
    height = 0.8 / len(frameworks)
    by_key = {(r["operator"], r["framework"]): r["median_ms"] for r in rows}
    labels = {"torch": "PyTorch", "tf": "TensorFlow/Keras"}
    for j, framework in enumerate(frameworks):
        ys = [i + (j - (len(frameworks) - 1) / 2) * height for i in range(len(names))]
        ax.barh(
            ys,
            [by_key.get((n, framework), 0) for n in names],
            height=height,
            color=f"C{j}",
            label=labels[framework],
        )
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("median latency (ms), forward, inference mode")
    ax.set_title(f"{results['meta']['device']}, size {size}")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def compare(old: dict, new: dict, threshold: float = 1.25) -> list[dict]:
    """The entries of `new` slower than `threshold` x their `old` median latency, or
    using more than `threshold` x their old peak memory (peaks of at least
    MEMORY_FLOOR_MIB only). Entries in only one of the two are not compared.
    Returns one dict per regression: framework, operator, size, metric, old, new,
    ratio.
    """
    if old["meta"]["device"] != new["meta"]["device"]:
        raise ValueError(
            f"compare: old results are for {old['meta']['device']}, new ones for "
            f"{new['meta']['device']}; compare runs on the same device."
        )
    before = {(r["framework"], r["operator"], r["size"]): r for r in old["rows"]}
    regressions = []
    for r in new["rows"]:
        key = (r["framework"], r["operator"], r["size"])
        if key not in before:
            continue
        for metric in ("median_ms", "peak_mib"):
            a, b = before[key][metric], r[metric]
            if metric == "peak_mib" and a < MEMORY_FLOOR_MIB:
                continue
            if a > 0 and b > threshold * a:
                regressions.append(
                    {
                        "framework": key[0],
                        "operator": key[1],
                        "size": key[2],
                        "metric": metric,
                        "old": a,
                        "new": b,
                        "ratio": b / a,
                    }
                )
    return regressions
