"""Every public operator and function of both halves, fed what students feed them:
None, Python lists, NumPy arrays, the wrong number of inputs, float64, integers, a
float32/float64 mix, empty axes, bad target sizes, symbolic Keras tensors of unknown
size. Each call either works (an empty batch gives an empty result of the right shape)
or raises fusion_lib's own ValueError (TypeError for what is not a tensor at all)
naming the operator: never a framework traceback, never a NaN.

Named cases sweep the registry below; `hypothesis` generates shapes, ranks, dtypes,
counts and sizes for the map operators against an independent statement of the rules.
The rules themselves are written once, in the docstring of fusion_lib._checks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

import fusion_lib.tf as K  # noqa: E402
import fusion_lib.torch as T  # noqa: E402
from fusion_lib import _checks  # noqa: E402

PROPERTY = settings(
    max_examples=25,
    deadline=None,  # Keras' first eager call of a shape traces; later calls are fast
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
LIBS = {"torch": T, "tf": K}


# --- the registry: one valid call per operator -------------------------------------


def m(n, c, h, w):
    """A map, written NCHW; `to_half` lays it out for the half."""
    return ("map", (n, c, h, w))


def v(*shape):
    """A vector or token tensor: the same layout in both halves."""
    return ("seq", shape)


def b(*shape):
    """A boolean mask."""
    return ("mask", shape)


@dataclass
class Case:
    name: str  # the public name, which every message must contain
    make: object  # lib -> the callable (a layer/module, or a function)
    inputs: object  # n -> list of specs (a list spec for operators that take a list)
    extra: tuple = ()  # arguments after the tensors (target sizes, modes)
    weighted: bool = False  # has weights: torch casts inputs to their dtype
    halves: tuple = ("torch", "tf")
    listed: bool = field(init=False)

    def __post_init__(self):
        self.listed = isinstance(self.inputs(2)[0], list)

    def __repr__(self):
        return self.name


def _fn(name):
    return lambda lib: getattr(lib, name)


CASES = [
    Case(
        "ConcatFusion",
        lambda L: L.ConcatFusion(),
        lambda n: [[m(n, 3, 6, 6), m(n, 5, 6, 6)]],
    ),
    Case(
        "AddFusion", lambda L: L.AddFusion(), lambda n: [[m(n, 4, 6, 6), m(n, 4, 6, 6)]]
    ),
    Case(
        "AddFusion",
        lambda L: L.AddFusion([3, 5]),
        lambda n: [[m(n, 3, 6, 6), m(n, 5, 6, 6)]],
        weighted=True,
    ),
    Case(
        "ProductFusion",
        lambda L: L.ProductFusion(),
        lambda n: [[m(n, 4, 6, 6), m(n, 4, 6, 6)]],
    ),
    Case(
        "GatedFusion",
        lambda L: L.GatedFusion(3, 5),
        lambda n: [[m(n, 3, 6, 6), m(n, 5, 6, 6)]],
        weighted=True,
    ),
    Case(
        "ConcatReduce",
        lambda L: L.ConcatReduce([3, 5], 4),
        lambda n: [[m(n, 3, 6, 6), m(n, 5, 6, 6)]],
        weighted=True,
    ),
    Case(
        "AggregationNode",
        lambda L: L.AggregationNode([4, 3], 4),
        lambda n: [[m(n, 4, 6, 6), m(n, 3, 6, 6)]],
        weighted=True,
    ),
    Case(
        "UNetSkipMerge",
        lambda L: L.UNetSkipMerge("crop"),
        lambda n: [[m(n, 2, 4, 4), m(n, 3, 6, 6)]],
    ),
    Case(
        "UNetSkipMerge",
        lambda L: L.UNetSkipMerge("pad"),
        lambda n: [[m(n, 2, 4, 4), m(n, 3, 6, 6)]],
    ),
    Case(
        "UNetUp",
        lambda L: L.UNetUp(4, 3, 2),
        lambda n: [[m(n, 4, 3, 3), m(n, 3, 8, 8)]],
        weighted=True,
    ),
    Case(
        "FeaturePyramid",
        lambda L: L.FeaturePyramid([3, 5], 4),
        lambda n: [[m(n, 3, 8, 8), m(n, 5, 4, 4)]],
        weighted=True,
    ),
    Case("GlobalPool", lambda L: L.GlobalPool("avg"), lambda n: [m(n, 3, 5, 5)]),
    Case("GlobalPool", lambda L: L.GlobalPool("max"), lambda n: [m(n, 3, 5, 5)]),
    Case(
        "FlattenHead",
        lambda L: L.FlattenHead(3, 4, 4, 2),
        lambda n: [m(n, 3, 4, 4)],
        weighted=True,
    ),
    Case(
        "GAPHead", lambda L: L.GAPHead(3, 2), lambda n: [m(n, 3, 5, 5)], weighted=True
    ),
    Case(
        "SqueezeExcitation",
        lambda L: L.SqueezeExcitation(8, 4),
        lambda n: [m(n, 8, 5, 5)],
        weighted=True,
    ),
    Case(
        "ChannelAttention",
        lambda L: L.ChannelAttention(8, 4),
        lambda n: [m(n, 8, 5, 5)],
        weighted=True,
    ),
    Case(
        "SpatialAttention",
        lambda L: L.SpatialAttention(3),
        lambda n: [m(n, 4, 5, 5)],
        weighted=True,
    ),
    Case("CBAM", lambda L: L.CBAM(8, 4, 3), lambda n: [m(n, 8, 5, 5)], weighted=True),
    Case("BAM", lambda L: L.BAM(8, 4, 1), lambda n: [m(n, 8, 5, 5)], weighted=True),
    Case(
        "ResidualBlock",
        lambda L: L.ResidualBlock(3, 4, 2),
        lambda n: [m(n, 3, 6, 6)],
        weighted=True,
    ),
    Case(
        "DenseLayer",
        lambda L: L.DenseLayer(3, 2),
        lambda n: [m(n, 3, 5, 5)],
        weighted=True,
    ),
    Case(
        "DenseBlock",
        lambda L: L.DenseBlock(2, 3, 2),
        lambda n: [m(n, 3, 5, 5)],
        weighted=True,
    ),
    Case(
        "Transition",
        lambda L: L.Transition(4, 2),
        lambda n: [m(n, 4, 6, 6)],
        weighted=True,
    ),
    Case(
        "NonLocalBlock",
        lambda L: L.NonLocalBlock(4),
        lambda n: [m(n, 4, 4, 4)],
        weighted=True,
    ),
    Case("channel_pool", _fn("channel_pool"), lambda n: [m(n, 4, 5, 5)]),
    Case("center_crop", _fn("center_crop"), lambda n: [m(n, 2, 6, 6)], extra=((4, 4),)),
    Case("center_crop", _fn("center_crop"), lambda n: [m(n, 2, 6, 6), m(n, 1, 4, 3)]),
    Case("resize_to", _fn("resize_to"), lambda n: [m(n, 2, 4, 4)], extra=((7, 5),)),
    Case(
        "resize_to",
        _fn("resize_to"),
        lambda n: [m(n, 2, 4, 4), m(n, 1, 8, 6)],
        extra=("nearest",),
    ),
    Case(
        "GatedMultimodalUnit",
        lambda L: L.GatedMultimodalUnit((5, 7), 4),
        lambda n: [[v(n, 5), v(n, 7)]],
        weighted=True,
    ),
    Case(
        "LowRankBilinear",
        lambda L: L.LowRankBilinear((5, 7), 4, 2),
        lambda n: [[v(n, 5), v(n, 7)]],
        weighted=True,
    ),
    Case(
        "FiLM",
        lambda L: L.FiLM(4, 6),
        lambda n: [m(n, 6, 3, 3), v(n, 4)],
        weighted=True,
    ),
    Case("FiLM", lambda L: L.FiLM(4, 6), lambda n: [v(n, 6), v(n, 4)], weighted=True),
    Case(
        "CrossAttention",
        lambda L: L.CrossAttention(8, 6, 2),
        lambda n: [v(n, 5, 8), v(n, 3, 6)],
        weighted=True,
    ),
    Case(
        "CrossAttention",
        lambda L: L.CrossAttention(8, 6, 2),
        lambda n: [v(n, 5, 8), v(n, 3, 6), b(n, 3)],
        weighted=True,
    ),
    Case(
        "MultiHeadSelfAttention",
        lambda L: L.MultiHeadSelfAttention(8, 2),
        lambda n: [v(n, 5, 8)],
        weighted=True,
    ),
    Case(
        "MultiHeadSelfAttention",
        lambda L: L.MultiHeadSelfAttention(8, 2),
        lambda n: [v(n, 5, 8), b(n, 5, 5)],
        weighted=True,
    ),
    Case(
        "scaled_dot_product_attention",
        _fn("scaled_dot_product_attention"),
        lambda n: [v(n, 5, 8), v(n, 6, 8), v(n, 6, 4), b(n, 5, 6)],
    ),
    Case(
        "attention_weights",
        _fn("attention_weights"),
        lambda n: [v(n, 5, 8), v(n, 6, 8)],
    ),
]


def to_half(half, spec, dtype="float32", rng=None):
    """A spec (or a list of specs) as the half's tensor."""
    if isinstance(spec, list):
        return [to_half(half, s, dtype, rng) for s in spec]
    kind, shape = spec
    rng = rng or np.random.default_rng(0)
    if kind == "mask":
        a = rng.random(shape) > 0.3
        a[..., 0] = True
    else:
        a = rng.normal(size=shape)
        if kind == "map" and half == "tf":
            a = a.transpose(0, 2, 3, 1)
        a = (10 * a).astype(dtype) if dtype.startswith("int") else a.astype(dtype)
    return torch.as_tensor(a) if half == "torch" else keras.ops.convert_to_tensor(a)


def call(half, case, n=2, dtype="float32", edit=None):
    """Run the case's valid call in one half (batch n), after `edit(args)` changes
    the arguments.
    """
    op = case.make(LIBS[half])
    args = [to_half(half, s, dtype) for s in case.inputs(n)] + list(case.extra)
    if edit is not None:
        args = edit(args)
    return op(*args)


def raises(exc, case, match=""):
    """The error must be fusion_lib's: the exception type, and the operator's name."""
    return pytest.raises(exc, match=re.escape(case.name) + ".*" + match)


PAIRS = [(h, c) for c in CASES for h in c.halves]
IDS = [f"{h}-{c.name}-{i}" for i, (h, c) in enumerate(PAIRS)]


def shape_of(out):
    if isinstance(out, (list, tuple)):
        return [tuple(o.shape) for o in out]
    return tuple(out.shape)


def dtype_of(t):
    return (
        str(t.dtype).removeprefix("torch.")
        if isinstance(t, torch.Tensor)
        else (keras.backend.standardize_dtype(t.dtype))
    )


def first(out):
    return out[0] if isinstance(out, (list, tuple)) else out


def numpy(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


# --- an empty batch ------------------------------------------------------------------


@pytest.mark.parametrize("half,case", PAIRS, ids=IDS)
def test_an_empty_batch_gives_an_empty_result(half, case):
    full, empty = shape_of(call(half, case, n=2)), shape_of(call(half, case, n=0))
    if isinstance(full, list):
        assert empty == [(0, *s[1:]) for s in full]
    else:
        assert empty == (0, *full[1:])


# --- not a tensor ----------------------------------------------------------------


def _replace(args, i, j, value):
    args = list(args)
    if j is None:
        args[i] = value
    else:
        args[i] = list(args[i])
        args[i][j] = value
    return args


def _positions(case):
    """(argument, list item or None) of every tensor in the valid call."""
    out = []
    for i, spec in enumerate(case.inputs(2)):
        out += (
            [(i, j) for j in range(len(spec))]
            if isinstance(spec, list)
            else [(i, None)]
        )
    return out


@pytest.mark.parametrize("half,case", PAIRS, ids=IDS)
def test_what_is_not_a_tensor_is_refused(half, case):
    specs = case.inputs(2)
    for i, j in _positions(case):
        spec = specs[i] if j is None else specs[i][j]
        if spec[0] != "mask":  # mask=None is no mask
            with raises(TypeError, case, r"got None"):
                call(half, case, edit=lambda a, i=i, j=j: _replace(a, i, j, None))

        def nested_list(a, i=i, j=j):
            return _replace(a, i, j, numpy(a[i] if j is None else a[i][j]).tolist())

        with raises(TypeError, case, r"a Python list .*(np\.asarray|torch\.tensor)"):
            call(half, case, edit=nested_list)
        with raises(TypeError, case, r"got a str"):
            call(half, case, edit=lambda a, i=i, j=j: _replace(a, i, j, "x"))


@pytest.mark.parametrize("half,case", PAIRS, ids=IDS)
def test_numpy_arrays(half, case):
    """The torch half refuses NumPy with the fix; the Keras half takes it, as Keras
    layers do, and gives the same numbers as for its tensors.
    """
    as_numpy = [(i, j) for i, j in _positions(case)]

    def to_numpy(args):
        for i, j in as_numpy:
            args = _replace(args, i, j, numpy(args[i] if j is None else args[i][j]))
        return args

    if half == "torch":
        with raises(TypeError, case, r"NumPy array .*torch\.as_tensor"):
            call(half, case, edit=to_numpy)
    else:
        keras.utils.set_random_seed(0)
        want = numpy(first(call(half, case)))
        keras.utils.set_random_seed(0)
        got = numpy(first(call(half, case, edit=to_numpy)))
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


LISTED = [(h, c) for h, c in PAIRS if c.listed]
LISTED_IDS = [f"{h}-{c.name}-{i}" for i, (h, c) in enumerate(LISTED)]


@pytest.mark.parametrize("half,case", LISTED, ids=LISTED_IDS)
def test_the_list_itself(half, case):
    with raises(TypeError, case, r"takes a list of tensors.*got None"):
        call(half, case, edit=lambda a: [None, *a[1:]])
    with raises(ValueError, case, r"got 0"):
        call(half, case, edit=lambda a: [[], *a[1:]])
    with raises(ValueError, case, r"takes a list of tensors.*single tensor of shape"):
        call(half, case, edit=lambda a: [a[0][0], *a[1:]])
    with raises(TypeError, case, r"input 1 .*got None"):
        call(half, case, edit=lambda a: [[a[0][0], None], *a[1:]])


@pytest.mark.parametrize("half,case", LISTED, ids=LISTED_IDS)
def test_the_wrong_number_of_inputs_names_the_count_and_the_shapes(half, case):
    built_for = len(case.inputs(2)[0])
    variadic = case.name in ("ConcatFusion", "ProductFusion") or (
        case.name == "AddFusion" and not case.weighted
    )
    counts = [1] if variadic else [1, built_for + 1]
    if case.name == "FeaturePyramid":
        counts = [built_for + 1]  # one level is a valid pyramid for FeaturePyramid([3])
    for count in counts:

        def edit(a, count=count):
            return [(a[0] * 3)[:count], *a[1:]]

        args = edit([to_half(half, s) for s in case.inputs(2)])
        shapes = ", ".join(re.escape(str(tuple(x.shape))) for x in args[0])
        with raises(ValueError, case, rf"got {count}\b.*{shapes}"):
            call(half, case, edit=edit)
    if variadic:  # three inputs are as good as two
        out = call(half, case, edit=lambda a: [a[0] + a[0][:1]])
        assert out.shape[0] == 2


# --- dtypes -----------------------------------------------------------------------


@pytest.mark.parametrize("half,case", PAIRS, ids=IDS)
def test_float64_is_cast_consistently(half, case):
    keras.utils.set_random_seed(0)
    torch.manual_seed(0)
    want = first(call(half, case))
    keras.utils.set_random_seed(0)
    torch.manual_seed(0)
    got = first(call(half, case, dtype="float64"))
    is_layer = half == "tf" and not case.name[0].islower()
    casts = is_layer or (half == "torch" and case.weighted)
    assert dtype_of(got) == ("float32" if casts else "float64")
    # same inputs up to float32 rounding, same weights: the same numbers
    np.testing.assert_allclose(numpy(got), numpy(want), rtol=1e-4, atol=1e-4)


def _float_positions(case):
    specs = case.inputs(2)
    return [
        (i, j)
        for i, j in _positions(case)
        if (specs[i] if j is None else specs[i][j])[0] != "mask"
    ]


MIXABLE = [(h, c) for h, c in PAIRS if len(_float_positions(c)) > 1]


@pytest.mark.parametrize(
    "half,case", MIXABLE, ids=[f"{h}-{c.name}-{i}" for i, (h, c) in enumerate(MIXABLE)]
)
def test_a_float32_float64_mix_works(half, case):
    i, j = _float_positions(case)[-1]

    def mix(a):
        x = a[i] if j is None else a[i][j]
        cast = x.double() if half == "torch" else keras.ops.cast(x, "float64")
        return _replace(a, i, j, cast)

    keras.utils.set_random_seed(0)
    torch.manual_seed(0)
    want = first(call(half, case))
    keras.utils.set_random_seed(0)
    torch.manual_seed(0)
    got = first(call(half, case, edit=mix))
    assert dtype_of(got).startswith("float")
    np.testing.assert_allclose(numpy(got), numpy(want), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("half,case", PAIRS, ids=IDS)
def test_integer_maps_are_refused_except_by_center_crop(half, case):
    if case.name == "center_crop":
        out = call(half, case, dtype="int32")
        assert dtype_of(out) == "int32"
        return
    with raises(ValueError, case, r"floating-point .*dtype int32.*Convert it with"):
        call(half, case, dtype="int32")


def test_keras_resize_to_never_returns_integers():
    x = keras.ops.convert_to_tensor(np.arange(16, dtype="int32").reshape(1, 4, 4, 1))
    for mode in ("bilinear", "nearest"):
        with pytest.raises(ValueError, match=r"resize_to computes on floating-point"):
            K.resize_to(x, (6, 6), mode=mode)


@pytest.mark.parametrize("half", ["torch", "tf"])
def test_masks_must_be_boolean_tensors(half):
    case = next(
        c for c in CASES if c.name == "CrossAttention" and len(c.inputs(2)) == 3
    )

    def with_mask(value):
        return lambda a: [*a[:2], value]

    with raises(TypeError, case, r"for mask; got a Python list"):
        call(half, case, edit=with_mask([[True, False, True]] * 2))
    ints = np.ones((2, 3), "int32")
    ints = torch.as_tensor(ints) if half == "torch" else ints
    with raises(ValueError, case, r"boolean mask .*got dtype int32"):
        call(half, case, edit=with_mask(ints))


# --- empty axes -----------------------------------------------------------------


def _emptied(spec, axis):
    kind, shape = spec
    shape = list(shape)
    shape[axis] = 0
    return kind, tuple(shape)


@pytest.mark.parametrize("half,case", PAIRS, ids=IDS)
def test_an_empty_axis_other_than_the_batch_is_refused(half, case):
    specs = case.inputs(2)
    first_spec = specs[0][0] if case.listed else specs[0]
    axes = range(1, len(first_spec[1]))
    for axis in axes:

        def edit(a, axis=axis):
            s = _emptied(first_spec, axis)
            x = to_half(half, s)
            return [[x, *a[0][1:]], *a[1:]] if case.listed else [x, *a[1:]]

        with raises(ValueError, case, r"(0 |at least one|L = 0)"):
            call(half, case, edit=edit)


# --- target sizes -------------------------------------------------------------------

BAD_SIZES = [
    ((0, 4), ValueError),
    ((-2, 4), ValueError),
    ((4,), ValueError),
    ((4, 4, 4), ValueError),
    ((2.5, 4), ValueError),
    ((True, 4), ValueError),
    (None, TypeError),
    (4, TypeError),
    ("44", TypeError),
]


@pytest.mark.parametrize("half", ["torch", "tf"])
@pytest.mark.parametrize("name", ["center_crop", "resize_to"])
@pytest.mark.parametrize("size,exc", BAD_SIZES, ids=[repr(s) for s, _ in BAD_SIZES])
def test_bad_target_sizes(half, name, size, exc):
    x = to_half(half, m(2, 3, 6, 6))
    with pytest.raises(exc, match=rf"{name} takes the target"):
        getattr(LIBS[half], name)(x, size)


@pytest.mark.parametrize("half", ["torch", "tf"])
def test_a_target_map_of_the_wrong_rank(half):
    x = to_half(half, m(2, 3, 6, 6))
    like = to_half(half, v(2, 4, 4))
    for name in ("center_crop", "resize_to"):
        with pytest.raises(ValueError, match=rf"{name} expects 4-D"):
            getattr(LIBS[half], name)(x, like)


@pytest.mark.parametrize("half", ["torch", "tf"])
def test_unet_skip_merge_batch_mismatch_names_both_shapes(half):
    up, skip = to_half(half, m(2, 2, 4, 4)), to_half(half, m(3, 3, 6, 6))
    up_shape, skip_shape = (re.escape(str(tuple(t.shape))) for t in (up, skip))
    both = rf"{up_shape} and skip {skip_shape}"
    for mode in ("crop", "pad"):
        with pytest.raises(
            ValueError, match=rf"UNetSkipMerge needs one batch size; got up {both}"
        ):
            LIBS[half].UNetSkipMerge(mode)([up, skip])


# --- Keras functional models of unknown size ----------------------------------------

SYMBOLIC = [c for c in CASES if c.name[0].isupper() and "tf" in c.halves]


@pytest.mark.parametrize(
    "case", SYMBOLIC, ids=[f"{c.name}-{i}" for i, c in enumerate(SYMBOLIC)]
)
def test_keras_functional_models_with_unknown_sizes(case):
    """Every spatial size (and every sequence length) unknown: the model builds, or
    the operator says at build time that it needs the size.
    """

    def symbolic(spec):
        if isinstance(spec, list):
            return [symbolic(s) for s in spec]
        kind, shape = spec
        if kind == "map":
            return keras.Input((None, None, shape[1]))
        dtype = "bool" if kind == "mask" else "float32"
        return keras.Input((None,) * (len(shape) - 2) + shape[-1:], dtype=dtype)

    inputs = [symbolic(s) for s in case.inputs(2)]
    op = case.make(K)
    try:
        out = op(*inputs, *case.extra)
    except ValueError as error:
        assert case.name in str(error) and "keras.Input" in str(error)
        return
    flat = [t for s in inputs for t in (s if isinstance(s, list) else [s])]
    model = keras.Model(flat, out)
    eager = [to_half("tf", s) for s in case.inputs(2)]
    result = model([t for s in eager for t in (s if isinstance(s, list) else [s])])
    assert shape_of(result) == shape_of(op(*eager, *case.extra))


def test_keras_functional_unet_with_unknown_sizes_needs_them():
    up, skip = keras.Input((None, None, 2)), keras.Input((None, None, 3))
    with pytest.raises(ValueError, match=r"UNetSkipMerge needs known spatial sizes"):
        K.UNetSkipMerge()([up, skip])


def test_keras_functional_pyramid_and_resize_with_unknown_sizes_need_them():
    a, c = keras.Input((None, None, 3)), keras.Input((None, None, 5))
    with pytest.raises(ValueError, match=r"FeaturePyramid upsamples .*keras\.Input"):
        K.FeaturePyramid([3, 5], 4)([a, c])
    with pytest.raises(ValueError, match=r"resize_to needs the target's spatial size"):
        K.resize_to(c, a)
    one = keras.Model(a, K.FeaturePyramid([3], 4)([a]))  # one level: nothing to resize
    out = one(np.zeros((1, 9, 7, 3), "float32"))
    assert tuple((out[0] if isinstance(out, list) else out).shape) == (1, 9, 7, 4)


# --- the port helpers ---------------------------------------------------------------


def test_port_helpers_refuse_what_they_cannot_port():
    with pytest.raises(
        TypeError,
        match=r"multihead_to_torch takes a MultiHeadSelfAttention or CrossAttention; "
        r"got None",
    ):
        T.multihead_to_torch(None)
    with pytest.raises(
        TypeError,
        match=r"multihead_from_torch takes a MultiheadAttention; got a Linear",
    ):
        T.multihead_from_torch(torch.nn.Linear(2, 2))
    with pytest.raises(
        TypeError, match=r"multihead_to_keras takes .*; got a MultiHeadSelfAttention"
    ):
        K.multihead_to_keras(T.MultiHeadSelfAttention(8, 2))
    with pytest.raises(
        TypeError,
        match=r"torch_mask_kwargs takes a torch.Tensor for mask; got a Python list",
    ):
        T.torch_mask_kwargs([[True]], 2)
    with pytest.raises(ValueError, match=r"torch_mask_kwargs takes a boolean mask"):
        T.torch_mask_kwargs(torch.ones(2, 3), 2)
    with pytest.raises(
        ValueError, match=r"torch_mask_kwargs: num_heads must be a positive"
    ):
        T.torch_mask_kwargs(torch.ones(2, 3, dtype=torch.bool), 0)
    with pytest.raises(
        ValueError, match=r"keras_mask takes a mask of shape \(N, Lk\) or"
    ):
        K.keras_mask(np.ones((2,), bool), 3)
    with pytest.raises(
        TypeError, match=r"keras_mask takes a tensor .* for mask; got a Python list"
    ):
        K.keras_mask([[True]], 3)
    with pytest.raises(
        ValueError, match=r"keras_mask: query_length must be a positive"
    ):
        K.keras_mask(np.ones((2, 3), bool), -1)


# --- generated: the rules of the map fusions ----------------------------------------

DTYPES = ["float32", "float64", "int32", "bool"]
maps = st.lists(
    st.tuples(
        st.lists(st.integers(0, 4), min_size=1, max_size=5),
        st.sampled_from(DTYPES),
    ),
    min_size=0,
    max_size=4,
)


def _tensor(half, shape, dtype):
    a = np.ones(shape, dtype=dtype)
    return torch.as_tensor(a) if half == "torch" else keras.ops.convert_to_tensor(a)


def _valid(name, shapes, dtypes, layout):
    """The rules of fusion_lib._checks' docstring, restated independently."""
    if len(shapes) < 2 or any(d not in ("float32", "float64") for d in dtypes):
        return False
    if any(len(s) != 4 or 0 in s[1:] for s in shapes):
        return False
    c = layout.channel_axis
    if name == "ConcatFusion":
        keep = [a for a in range(4) if a != c]
        return all(all(s[a] == shapes[0][a] for a in keep) for s in shapes)
    return all(s == shapes[0] for s in shapes)


@PROPERTY
@given(spec=maps, half=st.sampled_from(["torch", "tf"]))
@pytest.mark.parametrize("name", ["ConcatFusion", "AddFusion", "ProductFusion"])
def test_generated_fusion_inputs(name, spec, half):
    shapes = [tuple(s) for s, _ in spec]
    dtypes = [d for _, d in spec]
    xs = [_tensor(half, s, d) for s, d in spec]
    layout = _checks.NCHW if half == "torch" else _checks.NHWC
    op = getattr(LIBS[half], name)()
    if _valid(name, shapes, dtypes, layout):
        out = op(xs)
        want = list(shapes[0])
        if name == "ConcatFusion":
            want[layout.channel_axis] = sum(s[layout.channel_axis] for s in shapes)
        assert tuple(out.shape) == tuple(want)
        assert np.isfinite(numpy(out)).all()
    else:
        with pytest.raises(ValueError, match=rf"^{name}"):
            op(xs)


@PROPERTY
@given(
    shape=st.lists(st.integers(0, 5), min_size=0, max_size=6),
    dtype=st.sampled_from(DTYPES),
    half=st.sampled_from(["torch", "tf"]),
)
@pytest.mark.parametrize("name", ["GlobalPool", "channel_pool", "SqueezeExcitation"])
def test_generated_single_maps(name, shape, dtype, half):
    lib = LIBS[half]
    op = {
        "GlobalPool": lambda: lib.GlobalPool("max"),
        "channel_pool": lambda: lib.channel_pool,
        "SqueezeExcitation": lambda: lib.SqueezeExcitation(3, 1),
    }[name]()
    x = _tensor(half, tuple(shape), dtype)
    c = 1 if half == "torch" else 3
    valid = (
        len(shape) == 4
        and 0 not in shape[1:]
        and dtype.startswith("float")
        and (name != "SqueezeExcitation" or shape[c] == 3)
    )
    if valid:
        out = numpy(op(x))
        assert out.shape[0] == shape[0] and np.isfinite(out).all()
    else:
        with pytest.raises(ValueError, match=rf"^{name}"):
            op(x)


@PROPERTY
@given(
    hw=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    target=st.lists(st.integers(-2, 8), min_size=0, max_size=3),
    half=st.sampled_from(["torch", "tf"]),
)
def test_generated_crop_and_resize_targets(hw, target, half):
    lib = LIBS[half]
    x = to_half(half, m(1, 2, *hw))
    fits = len(target) == 2 and all(t >= 1 for t in target)
    if fits:
        assert tuple(numpy(lib.resize_to(x, tuple(target))).shape) == tuple(
            to_half(half, m(1, 2, *target)).shape
        )
    else:
        with pytest.raises(ValueError, match=r"^resize_to takes the target size"):
            lib.resize_to(x, tuple(target))
    if fits and target[0] <= hw[0] and target[1] <= hw[1]:
        out = lib.center_crop(x, tuple(target))
        assert tuple(out.shape) == tuple(to_half(half, m(1, 2, *target)).shape)
    else:
        with pytest.raises(ValueError, match=r"^center_crop"):
            lib.center_crop(x, tuple(target))


@PROPERTY
@given(spec=maps, same=st.booleans())
def test_the_fast_path_accepts_only_what_the_full_checks_accept(spec, same):
    """Whatever _fast_maps lets through without the full checks, they accept too."""
    from fusion_lib.torch._base import TORCH

    xs = [_tensor("torch", tuple(s), d) for s, d in spec]
    if _checks._fast_maps(xs, TORCH, same):
        shapes = _checks._float_maps("op", xs, TORCH)
        check = _checks.check_maps_same if same else _checks._check_all_but_channels
        if same:
            assert all(s == shapes[0] for s in shapes)
        else:
            check("op", shapes, TORCH.layout)


def test_the_common_call_takes_the_fast_path(monkeypatch):
    """A regression guard for the overhead (fusion_lib/bench/overhead.py): the usual
    call of every element-wise, concatenating and pooling operator never reaches the
    full checks, whose cost it would pay on every call.
    """

    def full_checks(*args, **kwargs):
        raise AssertionError("the full checks ran for a valid, common call")

    monkeypatch.setattr(_checks, "_float_maps", full_checks)
    monkeypatch.setattr(_checks, "check_tensor", full_checks)
    a, b = torch.zeros(2, 4, 6, 6), torch.zeros(2, 4, 6, 6)
    T.AddFusion()([a, b])
    T.ProductFusion()([a, b])
    T.ConcatFusion()([a, torch.zeros(2, 3, 6, 6)])
    T.UNetSkipMerge()([a, torch.zeros(2, 3, 8, 8)])
    T.GlobalPool()(a)
    T.channel_pool(a)
    T.SqueezeExcitation(4, 2)(a)


def test_the_overhead_benchmark_runs_and_its_stored_results_are_complete():
    from fusion_lib.bench import overhead

    quick = overhead.run_benchmark(
        ("torch",), (overhead.SMALL,), rounds=1, threads=(1,)
    )
    ops = {r["op"] for r in quick["rows"]}
    assert {"AddFusion", "ConcatFusion", "ProductFusion", "GlobalPool(avg)"} <= ops
    assert all(r["op_us"] > 0 and r["bare_us"] > 0 for r in quick["rows"])
    stored = overhead.load_results("cpu")
    keys = {
        (r["framework"], r.get("threads"), tuple(r["shape"]), r["op"])
        for r in stored["rows"]
    }
    for framework, threads in (("torch", 1), ("torch", 2), ("keras", None)):
        for shape in (overhead.SMALL, overhead.LARGE):
            assert {(framework, threads, shape, op) for op in ops} <= keys
    assert overhead.format_table(stored).count("\n") == len(stored["rows"]) + 2
