"""Benchmark: fusion_lib's MultiHeadSelfAttention against the frameworks' built-in
multi-head attention, and the cost of attention over the H*W tokens of a map.

    # CPU, both frameworks, writes results/attention_cpu.json
    python -m fusion_lib.bench.attention
    # GPU, both frameworks, writes results/attention_cuda.json
    python -m fusion_lib.bench.attention --device cuda
    # a smoke run (the tests use it)
    python -m fusion_lib.bench.attention --quick --out /tmp/x.json

Two parts, each configuration measured in a fresh subprocess (one framework per
process):

- "mhsa": `MultiHeadSelfAttention(E, H)` on (N, L, E) tokens against the built-in
  holding the same weights: `nn.MultiheadAttention(batch_first=True)` called as
  mha(x, x, x, need_weights=False) (ported by `multihead_to_torch`) and
  `keras.layers.MultiHeadAttention(H, E // H)` called as mha(x, x) (ported by
  `multihead_to_keras`). The largest difference of the outputs is stored with the
  times, to show both compute the same thing. Passes: "inference" (PyTorch: eval mode
  under `torch.no_grad()`, where nn.MultiheadAttention takes its fused C++ fast path;
  Keras: an eager call), "training" (forward and backward of the output's sum;
  Keras under `tf.GradientTape`), and for Keras "graph" (inference inside one
  `tf.function`, so Python overhead is gone). Timing is paired: each round calls ours
  and the built-in once, in alternating order, so a change of load on a shared machine
  hits both; the stored ratio is the median of the per-round ratios ours / built-in,
  with their quartiles (the spread over the rounds).
- "cost": attention over the S*S tokens of one S x S map (batch 1, one head of
  d features), forward only, in two forms: "explicit", fusion_lib's
  `scaled_dot_product_attention`, which materialises the (S*S) x (S*S) weights, and
  "fused", the framework's own kernel: `F.scaled_dot_product_attention` (on a CPU a
  flash-attention kernel that works on blocks of keys) and
  `keras.ops.dot_product_attention` (which the TensorFlow backend computes with
  einsums and a full softmax: it materialises the weights too).

Peak memory (the cost part) is what one pass adds on top of what exists (inputs,
weights): on a CPU the resident-memory high-water mark (Linux `VmHWM`, reset through
`/proc/self/clear_refs`) minus the resident memory before the pass, with glibc's mmap
threshold fixed at 64 KiB so that every large tensor is mapped on allocation and
unmapped on release (as in `fusion_lib.bench.concat_reduce`); on CUDA
`torch.cuda.max_memory_allocated()` minus what was allocated before (TensorFlow on a
GPU: its allocator's peak on GPU:0). Latency is the median over timed passes after
warm-up passes, stored with its quartiles. CPU runs use `--threads` threads in
both frameworks (default 1: on a shared machine one thread keeps the comparison
steady; the ratios compare the same work either way).

Taught in the chapter on self-attention.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from fusion_lib.bench._measure import in_subprocess, machine, peak_bytes, write

RESULTS = Path(__file__).resolve().parent / "results"
FRAMEWORKS = ("torch", "tf")
PASSES = {"torch": ("inference", "training"), "tf": ("inference", "training", "graph")}
# (N, L, E, H): the fusion experiment's batch of 80 tokens, the tokens of 8x8, 16x16
# and 32x32 maps
MHSA_CONFIGS = ((64, 80, 32, 4), (8, 64, 64, 4), (4, 256, 128, 8), (2, 1024, 64, 4))
COST_SIZES = (8, 12, 16, 24, 32, 48, 64)
COST_FORMS = ("explicit", "fused")
COST_DIM = 64
# Smaller peaks are not resolved: VmHWM counts 4 KiB pages, TensorFlow's allocator
# rounds up to its bins.
MEMORY_FLOOR_MIB = 0.05


def _set_threads(framework: str, device: str, threads: int) -> None:
    if device != "cpu":
        return
    if framework == "torch":
        import torch

        torch.set_num_threads(threads)
    else:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)


def _paired_times(calls: dict, rounds: int, sync) -> dict:
    """Call each function once per round, in an order that alternates between rounds;
    returns NAME_ms (median) for each and NAME_ratio, the median of the per-round
    ratios NAME / builtin, for each but the built-in."""
    names = list(calls)
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            sync()
            start = time.perf_counter()
            calls[name]()
            sync()
            times[name].append(time.perf_counter() - start)
    out = {f"{name}_ms": 1e3 * statistics.median(times[name]) for name in names}
    for name in names:
        if name != "builtin":
            ratios = [a / b for a, b in zip(times[name], times["builtin"])]
            out[f"{name}_ratio"] = statistics.median(ratios)
            out[f"{name}_ratio_quartiles"] = _quartiles(ratios)
    return out


def _quartiles(values) -> list[float]:
    """The first and third quartiles of values (the middle half lies between)."""
    q1, _, q3 = statistics.quantiles(values, n=4)
    return [q1, q3]


def _mhsa_torch(config: dict) -> list[dict]:
    import torch

    from fusion_lib.torch.selfattention import (
        MultiHeadSelfAttention,
        multihead_to_torch,
    )

    device = config["device"]
    n, length, e, h = (
        config["batch"],
        config["length"],
        config["embed_dim"],
        config["heads"],
    )
    torch.manual_seed(0)
    ours = MultiHeadSelfAttention(e, h).to(device)
    builtin = multihead_to_torch(ours).to(device)
    rows = []

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    for pass_ in config["passes"]:
        training = pass_ == "training"
        ours.train(training), builtin.train(training)
        x = torch.randn(n, length, e, device=device, requires_grad=training)
        forward = {
            "ours": lambda x=x: ours(x),
            "builtin": lambda x=x: builtin(x, x, x, need_weights=False)[0],
        }
        with torch.no_grad():
            diff = (forward["ours"]() - forward["builtin"]()).abs().max().item()

        grads = (*ours.parameters(), *builtin.parameters(), x)
        calls = {
            name: (lambda f=f, t=training, g=grads: _torch_step(f, t, g))
            for name, f in forward.items()
        }
        for _ in range(config["warmup"]):
            calls["ours"](), calls["builtin"]()
        rows.append(
            {
                **_mhsa_fields(config),
                "pass": pass_,
                "max_abs_diff": diff,
                **_paired_times(calls, config["rounds"], sync),
            }
        )
    return rows


def _torch_step(forward, training: bool, grads) -> None:
    """One inference pass under no_grad, or forward + backward of the output's sum."""
    import torch

    if not training:
        with torch.no_grad():
            forward()
        return
    forward().sum().backward()
    for p in grads:
        p.grad = None


def indexed_twin(attn):
    """fusion_lib.tf's MultiHeadSelfAttention with q, k, v split by indexing,
    packed[0], packed[1], packed[2], instead of keras.ops.unstack, measured here to show
    why the library unstacks. The forward pass computes the same numbers; in the
    backward pass TensorFlow turns each index into a full-size StridedSliceGrad (zeros
    but for one slice) and sums the three, where unstack's gradient is one stack."""
    import keras

    from fusion_lib.tf.selfattention import MultiHeadSelfAttention

    class Indexed(MultiHeadSelfAttention):
        def qkv(self, x):
            shape, h = keras.ops.shape(x), self.num_heads
            packed = keras.ops.reshape(
                self.in_proj(x), (shape[0], shape[1], 3, h, self.embed_dim // h)
            )
            packed = keras.ops.transpose(packed, (2, 0, 3, 1, 4))
            return packed[0], packed[1], packed[2]

    twin = Indexed(attn.embed_dim, attn.num_heads)
    twin.set_weights(attn.get_weights())
    return twin


def tf_gradient_ops(layer, x, types=("Unpack", "Pack", "StridedSliceGrad", "AddN")):
    """How TensorFlow differentiates a Keras layer: the number of operations of each
    of `types` in the graph of one training step (forward, then the gradient of the
    output's sum with respect to the layer's weights) on the input x."""
    import collections

    import tensorflow as tf

    @tf.function
    def step(t):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(t))
        return tape.gradient(loss, layer.trainable_weights)

    graph = step.get_concrete_function(x).graph
    counts = collections.Counter(op.type for op in graph.get_operations())
    return {t: counts[t] for t in types}


def _mhsa_tf(config: dict) -> list[dict]:
    import keras
    import numpy as np
    import tensorflow as tf

    from fusion_lib.tf.selfattention import MultiHeadSelfAttention, multihead_to_keras

    n, length, e, h = (
        config["batch"],
        config["length"],
        config["embed_dim"],
        config["heads"],
    )
    keras.utils.set_random_seed(0)
    ours = MultiHeadSelfAttention(e, h)
    layers = {
        "ours": ours,
        "indexed": indexed_twin(ours),
        "builtin": multihead_to_keras(ours),
    }
    x = tf.constant(np.random.default_rng(0).normal(size=(n, length, e)), tf.float32)

    def forward(name, t):
        return layers[name](t) if name != "builtin" else layers[name](t, t)

    want = np.asarray(forward("builtin", x))
    diff = max(float(np.abs(np.asarray(forward(k, x)) - want).max()) for k in layers)

    def step(name):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(forward(name, x))
        return tape.gradient(loss, layers[name].trainable_weights)

    def graph(name):
        def fn(t):
            return forward(name, t)

        concrete = tf.function(fn).get_concrete_function(x)
        return lambda: concrete(x)

    rows = []
    for pass_ in config["passes"]:
        calls = {
            name: (
                graph(name)
                if pass_ == "graph"
                else (lambda k=name: step(k))
                if pass_ == "training"
                else (lambda k=name: forward(k, x))
            )
            for name in layers
        }
        for _ in range(config["warmup"]):
            for call in calls.values():
                call()
        rows.append(
            {
                **_mhsa_fields(config),
                "pass": pass_,
                "max_abs_diff": diff,
                **_paired_times(calls, config["rounds"], lambda: None),
            }
        )
    return rows


def _mhsa_fields(config: dict) -> dict:
    keys = ("part", "framework", "device", "batch", "length", "embed_dim", "heads")
    return {k: config[k] for k in keys}


def _cost_torch(config: dict) -> dict:
    import torch
    import torch.nn.functional as F

    from fusion_lib.torch.selfattention import scaled_dot_product_attention

    device, tokens, d = config["device"], config["size"] ** 2, config["dim"]
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 1, tokens, d, device=device) for _ in range(3))
    attend = (
        scaled_dot_product_attention
        if config["form"] == "explicit"
        else F.scaled_dot_product_attention
    )

    def one_pass():
        with torch.no_grad():
            attend(q, k, v)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    return _measure_pass(config, one_pass, sync, "cuda" if device == "cuda" else "rss")


def _cost_tf(config: dict) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from fusion_lib.tf.selfattention import scaled_dot_product_attention

    tokens, d = config["size"] ** 2, config["dim"]
    rng = np.random.default_rng(0)
    # fusion_lib: (batch, heads, tokens, d); keras.ops: (batch, tokens, heads, d)
    q, k, v = (
        tf.constant(rng.normal(size=(1, 1, tokens, d)), tf.float32) for _ in range(3)
    )
    if config["form"] == "explicit":

        def one_pass():
            scaled_dot_product_attention(q, k, v).numpy()

    else:
        q, k, v = (tf.transpose(t, (0, 2, 1, 3)) for t in (q, k, v))

        def one_pass():
            keras.ops.dot_product_attention(q, k, v).numpy()

    return _measure_pass(config, one_pass, lambda: None, "tf")  # .numpy() waits


def _measure_pass(config: dict, one_pass, sync, memory: str) -> dict:
    """Peak extra memory (MiB) of one pass, then the median latency (ms). memory:
    "rss" (the process's VmHWM), "cuda" (torch's CUDA allocator) or "tf"
    (TensorFlow's CPU allocator, which keeps freed memory for reuse, so the process's
    resident size would not show a second pass)."""
    for _ in range(config["warmup"]):
        one_pass()
    sync()
    if memory == "tf" and config["device"] == "cuda":
        peak = _tf_gpu_peak_bytes(one_pass)
    else:
        peak = peak_bytes(one_pass, sync, memory)
    times = []
    for _ in range(config["repeats"]):
        sync()
        start = time.perf_counter()
        one_pass()
        sync()
        times.append(1e3 * (time.perf_counter() - start))
    return {
        **config,
        "tokens": config["size"] ** 2,
        "peak_mib": peak / 2**20,
        "median_ms": statistics.median(times),
        "quartiles_ms": _quartiles(times),
    }


def _tf_gpu_peak_bytes(one_pass) -> int:
    """Extra memory at the peak of one pass, from TensorFlow's allocator on GPU:0."""
    import tensorflow as tf

    tf.config.experimental.reset_memory_stats("GPU:0")
    before = tf.config.experimental.get_memory_info("GPU:0")["current"]
    one_pass()
    return tf.config.experimental.get_memory_info("GPU:0")["peak"] - before


def _measure(config: dict):
    """Run one configuration in this process."""
    _set_threads(config["framework"], config["device"], config["threads"])
    if config["part"] == "mhsa":
        return (_mhsa_torch if config["framework"] == "torch" else _mhsa_tf)(config)
    return (_cost_torch if config["framework"] == "torch" else _cost_tf)(config)


def _measure_in_subprocess(config: dict):
    return in_subprocess("fusion_lib.bench.attention", config)


def run_benchmark(
    device: str = "cpu",
    frameworks=FRAMEWORKS,
    mhsa_configs=MHSA_CONFIGS,
    sizes=COST_SIZES,
    dim: int = COST_DIM,
    rounds: int = 40,
    repeats: int = 9,
    threads: int = 1,
) -> dict:
    """Measure both parts; returns {"meta": ..., "rows": [...]}, as saved to JSON."""
    import torch

    if device == "cpu" and not Path("/proc/self/clear_refs").exists():
        raise RuntimeError(
            "CPU peak memory is read from Linux's /proc/self/status; run this on Linux."
        )
    frameworks = tuple(frameworks)
    load_before = os.getloadavg()[0]
    rows = []
    common = {"device": device, "threads": threads}
    for framework in frameworks:
        for n, length, e, h in mhsa_configs:
            config = {
                **common,
                "part": "mhsa",
                "framework": framework,
                "batch": n,
                "length": length,
                "embed_dim": e,
                "heads": h,
                "passes": PASSES[framework],
                "rounds": rounds,
                "warmup": 3,
            }
            rows += _measure_in_subprocess(config)
        for size in sizes:
            for form in COST_FORMS:
                config = {
                    **common,
                    "part": "cost",
                    "framework": framework,
                    "form": form,
                    "size": size,
                    "dim": dim,
                    "repeats": repeats,
                    "warmup": 2,
                }
                rows.append(_measure_in_subprocess(config))
    meta = {
        **machine(device),
        "torch": torch.__version__,
        "tensorflow": _version("tensorflow") or _version("tensorflow-cpu"),
        "keras": _version("keras"),
        "threads": threads,
        # other work on the machine slows both sides of each paired round alike, but
        # shows in the absolute times: the 1-minute load average before and after
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    return {"meta": meta, "rows": rows}


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def load_results(device: str = "cpu") -> dict:
    """The stored results of `python -m fusion_lib.bench.attention --device DEVICE`."""
    return json.loads((RESULTS / f"attention_{device}.json").read_text())


def mhsa_rows(results: dict) -> list[dict]:
    return [r for r in results["rows"] if r["part"] == "mhsa"]


def cost_rows(results: dict, framework: str, form: str) -> list[dict]:
    """The cost part for one framework and form, by increasing map size."""
    rows = [
        r
        for r in results["rows"]
        if r["part"] == "cost" and r["framework"] == framework and r["form"] == form
    ]
    return sorted(rows, key=lambda r: r["size"])


def _ratio_cell(row: dict, name: str) -> str:
    """median [first-third quartile] of the paired ratios NAME / built-in."""
    if f"{name}_ratio" not in row:
        return f"{'-':>16}"
    q = row.get(f"{name}_ratio_quartiles")
    spread = f"[{q[0]:.2f}-{q[1]:.2f}]" if q else f"{'':>11}"
    return f"{row[f'{name}_ratio']:.2f} {spread}"


def format_mhsa_table(results: dict) -> str:
    """MultiHeadSelfAttention against the built-in: our median ms and the paired
    ratios ours / built-in (for Keras also the split by indexing, "indexed"), each
    the median over the rounds with its quartiles."""
    m = results["meta"]
    lines = [
        f"{m['device']} ({m['device_name']}, {m['threads']} thread"
        f"{'s' if m['threads'] > 1 else ''}); ratio / built-in: median "
        "[quartiles] over paired rounds",
        f"{'':<15} {'(N, L, E, H)':>16} | {'ours ms':>8} | {'ours ratio':>16} | "
        f"{'indexed ratio':>16}",
    ]
    for r in mhsa_rows(results):
        shape = f"({r['batch']}, {r['length']}, {r['embed_dim']}, {r['heads']})"
        lines.append(
            f"{r['framework']:<5} {r['pass']:<9} {shape:>16} | {r['ours_ms']:>8.3f} | "
            f"{_ratio_cell(r, 'ours')} | {_ratio_cell(r, 'indexed')}"
        )
    return "\n".join(line.rstrip() for line in lines)


def format_cost_table(results: dict) -> str:
    """Attention over S*S tokens, per framework and form: peak extra MiB of one pass,
    then the median ms with the spread of the timed passes (interquartile range as a
    percentage of the median)."""
    m = results["meta"]
    columns = [
        (f, form)
        for f in FRAMEWORKS
        for form in COST_FORMS
        if cost_rows(results, f, form)
    ]
    head = " ".join(f"{f + ' ' + form:>14}" for f, form in columns)
    first = cost_rows(results, *columns[0])
    lines = [f"{m['device']}: one head, d = {COST_DIM}; peak extra MiB of one pass"]
    lines.append(f"{'S':>3} {'S*S':>5} | {head}")
    for i, row in enumerate(first):
        cells = [f"{cost_rows(results, *c)[i]['peak_mib']:>14.1f}" for c in columns]
        lines.append(f"{row['size']:>3} {row['tokens']:>5} | " + " ".join(cells))
    lines.append("median ms (interquartile range of the passes, % of the median)")
    lines.append(f"{'S':>3} {'S*S':>5} | {head}")
    for i, row in enumerate(first):
        cells = []
        for c in columns:
            r = cost_rows(results, *c)[i]
            q = r.get("quartiles_ms")
            spread = f"({100 * (q[1] - q[0]) / r['median_ms']:.0f}%)" if q else ""
            cells.append(f"{r['median_ms']:.2f} {spread:>5}".rjust(14))
        lines.append(f"{row['size']:>3} {row['tokens']:>5} | " + " ".join(cells))
    return "\n".join(line.rstrip() for line in lines)


def mhsa_summary(results: dict) -> str:
    """One line per framework and pass: the range of the ratio ours / built-in over
    the token batches and at how many of them it is above 1 (ours slower), and the
    same for the indexed split where it was measured."""
    lines = []
    rows = mhsa_rows(results)
    for framework in FRAMEWORKS:
        for pass_ in PASSES[framework]:
            group = [
                r for r in rows if (r["framework"], r["pass"]) == (framework, pass_)
            ]
            if not group:
                continue
            parts = []
            for name in ("ours", "indexed"):
                if not all(f"{name}_ratio" in r for r in group):
                    continue
                ratios = [r[f"{name}_ratio"] for r in group]
                above = sum(x > 1 for x in ratios)
                parts.append(
                    f"{name} {min(ratios):.2f}-{max(ratios):.2f} "
                    f"({above} of {len(ratios)} above 1)"
                )
            lines.append(f"{framework:<5} {pass_:<9}: " + "; ".join(parts))
    return "\n".join(lines)


def cost_summary(results: dict, from_tokens: int = 1024) -> str:
    """Per framework and form: peak memory and latency at the largest map, and the
    slope of log latency against log tokens from `from_tokens` tokens up (2 for a cost
    in (S*S)^2)."""
    import numpy as np

    lines = []
    for framework in FRAMEWORKS:
        for form in COST_FORMS:
            rows = cost_rows(results, framework, form)
            big = [r for r in rows if r["tokens"] >= from_tokens]
            if len(big) < 2:
                continue
            slope = np.polyfit(
                np.log([r["tokens"] for r in big]),
                np.log([r["median_ms"] for r in big]),
                1,
            )[0]
            top = rows[-1]
            lines.append(
                f"{framework:<5} {form:<8}: at {top['tokens']} tokens "
                f"{top['peak_mib']:6.1f} MiB, {top['median_ms']:7.2f} ms; time slope "
                f"from {from_tokens} tokens {slope:.2f}"
            )
    return "\n".join(lines)


def plot_cost(results: dict, ax_memory=None, ax_latency=None):
    """Peak memory and median latency against the number of tokens S*S (log-log), one
    line per framework and form (a colour each; fused: dashed, open markers), the
    latency with the quartiles of its passes as error bars, and a dotted slope-2
    guide: (S*S)^2. Peaks under MEMORY_FLOOR_MIB, below what the measurement
    resolves, are left out. The legend goes under the panels when the figure uses
    the constrained layout (plt.subplots(..., layout="constrained")), else in the
    memory panel."""
    import matplotlib.pyplot as plt
    from matplotlib.layout_engine import ConstrainedLayoutEngine
    from matplotlib.ticker import NullLocator

    if ax_memory is None or ax_latency is None:
        _, (ax_memory, ax_latency) = plt.subplots(
            1, 2, figsize=(10, 4.2), layout="constrained"
        )
    names = {"torch": "PyTorch", "tf": "Keras"}
    labels = {
        ("torch", "explicit"): "explicit softmax(QK^T)V",
        ("torch", "fused"): "F.scaled_dot_product_attention",
        ("tf", "explicit"): "explicit softmax(QK^T)V",
        ("tf", "fused"): "keras.ops.dot_product_attention",
    }
    present = [
        (f, form)
        for f in FRAMEWORKS
        for form in COST_FORMS
        if cost_rows(results, f, form)
    ]
    for c, (framework, form) in enumerate(present):
        rows = cost_rows(results, framework, form)
        fused = form == "fused"
        style = {
            "linestyle": "--" if fused else "-",
            "marker": "o" if framework == "torch" else "s",
            "markersize": 8 if fused else 5,
            "markerfacecolor": "white" if fused else f"C{c}",
            "color": f"C{c}",
            "label": f"{names[framework]}: {labels[(framework, form)]}",
        }
        shown = [r for r in rows if r["peak_mib"] >= MEMORY_FLOOR_MIB]
        ax_memory.plot(
            [r["tokens"] for r in shown], [r["peak_mib"] for r in shown], **style
        )
        tokens, ms = [r["tokens"] for r in rows], [r["median_ms"] for r in rows]
        if all("quartiles_ms" in r for r in rows):
            yerr = [
                [m - r["quartiles_ms"][0] for m, r in zip(ms, rows)],
                [r["quartiles_ms"][1] - m for m, r in zip(ms, rows)],
            ]
            ax_latency.errorbar(tokens, ms, yerr=yerr, capsize=2, **style)
        else:
            ax_latency.plot(tokens, ms, **style)
    top = cost_rows(results, *present[0])
    for ax, key, what in (
        (ax_memory, "peak_mib", "peak extra memory (MiB)"),
        (ax_latency, "median_ms", "median latency (ms)"),
    ):
        guide = [top[-1][key] * (r["tokens"] / top[-1]["tokens"]) ** 2 for r in top]
        ax.plot(
            [r["tokens"] for r in top],
            guide,
            ":",
            color="grey",
            label="slope 2: (S*S)^2" if ax is ax_memory else None,
        )
        ax.set(xscale="log", yscale="log", xlabel="tokens S*S", ylabel=what)
        ax.xaxis.set_minor_locator(NullLocator())
        ticks = [r["tokens"] for r in top][::2]
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.grid(alpha=0.3)
    fig = ax_memory.figure
    if isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine):
        fig.legend(
            *ax_memory.get_legend_handles_labels(),
            loc="outside lower center",
            ncol=3,
            fontsize=9,
            frameon=False,
        )
    else:
        ax_memory.legend(fontsize=8)
    ax_memory.set_title(f"{results['meta']['device']}: memory of one pass")
    ax_latency.set_title(f"{results['meta']['device']}: latency")
    return ax_memory, ax_latency


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--frameworks", nargs="+", default=list(FRAMEWORKS))
    parser.add_argument("--sizes", type=int, nargs="+", default=list(COST_SIZES))
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one small configuration and size, a few rounds: checks the script runs",
    )
    parser.add_argument(
        "--out", type=Path, help="JSON path (default: results/attention_DEVICE.json)"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # one configuration
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_measure(json.loads(args.worker))))
        return
    configs, repeats = MHSA_CONFIGS, 9
    if args.quick:
        configs, args.sizes, args.rounds, repeats = ((2, 16, 16, 2),), [8], 4, 2
    results = run_benchmark(
        args.device,
        tuple(args.frameworks),
        configs,
        tuple(args.sizes),
        COST_DIM,
        args.rounds,
        repeats,
        args.threads,
    )
    out = write(results, args.out or RESULTS / f"attention_{args.device}.json")
    print(format_mhsa_table(results))
    print(format_cost_table(results))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
