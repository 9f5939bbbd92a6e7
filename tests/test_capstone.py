"""The capstone chapter's library parts: FusionPointNet in both halves (shapes,
parameters against the closed forms, parity by weight porting, bad arguments), the
analytic FLOP count against torch's flop counter, the experiments' registration and
stored results, and the chapter's exercise check.

Tolerance ~1e-4 for whole networks (float32 on CPU; REFERENCE section 3).
"""

import numpy as np
import pytest

from fusion_lib import exercises, experiments
from fusion_lib.exercises import WrongAnswer

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

from test_parity import randomize_batchnorm  # noqa: E402

import fusion_lib.experiments.capstone as CAP  # noqa: E402
import fusion_lib.tf.models as KM  # noqa: E402
import fusion_lib.tf.training as KMT  # noqa: E402
import fusion_lib.torch.models as TM  # noqa: E402
import fusion_lib.torch.training as TMT  # noqa: E402
from fusion_lib.port import port_weights  # noqa: E402

CONFIGS = [
    dict(size=8, num_classes=10, pool=False),
    dict(size=32, num_classes=3, pool=True),
]
WIDE_CHANNELS = {"concat": 32, "se": 32, "cbam": 32}


def jiggle(module, seed=0):
    """Move every parameter off its initial value, so a skipped port would show."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    return randomize_batchnorm(module, seed)


@pytest.mark.parametrize("fusion", TM.FUSION_POINTS)
@pytest.mark.parametrize("cfg", CONFIGS, ids=["digits", "shapes"])
def test_shapes_and_fused_width(fusion, cfg):
    s, h = cfg["size"], cfg["size"] // (2 if cfg["pool"] else 1)
    net = TM.FusionPointNet(fusion, **cfg).eval()
    x = torch.randn(3, 1, s, s)
    with torch.no_grad():
        assert tuple(net(x).shape) == (3, cfg["num_classes"])
        assert tuple(net.fused(x).shape) == (3, WIDE_CHANNELS.get(fusion, 16), h, h)
        local, context = net.branches(x)
    assert tuple(local.shape) == tuple(context.shape) == (3, 16, h, h)
    net_k = KM.FusionPointNet(fusion, **cfg)
    xk = np.zeros((3, s, s, 1), "float32")
    assert tuple(net_k(xk).shape) == (3, cfg["num_classes"])
    assert tuple(net_k.fused(xk).shape) == (3, h, h, WIDE_CHANNELS.get(fusion, 16))


@pytest.mark.parametrize("fusion", TM.FUSION_POINTS)
@pytest.mark.parametrize("cfg", CONFIGS, ids=["digits", "shapes"])
def test_parameters_match_the_closed_forms_in_both_halves(fusion, cfg):
    n = TMT.count_params(TM.FusionPointNet(fusion, **cfg))
    assert n == KMT.count_params(KM.FusionPointNet(fusion, **cfg))
    assert n == CAP.analytic_params(fusion, num_classes=cfg["num_classes"])


def test_the_variants_differ_as_the_docstring_says():
    count = {f: TMT.count_params(TM.FusionPointNet(f)) for f in TM.FUSION_POINTS}
    assert count["add"] == count["multiply"]  # no weights of their own
    # concat widens the head conv by 16 * 16 * 9 weights
    assert count["concat"] - count["add"] == 16 * 16 * 9
    assert count["se"] > count["concat"] and count["cbam"] > count["se"]
    assert count["concat_reduce"] - count["add"] == 32 * 16 + 2 * 16
    assert count["attention"] - count["add"] == 4 * (16 * 16 + 16)


@pytest.mark.parametrize("fusion", TM.FUSION_POINTS)
@pytest.mark.parametrize("cfg", CONFIGS, ids=["digits", "shapes"])
def test_parity_torch_to_keras(fusion, cfg):
    net = jiggle(TM.FusionPointNet(fusion, **cfg)).eval()
    net_k = port_weights(net, KM.FusionPointNet(fusion, **cfg))
    s = cfg["size"]
    x = np.random.default_rng(0).normal(size=(4, 1, s, s)).astype("float32")
    with torch.no_grad():
        want = net(torch.as_tensor(x)).numpy()
    got = np.asarray(net_k(x.transpose(0, 2, 3, 1), training=False))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_an_unported_network_differs():
    # the parity test can fail: two independently initialised networks disagree
    net = TM.FusionPointNet("attention").eval()
    x = np.random.default_rng(0).normal(size=(2, 1, 8, 8)).astype("float32")
    with torch.no_grad():
        want = net(torch.as_tensor(x)).numpy()
    got = np.asarray(KM.FusionPointNet("attention")(x.transpose(0, 2, 3, 1)))
    assert np.abs(got - want).max() > 1e-3


@pytest.mark.parametrize("fusion", TM.FUSION_POINTS)
@pytest.mark.parametrize("cfg", CONFIGS, ids=["digits", "shapes"])
def test_flop_counter_agrees_with_the_analytic_count(fusion, cfg):
    s = cfg["size"]
    net = TM.FusionPointNet(fusion, **cfg)
    x = torch.zeros(1, 1, s, s)
    parts = CAP.analytic_flops(fusion, s, cfg["pool"], num_classes=cfg["num_classes"])
    # measure_flops runs attention on the math backend: every product is counted
    assert TMT.measure_flops(net, x) == parts["total"]
    # on the CPU's fused attention kernel torch 2.13's counter misses exactly 4 L^2 w
    # (torch 2.11, Colab's, has a formula for that kernel and counts everything)
    fused = CAP.fused_kernel_flops(net, x)
    assert fused in (parts["total"] - parts["attention matmuls"], parts["total"])
    if fusion == "attention":
        L = (s // (2 if cfg["pool"] else 1)) ** 2
        assert parts["attention matmuls"] == 4 * L * L * 16
    else:
        assert parts["attention matmuls"] == 0


@pytest.mark.parametrize(
    "kwargs, says",
    [
        (dict(fusion="sum"), "fusion must be one of"),
        (dict(fusion="se", width=6, reduction=8), "divisible by reduction"),
        (dict(fusion="attention", width=18, num_heads=4), "divisible by num_heads"),
        (dict(size=9, pool=True), "even when pool=True"),
        (dict(size=1), "size >= 2"),
    ],
)
@pytest.mark.parametrize("half", [TM, KM], ids=["torch", "tf"])
def test_bad_arguments_are_refused_with_advice(half, kwargs, says):
    with pytest.raises(ValueError, match=says):
        half.FusionPointNet(**kwargs)


def test_the_docstrings_say_where_they_are_taught():
    for cls in (TM.FusionPointNet, KM.FusionPointNet):
        assert cls.__doc__.strip().endswith(
            "Taught in the chapter on choosing a fusion method."
        )
    assert CAP.__doc__.strip().endswith("choosing a fusion method.")


@pytest.mark.parametrize("name", ["capstone_digits", "capstone_shapes"])
def test_experiments_are_registered_and_stored_complete(name):
    exp = experiments.get(name)
    assert exp.model == "FusionPointNet"
    assert list(exp.variants) == list(CAP.FUSIONS) == list(TM.FUSION_POINTS)
    assert len(exp.seeds) >= 3
    stored = experiments.load(name)  # refuses stale results
    tests = list(exp.data(0)[2])
    for fw in experiments.FRAMEWORKS:
        table = stored["results"][fw]
        assert list(table) == list(exp.variants)
        for variant, row in table.items():
            assert row["params"] == CAP.analytic_params(
                variant, num_classes=exp.variants[variant]["num_classes"]
            )
            for test in tests:
                assert len(row["accuracy"][test]) == len(exp.seeds)
            assert [len(c) for c in row["loss"]] == [exp.fit["epochs"]] * 3


def test_stored_costs_are_complete_and_agree_with_the_library():
    stored = CAP.load_costs()
    assert set(stored["meta"]) >= {"loadavg", "threads", "batch", "command"}
    for dataset, table in stored["results"].items():
        assert list(table) == list(CAP.FUSIONS)
        for fusion, row in table.items():
            assert row == {**row, **CAP.variant_costs(dataset, fusion)}
            assert row["latency_ms_torch"] > 0 and row["latency_ms_tf"] > 0


def test_the_exercise_check_accepts_the_answer_and_names_mistakes():
    exercises.check_attention_flops(lambda L, d: 4 * L * L * d)
    exercises._tries.clear()
    with pytest.raises(WrongAnswer, match="multiply-adds, or one product only"):
        exercises.check_attention_flops(lambda L, d: 2 * L * L * d)
    with pytest.raises(WrongAnswer, match="projections counted too"):
        exercises.check_attention_flops(lambda L, d: 4 * L * L * d + 8 * L * d * d)
    with pytest.raises(WrongAnswer, match="integer"):
        exercises.check_attention_flops(lambda L, d: 4.0 * L * L * d)
