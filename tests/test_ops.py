"""What each operator computes, checked against NumPy in both halves."""

import numpy as np
import pytest


@pytest.mark.parametrize(
    "nchw", [[(2, 3, 5, 5), (2, 4, 5, 5)], [(1, 1, 7, 3), (1, 2, 7, 3), (1, 5, 7, 3)]]
)
def test_concat_matches_numpy(half, rng, nchw):
    arrays = [rng.normal(size=s) for s in nchw]
    out = half.numpy(half.lib.ConcatFusion()([half.tensor(a) for a in arrays]))
    np.testing.assert_allclose(out, np.concatenate(arrays, axis=1), rtol=0, atol=1e-6)


def test_add_without_projection_is_the_sum(half, rng):
    arrays = [rng.normal(size=(2, 3, 4, 4)) for _ in range(3)]
    out = half.numpy(half.lib.AddFusion()([half.tensor(a) for a in arrays]))
    np.testing.assert_allclose(out, sum(arrays), rtol=1e-6, atol=1e-6)


def test_add_projection_only_where_widths_differ(half):
    fuse = half.lib.AddFusion(in_channels=[8, 16, 16])
    assert fuse.out_channels == 16
    kinds = [type(p).__name__ for p in fuse.proj]
    assert kinds[0] in ("Conv2d", "Conv2D") and kinds[1:] == ["Identity", "Identity"]


@pytest.mark.parametrize(
    "size,target", [((9, 9), (4, 4)), ((10, 7), (3, 6)), ((5, 5), (5, 5))]
)
def test_center_crop_offsets(half, rng, size, target):
    x = rng.normal(size=(1, 2, *size))
    out = half.numpy(half.lib.center_crop(half.tensor(x), target))
    top, left = (size[0] - target[0]) // 2, (size[1] - target[1]) // 2
    np.testing.assert_array_equal(
        out, np.float32(x)[:, :, top : top + target[0], left : left + target[1]]
    )


def test_unet_merge_crop_and_pad(half, rng):
    up, skip = rng.normal(size=(1, 2, 4, 4)), rng.normal(size=(1, 3, 9, 9))
    cropped = half.numpy(
        half.lib.UNetSkipMerge("crop")([half.tensor(up), half.tensor(skip)])
    )
    assert cropped.shape == (1, 5, 4, 4)
    np.testing.assert_array_equal(cropped[:, :2], np.float32(up))
    np.testing.assert_array_equal(cropped[:, 2:], np.float32(skip)[:, :, 2:6, 2:6])
    padded = half.numpy(
        half.lib.UNetSkipMerge("pad")([half.tensor(up), half.tensor(skip)])
    )
    assert padded.shape == (1, 5, 9, 9)
    np.testing.assert_array_equal(padded[:, :2, 2:6, 2:6], np.float32(up))
    assert padded[:, :2].sum() == pytest.approx(
        np.float32(up).sum(), rel=1e-5
    )  # the rest is zeros
    np.testing.assert_array_equal(padded[:, 2:], np.float32(skip))


def test_keras_layers_work_symbolically():
    import keras

    import fusion_lib.tf as K

    a, b = keras.Input((None, None, 3)), keras.Input((None, None, 5))
    model = keras.Model(
        [a, b], [K.ConcatFusion()([a, b]), K.AddFusion([3, 5], 8)([a, b])]
    )
    assert [tuple(s) for s in model.output_shape] == [
        (None, None, None, 8),
        (None, None, None, 8),
    ]


def test_keras_config_round_trip():
    import fusion_lib.tf as K

    layer = K.AddFusion([3, 5], 8)
    clone = K.AddFusion.from_config(layer.get_config())
    assert (clone.in_channels, clone.out_channels) == ([3, 5], 8)
    assert (
        K.UNetSkipMerge.from_config(K.UNetSkipMerge("pad").get_config()).mode == "pad"
    )


# --- concatenation followed by reduction ----------------------------------------------


def _weights_of(half, layer):
    """W of a ConcatReduce as a (C_out, sum C_i) numpy matrix, in either half."""
    w = np.asarray(
        half.numpy(layer.weight_matrix())
        if half.name == "torch"
        else layer.weight_matrix()
    )
    return w if half.name == "torch" else w.T


@pytest.mark.parametrize("mode", ["conv", "linear"])
def test_concat_reduce_is_a_per_pixel_matrix(half, rng, mode):
    fuse = half.lib.ConcatReduce([3, 5], 4, mode=mode, norm=False, act=False)
    arrays = [rng.normal(size=(2, c, 6, 7)) for c in (3, 5)]
    out = half.numpy(fuse([half.tensor(a) for a in arrays]))
    w = _weights_of(half, fuse)
    bias = np.asarray(
        half.numpy(fuse.reduce.bias) if half.name == "torch" else fuse.reduce.bias
    )
    want = (
        np.einsum("oc,nchw->nohw", w, np.concatenate(arrays, axis=1))
        + bias[:, None, None]
    )
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["conv", "linear"])
def test_split_weights_equals_the_concat_form(half, rng, mode):
    plain = half.lib.ConcatReduce([3, 5, 2], 6, mode=mode, norm=False, act=True)
    split = half.lib.ConcatReduce(
        [3, 5, 2], 6, mode=mode, norm=False, act=True, split_weights=True
    )
    if half.name == "torch":
        split.load_state_dict(plain.state_dict())
    else:
        split.set_weights(plain.get_weights())
    xs = [half.tensor(rng.normal(size=(2, c, 5, 4))) for c in (3, 5, 2)]
    np.testing.assert_allclose(
        half.numpy(split(xs)), half.numpy(plain(xs)), rtol=1e-5, atol=1e-5
    )


def test_split_weights_never_concatenates(monkeypatch):
    torch = pytest.importorskip("torch")
    import fusion_lib.torch as F

    fuse = F.ConcatReduce([4, 4], 8, norm=False, split_weights=True)
    xs = [torch.randn(1, 4, 5, 5), torch.randn(1, 4, 5, 5)]

    def no_cat(*args, **kwargs):
        raise AssertionError("the split form called torch.cat")

    monkeypatch.setattr(torch, "cat", no_cat)
    assert fuse(xs).shape == (1, 8, 5, 5)


def test_split_weights_gives_the_same_gradients():
    torch = pytest.importorskip("torch")
    import fusion_lib.torch as F

    torch.manual_seed(0)
    grads = []
    for split in (False, True):
        torch.manual_seed(0)
        fuse = F.ConcatReduce([3, 5], 4, norm=True, split_weights=split)
        xs = [torch.randn(2, c, 4, 4, requires_grad=True) for c in (3, 5)]
        fuse(xs).square().sum().backward()
        grads.append([fuse.reduce.weight.grad, *(x.grad for x in xs)])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def _bilinear_half_pixel(x, size):
    """NumPy reference of bilinear resizing with half-pixel centres
    (align_corners=False), NCHW.
    """

    def axis_weights(n_in, n_out):
        src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        m = np.zeros((n_out, n_in))
        m[np.arange(n_out), lo] += 1 - (src - lo)
        m[np.arange(n_out), hi] += src - lo
        return m

    rows, cols = axis_weights(x.shape[2], size[0]), axis_weights(x.shape[3], size[1])
    return np.einsum("ih,nchw,jw->ncij", rows, x, cols)


@pytest.mark.parametrize(
    "src,dst", [((4, 4), (8, 8)), ((5, 3), (11, 7)), ((6, 6), (3, 4))]
)
def test_resize_to_is_half_pixel_bilinear(half, rng, src, dst):
    x = rng.normal(size=(1, 2, *src))
    out = half.numpy(half.lib.resize_to(half.tensor(x), dst))
    np.testing.assert_allclose(out, _bilinear_half_pixel(x, dst), rtol=1e-5, atol=1e-5)


def test_resize_to_takes_a_tensor_as_the_target(half, rng):
    coarse, fine = (
        half.tensor(rng.normal(size=(1, 2, 4, 4))),
        half.tensor(rng.normal(size=(1, 3, 9, 7))),
    )
    assert tuple(half.lib.resize_to(coarse, fine).shape) == half.shape((1, 2, 9, 7))


# --- global pooling -------------------------------------------------------------------


@pytest.mark.parametrize("mode,reduce", [("avg", np.mean), ("max", np.max)])
def test_global_pool(half, rng, mode, reduce):
    x = rng.normal(size=(2, 3, 5, 4))
    out = np.asarray(half.lib.GlobalPool(mode)(half.tensor(x)))
    np.testing.assert_allclose(out, reduce(x, axis=(2, 3)), rtol=1e-5, atol=1e-6)
    kept = half.lib.GlobalPool(mode, keepdims=True)(half.tensor(x))
    assert tuple(kept.shape) == half.shape((2, 3, 1, 1))


def _params(half, layer):
    return (
        sum(p.numel() for p in layer.parameters())
        if half.name == "torch"
        else layer.count_params()
    )


def test_head_parameter_counts(half):
    from fusion_lib.costs import linear_params

    assert (
        _params(half, half.lib.FlattenHead(512, 7, 7, 1000))
        == linear_params(512 * 49, 1000)
        == 25_089_000
    )
    assert (
        _params(half, half.lib.GAPHead(512, 1000))
        == linear_params(512, 1000)
        == 513_000
    )


def test_flatten_head_orders_channels_first(half, rng):
    """The same weights give the same logits in both halves only if both flatten
    C, H, W.
    """
    head = half.lib.FlattenHead(2, 3, 3, 1)
    x = np.zeros((1, 2, 3, 3))
    x[0, 1, 0, 2] = 1.0  # one hot input: picks row c*H*W + h*W + w = 9 + 2 = 11 of W
    w = (
        half.numpy(head.fc.weight)
        if half.name == "torch"
        else np.asarray(head.fc.kernel).T
    )
    b = half.numpy(head.fc.bias) if half.name == "torch" else np.asarray(head.fc.bias)
    out = head(half.tensor(x))
    out = out.detach().numpy() if half.name == "torch" else np.asarray(out)
    np.testing.assert_allclose(out, (w[:, 11] + b)[None], rtol=1e-6)


# --- gating ---------------------------------------------------------------------------


def test_product_fusion(half, rng):
    arrays = [rng.normal(size=(2, 3, 4, 4)) for _ in range(3)]
    out = half.numpy(half.lib.ProductFusion()([half.tensor(a) for a in arrays]))
    np.testing.assert_allclose(
        out, arrays[0] * arrays[1] * arrays[2], rtol=1e-5, atol=1e-6
    )


def test_gated_fusion_with_zero_gate_conv_halves_the_input(half, rng):
    fuse = half.lib.GatedFusion(3, 5)
    for w in (
        [fuse.gate.weight, fuse.gate.bias]
        if half.name == "torch"
        else [fuse.gate.kernel, fuse.gate.bias]
    ):
        (w.data.zero_() if half.name == "torch" else w.assign(np.zeros(w.shape)))
    x, g = rng.normal(size=(2, 3, 4, 4)), rng.normal(size=(2, 5, 4, 4))
    np.testing.assert_allclose(
        half.numpy(fuse([half.tensor(x), half.tensor(g)])),
        0.5 * x,
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize("channels,reduction", [(64, 16), (256, 16), (48, 4)])
def test_se_parameter_count(half, channels, reduction):
    se = half.lib.SqueezeExcitation(channels, reduction)
    assert (
        _params(half, se)
        == 2 * channels**2 // reduction + channels // reduction + channels
    )


def test_se_matches_numpy(half, rng):
    se = half.lib.SqueezeExcitation(8, 2)
    x = rng.normal(size=(2, 8, 5, 3))
    out = half.numpy(se(half.tensor(x)))
    if half.name == "torch":
        w1, b1 = half.numpy(se.fc1.weight)[:, :, 0, 0], half.numpy(se.fc1.bias)
        w2, b2 = half.numpy(se.fc2.weight)[:, :, 0, 0], half.numpy(se.fc2.bias)
    else:
        w1, b1 = np.asarray(se.fc1.kernel)[0, 0].T, np.asarray(se.fc1.bias)
        w2, b2 = np.asarray(se.fc2.kernel)[0, 0].T, np.asarray(se.fc2.bias)
    z = x.mean(axis=(2, 3))
    s = 1 / (1 + np.exp(-(np.maximum(z @ w1.T + b1, 0) @ w2.T + b2)))
    np.testing.assert_allclose(out, x * s[:, :, None, None], rtol=1e-5, atol=1e-5)


# --- attention ------------------------------------------------------------------------


def test_channel_pool_is_max_then_mean(half, rng):
    x = rng.normal(size=(2, 5, 3, 4))
    out = half.numpy(half.lib.channel_pool(half.tensor(x)))
    np.testing.assert_allclose(
        out, np.stack([x.max(1), x.mean(1)], axis=1), rtol=1e-5, atol=1e-6
    )


def test_cbam_is_channel_then_spatial(half, rng):
    cbam = half.lib.CBAM(16, 4)
    x = half.tensor(rng.normal(size=(2, 16, 6, 6)))
    if half.name == "torch":
        cbam.eval()
        want = cbam.spatial(cbam.channel(x))
    else:
        want = cbam.spatial(cbam.channel(x), training=False)
    np.testing.assert_allclose(
        half.numpy(cbam(x) if half.name == "torch" else cbam(x, training=False)),
        half.numpy(want),
        rtol=1e-6,
    )


@pytest.mark.parametrize("combine", ["sum", "product"])
def test_bam_combines_its_branches(half, rng, combine):
    bam = half.lib.BAM(16, 4, combine=combine)
    x = half.tensor(rng.normal(size=(2, 16, 6, 6)))
    if half.name == "torch":
        bam.eval()
        m_c = half.numpy(bam.channel(x.mean(dim=(2, 3))))[:, :, None, None]
        m_s = half.numpy(bam.spatial(x))
        out = half.numpy(bam(x))
    else:
        m_c = np.asarray(bam.channel(np.asarray(x).mean(axis=(1, 2)), training=False))[
            :, :, None, None
        ]
        m_s = half.numpy(bam.spatial(x, training=False))
        out = half.numpy(bam(x, training=False))
    assert m_s.shape == (2, 1, 6, 6)
    x_nchw = half.numpy(x)
    logit = m_c + m_s if combine == "sum" else m_c * m_s
    np.testing.assert_allclose(
        out, x_nchw * (1 + 1 / (1 + np.exp(-logit))), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize(
    "name", ["SqueezeExcitation", "ChannelAttention", "CBAM", "BAM"]
)
def test_attention_keeps_the_shape(half, rng, name):
    layer = getattr(half.lib, name)(32, 8)
    for hw in [(1, 1), (7, 5)]:
        x = half.tensor(rng.normal(size=(3, 32, *hw)))
        assert tuple(layer(x).shape) == half.shape((3, 32, *hw))


def test_gated_fusion_with_identity_gate_is_silu_and_glu(half, rng):
    fuse = half.lib.GatedFusion(4)
    eye = np.eye(4, dtype="float32")
    if half.name == "torch":
        fuse.gate.weight.data.copy_(half.tensor(eye[:, :, None, None]))
        fuse.gate.bias.data.zero_()
    else:
        fuse.gate.set_weights([eye[None, None], np.zeros(4, "float32")])
    x, g = rng.normal(size=(2, 4, 5, 3)), rng.normal(size=(2, 4, 5, 3))
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    silu = half.numpy(fuse([half.tensor(x), half.tensor(x)]))
    np.testing.assert_allclose(silu, x * sigmoid(x), rtol=1e-5, atol=1e-6)
    glu = half.numpy(fuse([half.tensor(x), half.tensor(g)]))
    np.testing.assert_allclose(glu, x * sigmoid(g), rtol=1e-5, atol=1e-6)


def test_se_before_pooling_is_a_gated_mlp_on_the_pooled_vector(half, rng):
    se = half.lib.SqueezeExcitation(8, 2)
    x = half.tensor(rng.normal(size=(3, 8, 5, 4)))
    out, gates = half.numpy(se(x)), half.numpy(se.gates(x))
    np.testing.assert_allclose(
        out.mean(axis=(2, 3)),
        gates[:, :, 0, 0] * half.numpy(x).mean(axis=(2, 3)),
        rtol=1e-5,
        atol=1e-6,
    )
