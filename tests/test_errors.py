"""Bad input raises ValueError naming what was received, what was expected, and the
fix.
"""

import numpy as np
import pytest


def arr(rng, *nchw):
    return rng.normal(size=nchw)


def test_concat_mismatched_spatial(half, rng):
    with pytest.raises(
        ValueError, match=r"Spatial sizes 8x8 vs 7x7 differ.*center_crop"
    ):
        half.lib.ConcatFusion()(
            [half.tensor(arr(rng, 2, 3, 8, 8)), half.tensor(arr(rng, 2, 4, 7, 7))]
        )


def test_concat_mismatched_batch(half, rng):
    with pytest.raises(ValueError, match=r"Batch sizes differ"):
        half.lib.ConcatFusion()(
            [half.tensor(arr(rng, 2, 3, 8, 8)), half.tensor(arr(rng, 3, 3, 8, 8))]
        )


def test_concat_wrong_rank(half, rng):
    x = half.tensor(arr(rng, 1, 3, 8, 8))[0]
    with pytest.raises(
        ValueError,
        match=rf"expects 4-D {half.layout} tensors; input 0 has shape "
        r".*rank 3.*batch axis",
    ):
        half.lib.ConcatFusion()([x, x])


def test_concat_other_layout_is_named(half, rng):
    # Two maps in the *other* layout: channel counts differ on the wrong axis.
    a, b = arr(rng, 2, 3, 6, 6), arr(rng, 2, 5, 6, 6)
    if half.layout == "NCHW":
        xs = [half.tensor(a).permute(0, 2, 3, 1), half.tensor(b).permute(0, 2, 3, 1)]
        fix = r"x\.permute\(0, 3, 1, 2\)"
    else:
        xs = [np.float32(a), np.float32(b)]  # NCHW arrays handed to the NHWC half
        fix = r"transpose\(x, \(0, 2, 3, 1\)\)"
    with pytest.raises(
        ValueError, match=rf"looks {'NHWC' if half.layout == 'NCHW' else 'NCHW'}.*{fix}"
    ):
        half.lib.ConcatFusion()(xs)


def test_add_mismatched_channels_suggests_projection(half, rng):
    with pytest.raises(
        ValueError,
        match=r"Channel counts \[3, 5\] differ: project with a 1x1 conv first"
        r".*in_channels=\[3, 5\]",
    ):
        half.lib.AddFusion()(
            [half.tensor(arr(rng, 2, 3, 8, 8)), half.tensor(arr(rng, 2, 5, 8, 8))]
        )


def test_add_mismatched_spatial(half, rng):
    with pytest.raises(ValueError, match=r"Spatial sizes differ"):
        half.lib.AddFusion()(
            [half.tensor(arr(rng, 2, 3, 8, 8)), half.tensor(arr(rng, 2, 3, 4, 4))]
        )


def test_add_projected_mismatched_spatial(half, rng):
    fuse = half.lib.AddFusion(in_channels=[3, 5], out_channels=5)
    with pytest.raises(ValueError, match=r"Spatial sizes 8x8 vs 4x4 differ"):
        fuse([half.tensor(arr(rng, 2, 3, 8, 8)), half.tensor(arr(rng, 2, 5, 4, 4))])


def test_add_wrong_channel_count_for_projection(half, rng):
    fuse = half.lib.AddFusion(in_channels=[3, 5], out_channels=5)
    with pytest.raises(
        ValueError, match=r"input 1 has shape .* 4 channels .* in_channels\[1\] = 5"
    ):
        fuse([half.tensor(arr(rng, 2, 3, 8, 8)), half.tensor(arr(rng, 2, 4, 8, 8))])


def test_add_channels_last_to_torch_is_named():
    torch = pytest.importorskip("torch")
    import fusion_lib.torch as F

    fuse = F.AddFusion(in_channels=[3, 5], out_channels=5)
    xs = [torch.zeros(2, 8, 8, 3), torch.zeros(2, 8, 8, 5)]
    with pytest.raises(
        ValueError, match=r"looks NHWC \(channels last\).*permute\(0, 3, 1, 2\)"
    ):
        fuse(xs)


def test_add_wrong_number_of_inputs(half, rng):
    fuse = half.lib.AddFusion(in_channels=[3, 5, 5])
    with pytest.raises(ValueError, match=r"built for 3 inputs .* got 2"):
        fuse([half.tensor(arr(rng, 2, 3, 8, 8)), half.tensor(arr(rng, 2, 5, 8, 8))])


def test_add_out_channels_without_in_channels(half):
    with pytest.raises(ValueError, match=r"out_channels needs in_channels"):
        half.lib.AddFusion(out_channels=8)


def test_center_crop_target_too_large(half, rng):
    with pytest.raises(
        ValueError, match=r"cannot crop a 6x6 map .* to 8x8.*mode='pad'"
    ):
        half.lib.center_crop(half.tensor(arr(rng, 1, 2, 6, 6)), (8, 8))


def test_unet_merge_bad_mode(half):
    with pytest.raises(ValueError, match=r"mode must be 'crop' or 'pad'; got 'resize'"):
        half.lib.UNetSkipMerge(mode="resize")


def test_concat_reduce_spatial_mismatch_names_resize_to(half, rng):
    fuse = half.lib.ConcatReduce([3, 4], 8)
    with pytest.raises(
        ValueError, match=r"Spatial sizes 8x8 vs 4x4 differ.*resize_to\(coarse, fine\)"
    ):
        fuse([half.tensor(arr(rng, 2, 3, 8, 8)), half.tensor(arr(rng, 2, 4, 4, 4))])


def test_concat_reduce_wrong_channels(half, rng):
    fuse = half.lib.ConcatReduce([3, 4], 8)
    with pytest.raises(
        ValueError, match=r"input 1 has shape .* 5 channels .* in_channels\[1\] = 4"
    ):
        fuse([half.tensor(arr(rng, 2, 3, 8, 8)), half.tensor(arr(rng, 2, 5, 8, 8))])


def test_concat_reduce_bad_mode(half):
    with pytest.raises(
        ValueError, match=r"mode must be 'conv' or 'linear'; got 'dense'"
    ):
        half.lib.ConcatReduce([3, 4], 8, mode="dense")


def test_resize_to_bad_mode_and_rank(half, rng):
    x = half.tensor(arr(rng, 1, 2, 4, 4))
    with pytest.raises(
        ValueError,
        match=r"resize_to mode must be one of \('bilinear', 'nearest'\); got 'bicubic'",
    ):
        half.lib.resize_to(x, (8, 8), mode="bicubic")
    with pytest.raises(
        ValueError, match=r"resize_to expects 4-D .* got a tensor of shape .*\(rank 3\)"
    ):
        half.lib.resize_to(x[0], (8, 8))


def test_global_pool_bad_mode_and_rank(half, rng):
    with pytest.raises(
        ValueError, match=r"GlobalPool mode must be 'avg' or 'max'; got 'sum'"
    ):
        half.lib.GlobalPool("sum")
    with pytest.raises(ValueError, match=r"GlobalPool expects 4-D"):
        half.lib.GlobalPool()(half.tensor(arr(rng, 1, 2, 4, 4))[0])


def test_flatten_head_fixes_the_input_size(half, rng):
    head = half.lib.FlattenHead(4, 7, 7, 10)
    with pytest.raises(
        ValueError, match=r"built for 7x7 maps but got shape .*8x8.*GAPHead accepts any"
    ):
        head(half.tensor(arr(rng, 1, 4, 8, 8)))
    with pytest.raises(
        ValueError, match=r"built for 4 channels but got shape .* 3 channels"
    ):
        head(half.tensor(arr(rng, 1, 3, 7, 7)))


def test_product_fusion_needs_identical_shapes(half, rng):
    with pytest.raises(ValueError, match=r"ProductFusion needs identical shapes"):
        half.lib.ProductFusion()(
            [half.tensor(arr(rng, 2, 3, 4, 4)), half.tensor(arr(rng, 2, 3, 5, 5))]
        )


def test_gated_fusion_names_its_own_arguments(half, rng):
    fuse = half.lib.GatedFusion(3, 5)
    x, g = half.tensor(arr(rng, 2, 3, 4, 4)), half.tensor(arr(rng, 2, 4, 4, 4))
    with pytest.raises(
        ValueError, match=r"input 1 has shape .* 4 channels .* gate_channels = 5"
    ):
        fuse([x, g])


def test_product_fusion_suggests_no_arguments_it_lacks(half, rng):
    with pytest.raises(ValueError, match=r"Channel counts \[3, 5\] differ") as err:
        half.lib.ProductFusion()(
            [half.tensor(arr(rng, 2, 3, 4, 4)), half.tensor(arr(rng, 2, 5, 4, 4))]
        )
    assert "in_channels" not in str(err.value) and "AddFusion" not in str(err.value)


def test_se_reduction_too_large(half):
    with pytest.raises(
        ValueError,
        match=r"SqueezeExcitation\(channels=8, reduction=16\) would squeeze to "
        r".* 0 channels. Use reduction <= 8",
    ):
        half.lib.SqueezeExcitation(8)


@pytest.mark.parametrize(
    "name", ["SqueezeExcitation", "ChannelAttention", "CBAM", "BAM"]
)
def test_attention_wrong_channels(half, rng, name):
    layer = getattr(half.lib, name)(32, 8)
    with pytest.raises(
        ValueError,
        match=rf"{name} was built for 32 channels but got shape .* 16 channels",
    ):
        layer(half.tensor(arr(rng, 2, 16, 5, 5)))


def test_attention_channels_last_to_torch_is_named():
    torch = pytest.importorskip("torch")
    import fusion_lib.torch as F

    with pytest.raises(ValueError, match=r"looks NHWC.*permute\(0, 3, 1, 2\)"):
        F.SqueezeExcitation(32, 8)(torch.zeros(2, 5, 5, 32))


def test_spatial_attention_even_kernel(half):
    with pytest.raises(ValueError, match=r"odd kernel_size .* got 4"):
        half.lib.SpatialAttention(4)


def test_bam_combine_is_sum_or_product(half):
    with pytest.raises(ValueError, match=r"BAM combine must be one of .* got 'mean'"):
        half.lib.BAM(32, 8, combine="mean")


def test_attention_net_refuses_bad_position_and_combine():
    import fusion_lib.torch.models as TM

    with pytest.raises(ValueError, match=r"position must be one of .* got 'tail'"):
        TM.AttentionNet("se", position="tail")
    with pytest.raises(ValueError, match=r"combine='product' applies to .*'bam' only"):
        TM.AttentionNet("cbam", combine="product")
