"""Run the book's experiments in full and store their results (see
fusion_lib.experiments).

python -m fusion_lib.experiments --list
python -m fusion_lib.experiments add_vs_concat [more names] [--frameworks torch tf]
python -m fusion_lib.experiments --all
python -m fusion_lib.experiments add_vs_concat --quick   # 1 seed, 1 epoch, not stored
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None) -> int:
    from fusion_lib import experiments

    parser = argparse.ArgumentParser(
        prog="python -m fusion_lib.experiments",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("names", nargs="*", help="experiments to run")
    parser.add_argument("--all", action="store_true", help="every experiment")
    parser.add_argument("--list", action="store_true", help="list the experiments")
    parser.add_argument("--frameworks", nargs="+", default=list(experiments.FRAMEWORKS))
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one seed, one epoch, results printed and not stored",
    )
    args = parser.parse_args(argv)
    known = experiments.experiments()
    if args.list:
        for name, exp in sorted(known.items()):
            print(f"{name:24s} {exp.chapter}: {exp.question}")
        return 0
    names = sorted(known) if args.all else args.names
    if not names:
        parser.error("name experiments to run, or pass --all or --list")
    for name in names:
        if args.quick:
            result = experiments.run(name, args.frameworks, seeds=(0,), epochs=1)
        else:
            result = experiments.run(name, args.frameworks, progress=True)
            if set(args.frameworks) == set(experiments.FRAMEWORKS):
                print("stored", experiments.save(result))
        print(experiments.summary(result))
        print(f"{name}: {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
