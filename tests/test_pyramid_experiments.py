"""The feature-pyramid chapter's library parts: the multi-scale shapes data, PyramidNet
and ConcatPyramid in both halves (parity with ported weights), and its exercise check.
"""

import numpy as np
import pytest

from fusion_lib import exercises
from fusion_lib.data import (
    SHAPE_CLASSES,
    draw_shape,
    load_multiscale_shapes,
    multiscale_shapes,
)
from fusion_lib.exercises import WrongAnswer

VARIANTS = ("coarse", "levels", "add", "concat")


def test_shapes_are_drawn_as_described():
    assert draw_shape("square", 3).sum() == 9
    assert draw_shape("frame", 3).sum() == 8 and draw_shape("frame", 3)[1, 1] == 0
    assert draw_shape("plus", 3).sum() == 5
    assert draw_shape("frame", 16)[4:12, 4:12].sum() == 0  # stroke 16 // 4 = 4
    with pytest.raises(ValueError, match="shape must be one of"):
        draw_shape("disc", 5)
    with pytest.raises(ValueError, match="at least 3 pixels"):
        draw_shape("plus", 2)


def test_multiscale_shapes_balanced_deterministic_and_sized():
    X, y = multiscale_shapes(30, "small", seed=1)
    assert X.shape == (30, 1, 32, 32) and X.dtype == np.float32
    assert np.bincount(y).tolist() == [10] * len(SHAPE_CLASSES)
    X2, y2 = multiscale_shapes(30, "small", seed=1)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)
    with pytest.raises(ValueError, match="scale must be one of"):
        multiscale_shapes(3, "huge")
    X_tr, y_tr, tests = load_multiscale_shapes(seed=0, n_train=60, n_test=30)
    assert X_tr.shape == (60, 1, 32, 32) and list(tests) == ["small", "large"]
    # a large shape adds far more signal than a small one
    bright = {s: (t[0] > 0.5).sum((1, 2, 3)).mean() for s, t in tests.items()}
    assert bright["large"] > 5 * bright["small"]


@pytest.mark.parametrize("pyramid", VARIANTS)
def test_pyramid_net_parity_and_params(pyramid):
    torch = pytest.importorskip("torch")
    import fusion_lib.tf.models as K
    import fusion_lib.torch.models as T
    from fusion_lib.port import port_weights
    from fusion_lib.tf.training import count_params as count_k
    from fusion_lib.torch.training import count_params as count_t

    torch.manual_seed(0)
    t, k = T.PyramidNet(pyramid).eval(), K.PyramidNet(pyramid)
    assert count_t(t) == count_k(k)
    port_weights(t, k)
    x = np.random.default_rng(0).normal(size=(2, 1, 32, 32)).astype(np.float32)
    with torch.no_grad():
        want = t(torch.as_tensor(x)).numpy()
        levels = [p.numpy() for p in t.features(torch.as_tensor(x))]
    got = np.asarray(k(x.transpose(0, 2, 3, 1)))
    assert want.shape == got.shape == (2, 3)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert [lv.shape[2:] for lv in levels] == (
        [(4, 4)] if pyramid == "coarse" else [(16, 16), (8, 8), (4, 4)]
    )


def test_pyramid_net_refuses_unknown_variants():
    pytest.importorskip("torch")
    import fusion_lib.tf.models as K
    import fusion_lib.torch.models as T

    for half in (T, K):
        with pytest.raises(ValueError, match="PyramidNet pyramid must be one of"):
            half.PyramidNet("bilinear")


def test_concat_pyramid_with_identity_merges_is_feature_pyramid():
    torch = pytest.importorskip("torch")
    import fusion_lib.torch as ft
    from fusion_lib.torch.models import ConcatPyramid

    torch.manual_seed(0)
    add, cat = ft.FeaturePyramid([3, 5, 7], 4), ConcatPyramid([3, 5, 7], 4)
    cat.load_state_dict(add.state_dict(), strict=False)
    eye = torch.eye(4)[:, :, None, None]
    with torch.no_grad():
        for merge in cat.merges:
            merge.reduce.weight.copy_(torch.cat([eye, eye], 1))
            merge.reduce.bias.zero_()
        xs = [torch.randn(1, c, s, s) for c, s in ((3, 25), (5, 13), (7, 7))]
        for a, b in zip(add(xs), cat(xs)):
            torch.testing.assert_close(a, b)
    extra = sum(p.numel() for p in cat.parameters()) - sum(
        p.numel() for p in add.parameters()
    )
    assert extra == 2 * (2 * 4 * 4 + 4)  # (L - 1) (2 D^2 + D)


def test_top_down_merge_check():
    exercises._tries.clear()
    rule = exercises._nearest_rows
    assert rule(13, 25, False).tolist()[13] == 6 and rule(13, 25, True)[13] == 7
    exercises.check_top_down_merge(lambda xs: exercises._top_down(xs))
    with pytest.raises(WrongAnswer, match="floors the source index"):
        exercises.check_top_down_merge(lambda xs: exercises._top_down(xs, False))
    with pytest.raises(WrongAnswer, match=r"upsampled \*input\*"):
        exercises.check_top_down_merge(lambda xs: exercises._top_down(xs, True, False))
    with pytest.raises(WrongAnswer, match="a list of 3 merged maps"):
        exercises.check_top_down_merge(lambda xs: xs[:1])
