"""Parity: copy a torch module's weights into its Keras twin, compare outputs in inference mode.

Tolerance rtol = atol = 1e-5 per operator (float32 on CPU; see shared REFERENCE section 3).
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
    compare(T.ConcatFusion(), K.ConcatFusion(), [torch.randn(2, c, *hw) for c in (3, 1, 6)])


@pytest.mark.parametrize("hw", SPATIAL)
@pytest.mark.parametrize("in_channels,out_channels", [(None, None), ([4, 4], None), ([3, 8], 8), ([16, 5, 7], 12)])
def test_add_fusion(hw, in_channels, out_channels):
    torch.manual_seed(0)
    chans = in_channels or [4, 4]
    compare(
        T.AddFusion(in_channels, out_channels),
        K.AddFusion(in_channels, out_channels),
        [torch.randn(2, c, *hw) for c in chans],
    )


@pytest.mark.parametrize("mode", ["crop", "pad"])
@pytest.mark.parametrize("small,big", [((4, 4), (9, 9)), ((5, 3), (8, 8)), ((6, 6), (6, 6))])
def test_unet_skip_merge(mode, small, big):
    compare(T.UNetSkipMerge(mode), K.UNetSkipMerge(mode), [torch.randn(2, 3, *small), torch.randn(2, 2, *big)])


@pytest.mark.parametrize("fusion", ["add", "concat"])
@pytest.mark.parametrize("hw", [(8, 8), (9, 7)])
def test_two_branch_net(fusion, hw):
    torch.manual_seed(0)
    compare(TM.TwoBranchNet(fusion, width=8), KM.TwoBranchNet(fusion, width=8), torch.randn(3, 1, *hw), rtol=1e-4, atol=1e-5)


def test_port_rejects_mismatched_batchnorm_eps():
    import keras

    bn_t = torch.nn.BatchNorm2d(4)
    bn_k = keras.layers.BatchNormalization()  # Keras default eps 1e-3 != torch 1e-5
    bn_k.build((None, 2, 2, 4))
    with pytest.raises(ValueError, match=r"eps is 1e-05 in torch but 0.001 in Keras"):
        port_weights(bn_t, bn_k)


def test_port_names_a_missing_twin():
    with pytest.raises(ValueError, match=r"AddFusion.proj\[0\]: torch Conv2d needs a Keras Conv2D"):
        port_weights(T.AddFusion([3, 5]), K.AddFusion([5, 5]))
