"""FeaturePyramid: shapes, the top-down formula and its nearest-neighbour choice, bad
input (both halves), and parity with torch weights ported into Keras.

Parity holds at odd sizes (25, 13, 7) because both halves upsample with half-pixel
nearest: torch "nearest-exact" == TF "nearest" (shared REFERENCE section 3, trap 9).
"""

import numpy as np
import pytest

TOL = dict(rtol=1e-4, atol=1e-4)
ODD = [(25, 25), (13, 13), (7, 7)]


def arr(rng, *nchw):
    return rng.normal(size=nchw)


def levels(half, rng, channels, sizes, n=2):
    return [half.tensor(arr(rng, n, c, *hw)) for c, hw in zip(channels, sizes)]


@pytest.mark.parametrize(
    "sizes,extra_hw",
    [(ODD, (4, 4)), ([(32, 24), (16, 12), (8, 6)], (4, 3)), ([(9, 9)], (5, 5))],
)
@pytest.mark.parametrize("extra_level", [False, True])
def test_shapes(half, rng, sizes, extra_hw, extra_level):
    channels = [3, 5, 7][: len(sizes)]
    fpn = half.lib.FeaturePyramid(channels, 6, extra_level=extra_level)
    outs = fpn(levels(half, rng, channels, sizes))
    want = [half.shape((2, 6, *hw)) for hw in sizes]
    if extra_level:
        want.append(half.shape((2, 6, *extra_hw)))
    assert [tuple(o.shape) for o in outs] == want


def test_params(half):
    fpn = half.lib.FeaturePyramid([16, 32, 64], 8)
    if half.name == "torch":
        count = sum(p.numel() for p in fpn.parameters())
    else:
        count = sum(int(np.prod(w.shape)) for w in fpn.trainable_weights)
    laterals = sum(c * 8 + 8 for c in (16, 32, 64))
    assert count == laterals + 3 * (9 * 8 * 8 + 8)


def _pass_through(half, fpn):
    """Laterals and output convs set to the identity (zero biases), so the outputs show
    the top-down sums themselves.
    """
    d = fpn.out_channels
    eye1 = np.eye(d, dtype=np.float32)
    eye3 = np.zeros((d, d, 3, 3), np.float32)
    eye3[:, :, 1, 1] = eye1
    if half.name == "torch":
        import torch

        with torch.no_grad():
            for lat, out in zip(fpn.lateral_convs, fpn.output_convs):
                lat.weight.copy_(torch.as_tensor(eye1[:, :, None, None]))
                out.weight.copy_(torch.as_tensor(eye3))
                lat.bias.zero_()
                out.bias.zero_()
    else:
        for lat, out in zip(fpn.lateral_convs, fpn.output_convs):
            lat.kernel.assign(eye1[None, None])
            out.kernel.assign(eye3.transpose(2, 3, 1, 0))
            lat.bias.assign(np.zeros(d, np.float32))
            out.bias.assign(np.zeros(d, np.float32))
    return fpn


def _nearest(x, size, half_pixel):
    """NCHW nearest resize: source index floor((i + 0.5) s) (half-pixel, TF and torch
    "nearest-exact") or floor(i s) (torch "nearest", torchvision's FPN), s = in / out.
    """

    def index(n_in, n_out):
        i = np.arange(n_out) + (0.5 if half_pixel else 0.0)
        return np.minimum(np.floor(i * n_in / n_out).astype(int), n_in - 1)

    rows, cols = index(x.shape[2], size[0]), index(x.shape[3], size[1])
    return x[:, :, rows][:, :, :, cols]


@pytest.mark.parametrize("sizes", [ODD, [(16, 12), (8, 6), (4, 3)]])
def test_top_down_sums_with_half_pixel_nearest(half, rng, sizes):
    fpn = _pass_through(half, half.lib.FeaturePyramid([2, 2, 2], 2, extra_level=True))
    xs = [np.float32(arr(rng, 1, 2, *hw)) for hw in sizes]
    outs = [half.numpy(o) for o in fpn([half.tensor(x) for x in xs])]
    merged = xs[2]
    want = [merged]
    for x in (xs[1], xs[0]):
        merged = x + _nearest(merged, x.shape[2:], half_pixel=True)
        want.insert(0, merged)
    want.append(want[-1][:, :, ::2, ::2])  # extra level: max pool kernel 1, stride 2
    for got, expected in zip(outs, want):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    # torchvision's floor-indexed "nearest" picks other pixels at odd sizes only
    floor = xs[1] + _nearest(xs[2], sizes[1], half_pixel=False)
    assert np.array_equal(floor, want[1]) == (sizes != ODD)


# --- bad input ------------------------------------------------------------------------


def test_errors(half, rng):
    fpn = half.lib.FeaturePyramid([3, 5, 7], 6)
    good = levels(half, rng, [3, 5, 7], ODD)
    with pytest.raises(
        ValueError,
        match=r"FeaturePyramid was built for 3 levels \(in_channels=\[3, 5, 7\]\); "
        r"got 2 maps",
    ):
        fpn(good[:2])
    with pytest.raises(
        ValueError,
        match=r"FeaturePyramid: level 1 has shape .*, i\.e\. 4 channels on axis .* "
        r"but in_channels\[1\] = 5",
    ):
        fpn([good[0], half.tensor(arr(rng, 2, 4, 13, 13)), good[2]])
    with pytest.raises(
        ValueError,
        match=r"FeaturePyramid expects levels ordered from high to low resolution; "
        r"got sizes 7x7, 13x13, 25x25: level 1 \(13x13\) is larger than level 0",
    ):
        half.lib.FeaturePyramid([7, 5, 3], 6)(good[::-1])
    with pytest.raises(
        ValueError,
        match=r"FeaturePyramid expects levels ordered from high to low resolution, "
        r"with in_channels=\[3, 5, 7\]; got maps with \[7, 5, 3\] channels.*reversed",
    ):
        fpn(good[::-1])
    with pytest.raises(
        ValueError,
        match=r"FeaturePyramid needs one batch size across levels; got 2 at level 0 "
        r".* and 3 at level 2",
    ):
        fpn([good[0], good[1], half.tensor(arr(rng, 3, 7, 7, 7))])
    with pytest.raises(ValueError, match=r"FeaturePyramid takes a list of tensors"):
        half.lib.FeaturePyramid([3], 6)(good[0])
    with pytest.raises(ValueError, match=r"FeaturePyramid needs at least one level"):
        half.lib.FeaturePyramid([], 6)


# --- Keras specifics --------------------------------------------------------------


def test_keras_symbolic_and_config_round_trip():
    import keras

    import fusion_lib.tf as K

    inputs = [keras.Input((s, s, c)) for s, c in ((25, 3), (13, 5), (7, 7))]
    fpn = K.FeaturePyramid([3, 5, 7], 6, extra_level=True)
    model = keras.Model(inputs, fpn(inputs))
    assert [tuple(s) for s in model.output_shape] == [
        (None, s, s, 6) for s in (25, 13, 7, 4)
    ]
    clone = K.FeaturePyramid.from_config(fpn.get_config())
    assert (clone.in_channels, clone.out_channels, clone.extra_level) == (
        [3, 5, 7],
        6,
        True,
    )


# --- parity ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sizes", [ODD, [(32, 32), (16, 16), (8, 8)], [(9, 7), (5, 4)], [(6, 6)]]
)
@pytest.mark.parametrize("extra_level", [False, True])
def test_parity(sizes, extra_level):
    torch = pytest.importorskip("torch")
    pytest.importorskip("keras")
    import fusion_lib.tf as K
    import fusion_lib.torch as T
    from fusion_lib.port import port_weights

    torch.manual_seed(0)
    channels = [3, 5, 7][: len(sizes)]
    args = (channels, 6, extra_level)
    t, k = T.FeaturePyramid(*args).eval(), K.FeaturePyramid(*args)
    port_weights(t, k)
    xs = [torch.randn(2, c, *hw) for c, hw in zip(channels, sizes)]
    with torch.no_grad():
        want = [o.numpy() for o in t(xs)]
    got = k([x.permute(0, 2, 3, 1).numpy() for x in xs])
    assert len(got) == len(want) == len(sizes) + extra_level
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g).transpose(0, 3, 1, 2), w, **TOL)
