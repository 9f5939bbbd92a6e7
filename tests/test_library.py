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


def test_halves_are_mirrored():
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
        t = importlib.import_module(f"fusion_lib.torch.{name[:-3]}")
        k = importlib.import_module(f"fusion_lib.tf.{name[:-3]}")
        assert set(_public_classes(t)) == set(_public_classes(k)), name
        for cls_name, t_cls in _public_classes(t).items():
            k_cls = _public_classes(k)[cls_name]
            t_sig = [
                p
                for p in inspect.signature(t_cls).parameters.values()
                if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
            ]
            k_sig = [
                p
                for p in inspect.signature(k_cls).parameters.values()
                if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
            ]
            assert [(p.name, p.default) for p in t_sig] == [
                (p.name, p.default) for p in k_sig
            ], cls_name
            for doc in (t_cls.__doc__, k_cls.__doc__):
                assert doc and "Taught in the chapter" in doc, (
                    f"{cls_name} must say where the book teaches it"
                )


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
