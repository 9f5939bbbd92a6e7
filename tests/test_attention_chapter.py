"""The self-attention chapter's library parts: the transformer block and fusion in both
halves (formula, parity by weight porting, bad input), the experiment's TwoScaleNet,
the attention benchmark and the chapter's exercise checks.

Tolerance rtol = atol = 1e-5 per operator, ~1e-4 for whole networks (float32 on CPU;
REFERENCE section 3).
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from fusion_lib import exercises
from fusion_lib.exercises import WrongAnswer

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

from test_parity import randomize_batchnorm  # noqa: E402
from torch import nn  # noqa: E402

import fusion_lib.experiments.transformer_fusion as TF_ORDERS  # noqa: E402
import fusion_lib.tf.models as KM  # noqa: E402
import fusion_lib.tf.training as KMT  # noqa: E402
import fusion_lib.tf.transformer as KT  # noqa: E402
import fusion_lib.torch.models as TM  # noqa: E402
import fusion_lib.torch.training as TMT  # noqa: E402
import fusion_lib.torch.transformer as TT  # noqa: E402
from fusion_lib.bench import attention as bench  # noqa: E402
from fusion_lib.port import port_weights  # noqa: E402

TOL = dict(rtol=1e-5, atol=1e-5)
SIZES = [(8, 8), (4, 4)]


def jiggle(module: nn.Module, seed: int = 0) -> nn.Module:
    """Move every parameter off its initial value (LayerNorm's 1 and 0 included), so
    that a port that skipped one would show."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    return module


def maps(rng, n=2, layout="NCHW"):
    xs = [
        rng.normal(size=(n, 16, 8, 8)).astype(np.float32),
        rng.normal(size=(n, 32, 4, 4)).astype(np.float32),
    ]
    return xs if layout == "NCHW" else [x.transpose(0, 2, 3, 1) for x in xs]


def block_params(d, r):
    return (4 * d * d + 4 * d) + (2 * r * d * d + r * d + d) + 4 * d


# -- TransformerEncoderBlock -----------------------------------------------------------


@pytest.mark.parametrize("lib", [TT, KT], ids=["torch", "tf"])
def test_block_shapes_and_parameters(lib, rng):
    block = lib.TransformerEncoderBlock(12, 3, mlp_ratio=3)
    x = rng.normal(size=(2, 5, 12)).astype(np.float32)
    if lib is TT:
        out, n = block(torch.as_tensor(x)), sum(p.numel() for p in block.parameters())
    else:
        out, n = block(x), block.count_params()
    assert tuple(out.shape) == (2, 5, 12)
    assert n == block_params(12, 3)


def test_block_is_the_pre_norm_formula(rng):
    torch.manual_seed(0)
    block = jiggle(TT.TransformerEncoderBlock(16, 4)).eval()
    x = torch.as_tensor(rng.normal(size=(2, 6, 16)).astype(np.float32))
    with torch.no_grad():
        h = x + block.attn(
            nn.functional.layer_norm(
                x, (16,), block.norm1.weight, block.norm1.bias, 1e-5
            )
        )
        n2 = nn.functional.layer_norm(h, (16,), block.norm2.weight, block.norm2.bias)
        mlp = block.mlp[2](nn.functional.gelu(block.mlp[0](n2)))
        np.testing.assert_allclose(block(x).numpy(), (h + mlp).numpy(), **TOL)


def test_block_parity_torch_to_keras(rng):
    torch.manual_seed(0)
    block = jiggle(TT.TransformerEncoderBlock(16, 4)).eval()
    twin = port_weights(block, KT.TransformerEncoderBlock(16, 4))
    x = rng.normal(size=(3, 7, 16)).astype(np.float32)
    with torch.no_grad():
        want = block(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(np.asarray(twin(x)), want, **TOL)


# -- TransformerFusion ---------------------------------------------------------------


@pytest.mark.parametrize("lib", [TT, KT], ids=["torch", "tf"])
def test_fusion_shapes_and_parameters(lib, rng):
    fusion = lib.TransformerFusion([16, 32], 24, 4, SIZES, mlp_ratio=2, depth=2)
    if lib is TT:
        outs = fusion([torch.as_tensor(x) for x in maps(rng)])
        n = sum(p.numel() for p in fusion.parameters())
        assert [tuple(o.shape) for o in outs] == [(2, 24, 8, 8), (2, 24, 4, 4)]
    else:
        outs, n = fusion(maps(rng, layout="NHWC")), fusion.count_params()
        assert [tuple(o.shape) for o in outs] == [(2, 8, 8, 24), (2, 4, 4, 24)]
    projections = (16 * 24 + 24) + (32 * 24 + 24)
    positions = (64 + 16) * 24
    assert n == projections + positions + 2 * block_params(24, 2) + 2 * 24


def test_fusion_is_attention_over_the_tokens_of_both_maps(rng):
    """Recomputed from its layers: 1x1 projections, row-major tokens of both maps in
    order, positions added, the block, the final norm, split back."""
    torch.manual_seed(0)
    fusion = jiggle(TT.TransformerFusion([16, 32], 24, 4, SIZES)).eval()
    xs = [torch.as_tensor(x) for x in maps(rng)]
    with torch.no_grad():
        tokens = [
            p(x).permute(0, 2, 3, 1).reshape(2, -1, 24)
            for p, x in zip(fusion.projections, xs)
        ]
        t = fusion.norm(fusion.blocks[0](torch.cat(tokens, 1) + fusion.pos_embed))
        want = [t[:, :64].reshape(2, 8, 8, 24), t[:, 64:].reshape(2, 4, 4, 24)]
        for got, w in zip(fusion(xs), want):
            np.testing.assert_allclose(
                got.numpy(), w.permute(0, 3, 1, 2).numpy(), **TOL
            )


def test_fusion_without_positions_is_permutation_equivariant(rng):
    """Self-attention alone does not know where a token is: with the positional
    table at zero, shuffling the fine map's pixels shuffles its outputs the same way
    and leaves the coarse map's outputs unchanged."""
    torch.manual_seed(0)
    fusion = jiggle(TT.TransformerFusion([16, 32], 24, 4, SIZES)).eval()
    with torch.no_grad():
        fusion.pos_embed.zero_()
        fine, coarse = (torch.as_tensor(x) for x in maps(rng))
        perm = torch.as_tensor(rng.permutation(64))
        shuffled = fine.flatten(2)[:, :, perm].reshape(fine.shape)
        a, b = fusion([fine, coarse]), fusion([shuffled, coarse])
        np.testing.assert_allclose(
            b[0].flatten(2).numpy(), a[0].flatten(2)[:, :, perm].numpy(), **TOL
        )
        np.testing.assert_allclose(b[1].numpy(), a[1].numpy(), **TOL)
        fusion.pos_embed.normal_()  # with positions, the same shuffle changes it
        assert not torch.allclose(
            fusion([shuffled, coarse])[1], fusion([fine, coarse])[1]
        )


def test_fusion_parity_torch_to_keras(rng):
    torch.manual_seed(0)
    fusion = jiggle(TT.TransformerFusion([16, 32], 24, 4, SIZES, depth=2)).eval()
    twin = port_weights(
        fusion, KT.TransformerFusion([16, 32], 24, 4, SIZES, depth=2)
    )
    xs = maps(rng, n=3)
    with torch.no_grad():
        want = [o.numpy() for o in fusion([torch.as_tensor(x) for x in xs])]
    got = twin([x.transpose(0, 2, 3, 1) for x in xs])
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g).transpose(0, 3, 1, 2), w, **TOL)


def test_fusion_bad_inputs(half, rng):
    fusion = half.lib.TransformerFusion([16, 32], 24, 4, SIZES)
    fine, coarse = (half.tensor(x) for x in maps(rng))
    with pytest.raises(
        ValueError,
        match=r"built for 2 maps \(in_channels=\[16, 32\]\); "
        r"got 1",
    ):
        fusion([fine])
    with pytest.raises(
        ValueError, match=r"built for 32 channels .*in_channels\[1\]=16"
    ):
        fusion([fine, fine[:, :, :4, :4] if half.name == "torch" else fine[:, :4, :4]])
    small = half.tensor(rng.normal(size=(2, 32, 2, 4)))
    with pytest.raises(
        ValueError,
        match=r"built for 4x4 maps .*\(2x4, NCHW|NHWC\)."
        r".*positional embeddings",
    ):
        fusion([fine, small])
    with pytest.raises(ValueError, match=r"one \(H, W\) size per input map"):
        half.lib.TransformerFusion([16, 32], 24, 4, SIZES[:1])
    with pytest.raises(ValueError, match=r"dim must be a positive integer"):
        half.lib.TransformerFusion([16, 32], 0, 4, SIZES)
    with pytest.raises(ValueError, match=r"num_heads=5 does not divide"):
        half.lib.TransformerFusion([16, 32], 24, 5, SIZES)
    with pytest.raises(ValueError, match=r"TransformerEncoderBlock expects x of shape"):
        half.lib.TransformerEncoderBlock(8, 2)(
            half.tensor(rng.normal(size=(2, 8, 3, 3)))
        )


# -- the experiment's network ----------------------------------------------------------


@pytest.mark.parametrize("fusion", TM.TWO_SCALE_FUSIONS)
def test_two_scale_net_parity_and_params(fusion):
    from fusion_lib.experiments.transformer_fusion import WIDTHS
    from fusion_lib.tf.training import count_params as count_k
    from fusion_lib.torch.training import count_params as count_t

    torch.manual_seed(0)
    net = jiggle(randomize_batchnorm(TM.TwoScaleNet(fusion, width=WIDTHS[fusion])))
    net.eval()
    twin = KM.TwoScaleNet(fusion, width=WIDTHS[fusion])
    assert count_t(net) == count_k(twin)
    port_weights(net, twin)
    x = np.random.default_rng(0).normal(size=(3, 1, 8, 8)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.as_tensor(x)).numpy()
    got = np.asarray(twin(x.transpose(0, 2, 3, 1), training=False))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_two_scale_budgets_are_equal_within_two_percent():
    from fusion_lib.experiments.transformer_fusion import WIDTHS
    from fusion_lib.torch.training import count_params

    counts = {f: count_params(TM.TwoScaleNet(f, width=w)) for f, w in WIDTHS.items()}
    assert max(counts.values()) / min(counts.values()) < 1.02, counts


def test_two_scale_net_refuses_bad_arguments():
    for lib in (TM, KM):
        with pytest.raises(ValueError, match="fusion must be one of"):
            lib.TwoScaleNet("add")
        with pytest.raises(ValueError, match="even size"):
            lib.TwoScaleNet(size=7)


# -- the batch-order control of the experiment --------------------------------------


@pytest.mark.parametrize(
    "framework, order, replays",
    [
        ("torch", None, False),  # the library's own orders, as the chapter prints
        ("tf", None, True),  # Keras' fit(shuffle=True) after set_random_seed
        ("torch", "replayed", True),
        ("tf", "reshuffled", False),
    ],
)
def test_batch_order_of_each_framework(framework, order, replays):
    epochs = TF_ORDERS.batch_order(framework, 70, epochs=3, batch_size=32, order=order)
    assert [sorted(e.tolist()) for e in epochs] == [list(range(70))] * 3, "permutations"
    same = all(np.array_equal(e, epochs[0]) for e in epochs[1:])
    assert same == replays


@pytest.mark.parametrize("half", ["torch", "tf"])
def test_train_classifier_refuses_an_unknown_order(half):
    training = TMT if half == "torch" else KMT
    X, y = np.zeros((4, 1, 1, 1), "float32"), np.zeros(4, "int64")
    with pytest.raises(ValueError, match="must be None .* 'replayed'.*'shuffled'"):
        training.train_classifier(None, X, y, order="shuffled")


def test_swapped_orders_run_in_the_stored_form():
    got = TF_ORDERS.run_batch_orders(seeds=(0,), variants=("concat",), epochs=1)
    assert got["config"]["orders"] == {"torch": "replayed", "tf": "reshuffled"}
    assert set(got["results"]) == {"torch", "tf"}
    for table in got["results"].values():
        row = table["concat"]
        assert len(row["loss"]) == 1 and len(row["loss"][0]) == 1
        assert 0 <= row["accuracy"]["test"][0] <= 1
    stored = TF_ORDERS.load_batch_orders()
    assert set(stored["results"]["tf"]) == set(TF_ORDERS.WIDTHS)


# -- the benchmark ---------------------------------------------------------------------


def test_quick_benchmark_run_writes_both_parts(tmp_path):
    out = tmp_path / "attention.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "fusion_lib.bench.attention",
            "--quick",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    results = json.loads(out.read_text())
    mhsa = bench.mhsa_rows(results)
    assert {(r["framework"], r["pass"]) for r in mhsa} == {
        (f, p) for f in bench.FRAMEWORKS for p in bench.PASSES[f]
    }
    assert all(r["ours_ms"] > 0 and r["builtin_ms"] > 0 for r in mhsa)
    assert all(r["max_abs_diff"] < 1e-5 for r in mhsa), "the same computation"
    for f in bench.FRAMEWORKS:
        for form in bench.COST_FORMS:
            assert [r["size"] for r in bench.cost_rows(results, f, form)] == [8]


def test_stored_cpu_results_are_complete_and_fit_the_page():
    results = bench.load_results("cpu")
    mhsa = bench.mhsa_rows(results)
    configs = {(r["batch"], r["length"], r["embed_dim"], r["heads"]) for r in mhsa}
    assert configs == set(bench.MHSA_CONFIGS)
    assert len(mhsa) == len(configs) * sum(len(p) for p in bench.PASSES.values())
    assert all(r["max_abs_diff"] < 1e-5 for r in mhsa)
    assert all("indexed_ratio" in r for r in mhsa if r["framework"] == "tf")
    for f in bench.FRAMEWORKS:
        for form in bench.COST_FORMS:
            rows = bench.cost_rows(results, f, form)
            assert [r["size"] for r in rows] == list(bench.COST_SIZES), (f, form)
    # the explicit form holds the (S*S)^2 scores and weights: 2 * 4096^2 * 4 bytes
    explicit = bench.cost_rows(results, "torch", "explicit")[-1]
    assert explicit["peak_mib"] >= 2 * 4096**2 * 4 / 2**20 * 0.95
    fused = bench.cost_rows(results, "torch", "fused")[-1]
    assert fused["peak_mib"] < explicit["peak_mib"] / 10
    for table in (bench.format_mhsa_table(results), bench.format_cost_table(results)):
        assert max(len(line) for line in table.splitlines()) <= 88


# -- exercise checks -------------------------------------------------------------------


def _attention(q, k, v, mask=None, scale=None, axis=-1, polarity=True):
    scores = (
        q @ np.swapaxes(k, -1, -2) * (q.shape[-1] ** -0.5 if scale is None else scale)
    )
    if mask is not None:
        scores = np.where(mask if polarity else ~mask, scores, -np.inf)
    e = np.exp(scores - scores.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True) @ v


def test_check_scaled_attention_accepts_the_formula(capsys):
    exercises.check_scaled_attention(_attention)
    assert capsys.readouterr().out.startswith("Correct")


@pytest.mark.parametrize(
    "wrong, says",
    [
        (lambda q, k, v, m: _attention(q, k, v, m, scale=1.0), "did not scale"),
        (
            lambda q, k, v, m: _attention(q, k, v, m, scale=1 / q.shape[-1]),
            "divided the scores by d",
        ),
        (lambda q, k, v, m: _attention(q, k, v, m, axis=-2), "over the queries"),
        (lambda q, k, v, m: _attention(q, k, v, m, polarity=False), "polarity"),
        (lambda q, k, v, m: _attention(q, k, v), "ignores the mask"),
        (lambda q, k, v, m: _attention(q, k, v, m) + 1, "differs"),
    ],
)
def test_check_scaled_attention_names_the_mistake(wrong, says):
    with np.errstate(invalid="ignore"), pytest.raises(WrongAnswer, match=says):
        exercises.check_scaled_attention(wrong)


def test_check_map_tokens(capsys):
    exercises.check_map_tokens(
        lambda x: x.transpose(0, 2, 3, 1).reshape(len(x), -1, x.shape[1])
    )
    assert capsys.readouterr().out.startswith("Correct")
    with pytest.raises(WrongAnswer, match="without moving the channel axis"):
        exercises.check_map_tokens(lambda x: x.reshape(len(x), -1, x.shape[1]))
    with pytest.raises(WrongAnswer, match="column-major"):
        exercises.check_map_tokens(
            lambda x: x.transpose(0, 3, 2, 1).reshape(len(x), -1, x.shape[1])
        )
