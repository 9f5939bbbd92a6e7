"""The performance appendix: out= of the element-wise fusions in both halves, the
bandwidth benchmark's smoke run and its stored results."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
import torch

import fusion_lib.tf as K
import fusion_lib.torch as T
from fusion_lib.bench import bandwidth

SHAPE = (2, 4, 3, 5)  # NCHW
SHAPE_K = (2, 3, 5, 4)  # NHWC


def _maps(k, shape=SHAPE):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(shape, generator=g) for _ in range(k)]


# --- torch --------------------------------------------------------------------------


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize(
    "cls, ref",
    [
        (T.AddFusion, lambda xs: sum(xs[1:], xs[0])),
        (T.ProductFusion, lambda xs: xs[0] * xs[1] * (xs[2] if len(xs) > 2 else 1)),
    ],
)
def test_torch_elementwise_out_writes_and_returns_the_buffer(cls, ref, k):
    xs = _maps(k)
    buf = torch.full(SHAPE, 123.0)
    got = cls()(xs, out=buf)
    assert got is buf
    torch.testing.assert_close(buf, ref(xs))
    torch.testing.assert_close(cls()(xs), ref(xs))  # the fresh path is unchanged


def test_torch_out_may_be_the_first_input_in_place():
    a, b, c = _maps(3)
    want = a + b + c
    got = T.AddFusion()([a, b, c], out=a)
    assert got is a
    torch.testing.assert_close(a, want)


def test_torch_add_with_projections_writes_the_projected_sum():
    torch.manual_seed(0)
    fuse = T.AddFusion([3, 4], 4)
    xs = [torch.randn(2, 3, 3, 5), torch.randn(2, 4, 3, 5)]
    buf = torch.empty(2, 4, 3, 5)
    with torch.no_grad():
        got = fuse(xs, out=buf)
        torch.testing.assert_close(got, fuse(xs))
    assert got is buf


def test_torch_add_of_one_projected_branch_copies_it_into_out():
    x = torch.randn(1, 4, 2, 2)
    buf = torch.empty(1, 4, 2, 2)
    assert T.AddFusion([4])([x], out=buf) is buf
    assert torch.equal(buf, x)


def test_torch_concat_out():
    a, b = _maps(2)
    c = torch.randn(2, 2, 3, 5)
    buf = torch.empty(2, 10, 3, 5)
    got = T.ConcatFusion()([a, b, c], out=buf)
    assert got is buf
    assert torch.equal(buf, torch.cat([a, b, c], 1))


@pytest.mark.parametrize(
    "cls, out, says",
    [
        (T.AddFusion, torch.empty(2, 4, 3, 6), r"\(2, 4, 3, 5\); got \(2, 4, 3, 6\)"),
        (T.ProductFusion, torch.empty(SHAPE, dtype=torch.float64), "dtype float32"),
        (T.ConcatFusion, torch.empty(SHAPE), r"shape \(2, 8, 3, 5\)"),
        (T.ConcatFusion, torch.empty(2, 8, 3, 5, dtype=torch.float16), "float16"),
    ],
)
def test_torch_out_of_the_wrong_shape_or_dtype_is_refused(cls, out, says):
    with pytest.raises(ValueError, match=says):
        cls()(_maps(2), out=out)


def test_torch_out_that_is_not_a_tensor_or_a_later_input_is_refused():
    xs = _maps(3)
    with pytest.raises(TypeError, match="takes a torch.Tensor for out="):
        T.AddFusion()(xs, out=np.zeros(SHAPE, "float32"))
    with pytest.raises(ValueError, match="out= is input 2"):
        T.AddFusion()(xs, out=xs[2])


@pytest.mark.parametrize("cls", [T.AddFusion, T.ProductFusion, T.ConcatFusion])
def test_torch_out_is_refused_when_autograd_would_need_it(cls):
    a, b = _maps(2)
    a.requires_grad_()
    width = 8 if cls is T.ConcatFusion else 4
    buf = torch.empty(2, width, 3, 5)
    with pytest.raises(ValueError, match="autograd cannot differentiate through"):
        cls()([a, b], out=buf)
    with torch.no_grad():
        assert cls()([a, b], out=buf) is buf


def test_the_fast_path_still_runs_without_out(monkeypatch):
    """out=None must not reach the out= checks (the overhead guard's spirit)."""
    from fusion_lib import _checks

    def boom(*args, **kwargs):
        raise AssertionError("out checks ran without out=")

    monkeypatch.setattr(_checks, "check_out", boom)
    xs = _maps(2)
    T.AddFusion()(xs)
    T.ProductFusion()(xs)
    T.ConcatFusion()(xs)
    K.AddFusion()([x.numpy().transpose(0, 2, 3, 1) for x in xs])


# --- Keras --------------------------------------------------------------------------


def _maps_k(k):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(SHAPE_K).astype("float32") for _ in range(k)]


@pytest.mark.parametrize("variable", [keras.Variable, tf.Variable])
@pytest.mark.parametrize(
    "cls, ref, width",
    [
        (K.AddFusion, lambda xs: xs[0] + xs[1] + xs[2], 4),
        (K.ProductFusion, lambda xs: xs[0] * xs[1] * xs[2], 4),
        (K.ConcatFusion, lambda xs: np.concatenate(xs, -1), 12),
    ],
)
def test_keras_out_assigns_and_returns_the_variable(cls, ref, width, variable):
    xs = _maps_k(3)
    out = variable(np.zeros((*SHAPE_K[:3], width), "float32"))
    got = cls()(xs, out=out)
    assert got is out
    np.testing.assert_allclose(np.asarray(out), ref(xs), rtol=1e-6, atol=1e-6)


def test_keras_out_works_inside_tf_function():
    xs = _maps_k(2)
    out = tf.Variable(tf.zeros(SHAPE_K))
    layer = K.AddFusion()

    @tf.function
    def step(a, b):
        layer([a, b], out=out)

    step(*xs)
    np.testing.assert_allclose(out.numpy(), xs[0] + xs[1], rtol=1e-6)


def test_keras_out_errors():
    xs = _maps_k(2)
    with pytest.raises(ValueError, match=r"shape \(2, 3, 5, 4\); got \(2, 3, 5, 5\)"):
        K.AddFusion()(xs, out=keras.Variable(np.zeros((2, 3, 5, 5), "float32")))
    with pytest.raises(ValueError, match="dtype float32; got float64"):
        K.ProductFusion()(xs, out=tf.Variable(np.zeros(SHAPE_K, "float64")))
    with pytest.raises(TypeError, match="takes a Variable"):
        K.ConcatFusion()(xs, out=np.zeros((2, 3, 5, 8), "float32"))
    symbolic = [keras.Input(SHAPE_K[1:]) for _ in range(2)]
    with pytest.raises(ValueError, match="needs concrete inputs"):
        K.AddFusion()(symbolic, out=keras.Variable(np.zeros(SHAPE_K, "float32")))


def test_both_halves_document_what_out_does():
    for cls in (K.AddFusion, K.ProductFusion, K.ConcatFusion):
        assert "assign" in cls.__doc__ and "moves more bytes" in cls.__doc__
    for cls in (T.AddFusion, T.ProductFusion, T.ConcatFusion):
        assert "out=" in cls.__doc__ and "no_grad" in cls.__doc__


# --- the benchmark ------------------------------------------------------------------


def test_the_bandwidth_script_quick_run(tmp_path):
    out = tmp_path / "bw.json"
    done = subprocess.run(
        [sys.executable, "-m", "fusion_lib.bench.bandwidth", "--quick", "--out",
         str(out)],
        capture_output=True, text=True, env={"TF_CPP_MIN_LOG_LEVEL": "2",
                                             "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    assert {tuple(r["shape"]) for r in results["rows"]} == set(bandwidth.QUICK_SHAPES)
    assert all(r["median_ms"] > 0 and r["gbps"] > 0 for r in results["rows"])
    assert "% of copy" in done.stdout


def test_the_stored_results_are_complete():
    stored = bandwidth.load_results("cpu")
    shapes = {tuple(s) for s in bandwidth.SHAPES}
    keys = {(r["framework"], r["op"], r["form"], tuple(r["shape"]))
            for r in stored["rows"]}
    torch_forms = ("fresh", "library", "library_out", "channels_last")
    keras_forms = ("fresh", "library", "library_out", "xla", "xla_out")
    for shape in shapes:
        assert ("torch", "copy", "copy", shape) in keys
        for op in bandwidth.OPS:
            for form in torch_forms:
                assert ("torch", op, form, shape) in keys, (op, form, shape)
            for form in keras_forms:
                assert ("keras", op, form, shape) in keys, (op, form, shape)
        for op in ("add", "multiply"):
            assert ("torch", op, "inplace", shape) in keys
    small = [s for s in shapes if 4 * np.prod(s) <= bandwidth.SPLIT_MAX_BYTES]
    assert small and all(("torch", "concat", "split", s) in keys for s in small)
    assert max(4 * np.prod(s) for s in shapes) >= 64 * 2**20  # beyond the cache
    assert len(stored["meta"]["load_average"]) == 2
    for r in stored["rows"]:  # the stored GB/s follow from the bytes and the time
        assert r["bytes"] == bandwidth.UNITS[r["op"]] * 4 * int(np.prod(r["shape"]))
        assert r["gbps"] == pytest.approx(r["bytes"] / r["median_ms"] / 1e6)
    table = bandwidth.format_table(stored)
    assert table.count("\n") == 4 + len(bandwidth.fractions(stored)) - 1
    assert all(len(line) <= 88 for line in table.splitlines())


def test_the_roofline_plot_draws_a_roof_and_every_form():
    import matplotlib

    matplotlib.use("Agg")
    stored = bandwidth.load_results("cpu")
    axes = bandwidth.plot_roofline(stored, "torch")
    labels = [line.get_label() for line in axes[0].get_lines()]
    assert labels[0] == "copy (roof)" and "library_out" in labels
