"""Bad input raises ValueError naming what was received, what was expected, and the fix."""

import numpy as np
import pytest


def arr(rng, *nchw):
    return rng.normal(size=nchw)


def test_concat_mismatched_spatial(half, rng):
    with pytest.raises(ValueError, match=r"Spatial sizes 8x8 vs 7x7 differ.*center_crop"):
        half.lib.ConcatFusion()([half.tensor(arr(rng, 2, 3, 8, 8)), half.tensor(arr(rng, 2, 4, 7, 7))])


def test_concat_mismatched_batch(half, rng):
    with pytest.raises(ValueError, match=r"Batch sizes differ"):
        half.lib.ConcatFusion()([half.tensor(arr(rng, 2, 3, 8, 8)), half.tensor(arr(rng, 3, 3, 8, 8))])


def test_concat_wrong_rank(half, rng):
    x = half.tensor(arr(rng, 1, 3, 8, 8))[0]
    with pytest.raises(ValueError, match=rf"expects 4-D {half.layout} tensors; input 0 has shape .*rank 3.*batch axis"):
        half.lib.ConcatFusion()([x, x])


def test_concat_needs_a_list(half, rng):
    with pytest.raises(ValueError, match=r"takes a list of tensors"):
        half.lib.ConcatFusion()(half.tensor(arr(rng, 1, 3, 8, 8)))


def test_concat_other_layout_is_named(half, rng):
    # Two maps in the *other* layout: channel counts differ on the wrong axis.
    a, b = arr(rng, 2, 3, 6, 6), arr(rng, 2, 5, 6, 6)
    if half.layout == "NCHW":
        xs = [half.tensor(a).permute(0, 2, 3, 1), half.tensor(b).permute(0, 2, 3, 1)]
        fix = r"x\.permute\(0, 3, 1, 2\)"
    else:
        xs = [np.float32(a), np.float32(b)]  # NCHW arrays handed to the NHWC half
        fix = r"transpose\(x, \(0, 2, 3, 1\)\)"
    with pytest.raises(ValueError, match=rf"looks {'NHWC' if half.layout == 'NCHW' else 'NCHW'}.*{fix}"):
        half.lib.ConcatFusion()(xs)


def test_add_mismatched_channels_suggests_projection(half, rng):
    with pytest.raises(ValueError, match=r"Channel counts \[3, 5\] differ: project with a 1x1 conv first.*in_channels=\[3, 5\]"):
        half.lib.AddFusion()([half.tensor(arr(rng, 2, 3, 8, 8)), half.tensor(arr(rng, 2, 5, 8, 8))])


def test_add_mismatched_spatial(half, rng):
    with pytest.raises(ValueError, match=r"Spatial sizes differ"):
        half.lib.AddFusion()([half.tensor(arr(rng, 2, 3, 8, 8)), half.tensor(arr(rng, 2, 3, 4, 4))])


def test_add_projected_mismatched_spatial(half, rng):
    fuse = half.lib.AddFusion(in_channels=[3, 5], out_channels=5)
    with pytest.raises(ValueError, match=r"Spatial sizes 8x8 vs 4x4 differ"):
        fuse([half.tensor(arr(rng, 2, 3, 8, 8)), half.tensor(arr(rng, 2, 5, 4, 4))])


def test_add_wrong_channel_count_for_projection(half, rng):
    fuse = half.lib.AddFusion(in_channels=[3, 5], out_channels=5)
    with pytest.raises(ValueError, match=r"input 1 has shape .* 4 channels .* in_channels\[1\] = 5"):
        fuse([half.tensor(arr(rng, 2, 3, 8, 8)), half.tensor(arr(rng, 2, 4, 8, 8))])


def test_add_channels_last_to_torch_is_named():
    torch = pytest.importorskip("torch")
    import fusion_lib.torch as F

    fuse = F.AddFusion(in_channels=[3, 5], out_channels=5)
    xs = [torch.zeros(2, 8, 8, 3), torch.zeros(2, 8, 8, 5)]
    with pytest.raises(ValueError, match=r"looks NHWC \(channels last\).*permute\(0, 3, 1, 2\)"):
        fuse(xs)


def test_add_wrong_number_of_inputs(half, rng):
    fuse = half.lib.AddFusion(in_channels=[3, 5, 5])
    with pytest.raises(ValueError, match=r"built for 3 inputs .* got 2"):
        fuse([half.tensor(arr(rng, 2, 3, 8, 8)), half.tensor(arr(rng, 2, 5, 8, 8))])


def test_add_out_channels_without_in_channels(half):
    with pytest.raises(ValueError, match=r"out_channels needs in_channels"):
        half.lib.AddFusion(out_channels=8)


def test_center_crop_target_too_large(half, rng):
    with pytest.raises(ValueError, match=r"cannot crop a 6x6 map .* to 8x8.*mode='pad'"):
        half.lib.center_crop(half.tensor(arr(rng, 1, 2, 6, 6)), (8, 8))


def test_unet_merge_bad_mode(half):
    with pytest.raises(ValueError, match=r"mode must be 'crop' or 'pad'; got 'resize'"):
        half.lib.UNetSkipMerge(mode="resize")


def test_unet_merge_takes_two(half, rng):
    x = half.tensor(arr(rng, 1, 2, 4, 4))
    with pytest.raises(ValueError, match=r"takes \[up, skip\]; got 3"):
        half.lib.UNetSkipMerge()([x, x, x])
