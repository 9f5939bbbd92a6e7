"""What each operator computes, checked against NumPy in both halves."""

import numpy as np
import pytest


@pytest.mark.parametrize("nchw", [[(2, 3, 5, 5), (2, 4, 5, 5)], [(1, 1, 7, 3), (1, 2, 7, 3), (1, 5, 7, 3)]])
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


@pytest.mark.parametrize("size,target", [((9, 9), (4, 4)), ((10, 7), (3, 6)), ((5, 5), (5, 5))])
def test_center_crop_offsets(half, rng, size, target):
    x = rng.normal(size=(1, 2, *size))
    out = half.numpy(half.lib.center_crop(half.tensor(x), target))
    top, left = (size[0] - target[0]) // 2, (size[1] - target[1]) // 2
    np.testing.assert_array_equal(out, np.float32(x)[:, :, top : top + target[0], left : left + target[1]])


def test_unet_merge_crop_and_pad(half, rng):
    up, skip = rng.normal(size=(1, 2, 4, 4)), rng.normal(size=(1, 3, 9, 9))
    cropped = half.numpy(half.lib.UNetSkipMerge("crop")([half.tensor(up), half.tensor(skip)]))
    assert cropped.shape == (1, 5, 4, 4)
    np.testing.assert_array_equal(cropped[:, :2], np.float32(up))
    np.testing.assert_array_equal(cropped[:, 2:], np.float32(skip)[:, :, 2:6, 2:6])
    padded = half.numpy(half.lib.UNetSkipMerge("pad")([half.tensor(up), half.tensor(skip)]))
    assert padded.shape == (1, 5, 9, 9)
    np.testing.assert_array_equal(padded[:, :2, 2:6, 2:6], np.float32(up))
    assert padded[:, :2].sum() == pytest.approx(np.float32(up).sum(), rel=1e-5)  # the rest is zeros
    np.testing.assert_array_equal(padded[:, 2:], np.float32(skip))


def test_keras_layers_work_symbolically():
    import keras

    import fusion_lib.tf as K

    a, b = keras.Input((None, None, 3)), keras.Input((None, None, 5))
    model = keras.Model([a, b], [K.ConcatFusion()([a, b]), K.AddFusion([3, 5], 8)([a, b])])
    assert [tuple(s) for s in model.output_shape] == [(None, None, None, 8), (None, None, None, 8)]


def test_keras_config_round_trip():
    import fusion_lib.tf as K

    layer = K.AddFusion([3, 5], 8)
    clone = K.AddFusion.from_config(layer.get_config())
    assert (clone.in_channels, clone.out_channels) == ([3, 5], 8)
    assert K.UNetSkipMerge.from_config(K.UNetSkipMerge("pad").get_config()).mode == "pad"
