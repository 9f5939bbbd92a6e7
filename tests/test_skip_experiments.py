"""SkipStack (both halves), the skip-connection analysis the chapter reads, and the
dense-block exercise check."""

import numpy as np
import pytest

from fusion_lib import experiments
from fusion_lib.data import load_digits_with_train
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


def test_stored_measures_are_complete():
    stored = experiments.load("skip_depth")  # refuses a stale definition
    seeds, depth = stored["config"]["seeds"], skip_connections.DEPTH
    assert len(seeds) >= 3
    slices = (skip_connections.SLICES, len(skip_connections.ALPHAS))
    grid = (len(skip_connections.GRID),) * 2
    for framework in ("torch", "tf"):
        table = stored["results"][framework]
        assert list(table) == ["none", "add", "concat"]
        for row in table.values():
            m = row["measures"]
            assert all(len(m[key]) == len(seeds) for key in m)
            assert all(len(acc) == depth for acc in m["lesion"])
            assert np.array(m["loss_slices"]).shape == (len(seeds), *slices)
            assert np.array(m["loss_surface"]).shape == (len(seeds), *grid)
        assert all(len(r) == depth for r in table["add"]["measures"]["residual_ratio"])
        weights = table["concat"]["measures"]["source_weight"][0]
        assert [len(w) for w in weights] == list(range(1, depth + 1))
        assert "residual_ratio" not in table["none"]["measures"]


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_stored_networks_reproduce_the_stored_first_seed(framework):
    """The networks the chapter measures live are the ones the stored numbers came
    from: their test accuracy, lesion accuracies, branch ratios and a loss slice."""
    stored = experiments.load("skip_depth")["results"][framework]
    X_tr, y_tr, tests = load_digits_with_train(seed=0)
    X, y = tests["test"]
    layout = experiments._half(framework)[2]
    for variant in ("none", "add"):
        net = experiments.network("skip_depth", framework, variant)
        m = stored[variant]["measures"]
        logits = experiments.predict(framework, net, layout(X))
        accuracy = (logits.argmax(-1) == y).mean()
        want = stored[variant]["accuracy"]["test"][0]
        assert accuracy == pytest.approx(want, abs=5e-3)
        lesion = skip_connections.lesion(framework, net, layout(X), y)
        np.testing.assert_allclose(lesion, m["lesion"][0], atol=5e-3)
        n = skip_connections.LANDSCAPE_IMAGES
        direction = skip_connections.filter_normalised_direction(framework, net, 0)
        steps = [(a,) for a in skip_connections.ALPHAS[::5]]
        losses = skip_connections.loss_landscape(
            framework, net, layout(X_tr[:n]), y_tr[:n], steps, [direction]
        )
        np.testing.assert_allclose(losses, m["loss_slices"][0][0][::5], rtol=1e-3)
    ratios = skip_connections.residual_ratios(framework, net, layout(X))
    np.testing.assert_allclose(ratios, m["residual_ratio"][0], rtol=1e-3)


def test_a_tiny_analysis_runs_in_both_frameworks(half, rng):
    x = half.tensor(rng.normal(size=(64, 1, 8, 8)))
    X, y = np.asarray(x), rng.integers(0, 10, size=64)
    for skip in ("none", "add", "concat"):
        net = models(half).SkipStack(skip, depth=3, width=8, growth_rate=4)
        before = logits(half, net, x)
        m = skip_connections.measure_stack(half.name, net, (X, y), {"test": (X, y)})
        np.testing.assert_array_equal(logits(half, net, x), before)  # restored
        assert len(m["lesion"]) == 3
        assert ("residual_ratio" in m) == (skip == "add")
        assert ("source_weight" in m) == (skip == "concat")
        slices, surface = np.array(m["loss_slices"]), np.array(m["loss_surface"])
        middle = len(skip_connections.ALPHAS) // 2
        assert np.allclose(slices[:, middle], slices[0, middle])  # theta itself
        # the surface spans directions 0 and 1: its middle row and column are slices
        np.testing.assert_allclose(surface[len(surface) // 2], slices[0][::2], 1e-4)
        np.testing.assert_allclose(surface[:, len(surface) // 2], slices[1][::2], 1e-4)


def test_directions_are_filter_normalised(half):
    net = models(half).SkipStack("add", depth=2, width=8)
    direction = skip_connections.filter_normalised_direction(half.name, net, seed=3)
    weights, axes = skip_connections._weights(half.name, net)
    assert len(direction) == len(weights)
    for d, w, axis in zip(direction, weights, axes):
        if axis is None:
            assert d is None  # biases and BatchNorm: left alone
            continue
        theta = w.detach().numpy() if half.name == "torch" else np.asarray(w)
        others = tuple(a for a in range(theta.ndim) if a != axis)
        np.testing.assert_allclose(
            np.sqrt((d**2).sum(others)), np.sqrt((theta**2).sum(others)), rtol=1e-5
        )
    again = skip_connections.filter_normalised_direction(half.name, net, seed=3)
    assert all(a is None or np.array_equal(a, b) for a, b in zip(direction, again))


def test_nonconvex_share_reads_the_curvature():
    a = np.linspace(-1, 1, 11)
    x, y = np.meshgrid(a, a)
    assert skip_connections.nonconvex_share(x**2 + y**2) == 0.0  # a bowl
    assert skip_connections.nonconvex_share(x**2 - y**2) == 1.0  # a saddle
    assert skip_connections.nonconvex_share(-(x**2) + 0 * y) == 1.0  # a ridge
    assert 0 < skip_connections.nonconvex_share(np.cos(3 * x) + y**2) < 1


def test_dense_crossover_check(capsys):
    """The exercise's check: the depth where the quadratic term of P(L) overtakes the
    linear one, checked against the modules' own counts."""
    from fusion_lib.exercises import WrongAnswer, check_dense_crossover
    from fusion_lib.torch.skip import DenseBlock

    def terms(L, C0, k, b):
        linear = L * ((2 + b * k) * C0 + 2 * b * k + 9 * b * k * k)
        return linear, (2 + b * k) * k * L * (L - 1) // 2

    def right(C0, k, b):  # the smallest L with L - 1 > 2 linear / quadratic coefficient
        return 2 * terms(1, C0, k, b)[0] // ((2 + b * k) * k) + 2

    for L in (1, 5, 22, 23):  # the split adds up to the module's count
        count = sum(p.numel() for p in DenseBlock(L, 64, 32).parameters())
        assert sum(terms(L, 64, 32, 4)) == count
    assert terms(22, 64, 32, 4)[1] < terms(22, 64, 32, 4)[0]
    assert terms(23, 64, 32, 4)[1] > terms(23, 64, 32, 4)[0]
    check_dense_crossover(right)
    assert "23 layers for C0 = 64" in capsys.readouterr().out
    with pytest.raises(WrongAnswer, match="are equal there"):  # >= instead of >
        check_dense_crossover(lambda C0, k, b: right(C0, k, b) - (C0 == 16))
    with pytest.raises(WrongAnswer, match="already larger"):
        check_dense_crossover(lambda C0, k, b: right(C0, k, b) + 1)
    with pytest.raises(WrongAnswer, match="still the larger"):
        check_dense_crossover(lambda C0, k, b: right(C0, k, b) - 2)


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
    foreground = np.array([[[1, 0], [1, 0]]])
    logits = np.stack([1 - foreground, foreground], -1)  # classes last
    assert skip_connections.iou(logits, masks) == pytest.approx(1 / 3)
    assert skip_connections.iou(np.stack([masks, 1 - masks], -1), masks) == 0.0


def test_masks_survive_their_encoding(half, rng):
    net = models(half).TinyUNet("add")
    X = np.asarray(half.tensor(rng.normal(size=(4, 1, 8, 8))))
    found = skip_connections.predicted_masks(half.name, net, None, {"test": (X, None)})
    want = experiments.predict(half.name, net, X[:3]).argmax(-1)
    np.testing.assert_array_equal(skip_connections.decode_masks(found["masks"]), want)


def test_stored_segmentation_is_current_and_complete():
    stored = experiments.load("unet_skips")  # refuses a stale definition
    assert stored["metric"] == "iou"
    seeds = stored["config"]["seeds"]
    for framework in ("torch", "tf"):
        table = stored["results"][framework]
        assert list(table) == ["concat", "add", "none"]
        for row in table.values():
            assert len(row["iou"]["test"]) == len(seeds) >= 3
            assert all(0 <= v <= 1 for v in row["iou"]["test"])
            masks = [skip_connections.decode_masks(m) for m in row["measures"]["masks"]]
            assert np.array(masks).shape == (len(seeds), 3, 32, 32)
