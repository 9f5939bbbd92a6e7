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

import base64
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

    data(seed) returns (X_train, y_train, tests), X in NCHW float32 (or, for a model of
    several inputs, a tuple of arrays such as (images NCHW, token ids); only 4-D arrays
    change layout for Keras), y int labels, and
    tests a dict {name: (X, y)} of test sets (the first is the main one); the seed fixes
    the
    split. fit holds train_classifier's arguments (epochs, batch_size, lr).
    metric(logits, y) -> float scores a trained model on each test set from its logits,
    the classes on the last axis in both frameworks (None: classification accuracy);
    its name keys the scores (`score`). measure(framework, model, train, tests) ->
    {name: JSON value} makes extra measurements of each trained model, train = (X, y)
    and tests in the framework's layout. keep_network stores the first seed's trained
    weights, for `network`.
    """

    name: str
    chapter: str
    question: str
    model: str
    variants: dict[str, dict]
    data: Callable
    fit: dict
    seeds: tuple[int, ...] = (0, 1, 2)
    metric: Callable | None = None
    measure: Callable | None = None
    keep_network: bool = False

    @property
    def score(self) -> str:
        """The name of the score: "accuracy", or the metric's function name."""
        return "accuracy" if self.metric is None else self.metric.__name__

    def config(self) -> dict:
        """What the stored results depend on (compared when they are loaded)."""
        config = {
            "model": self.model,
            "variants": self.variants,
            "data": f"{self.data.__module__}.{self.data.__qualname__}",
            "fit": self.fit,
            "seeds": list(self.seeds),
        }
        # Only the hooks that are set: results stored before hooks existed stay valid.
        for hook in ("metric", "measure"):
            fn = getattr(self, hook)
            if fn is not None:
                config[hook] = f"{fn.__module__}.{fn.__qualname__}"
        if self.keep_network:
            config["keep_network"] = True
        return config


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

        return models, training, _nhwc
    raise ValueError(f"framework must be one of {FRAMEWORKS}; got {framework!r}.")


def _nhwc(X):
    """Keras' layout of a model's input: 4-D image arrays NCHW -> NHWC, other arrays
    (token ids, vectors) as they are; a tuple of inputs, such as (images, questions)
    for a model of two modalities, element by element."""
    if isinstance(X, (tuple, list)):
        return tuple(_nhwc(x) for x in X)
    X = np.asarray(X)
    return np.ascontiguousarray(X.transpose(0, 2, 3, 1)) if X.ndim == 4 else X


def run(
    name: str,
    frameworks=FRAMEWORKS,
    seeds=None,
    variants=None,
    progress: bool = False,
    measures: bool = True,
    **fit,
) -> dict:
    """Train every variant for every seed in each framework; return the results as a
    dict.

    seeds, variants and fit arguments (epochs, batch_size, lr) default to the
    experiment's;
    pass smaller ones for a quick live run. results[framework][variant] holds "params"
    (trainable scalars), the score (`Experiment.score`, "accuracy" unless the experiment
    has a metric) {test set: [one value per seed]} and "loss" [per-seed lists of
    per-epoch training loss]; with the experiment's measure (unless measures=False),
    "measures" {name: [one value per seed]}; with keep_network, "network" (`network`).
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
        "metric": exp.score,
        "config": {**exp.config(), "fit": fit_args, "seeds": list(seeds)},
        "results": {},
    }
    start = time.perf_counter()
    data = {seed: exp.data(seed) for seed in seeds}
    for framework in frameworks:
        models, training, layout = _half(framework)
        table = out["results"].setdefault(framework, {})
        for variant in chosen:
            row = table.setdefault(variant, {"params": None, exp.score: {}, "loss": []})
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
                    value = _score(exp, framework, training, model, layout(X), y)
                    row[exp.score].setdefault(test, []).append(round(value, 5))
                if measures and exp.measure is not None:
                    found = exp.measure(
                        framework,
                        model,
                        (layout(X_tr), y_tr),
                        {test: (layout(X), y) for test, (X, y) in tests.items()},
                    )
                    for key, value in found.items():
                        row.setdefault("measures", {}).setdefault(key, []).append(value)
                if exp.keep_network and seed == seeds[0]:
                    row["network"] = network_state(framework, model)
                if progress:
                    print(
                        f"{name} {framework} {variant} seed {seed}: "
                        f"{row[exp.score][next(iter(tests))][-1]:.3f}",
                        flush=True,
                    )
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out


def _score(exp: Experiment, framework: str, training, model, X, y) -> float:
    if exp.metric is None:
        return training.accuracy(model, X, y)
    return float(exp.metric(predict(framework, model, X), y))


def predict(framework: str, model, X: np.ndarray) -> np.ndarray:
    """A model's outputs in inference mode, as NumPy with the classes on the last axis
    in both frameworks; X in the framework's layout."""
    if framework == "torch":
        import torch

        model.eval()
        inputs = (
            tuple(torch.as_tensor(x) for x in X)
            if isinstance(X, (tuple, list))
            else torch.as_tensor(X)
        )
        with torch.no_grad():
            return np.moveaxis(model(inputs).numpy(), 1, -1)
    return np.asarray(model.predict(X, batch_size=256, verbose=0))


def network_state(framework: str, model) -> list[dict]:
    """Every weight and BatchNorm statistic of a model, exactly, as JSON (base64)."""
    if framework == "torch":
        arrays = [t.detach().numpy() for t in model.state_dict().values()]
    else:
        arrays = model.get_weights()
    return [
        {
            "dtype": str(a.dtype),
            "shape": list(a.shape),
            "data": base64.b64encode(np.ascontiguousarray(a).tobytes()).decode(),
        }
        for a in arrays
    ]


def network(name: str, framework: str, variant: str):
    """The stored first seed's trained `variant` of experiment `name`, rebuilt in
    `framework` (the experiment needs keep_network=True), in inference mode."""
    exp, stored = get(name), load(name)
    row = stored["results"][framework][variant]
    if "network" not in row:
        raise ValueError(f"{name} stores no network: define it with keep_network=True.")
    arrays = [
        np.frombuffer(base64.b64decode(a["data"]), a["dtype"]).reshape(a["shape"])
        for a in row["network"]
    ]
    models, _, _ = _half(framework)
    model = getattr(models, exp.model)(**exp.variants[variant])
    if framework == "torch":
        import torch

        keys = model.state_dict()
        model.load_state_dict({k: torch.tensor(a) for k, a in zip(keys, arrays)})
        model.eval()
    else:
        model.set_weights(arrays)
    return model


def score_name(results: dict) -> str:
    """The score a results dict holds ("accuracy" in results stored before metrics)."""
    return results.get("metric", "accuracy")


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
    """A table, a line per framework and variant: score mean ± std over the seeds (the
    population std, ddof=0); a single seed's score alone, with no spread."""
    lines, score = [], score_name(results)
    for framework, table in results["results"].items():
        for variant, row in table.items():
            name = test or next(iter(row[score]))
            accs = np.array(row[score][name])
            spread = (
                f"{accs.mean():.3f} ± {accs.std():.3f} over {len(accs)} seeds"
                if len(accs) > 1
                else f"{accs.mean():.3f}, 1 seed"
            )
            lines.append(
                f"{framework:>5} {variant:>10}: {name} {score} {spread}, "
                f"{row['params']:,} parameters"
            )
    return "\n".join(lines)
