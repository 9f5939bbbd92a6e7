"""Parity: copy a torch module's weights into its Keras twin, compare outputs in
inference mode.

Tolerance rtol = atol = 1e-5 per operator (float32 on CPU; see shared REFERENCE
section 3).
Shapes include odd spatial sizes and single-pixel maps.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("keras")

import fusion_lib.tf as K  # noqa: E402
import fusion_lib.tf.models as KM  # noqa: E402
import fusion_lib.torch as T  # noqa: E402
import fusion_lib.torch.models as TM  # noqa: E402
from fusion_lib.port import port_weights  # noqa: E402

TOL = dict(rtol=1e-5, atol=1e-5)
SPATIAL = [(8, 8), (7, 5), (1, 1), (13, 17)]


def to_nhwc(x):
    return x.permute(0, 2, 3, 1).numpy()


def compare(torch_module, keras_layer, xs, **tol):
    torch_module.eval()
    port_weights(torch_module, keras_layer)
    with torch.no_grad():
        want = torch_module(xs).numpy()
    inputs = [to_nhwc(x) for x in xs] if isinstance(xs, list) else to_nhwc(xs)
    got = np.asarray(keras_layer(inputs, training=False))
    got = got.transpose(0, 3, 1, 2) if got.ndim == 4 else got
    np.testing.assert_allclose(got, want, **(tol or TOL))


@pytest.mark.parametrize("hw", SPATIAL)
def test_concat_fusion(hw):
    compare(
        T.ConcatFusion(), K.ConcatFusion(), [torch.randn(2, c, *hw) for c in (3, 1, 6)]
    )


@pytest.mark.parametrize("hw", SPATIAL)
@pytest.mark.parametrize(
    "in_channels,out_channels",
    [(None, None), ([4, 4], None), ([3, 8], 8), ([16, 5, 7], 12)],
)
def test_add_fusion(hw, in_channels, out_channels):
    torch.manual_seed(0)
    chans = in_channels or [4, 4]
    compare(
        T.AddFusion(in_channels, out_channels),
        K.AddFusion(in_channels, out_channels),
        [torch.randn(2, c, *hw) for c in chans],
    )


@pytest.mark.parametrize("mode", ["crop", "pad"])
@pytest.mark.parametrize(
    "small,big", [((4, 4), (9, 9)), ((5, 3), (8, 8)), ((6, 6), (6, 6))]
)
def test_unet_skip_merge(mode, small, big):
    compare(
        T.UNetSkipMerge(mode),
        K.UNetSkipMerge(mode),
        [torch.randn(2, 3, *small), torch.randn(2, 2, *big)],
    )


@pytest.mark.parametrize("fusion", ["add", "concat"])
@pytest.mark.parametrize("hw", [(8, 8), (9, 7)])
def test_two_branch_net(fusion, hw):
    torch.manual_seed(0)
    compare(
        TM.TwoBranchNet(fusion, width=8),
        KM.TwoBranchNet(fusion, width=8),
        torch.randn(3, 1, *hw),
        rtol=1e-4,
        atol=1e-5,
    )


def test_port_rejects_mismatched_batchnorm_eps():
    import keras

    bn_t = torch.nn.BatchNorm2d(4)
    bn_k = keras.layers.BatchNormalization()  # Keras default eps 1e-3 != torch 1e-5
    bn_k.build((None, 2, 2, 4))
    with pytest.raises(ValueError, match=r"eps is 1e-05 in torch but 0.001 in Keras"):
        port_weights(bn_t, bn_k)


def test_port_names_a_missing_twin():
    with pytest.raises(
        ValueError, match=r"AddFusion.proj\[0\]: torch Conv2d needs a Keras Conv2D"
    ):
        port_weights(T.AddFusion([3, 5]), K.AddFusion([5, 5]))


def randomize_batchnorm(module, seed=0):
    """Give every BatchNorm non-trivial running statistics and affine weights, so the
    port of each is tested.
    """
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=gen) - 0.5)
    return module


@pytest.mark.parametrize("hw", SPATIAL)
@pytest.mark.parametrize("mode", ["conv", "linear"])
@pytest.mark.parametrize("norm,act", [(True, True), (False, False)])
@pytest.mark.parametrize("split_weights", [False, True])
def test_concat_reduce(hw, mode, norm, act, split_weights):
    torch.manual_seed(0)
    args = ([3, 5, 2], 6, mode, norm, act, split_weights)
    compare(
        randomize_batchnorm(T.ConcatReduce(*args)),
        K.ConcatReduce(*args),
        [torch.randn(2, c, *hw) for c in (3, 5, 2)],
    )


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize(
    "src,dst",
    [((4, 4), (8, 8)), ((5, 7), (13, 11)), ((1, 1), (3, 2)), ((9, 9), (4, 6))],
)
def test_resize_to(mode, src, dst):
    x = torch.randn(2, 3, *src)
    want = T.resize_to(x, dst, mode).numpy()
    got = np.asarray(K.resize_to(to_nhwc(x), dst, mode)).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(got, want, **TOL)


@pytest.mark.parametrize("hw", SPATIAL)
@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pool(hw, mode, keepdims):
    compare(
        T.GlobalPool(mode, keepdims),
        K.GlobalPool(mode, keepdims),
        torch.randn(2, 5, *hw),
    )


@pytest.mark.parametrize("hw", [(7, 7), (5, 3)])
def test_heads(hw):
    torch.manual_seed(0)
    compare(
        T.FlattenHead(4, *hw, 10), K.FlattenHead(4, *hw, 10), torch.randn(3, 4, *hw)
    )
    compare(T.GAPHead(4, 10), K.GAPHead(4, 10), torch.randn(3, 4, *hw))


@pytest.mark.parametrize("hw", SPATIAL)
def test_product_and_gated_fusion(hw):
    torch.manual_seed(0)
    compare(
        T.ProductFusion(), K.ProductFusion(), [torch.randn(2, 4, *hw) for _ in range(3)]
    )
    compare(
        T.GatedFusion(4, 6),
        K.GatedFusion(4, 6),
        [torch.randn(2, 4, *hw), torch.randn(2, 6, *hw)],
    )


@pytest.mark.parametrize("hw", SPATIAL)
@pytest.mark.parametrize("channels,reduction", [(32, 16), (12, 4), (3, 1)])
def test_squeeze_excitation(hw, channels, reduction):
    torch.manual_seed(0)
    args = (channels, reduction)
    compare(
        T.SqueezeExcitation(*args),
        K.SqueezeExcitation(*args),
        torch.randn(2, channels, *hw),
    )


@pytest.mark.parametrize("hw", SPATIAL)
@pytest.mark.parametrize("kernel_size", [7, 3])
def test_cbam_and_its_gates(hw, kernel_size):
    torch.manual_seed(0)
    x = torch.randn(2, 32, *hw)
    compare(T.ChannelAttention(32, 8), K.ChannelAttention(32, 8), x)
    compare(
        randomize_batchnorm(T.SpatialAttention(kernel_size)),
        K.SpatialAttention(kernel_size),
        x,
    )
    compare(
        randomize_batchnorm(T.CBAM(32, 8, kernel_size)), K.CBAM(32, 8, kernel_size), x
    )


@pytest.mark.parametrize("hw", SPATIAL)
@pytest.mark.parametrize("dilation", [4, 1])
@pytest.mark.parametrize("combine", ["sum", "product"])
def test_bam(hw, dilation, combine):
    torch.manual_seed(0)
    compare(
        randomize_batchnorm(T.BAM(32, 8, dilation, combine)),
        K.BAM(32, 8, dilation, combine),
        torch.randn(2, 32, *hw),
    )


@pytest.mark.parametrize("attention", ["none", "se", "cbam", "bam"])
@pytest.mark.parametrize("position", ["head", "middle"])
def test_attention_net(attention, position):
    torch.manual_seed(0)
    compare(
        randomize_batchnorm(TM.AttentionNet(attention, width=16, position=position)),
        KM.AttentionNet(attention, width=16, position=position),
        torch.randn(3, 1, 8, 8),
        rtol=1e-4,
        atol=1e-5,
    )


def test_attention_net_with_bam_product():
    torch.manual_seed(0)
    compare(
        randomize_batchnorm(TM.AttentionNet("bam", width=16, combine="product")),
        KM.AttentionNet("bam", width=16, combine="product"),
        torch.randn(3, 1, 8, 8),
        rtol=1e-4,
        atol=1e-5,
    )


@pytest.mark.parametrize("head", ["flatten", "gap"])
def test_head_net(head):
    torch.manual_seed(0)
    compare(
        randomize_batchnorm(TM.HeadNet(head, width=8, size=12)),
        KM.HeadNet(head, width=8, size=12),
        torch.randn(3, 1, 12, 12),
        rtol=1e-4,
        atol=1e-5,
    )
