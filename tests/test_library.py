"""The framework-free parts of fusion_lib, and the mirror between its two halves."""

import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fusion_lib
from fusion_lib import costs, exercises

ROOT = Path(__file__).resolve().parents[1]


def _imported_after(statement):
    code = (
        f"import sys; {statement}; print(sorted(m for m in "
        "('torch', 'tensorflow', 'keras') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_top_level_imports_no_framework():
    assert (
        _imported_after("import fusion_lib, fusion_lib.exercises, fusion_lib.costs")
        == "[]"
    )


def test_torch_half_never_imports_tensorflow():
    assert (
        _imported_after("import fusion_lib.torch, fusion_lib.torch.models")
        == "['torch']"
    )


def test_tf_half_never_imports_torch():
    assert "torch" not in _imported_after("import fusion_lib.tf, fusion_lib.tf.models")


def _public_classes(module):
    return {
        n: c
        for n, c in vars(module).items()
        if inspect.isclass(c) and c.__module__ == module.__name__
    }


def _public_functions(module):
    return {
        n: f
        for n, f in vars(module).items()
        if inspect.isfunction(f)
        and f.__module__ == module.__name__
        and not n.startswith("_")
    }


def _params(fn, drop=("self",)):
    """(name, default) of every named parameter, *args / **kwargs left out."""
    return [
        (p.name, p.default)
        for p in inspect.signature(fn).parameters.values()
        if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name not in drop
    ]


def _own_methods(cls):
    """Public methods a class defines, itself or through a fusion_lib base class,
    with the framework's entry points renamed to one vocabulary: torch's forward and
    Keras' call are "compute" (a Keras layer's own __call__ when it has one: that is
    what its users call, and Keras reserves `mask` in call), extra_repr and
    get_config are "describe".
    """
    rename = {"forward": "compute", "call": "compute"}
    rename.update(extra_repr="describe", get_config="describe")
    methods = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__.startswith("fusion_lib"):
            for name, value in vars(klass).items():
                public = not name.startswith("_") or name in rename
                if public and callable(value):
                    methods[rename.get(name, name)] = value
            if "__call__" in vars(klass) and klass.__name__ != "FusionLayer":
                methods["compute"] = vars(klass)["__call__"]
    return methods


# The functions that convert to or from one framework's own built-ins exist in that
# half only.
ONE_HALF_ONLY = {
    "torch": {"multihead_to_torch", "multihead_from_torch", "torch_mask_kwargs"},
    "tf": {"multihead_to_keras", "keras_mask"},
}


def _mirrored_modules():
    import importlib

    torch_files = sorted(
        p.name
        for p in (ROOT / "fusion_lib/torch").glob("*.py")
        if not p.name.startswith("_")
    )
    tf_files = sorted(
        p.name
        for p in (ROOT / "fusion_lib/tf").glob("*.py")
        if not p.name.startswith("_")
    )
    assert torch_files == tf_files
    for name in torch_files:
        yield (
            name,
            importlib.import_module(f"fusion_lib.torch.{name[:-3]}"),
            importlib.import_module(f"fusion_lib.tf.{name[:-3]}"),
        )


# Differences between the halves that are meant; each entry names one, so any other
# drift still fails. torch's SkipStack.stem is a submodule (nn.Sequential), Keras' a
# method: both are called stem(x). measure_flops uses torch.utils.flop_counter, which
# has no Keras counterpart (the chapters count Keras FLOPs with fusion_lib.costs).
KNOWN_DRIFT = {
    "models.SkipStack: methods {'stem'}",
    "training: functions {'measure_flops'}",
}


def _drift():
    """Every difference between the halves, one line each."""
    found = []
    for name, t, k in _mirrored_modules():
        module = name[:-3]
        if set(_public_classes(t)) != set(_public_classes(k)):
            found.append(f"{module}: classes")
        for cls_name, t_cls in _public_classes(t).items():
            k_cls = _public_classes(k).get(cls_name)
            if k_cls is None:
                continue
            if _params(t_cls) != _params(k_cls):
                found.append(f"{module}.{cls_name}: constructor")
            t_methods, k_methods = _own_methods(t_cls), _own_methods(k_cls)
            if set(t_methods) != set(k_methods):
                odd = sorted(set(t_methods) ^ set(k_methods))
                found.append(f"{module}.{cls_name}: methods {set(odd)}")
            for method in set(t_methods) & set(k_methods):
                drop = ("self", "training")
                t_p, k_p = (
                    _params(t_methods[method], drop),
                    _params(k_methods[method], drop),
                )
                if t_p != k_p:
                    found.append(f"{module}.{cls_name}.{method}: parameters")
        t_fns, k_fns = _public_functions(t), _public_functions(k)
        odd = (set(t_fns) - ONE_HALF_ONLY["torch"]) ^ (set(k_fns) - ONE_HALF_ONLY["tf"])
        if odd:
            found.append(f"{module}: functions {set(sorted(odd))}")
        for fn in set(t_fns) & set(k_fns):
            if _params(t_fns[fn]) != _params(k_fns[fn]):
                found.append(f"{module}.{fn}: parameters")
    return found


def test_halves_are_mirrored():
    """Same classes with the same constructor arguments, the same public methods with
    the same parameters (Keras may add `training`), the same public functions, and
    every class says where the book teaches it.
    """
    drift = set(_drift())
    assert drift <= KNOWN_DRIFT, sorted(drift - KNOWN_DRIFT)
    for _, t, k in _mirrored_modules():
        for cls_name, t_cls in _public_classes(t).items():
            for doc in (t_cls.__doc__, _public_classes(k)[cls_name].__doc__):
                assert doc and "Taught in the chapter" in doc, (
                    f"{cls_name} must say where the book teaches it"
                )


def test_the_mirror_test_sees_drift(monkeypatch):
    """A method added to one half only, or a renamed parameter, is caught."""
    import fusion_lib.tf.gating as KG

    monkeypatch.setattr(KG.GatedFusion, "extra", lambda self: None, raising=False)
    monkeypatch.setattr(KG.SqueezeExcitation, "gates", lambda self, y: y)
    drift = set(_drift()) - KNOWN_DRIFT
    assert drift == {
        "gating.GatedFusion: methods {'extra'}",
        "gating.SqueezeExcitation.gates: parameters",
    }


# One way to build every public class; both halves get the same arguments.
SAMPLES = {
    "AddFusion": ([3, 5], 8),
    "AggregationNode": ([4, 3], 4, True),
    "BAM": (32, 8, 2, "product"),
    "CBAM": (32, 8, 5),
    "ChannelAttention": (32, 8),
    "ConcatFusion": (),
    "ConcatReduce": ([3, 5], 4, "linear", False, False, True),
    "CrossAttention": (8, 6, 2),
    "DenseBlock": (2, 8, 4, 2),
    "DenseLayer": (8, 4, 2),
    "FeaturePyramid": ([3, 5], 6, True),
    "FiLM": (4, 6),
    "FlattenHead": (3, 4, 5, 2),
    "GAPHead": (3, 2),
    "GatedFusion": (3, 5),
    "GatedMultimodalUnit": ((5, 7), 4),
    "GlobalPool": ("max", True),
    "LowRankBilinear": ((5, 7), 4, 3),
    "MultiHeadSelfAttention": (8, 2),
    "NonLocalBlock": (8, 2, False),
    "ProductFusion": (),
    "ResidualBlock": (4, 8, 2),
    "SpatialAttention": (5,),
    "SqueezeExcitation": (32, 8),
    "Transition": (8, 4),
    "UNetSkipMerge": ("pad",),
    "UNetUp": (8, 6, 4, "add", False),
    "TransformerEncoderBlock": (8, 2, 3),
    "TransformerFusion": ([3, 5], 8, 2, [(4, 4), (2, 2)], 3, 2),
}


def test_torch_repr_and_keras_config_name_every_constructor_argument():
    """torch's extra_repr() lists the constructor arguments, in order, with the values
    the Keras twin's get_config() holds, so the two cannot describe different layers.
    Operators only: models.py and training.py hold the experiments' networks.
    """
    pytest.importorskip("torch")
    pytest.importorskip("keras")
    for name, t, k in _mirrored_modules():
        if name in ("models.py", "training.py"):
            continue
        for cls_name, t_cls in _public_classes(t).items():
            assert cls_name in SAMPLES, f"add constructor arguments for {cls_name}"
            args = SAMPLES[cls_name]
            t_obj, k_obj = t_cls(*args), _public_classes(k)[cls_name](*args)
            config = k_obj.get_config()
            names = [p for p, _ in _params(t_cls)]
            assert set(names) <= set(config), f"{cls_name}.get_config() lacks some"
            want = ", ".join(f"{p}={config[p]!r}" for p in names)
            assert t_obj.extra_repr() == want, cls_name
            clone = type(k_obj).from_config(config)
            assert clone.get_config() == config, cls_name


@pytest.mark.parametrize(
    "c_in,c_out,k,bias", [(3, 8, 3, True), (16, 4, 1, False), (5, 7, 5, True)]
)
def test_conv_costs_match_torch(c_in, c_out, k, bias):
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    conv = torch.nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=bias)
    assert costs.conv2d_params(c_in, c_out, k, bias) == sum(
        p.numel() for p in conv.parameters()
    )
    with FlopCounterMode(display=False) as counter:
        conv(torch.zeros(1, c_in, 9, 11))
    assert costs.conv2d_flops(c_in, c_out, k, 9, 11) == counter.get_total_flops()


def test_linear_costs_match_torch():
    torch = pytest.importorskip("torch")
    lin = torch.nn.Linear(12, 5)
    assert costs.linear_params(12, 5) == sum(p.numel() for p in lin.parameters())
    assert costs.linear_params(12, 5, bias=False) == 60
    assert costs.linear_flops(12, 5) == 120
    assert costs.batchnorm_params(7) == 14


def test_conv_costs_reject_bad_groups():
    with pytest.raises(ValueError, match="groups=3 must divide"):
        costs.conv2d_params(4, 8, 3, groups=3)


def test_seed_everything_repeats_every_generator():
    torch = pytest.importorskip("torch")
    import random

    draws = []
    for _ in range(2):
        fusion_lib.seed_everything(7)
        draws.append((random.random(), np.random.rand(), torch.rand(1).item()))
    assert draws[0] == draws[1]


def test_environment_report_names_versions_and_device():
    report = fusion_lib.environment_report()
    assert report.startswith(f"fusion_lib {fusion_lib.__version__} | Python ")
    assert "numpy " in report and report.rsplit("| ", 1)[1].startswith("device ")


def test_source_markdown_shows_the_real_source():
    from fusion_lib.torch.concat import ConcatFusion

    md = fusion_lib.source_markdown(ConcatFusion)
    assert md.startswith("`fusion_lib.torch.concat.ConcatFusion`")
    assert inspect.getsource(ConcatFusion).strip() in md
    with pytest.raises(ValueError, match="needs a class or function"):
        fusion_lib.source_markdown(3)


def _split_reduce(w, xs):
    starts = np.cumsum([0] + [len(x) for x in xs])
    return sum(
        np.einsum("oc,chw->ohw", w[:, a:b], x)
        for a, b, x in zip(starts, starts[1:], xs)
    )


def _split_reduce_wrong_slices(w, xs):
    return sum(np.einsum("oc,chw->ohw", w[:, : len(x)], x) for x in xs)


def test_split_reduce_check_refuses_a_concatenation():
    with pytest.raises(AssertionError, match="np.concatenate was called"):
        exercises.check_split_reduce(
            lambda w, xs: np.einsum("oc,chw->ohw", w, np.concatenate(xs))
        )


def test_channel_pool_check_names_timms_order():
    with pytest.raises(AssertionError, match=r"\[mean, max\] \(timm's order\)"):
        exercises.check_channel_pool(lambda x: np.stack([x.mean(1), x.max(1)], 1))


def _not_implemented(*args):
    raise NotImplementedError


@pytest.mark.parametrize(
    "check,right,wrong",
    [
        (
            exercises.check_to_channels_last,
            lambda x: x.transpose(0, 2, 3, 1),
            lambda x: x.reshape(x.shape[0], *x.shape[2:], x.shape[1]),
        ),
        (
            exercises.check_tied_concat_kernel,
            lambda w: np.concatenate([w, w], axis=1),
            lambda w: np.concatenate([w, 0 * w], axis=1),
        ),
        (exercises.check_split_reduce, _split_reduce, _split_reduce_wrong_slices),
        (
            exercises.check_head_params,
            lambda C, H, W, K: (C * H * W * K + K, C * K + K),
            lambda C, H, W, K: (C * H * W * K, C * K),
        ),
        (
            exercises.check_se_params,
            lambda C, r: 2 * C * (C // r) + C // r + C,
            lambda C, r: 2 * C * C // r,
        ),
        (
            exercises.check_channel_pool,
            lambda x: np.stack([x.max(1), x.mean(1)], 1),
            lambda x: np.stack([x.mean(1), x.max(1)], 1),
        ),
    ],
)
def test_exercise_checks(check, right, wrong, capsys):
    check(right)
    assert capsys.readouterr().out.startswith("Correct: ")
    with pytest.raises(AssertionError):
        check(wrong)
    check(_not_implemented)
    assert capsys.readouterr().out.startswith("Not attempted yet")


def test_concat_shape_check_catches_a_missing_error():
    def no_validation(shapes, axis):
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return tuple(out)

    with pytest.raises(AssertionError, match=r"instead of raising\s+ValueError"):
        exercises.check_concat_shape(no_validation)


def test_digits_on_canvas_move_and_refuse_to_fall_off():
    from fusion_lib.data import load_digits_on_canvas, on_canvas

    digits = np.arange(2 * 64, dtype=np.float32).reshape(2, 1, 8, 8)
    moved = on_canvas(digits, dy=-1, dx=4, size=20)
    assert moved.shape == (2, 1, 20, 20) and moved.sum() == digits.sum()
    np.testing.assert_array_equal(moved[:, :, 5:13, 10:18], digits)
    with pytest.raises(ValueError, match="off a 20x20 canvas"):
        on_canvas(digits, dx=7, size=20)
    X, y, tests = load_digits_on_canvas(0)
    assert X.shape[1:] == (1, 20, 20) and list(tests)[:2] == ["centred", "shifted"]
    assert len(tests["shifted"][0]) == 2 * len(tests["centred"][0])
