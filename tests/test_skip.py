"""Skip-connection blocks: shapes, formulas, bad input (both halves), and parity
(torch weights ported into Keras, BN in inference mode with randomised statistics).

Stacked blocks agree to rtol = atol = 1e-4 (shared REFERENCE section 3).
"""

import numpy as np
import pytest

TOL = dict(rtol=1e-4, atol=1e-4)


def arr(rng, *nchw):
    return rng.normal(size=nchw)


def trainable_params(half, layer):
    if half.name == "torch":
        return sum(p.numel() for p in layer.parameters())
    return sum(int(np.prod(w.shape)) for w in layer.trainable_weights)


# --- shapes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "c_in,c_out,stride,hw,out_hw",
    [
        (8, 8, 1, (7, 6), (7, 6)),
        (4, 8, 1, (5, 5), (5, 5)),
        (4, 8, 2, (8, 8), (4, 4)),
        (4, 4, 2, (7, 5), (4, 3)),
        (3, 6, 3, (10, 10), (4, 4)),
    ],
)
def test_residual_block_shapes(half, rng, c_in, c_out, stride, hw, out_hw):
    block = half.lib.ResidualBlock(c_in, c_out, stride)
    out = block(half.tensor(arr(rng, 2, c_in, *hw)))
    assert tuple(out.shape) == half.shape((2, c_out, *out_hw))
    projects = stride != 1 or c_in != c_out
    assert (type(block.shortcut).__name__ != "Identity") == projects


def test_dense_block_and_transition_shapes(half, rng):
    block = half.lib.DenseBlock(3, 6, 4, bn_size=2)
    assert block.out_channels == 6 + 3 * 4
    out = block(half.tensor(arr(rng, 2, 6, 7, 5)))
    assert tuple(out.shape) == half.shape((2, 18, 7, 5))
    layer = half.lib.DenseLayer(6, 4)
    assert tuple(layer(half.tensor(arr(rng, 2, 6, 3, 3))).shape) == half.shape(
        (2, 4, 3, 3)
    )
    pooled = half.lib.Transition(18, 9)(out)
    assert tuple(pooled.shape) == half.shape((2, 9, 3, 2))


def test_dense_block_keeps_its_input_first(half, rng):
    x = np.float32(arr(rng, 2, 5, 4, 4))
    out = half.numpy(half.lib.DenseBlock(2, 5, 3)(half.tensor(x)))
    np.testing.assert_array_equal(out[:, :5], x)


@pytest.mark.parametrize("merge", ["concat", "add"])
@pytest.mark.parametrize(
    "x_hw,skip_hw,crop,out_hw",
    [
        ((4, 4), (8, 8), True, (8, 8)),
        ((6, 6), (13, 15), True, (12, 12)),
        ((6, 6), (13, 15), False, (13, 15)),
        ((3, 5), (9, 10), False, (9, 10)),
    ],
)
def test_unet_up_shapes(half, rng, merge, x_hw, skip_hw, crop, out_hw):
    up = half.lib.UNetUp(8, 6, 4, merge=merge, crop=crop)
    out = up(
        [half.tensor(arr(rng, 2, 8, *x_hw)), half.tensor(arr(rng, 2, 6, *skip_hw))]
    )
    assert tuple(out.shape) == half.shape((2, 4, *out_hw))


def test_aggregation_node_shapes(half, rng):
    node = half.lib.AggregationNode([8, 4, 6], 8, residual=True)
    xs = [half.tensor(arr(rng, 2, c, 5, 3)) for c in (8, 4, 6)]
    assert tuple(node(xs).shape) == half.shape((2, 8, 5, 3))


# --- formulas -----------------------------------------------------------------------


def dense_block_params(L, C0, k, b=4):
    """Trainable parameters of a DenseBlock: layer l reads C0 + l k channels and holds
    BN (2 per input channel), conv1x1 (C_l * b k), BN (2 b k) and conv3x3 (9 b k * k):
    sum_l (2 + b k)(C0 + l k) + L (2 b k + 9 b k^2), quadratic in L.
    """
    inputs = L * C0 + k * L * (L - 1) // 2
    return (2 + b * k) * inputs + L * (2 * b * k + 9 * b * k * k)


@pytest.mark.parametrize("C0,k,b", [(6, 4, 4), (16, 12, 2), (3, 1, 1)])
def test_dense_block_growth_formulas(half, C0, k, b):
    counts = []
    for L in range(1, 6):
        block = half.lib.DenseBlock(L, C0, k, bn_size=b)
        assert block.out_channels == C0 + L * k  # linear in depth
        counts.append(trainable_params(half, block))
        assert counts[-1] == dense_block_params(L, C0, k, b)
    second = np.diff(counts, n=2)  # quadratic in depth: constant second difference
    assert set(second.tolist()) == {(2 + b * k) * k}


def test_transition_and_aggregation_params(half):
    assert trainable_params(half, half.lib.Transition(12, 6)) == 2 * 12 + 12 * 6
    node = half.lib.AggregationNode([4, 6], 5)
    assert trainable_params(half, node) == 5 * (4 + 6) + 2 * 5


@pytest.mark.parametrize("c_in,c_out,stride", [(8, 8, 1), (4, 8, 1), (8, 8, 2)])
def test_residual_block_params(half, c_in, c_out, stride):
    block = half.lib.ResidualBlock(c_in, c_out, stride)
    want = 9 * c_in * c_out + 9 * c_out * c_out + 4 * c_out
    if stride != 1 or c_in != c_out:
        want += c_in * c_out + 2 * c_out  # projection: 1x1 conv and its BN
    assert trainable_params(half, block) == want


def _zero_last_gamma(half, block):
    if half.name == "torch":
        import torch

        torch.nn.init.zeros_(block.bn2.weight)
    else:
        block.bn2.gamma.assign(np.zeros(block.bn2.gamma.shape, np.float32))


def test_residual_block_is_identity_when_last_gamma_is_zero(half, rng):
    block = half.lib.ResidualBlock(6, 6)
    _zero_last_gamma(half, block)
    x = np.float32(np.abs(arr(rng, 2, 6, 5, 5)))  # non-negative, as after a ReLU
    np.testing.assert_array_equal(half.numpy(block(half.tensor(x))), x)
    x = np.float32(arr(rng, 2, 6, 5, 5))  # in general the block is relu(x)
    np.testing.assert_array_equal(half.numpy(block(half.tensor(x))), np.maximum(x, 0))


def test_unet_up_add_projects_the_skip_only_when_widths_differ(half):
    same = half.lib.UNetUp(8, 4, 4, merge="add")
    assert [type(p).__name__ for p in same.fuse.proj] == ["Identity", "Identity"]
    other = half.lib.UNetUp(8, 6, 4, merge="add")
    assert type(other.fuse.proj[1]).__name__ in ("Conv2d", "Conv2D")
    concat = half.lib.UNetUp(8, 6, 4, merge="concat")
    # add: 1x1 projection 6 -> 4 with bias; concat: first 3x3 conv reads 4 + 6 channels
    assert trainable_params(half, concat) - trainable_params(half, other) == (
        9 * 6 * 4 - (6 * 4 + 4)
    )


def test_unet_up_crops_the_centre_and_pads_centred(half, rng):
    """Through the public `align`: the skip window starts at ((H - h) // 2, ...)."""
    up_t = np.float32(arr(rng, 1, 2, 4, 4))
    skip_t = np.float32(arr(rng, 1, 3, 7, 8))
    block = half.lib.UNetUp(2, 3, 2, crop=True)
    _, cropped = block.align(half.tensor(up_t), half.tensor(skip_t))
    np.testing.assert_array_equal(half.numpy(cropped), skip_t[:, :, 1:5, 2:6])
    block = half.lib.UNetUp(2, 3, 2, crop=False)
    padded, _ = block.align(half.tensor(up_t), half.tensor(skip_t))
    padded = half.numpy(padded)
    assert padded.shape == (1, 2, 7, 8)
    np.testing.assert_array_equal(padded[:, :, 1:5, 2:6], up_t)
    assert np.abs(padded).sum() == pytest.approx(np.abs(up_t).sum(), rel=1e-6)


def test_aggregation_node_residual_is_the_first_child(half, rng):
    node = half.lib.AggregationNode([4, 3], 4, residual=True)
    if half.name == "torch":
        import torch

        torch.nn.init.zeros_(node.bn.weight)
    else:
        node.bn.gamma.assign(np.zeros(4, np.float32))
    x0, x1 = np.float32(arr(rng, 2, 4, 3, 3)), np.float32(arr(rng, 2, 3, 3, 3))
    out = half.numpy(node([half.tensor(x0), half.tensor(x1)]))
    np.testing.assert_array_equal(out, np.maximum(x0, 0))


# --- bad input ------------------------------------------------------------------------


def test_residual_block_errors(half, rng):
    with pytest.raises(
        ValueError,
        match=r"ResidualBlock was built for 4 channels but "
        r"got shape .*, i\.e\. 3 channels.*Build it with in_channels=3",
    ):
        half.lib.ResidualBlock(4, 8)(half.tensor(arr(rng, 1, 3, 6, 6)))
    with pytest.raises(
        ValueError,
        match=r"ResidualBlock: stride must be a positive integer; got 0",
    ):
        half.lib.ResidualBlock(4, 8, stride=0)


def test_dense_block_errors(half, rng):
    with pytest.raises(
        ValueError,
        match=r"DenseBlock was built for 6 channels but got shape .*5 channels",
    ):
        half.lib.DenseBlock(2, 6, 4)(half.tensor(arr(rng, 1, 5, 4, 4)))
    with pytest.raises(
        ValueError,
        match=r"DenseBlock needs num_layers.*>= 1; got num_layers=0",
    ):
        half.lib.DenseBlock(0, 6, 4)
    with pytest.raises(ValueError, match=r"Transition was built for 8 channels"):
        half.lib.Transition(8, 4)(half.tensor(arr(rng, 1, 6, 4, 4)))


def test_unet_up_errors(half, rng):
    x, skip = half.tensor(arr(rng, 2, 8, 6, 6)), half.tensor(arr(rng, 2, 6, 13, 13))
    with pytest.raises(
        ValueError,
        match=r"UNetUp merge must be one of \('concat', 'add'\); got 'sum'",
    ):
        half.lib.UNetUp(8, 6, 4, merge="sum")
    with pytest.raises(
        ValueError, match=r"UNetUp takes \[x, skip\] \(2 tensors\); got 3: "
    ):
        half.lib.UNetUp(8, 6, 4)([x, skip, skip])
    with pytest.raises(
        ValueError,
        match=r"UNetUp: input 1 has shape .* 6 channels .*skip_channels = 5",
    ):
        half.lib.UNetUp(8, 5, 4)([x, skip])
    small = half.tensor(arr(rng, 2, 6, 11, 13))
    for crop, how in ((True, "crops the skip"), (False, "pads the upsampled map")):
        with pytest.raises(
            ValueError,
            match=rf"UNetUp upsamples x .* from 6x6 to 12x12 "
            rf"and {how}.*at least 12x12; got skip .*11x13",
        ):
            half.lib.UNetUp(8, 6, 4, crop=crop)([x, small])
    with pytest.raises(ValueError, match=r"UNetUp needs one batch size"):
        half.lib.UNetUp(8, 6, 4)([x, half.tensor(arr(rng, 3, 6, 13, 13))])


def test_aggregation_node_errors(half, rng):
    with pytest.raises(
        ValueError,
        match=r"AggregationNode\(residual=True\) adds the "
        r"first child.*in_channels=\[4, 8\] and out_channels=8",
    ):
        half.lib.AggregationNode([4, 8], 8, residual=True)
    with pytest.raises(ValueError, match=r"AggregationNode fuses at least 2 children"):
        half.lib.AggregationNode([4], 4)
    node = half.lib.AggregationNode([4, 3], 4)
    a, b = half.tensor(arr(rng, 2, 4, 6, 6)), half.tensor(arr(rng, 2, 3, 6, 6))
    with pytest.raises(
        ValueError,
        match=r"AggregationNode was built for 2 inputs \(in_channels=\[4, 3\]\); got 3",
    ):
        node([a, b, b])
    with pytest.raises(
        ValueError,
        match=r"AggregationNode: input 1 has shape .*in_channels\[1\] = 3",
    ):
        node([a, a])
    with pytest.raises(
        ValueError,
        match=r"AggregationNode needs equal batch and "
        r"spatial sizes.*Spatial sizes 6x6 vs 5x5",
    ):
        node([a, half.tensor(arr(rng, 2, 3, 5, 5))])


# --- Keras specifics --------------------------------------------------------------


def test_keras_skip_blocks_work_symbolically_and_round_trip():
    import keras

    import fusion_lib.tf as K

    x = keras.Input((None, None, 4))
    res = K.ResidualBlock(4, 8, stride=2)
    dense = K.DenseBlock(2, 8, 4)
    model = keras.Model(x, dense(res(x)))
    assert tuple(model.output_shape) == (None, None, None, 16)
    for layer in (
        res,
        dense,
        K.UNetUp(8, 6, 4, "add", False),
        K.Transition(8, 4),
        K.AggregationNode([4, 3], 4, True),
        K.DenseLayer(8, 4, 2),
    ):
        config = layer.get_config()
        clone = type(layer).from_config(config)
        assert clone.get_config() == config
        assert trainable_params_k(clone) == trainable_params_k(layer)


def trainable_params_k(layer):
    return sum(int(np.prod(w.shape)) for w in layer.trainable_weights)


# --- parity ---------------------------------------------------------------------------


def compare(torch_module, keras_layer, xs):
    """Port torch weights (randomised BN statistics) into Keras; compare outputs."""
    import torch
    from test_parity import randomize_batchnorm

    from fusion_lib.port import port_weights

    randomize_batchnorm(torch_module).eval()
    port_weights(torch_module, keras_layer)
    with torch.no_grad():
        want = torch_module(xs).numpy()
    nhwc = (
        [x.permute(0, 2, 3, 1).numpy() for x in xs]
        if isinstance(xs, list)
        else (xs.permute(0, 2, 3, 1).numpy())
    )
    got = np.asarray(keras_layer(nhwc, training=False)).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(got, want, **TOL)
    assert np.abs(want).max() > 0  # a comparison of two zero maps would prove nothing


@pytest.fixture
def halves():
    """torch, keras and the two halves of fusion_lib, with torch's seed fixed."""
    torch = pytest.importorskip("torch")
    keras = pytest.importorskip("keras")
    import fusion_lib.tf as K
    import fusion_lib.torch as T

    torch.manual_seed(0)
    return torch, keras, T, K


@pytest.mark.parametrize("hw", [(8, 8), (7, 5), (1, 1)])
@pytest.mark.parametrize("c_in,c_out,stride", [(6, 6, 1), (4, 8, 1), (6, 8, 2)])
def test_residual_block_parity(halves, hw, c_in, c_out, stride):
    torch, _, T, K = halves
    args = (c_in, c_out, stride)
    compare(T.ResidualBlock(*args), K.ResidualBlock(*args), torch.randn(2, c_in, *hw))


@pytest.mark.parametrize("hw", [(8, 8), (7, 5)])
def test_stacked_residual_blocks_parity(halves, hw):
    torch, keras, T, K = halves
    widths = [(3, 8, 1), (8, 8, 2), (8, 16, 2), (16, 16, 1)]
    t = torch.nn.Sequential(*(T.ResidualBlock(*w) for w in widths))
    k = keras.Sequential([K.ResidualBlock(*w) for w in widths])
    compare(t, k, torch.randn(2, 3, *hw))


@pytest.mark.parametrize("hw", [(8, 8), (7, 5)])
def test_dense_block_and_transition_parity(halves, hw):
    torch, keras, T, K = halves
    x = torch.randn(2, 5, *hw)
    compare(T.DenseLayer(5, 3), K.DenseLayer(5, 3), x)
    compare(T.DenseBlock(3, 5, 4, 2), K.DenseBlock(3, 5, 4, 2), x)
    compare(T.Transition(5, 3), K.Transition(5, 3), x)
    t = torch.nn.Sequential(T.DenseBlock(2, 5, 3), T.Transition(11, 6))
    k = keras.Sequential([K.DenseBlock(2, 5, 3), K.Transition(11, 6)])
    compare(t, k, x)


@pytest.mark.parametrize("merge", ["concat", "add"])
@pytest.mark.parametrize("crop", [True, False])
@pytest.mark.parametrize(
    "skip_channels,x_hw,skip_hw",
    [(4, (4, 4), (8, 8)), (6, (6, 5), (13, 11)), (6, (3, 3), (9, 8))],
)
def test_unet_up_parity(halves, merge, crop, skip_channels, x_hw, skip_hw):
    torch, _, T, K = halves
    args = (8, skip_channels, 4, merge, crop)
    xs = [torch.randn(2, 8, *x_hw), torch.randn(2, skip_channels, *skip_hw)]
    compare(T.UNetUp(*args), K.UNetUp(*args), xs)


@pytest.mark.parametrize("residual", [False, True])
def test_aggregation_node_parity(halves, residual):
    torch, _, T, K = halves
    args = ([6, 4, 3], 6, residual)
    xs = [torch.randn(2, c, 7, 5) for c in (6, 4, 3)]
    compare(T.AggregationNode(*args), K.AggregationNode(*args), xs)


def test_port_transposed_conv(halves):
    torch, keras, _, _ = halves
    from fusion_lib.port import port_weights

    t = torch.nn.ConvTranspose2d(3, 5, 2, stride=2)
    k = keras.layers.Conv2DTranspose(5, 2, strides=2)
    k.build((None, None, None, 3))
    x = torch.randn(2, 3, 4, 3)
    with torch.no_grad():
        want = t(x).numpy()
    got = np.asarray(port_weights(t, k)(x.permute(0, 2, 3, 1).numpy()))
    np.testing.assert_allclose(got.transpose(0, 3, 1, 2), want, rtol=1e-5, atol=1e-5)
    conv = keras.layers.Conv2D(5, 2)
    conv.build((None, None, None, 3))
    with pytest.raises(
        ValueError,
        match=r"ConvTranspose2d .*needs a Keras "
        r"Conv2DTranspose, found Conv2D",
    ):
        port_weights(t, conv)
