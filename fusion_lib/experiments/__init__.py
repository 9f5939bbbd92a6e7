"""The book's training experiments: each variant trained on its own, in both frameworks.

An `Experiment` names a model class that exists in both `fusion_lib.torch.models` and
`fusion_lib.tf.models`, the variants (constructor arguments) to compare, the data, the
training budget (the same for every variant) and the seeds. `run` trains every variant
for every seed in each framework and returns a plain dict; `python -m
fusion_lib.experiments`
runs the full experiments and stores them in `results/NAME.json`, which ships with the
package, so that a chapter prints and plots the full result in its 45-second budget (and
in
Colab) beside a small live run the reader can scale up.

Experiments are defined in the modules of this package, one per chapter
(`fusion_lib/experiments/addition.py`, ...), each calling `register(Experiment(...))`.
Taught in the chapter on addition; used by every chapter with an experiment.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import pkgutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
FRAMEWORKS = ("torch", "tf")


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One comparison: variants of one model, equal budgets, several seeds, both
    frameworks.

    data(seed) returns (X_train, y_train, tests), X in NCHW float32, y int labels, and
    tests a dict {name: (X, y)} of test sets (the first is the main one); the seed fixes
    the
    split. fit holds train_classifier's arguments (epochs, batch_size, lr).
    """

    name: str
    chapter: str
    question: str
    model: str
    variants: dict[str, dict]
    data: Callable
    fit: dict
    seeds: tuple[int, ...] = (0, 1, 2)

    def config(self) -> dict:
        """What the stored results depend on (compared when they are loaded)."""
        return {
            "model": self.model,
            "variants": self.variants,
            "data": f"{self.data.__module__}.{self.data.__qualname__}",
            "fit": self.fit,
            "seeds": list(self.seeds),
        }


_REGISTRY: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    _REGISTRY[experiment.name] = experiment
    return experiment


def experiments() -> dict[str, Experiment]:
    """Every experiment of the book, by name (imports this package's modules once)."""
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    return dict(_REGISTRY)


def get(name: str) -> Experiment:
    known = experiments()
    if name not in known:
        raise ValueError(f"no experiment named {name!r}; known: {sorted(known)}.")
    return known[name]


def _half(framework: str):
    if framework == "torch":
        import fusion_lib.torch.models as models
        import fusion_lib.torch.training as training

        return models, training, lambda X: X
    if framework == "tf":
        import fusion_lib.tf.models as models
        import fusion_lib.tf.training as training

        return models, training, lambda X: np.ascontiguousarray(X.transpose(0, 2, 3, 1))
    raise ValueError(f"framework must be one of {FRAMEWORKS}; got {framework!r}.")


def run(
    name: str,
    frameworks=FRAMEWORKS,
    seeds=None,
    variants=None,
    progress: bool = False,
    **fit,
) -> dict:
    """Train every variant for every seed in each framework; return the results as a
    dict.

    seeds, variants and fit arguments (epochs, batch_size, lr) default to the
    experiment's;
    pass smaller ones for a quick live run. results[framework][variant] holds "params"
    (trainable scalars), "accuracy" {test set: [one value per seed]} and "loss"
    [per-seed lists of per-epoch training loss].
    """
    from fusion_lib.env import seed_everything

    exp = get(name)
    seeds = tuple(exp.seeds if seeds is None else seeds)
    chosen = list(exp.variants if variants is None else variants)
    unknown = set(chosen) - set(exp.variants)
    if unknown:
        raise ValueError(
            f"{name} has no variants {sorted(unknown)}; it has {list(exp.variants)}."
        )
    fit_args = {**exp.fit, **fit}
    out = {
        "name": name,
        "config": {**exp.config(), "fit": fit_args, "seeds": list(seeds)},
        "results": {},
    }
    start = time.perf_counter()
    data = {seed: exp.data(seed) for seed in seeds}
    for framework in frameworks:
        models, training, layout = _half(framework)
        table = out["results"].setdefault(framework, {})
        for variant in chosen:
            row = table.setdefault(
                variant, {"params": None, "accuracy": {}, "loss": []}
            )
            for seed in seeds:
                X_tr, y_tr, tests = data[seed]
                seed_everything(seed)
                model = getattr(models, exp.model)(**exp.variants[variant])
                loss = training.train_classifier(
                    model, layout(X_tr), y_tr, seed=seed, **fit_args
                )
                row["params"] = training.count_params(model)
                row["loss"].append([round(v, 5) for v in loss])
                for test, (X, y) in tests.items():
                    acc = training.accuracy(model, layout(X), y)
                    row["accuracy"].setdefault(test, []).append(round(acc, 5))
                if progress:
                    print(
                        f"{name} {framework} {variant} seed {seed}: "
                        f"{row['accuracy'][next(iter(tests))][-1]:.3f}",
                        flush=True,
                    )
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out


def load(name: str) -> dict:
    """The stored full results of an experiment (written by `python -m
    fusion_lib.experiments`).

    Refuses results whose configuration no longer matches the experiment's definition.
    """
    exp = get(name)
    path = RESULTS / f"{name}.json"
    if not path.exists():
        raise ValueError(
            f"no stored results for {name}: "
            f"run `python -m fusion_lib.experiments {name}`."
        )
    stored = json.loads(path.read_text())
    if stored["config"] != json.loads(json.dumps(exp.config())):
        raise ValueError(
            f"stored results for {name} are stale (its definition changed): "
            f"re-run `python -m fusion_lib.experiments {name}`."
        )
    return stored


def save(results: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{results['name']}.json"
    path.write_text(json.dumps(results, indent=1) + "\n")
    return path


def summary(results: dict, test: str | None = None) -> str:
    """A table, a line per framework and variant: accuracy mean ± std over the seeds."""
    lines = []
    for framework, table in results["results"].items():
        for variant, row in table.items():
            name = test or next(iter(row["accuracy"]))
            accs = np.array(row["accuracy"][name])
            lines.append(
                f"{framework:>5} {variant:>10}: {name} accuracy {accs.mean():.3f} ± "
                f"{accs.std():.3f} over {len(accs)} seeds, {row['params']:,} parameters"
            )
    return "\n".join(lines)
