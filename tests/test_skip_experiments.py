"""SkipStack (both halves), the skip-connection analysis the chapter reads, and the
dense-block exercise check."""

import numpy as np
import pytest

from fusion_lib.experiments import skip_connections


def models(half):
    if half.name == "torch":
        import fusion_lib.torch.models as models
    else:
        import fusion_lib.tf.models as models
    return models


def logits(half, model, x):
    if half.name == "torch":
        import torch

        model.eval()
        with torch.no_grad():
            return model(x).numpy()
    return np.asarray(model(x, training=False))


def trainable(half, model):
    if half.name == "torch":
        return sum(p.numel() for p in model.parameters())
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize("skip", ["none", "add", "concat"])
def test_skip_stack_shapes_and_params(half, rng, skip):
    net = models(half).SkipStack(skip, depth=3, width=8, growth_rate=4)
    out = logits(half, net, half.tensor(rng.normal(size=(2, 1, 8, 8))))
    assert out.shape == (2, 10)
    # plain and residual share every weight; dense: stem + 3 DenseLayers + head
    stem = 9 * 8 + 2 * 8
    if skip == "concat":
        layers = sum(2 * c + c * 16 + 32 + 9 * 16 * 4 for c in (8, 12, 16))
        assert trainable(half, net) == stem + layers + 20 * 10 + 10
    else:
        assert trainable(half, net) == stem + 3 * (18 * 64 + 32) + 8 * 10 + 10


def test_lesion_of_every_block_leaves_the_stem_and_head(half, rng):
    """Deleting every residual/plain block leaves GAP(stem(x)) -> head."""
    x = half.tensor(rng.normal(size=(2, 1, 8, 8)))
    plain = models(half).SkipStack("none", depth=3, width=8)
    residual = models(half).SkipStack("add", depth=3, width=8)
    for net in (plain, residual):
        net.lesion = {0, 1, 2}
    if half.name == "torch":
        residual.load_state_dict(plain.state_dict())
    else:
        residual.set_weights(plain.get_weights())
    np.testing.assert_allclose(
        logits(half, plain, x), logits(half, residual, x), rtol=1e-6
    )


def test_skip_stack_refuses_bad_arguments(half):
    with pytest.raises(ValueError, match="skip must be one of"):
        models(half).SkipStack("mul")
    with pytest.raises(ValueError, match="depth >= 1"):
        models(half).SkipStack("add", depth=0)


def test_stored_analysis_is_current_and_complete():
    stored = skip_connections.load_analysis()  # refuses a stale definition
    seeds = stored["config"]["seeds"]
    assert len(seeds) >= 3
    for framework in ("torch", "tf"):
        table = stored["results"][framework]
        assert list(table) == ["none", "add", "concat"]
        for row in table.values():
            assert len(row["intact"]) == len(seeds)
            assert all(len(acc) == skip_connections.DEPTH for acc in row["lesion"])
        assert all(
            len(r) == skip_connections.DEPTH for r in table["add"]["residual_ratio"]
        )
        weights = table["concat"]["source_weight"][0]
        assert [len(w) for w in weights] == list(range(1, skip_connections.DEPTH + 1))


def test_a_tiny_analysis_runs_in_both_frameworks():
    out = skip_connections.analyse(seeds=(0,), epochs=1)
    for framework in ("torch", "tf"):
        add = out["results"][framework]["add"]
        # the lesion must change the network: not every lesioned accuracy is intact's
        assert len(set(add["lesion"][0])) > 1, framework


def test_dense_block_params_check():
    from fusion_lib.exercises import WrongAnswer, check_dense_block_params

    def right(L, C0, k, b):
        return sum(
            2 * (C0 + i * k) + (C0 + i * k) * b * k + 2 * b * k + 9 * b * k * k
            for i in range(L)
        )

    check_dense_block_params(right)
    with pytest.raises(WrongAnswer, match="missing the BatchNorms"):
        check_dense_block_params(
            lambda L, C0, k, b: sum(
                (C0 + i * k) * b * k + 9 * b * k * k for i in range(L)
            )
        )


@pytest.mark.parametrize("skip", ["concat", "add", "none"])
def test_tiny_unet_shapes_and_params_agree_between_halves(half, rng, skip):
    net = models(half).TinyUNet(skip)
    out = logits(half, net, half.tensor(rng.normal(size=(2, 1, 16, 12))))
    want = (2, 2, 16, 12) if half.name == "torch" else (2, 16, 12, 2)
    assert out.shape == want
    assert trainable(half, net) == {"concat": 29330, "add": 26450, "none": 26450}[skip]


def test_tiny_unet_without_skips_ignores_the_encoder_maps(half, rng):
    """skip='none' is the add network fed zeros: same weights, different output."""
    x = half.tensor(rng.normal(size=(2, 1, 8, 8)))
    none, add = models(half).TinyUNet("none"), models(half).TinyUNet("add")
    if half.name == "torch":
        add.load_state_dict(none.state_dict())
    else:
        add.set_weights(none.get_weights())
    assert not np.allclose(logits(half, none, x), logits(half, add, x))


def test_iou_pools_every_pixel():
    masks = np.array([[[1, 1], [0, 0]]])
    predicted = np.stack([1 - np.array([[[1, 0], [1, 0]]]), [[[1, 0], [1, 0]]]], 1)
    assert skip_connections.iou(predicted, masks, axis=1) == pytest.approx(1 / 3)


def test_stored_segmentation_is_current_and_complete():
    stored = skip_connections.load_segmentation()
    for framework in ("torch", "tf"):
        table = stored["results"][framework]
        assert list(table) == ["concat", "add", "none"]
        for row in table.values():
            assert len(row["iou"]) == len(stored["config"]["seeds"]) >= 3
            assert all(0 <= v <= 1 for v in row["iou"])
            assert np.array(row["masks"]).shape == (3, 32, 32)
