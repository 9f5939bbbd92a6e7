"""Benchmark: concatenate-then-1x1-conv against the split-weight form that never
concatenates.

    # CPU, writes results/concat_reduce_cpu.json
    python -m fusion_lib.bench.concat_reduce
    # GPU, writes results/concat_reduce_cuda.json
    python -m fusion_lib.bench.concat_reduce --device cuda
    # a smoke run (the tests use it)
    python -m fusion_lib.bench.concat_reduce --quick --out /tmp/x.json

Two C-channel maps of size S x S (batch 1) are fused by `fusion_lib.torch.ConcatReduce`
into C_out channels, once as cat + 1x1 conv (`split_weights=False`) and once as
W_1 x_1 + W_2 x_2 (`split_weights=True`), with norm and activation off so only the
fusion is measured. Both run forward only under `torch.no_grad()` ("inference") and
forward + backward of the output's sum ("training").

Peak memory is what one pass adds on top of what already exists (inputs, weights):
- CPU: the process's resident-memory high-water mark (Linux `VmHWM`, reset through
  `/proc/self/clear_refs` just before the pass) minus the resident memory before it.
  Each configuration runs in a fresh subprocess with glibc's mmap threshold fixed at
  64 KiB, so every large tensor is mapped on allocation and returned to the OS on
  release, and nothing freed by an earlier configuration can hide an allocation.
- CUDA: `torch.cuda.max_memory_allocated()` minus `torch.cuda.memory_allocated()`
  before the pass.
Latency is the median over `--repeats` timed passes after two warm-up passes.

Taught in the chapter on concatenation followed by reduction.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fusion_lib.bench._measure import (
    in_subprocess,
    machine,
    median_ms,
    peak_bytes,
    write,
)

RESULTS = Path(__file__).resolve().parent / "results"
FORMS = ("concat", "split")
PASSES = ("inference", "training")


def _measure(config: dict) -> dict:
    """Run one configuration in this process: peak extra memory (MiB) and median
    latency (ms).
    """
    import torch

    from fusion_lib.torch.reduce import ConcatReduce

    device, c, s, c_out = (
        config["device"],
        config["channels"],
        config["size"],
        config["out_channels"],
    )
    torch.manual_seed(0)
    fuse = ConcatReduce(
        [c, c], c_out, norm=False, act=False, split_weights=config["form"] == "split"
    ).to(device)
    training = config["pass"] == "training"
    xs = [
        torch.randn(1, c, s, s, device=device, requires_grad=training) for _ in range(2)
    ]

    def one_pass():
        if training:
            fuse(xs).sum().backward()
            for p in (*fuse.parameters(), *xs):
                p.grad = None
        else:
            with torch.no_grad():
                fuse(xs)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    one_pass()
    one_pass()
    sync()
    memory = "cuda" if device == "cuda" else "rss"
    peak = peak_bytes(one_pass, sync, memory)
    return {
        **config,
        "peak_mib": peak / 2**20,
        "median_ms": median_ms(one_pass, sync, config["repeats"]),
    }


def _measure_in_subprocess(config: dict) -> dict:
    return in_subprocess("fusion_lib.bench.concat_reduce", config)


def run_benchmark(
    device: str = "cpu",
    sizes=(32, 64, 128, 256),
    channels: int = 128,
    out_channels: int = 128,
    repeats: int = 15,
    passes=PASSES,
) -> dict:
    """Measure every (pass, size, form); returns {"meta": ..., "rows": [...]}, as saved
    to JSON.
    """
    import torch

    if device == "cpu" and not Path("/proc/self/clear_refs").exists():
        raise RuntimeError(
            "CPU peak memory is read from Linux's /proc/self/status; run this on Linux."
        )
    rows = []
    for pass_ in passes:
        for size in sizes:
            for form in FORMS:
                config = {
                    "device": device,
                    "pass": pass_,
                    "size": size,
                    "form": form,
                    "channels": channels,
                    "out_channels": out_channels,
                    "repeats": repeats,
                }
                rows.append(
                    _measure_in_subprocess(config)
                    if device == "cpu"
                    else _measure(config)
                )
    meta = {
        **machine(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    return {"meta": meta, "rows": rows}


def load_results(device: str = "cpu") -> dict:
    """The stored results of
    `python -m fusion_lib.bench.concat_reduce --device DEVICE`.
    """
    return json.loads((RESULTS / f"concat_reduce_{device}.json").read_text())


def _ratio(a: float, b: float) -> float:
    return (
        a / b if b > 0 else float("nan")
    )  # tiny maps can stay below the page-level resolution of VmHWM


def ratios(results: dict) -> list[dict]:
    """One row per (pass, size): both forms' numbers and split / concat ratios."""
    by_key = {(r["pass"], r["size"], r["form"]): r for r in results["rows"]}
    out = []
    for pass_, size, form in by_key:
        if form != "concat":
            continue
        cat, split = by_key[(pass_, size, "concat")], by_key[(pass_, size, "split")]
        out.append(
            {
                "pass": pass_,
                "size": size,
                "concat_mib": cat["peak_mib"],
                "split_mib": split["peak_mib"],
                "memory_ratio": _ratio(split["peak_mib"], cat["peak_mib"]),
                "concat_ms": cat["median_ms"],
                "split_ms": split["median_ms"],
                "latency_ratio": _ratio(split["median_ms"], cat["median_ms"]),
            }
        )
    return out


def format_table(results: dict) -> str:
    """The results as a fixed-width text table (memory in MiB, latency in ms, ratios
    split/concat).
    """
    m = results["meta"]
    c = results["rows"][0]
    lines = [
        f"{m['device']} ({m['device_name']}, {m['threads']} threads), "
        f"torch {m['torch']}; two {c['channels']}-channel "
        f"S x S maps -> {c['out_channels']} channels",
        f"{'pass':<10} {'S':>4} | {'peak MiB cat':>12} {'split':>7} {'ratio':>6} | "
        f"{'median ms cat':>13} {'split':>7} {'ratio':>6}",
    ]
    for r in ratios(results):
        lines.append(
            f"{r['pass']:<10} {r['size']:>4} | {r['concat_mib']:>12.1f} "
            f"{r['split_mib']:>7.1f} {r['memory_ratio']:>6.2f} | "
            f"{r['concat_ms']:>13.2f} {r['split_ms']:>7.2f} {r['latency_ratio']:>6.2f}"
        )
    return "\n".join(lines)


def plot_results(results: dict, ax_memory=None, ax_latency=None):
    """Peak memory and median latency against S, one line per form and pass (log-log
    axes).
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    if ax_memory is None or ax_latency is None:
        _, (ax_memory, ax_latency) = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, pass_ in enumerate(sorted({r["pass"] for r in results["rows"]})):
        for form, style in zip(FORMS, ("-", "--")):
            rows = sorted(
                (
                    r
                    for r in results["rows"]
                    if r["pass"] == pass_ and r["form"] == form
                ),
                key=lambda r: r["size"],
            )
            sizes = [r["size"] for r in rows]
            label = f"{form}, {pass_}"
            ax_memory.plot(
                sizes,
                [r["peak_mib"] for r in rows],
                style,
                marker="o",
                color=f"C{i}",
                label=label,
            )
            ax_latency.plot(
                sizes,
                [r["median_ms"] for r in rows],
                style,
                marker="o",
                color=f"C{i}",
                label=label,
            )
    for ax, what in (
        (ax_memory, "peak extra memory (MiB)"),
        (ax_latency, "median latency (ms)"),
    ):
        ax.set(xscale="log", yscale="log", xlabel="spatial size S", ylabel=what)
        ax.xaxis.set_minor_locator(
            NullLocator()
        )  # log axes would add unreadable minor labels
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.grid(alpha=0.3)
    ax_memory.legend(fontsize=8)
    ax_memory.set_title(f"{results['meta']['device']}: memory")
    ax_latency.set_title(f"{results['meta']['device']}: latency")
    return ax_memory, ax_latency


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--channels", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one small size, inference only, 2 repeats: checks the script runs",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="JSON path (default: results/concat_reduce_DEVICE.json)",
    )
    parser.add_argument(
        "--worker", help=argparse.SUPPRESS
    )  # one configuration, run by the parent
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_measure(json.loads(args.worker))))
        return
    if args.quick:
        args.sizes, args.channels, args.repeats = [64], 16, 2
    passes = ("inference",) if args.quick else PASSES
    results = run_benchmark(
        args.device,
        tuple(args.sizes),
        args.channels,
        args.channels,
        args.repeats,
        passes,
    )
    out = write(results, args.out or RESULTS / f"concat_reduce_{args.device}.json")
    print(format_table(results))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
