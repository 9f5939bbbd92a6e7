"""python -m fusion_lib.bench: measure every operator of fusion_lib in each installed
framework (median latency after warm-up, peak memory, parameters, FLOPs), write JSON
and a plot, and optionally flag regressions against saved results.

    python -m fusion_lib.bench                      # CPU, all operators, both sizes
    python -m fusion_lib.bench --quick --operators AddFusion CBAM --out /tmp/x.json
    python -m fusion_lib.bench --compare OLD.json   # new run against OLD.json
    python -m fusion_lib.bench --compare OLD.json NEW.json   # two saved runs
    python -m fusion_lib.bench --suite attention --quick     # a topic benchmark

What is measured and how: see fusion_lib/bench/operators.py.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import sys
import tempfile
from pathlib import Path

import fusion_lib.bench as bench
from fusion_lib.bench._measure import write

# Topic benchmarks with a main(argv) that --suite dispatches to
SUITES = sorted(
    m.name
    for m in pkgutil.iter_modules(bench.__path__)
    if not m.name.startswith("_") and m.name != "operators"
)


def progress_bar(done: int, total: int, label: str, stream=sys.stderr) -> None:
    """ "\r[ 12/116] torch AddFusion small" on a terminal, one line each otherwise."""
    width = len(str(total))
    line = f"[{done:>{width}}/{total}] {label}"
    if stream.isatty():
        stream.write("\r" + line.ljust(60))
    else:
        stream.write(line + "\n")
    stream.flush()


def _parser() -> argparse.ArgumentParser:
    from fusion_lib.bench.operators import BY_NAME, FRAMEWORKS

    parser = argparse.ArgumentParser(
        prog="python -m fusion_lib.bench",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--frameworks",
        nargs="+",
        choices=FRAMEWORKS,
        help="halves to measure (default: every installed one)",
    )
    parser.add_argument(
        "--operators",
        nargs="+",
        metavar="NAME",
        help=f"operator classes to measure (default: all {len(BY_NAME)})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small size only, 1 warm-up, 3 repeats (what CI runs); without --out "
        "it writes to the temporary directory, never over the stored results",
    )
    parser.add_argument(
        "--repeats", type=int, default=20, help="timed passes (default 20)"
    )
    parser.add_argument(
        "--warmup", type=int, default=3, help="passes before timing (default 3)"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="CPU threads per framework (default 1)"
    )
    parser.add_argument(
        "--out", type=Path, help="JSON path (default: results/operators_DEVICE.json)"
    )
    parser.add_argument(
        "--plot", type=Path, help="PNG path (default: the JSON path with .png)"
    )
    parser.add_argument("--no-plot", action="store_true", help="write no PNG")
    parser.add_argument(
        "--compare",
        nargs="+",
        metavar="JSON",
        help="OLD.json [NEW.json]: flag entries of a new run (or of NEW.json, then "
        "nothing is measured) slower or heavier than OLD.json by --threshold; "
        "exits 1 when any",
    )
    parser.add_argument("--threshold", type=float, default=1.25)
    parser.add_argument(
        "--suite",
        choices=SUITES,
        help="run that topic benchmark instead (python -m fusion_lib.bench.NAME), "
        "passing the remaining arguments on",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # one framework's cases
    return parser


def _report(old: dict, new: dict, threshold: float) -> int:
    from fusion_lib.bench.operators import compare

    regressions = compare(old, new, threshold)
    for r in regressions:
        print(
            f"REGRESSION {r['framework']} {r['operator']} {r['size']} {r['metric']}: "
            f"{r['old']:.4g} -> {r['new']:.4g} ({r['ratio']:.2f}x > {threshold})"
        )
    compared = len(
        {(r["framework"], r["operator"], r["size"]) for r in old["rows"]}
        & {(r["framework"], r["operator"], r["size"]) for r in new["rows"]}
    )
    print(f"{len(regressions)} regression(s) among {compared} compared entries")
    return 1 if regressions else 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--suite", choices=SUITES)
    known, rest = pre.parse_known_args(argv)
    if known.suite:
        importlib.import_module(f"fusion_lib.bench.{known.suite}").main(rest)
        return 0
    args = _parser().parse_args(argv)
    from fusion_lib.bench import operators

    if args.worker:
        print(json.dumps(operators.measure_framework(json.loads(args.worker))))
        return 0
    if args.compare and len(args.compare) > 2:
        raise SystemExit("--compare takes OLD.json and at most one NEW.json")
    if args.compare and len(args.compare) == 2:
        old, new = (json.loads(Path(p).read_text()) for p in args.compare)
        return _report(old, new, args.threshold)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.quick:
        sizes, warmup, repeats = ("small",), 1, 3
        default_out = Path(tempfile.gettempdir()) / "fusion_lib_bench"
        default_out /= f"operators_{args.device}_quick.json"
    else:
        sizes, warmup, repeats = ("small", "default"), args.warmup, args.repeats
        default_out = operators.RESULTS / f"operators_{args.device}.json"
    try:
        results = operators.run_benchmark(
            args.device,
            args.frameworks,
            args.operators,
            sizes,
            warmup,
            repeats,
            args.threads,
            progress_bar,
        )
    except (ValueError, RuntimeError) as error:
        sys.stderr.write("\n")
        raise SystemExit(f"python -m fusion_lib.bench: {error}") from None
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    for framework, names in results["meta"]["public_operators"].items():
        missing = sorted(set(names) - set(operators.BY_NAME))
        if missing:
            sys.stderr.write(f"{framework}: no benchmark case for {missing}\n")
    out = write(results, args.out or default_out)
    print(operators.format_table(results))
    print(f"written to {out}")
    if not args.no_plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ax = operators.plot(results)
        png = args.plot or out.with_suffix(".png")
        ax.figure.tight_layout()
        ax.figure.savefig(png, dpi=100)
        plt.close(ax.figure)
        print(f"plot written to {png}")
    if args.compare:
        old = json.loads(Path(args.compare[0]).read_text())
        return _report(old, results, args.threshold)
    return 0


if __name__ == "__main__":
    sys.exit(main())
