"""Cross-modal fusion: FiLM and the conditional bias / scale it unifies, the gated
multimodal unit, MFB low-rank bilinear pooling, cross-attention; formulas against
numpy, parity torch -> Keras by weight porting, and the library's bad-input errors.

Tolerance rtol = atol = 1e-5 per operator (float32 on CPU; REFERENCE section 3).
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

import fusion_lib.tf.crossmodal as KC  # noqa: E402
import fusion_lib.tf.selfattention as KS  # noqa: E402
import fusion_lib.torch.crossmodal as TC  # noqa: E402
import fusion_lib.torch.selfattention as TS  # noqa: E402
from fusion_lib.port import port_weights  # noqa: E402

TOL = dict(rtol=1e-5, atol=1e-5)


def build(framework, name, *args, init=None):
    """The torch module (seeded, optionally edited by `init`) and the framework's own
    module: itself for "torch", its Keras twin with the ported weights for "tf".
    """
    torch.manual_seed(0)
    module = getattr(TC, name)(*args).eval()
    if init is not None:
        with torch.no_grad():
            init(module)
    if framework == "torch":
        return module, module
    return module, port_weights(module, getattr(KC, name)(*args))


def feed(half, a):
    """NCHW maps get the half's layout; vectors and tokens pass as they are."""
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 4:
        return half.tensor(a)
    return torch.as_tensor(a) if half.name == "torch" else a


def back(half, t):
    if isinstance(t, torch.Tensor):
        return t.detach().numpy()
    t = np.asarray(t)
    return t.transpose(0, 3, 1, 2) if t.ndim == 4 else t


def weights(linear):
    return linear.weight.detach().numpy(), linear.bias.detach().numpy()


def vec(rng, *shape):
    return rng.normal(size=shape).astype(np.float32)


# -- FiLM -----------------------------------------------------------------------------


@pytest.mark.parametrize("x_shape", [(3, 6, 5, 4), (3, 6)])
def test_film_formula(half, rng, x_shape):
    torch_film, film = build(half.name, "FiLM", 4, 6)
    x, cond = vec(rng, *x_shape), vec(rng, 3, 4)
    w, b = weights(torch_film.generator)
    params = cond @ w.T + b
    gamma, beta = 1 + params[:, :6], params[:, 6:]
    if len(x_shape) == 4:
        gamma, beta = gamma[:, :, None, None], beta[:, :, None, None]
    got = back(half, film(feed(half, x), feed(half, cond)))
    np.testing.assert_allclose(got, gamma * x + beta, **TOL)
    g, bt = film.coefficients(feed(half, cond))
    assert tuple(g.shape) == tuple(bt.shape) == (3, 6)


def test_film_with_a_zero_generator_is_the_identity(half, rng):
    def zero(m):
        m.generator.weight.zero_()
        m.generator.bias.zero_()

    _, film = build(half.name, "FiLM", 4, 6, init=zero)
    x = vec(rng, 2, 6, 3, 3)
    got = back(half, film(feed(half, x), feed(half, vec(rng, 2, 4))))
    np.testing.assert_array_equal(got, x)


def test_concat_then_linear_is_a_conditional_bias(half, rng):
    """W [x; z] + b = W_x x + (W_z z + b): FiLM with delta = 0 and beta = W_z z + b,
    applied to W_x x (the split-weight identity of the concat-then-reduce chapter).
    """
    dx, dz, c = 5, 3, 4
    linear = torch.nn.Linear(dx + dz, c)
    w, b = weights(linear)

    def as_bias(m):
        m.generator.weight.zero_()
        m.generator.bias.zero_()
        m.generator.weight[c:] = torch.as_tensor(w[:, dx:])
        m.generator.bias[c:] = torch.as_tensor(b)

    _, film = build(half.name, "FiLM", dz, c, init=as_bias)
    x, z = vec(rng, 6, dx), vec(rng, 6, dz)
    want = np.concatenate([x, z], axis=1) @ w.T + b
    got = back(half, film(feed(half, x @ w[:, :dx].T), feed(half, z)))
    np.testing.assert_allclose(got, want, **TOL)


def test_gating_is_a_conditional_scale(half, rng):
    """x * (W z + b), a gate computed from the other modality and broadcast over H, W:
    FiLM with beta = 0 and delta = W z + b - 1.
    """
    dz, c = 3, 4
    w, b = vec(rng, c, dz), vec(rng, c)

    def as_scale(m):
        m.generator.weight.zero_()
        m.generator.bias.zero_()
        m.generator.weight[:c] = torch.as_tensor(w)
        m.generator.bias[:c] = torch.as_tensor(b - 1)

    _, film = build(half.name, "FiLM", dz, c, init=as_scale)
    x, z = vec(rng, 2, c, 5, 5), vec(rng, 2, dz)
    want = x * (z @ w.T + b)[:, :, None, None]
    got = back(half, film(feed(half, x), feed(half, z)))
    np.testing.assert_allclose(got, want, **TOL)


# -- GatedMultimodalUnit and LowRankBilinear ------------------------------------------


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def test_gated_multimodal_unit_formula(half, rng):
    torch_gmu, gmu = build(half.name, "GatedMultimodalUnit", (5, 7), 4)
    x1, x2 = vec(rng, 3, 5), vec(rng, 3, 7)
    (w1, b1), (w2, b2) = (weights(p) for p in torch_gmu.proj)
    wz, bz = weights(torch_gmu.gate)
    h1, h2 = np.tanh(x1 @ w1.T + b1), np.tanh(x2 @ w2.T + b2)
    z = sigmoid(np.concatenate([x1, x2], 1) @ wz.T + bz)
    xs = [feed(half, x1), feed(half, x2)]
    np.testing.assert_allclose(back(half, gmu(xs)), z * h1 + (1 - z) * h2, **TOL)
    np.testing.assert_allclose(back(half, gmu.gates(xs)), z, **TOL)


@pytest.mark.parametrize("factor", [5, 1])
def test_low_rank_bilinear_formula(half, rng, factor):
    torch_mfb, mfb = build(half.name, "LowRankBilinear", (5, 7), 4, factor)
    x1, x2 = vec(rng, 3, 5), vec(rng, 3, 7)
    (w1, b1), (w2, b2) = (weights(p) for p in torch_mfb.proj)
    p = (x1 @ w1.T + b1) * (x2 @ w2.T + b2)
    s = np.stack(  # group j = elements j*factor ... j*factor + factor - 1
        [p[:, j * factor : (j + 1) * factor].sum(1) for j in range(4)], axis=1
    )
    s = np.sign(s) * np.sqrt(np.abs(s))
    want = s / np.linalg.norm(s, axis=1, keepdims=True)
    got = back(half, mfb([feed(half, x1), feed(half, x2)]))
    np.testing.assert_allclose(got, want, **TOL)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, **TOL)


def test_low_rank_bilinear_is_a_rank_factor_bilinear_form(rng):
    """Without biases, the pooled s_j = x_1^T (sum_r u_jr v_jr^T) x_2."""

    def no_bias(m):
        for p in m.proj:
            p.bias.zero_()

    torch_mfb, _ = build("torch", "LowRankBilinear", (5, 7), 4, 3, init=no_bias)
    u, v = (p.weight.detach().numpy().reshape(4, 3, -1) for p in torch_mfb.proj)
    x1, x2 = vec(rng, 2, 5), vec(rng, 2, 7)
    forms = np.einsum("jra,jrb->jab", u, v)  # one rank-3 matrix per output
    s = np.einsum("na,jab,nb->nj", x1, forms, x2)
    s = np.sign(s) * np.sqrt(np.abs(s))
    with torch.no_grad():
        got = torch_mfb([torch.as_tensor(x1), torch.as_tensor(x2)]).numpy()
    np.testing.assert_allclose(got, s / np.linalg.norm(s, axis=1, keepdims=True), **TOL)
    assert all(np.linalg.matrix_rank(f) <= 3 for f in forms)


# -- CrossAttention -------------------------------------------------------------------


def test_cross_attention_formula_and_shapes(half, rng):
    torch_attn, attn = build(half.name, "CrossAttention", 8, 6, 2)
    x, c = vec(rng, 2, 5, 8), vec(rng, 2, 3, 6)
    mask = rng.random((2, 3)) > 0.3
    mask[:, 0] = True
    (wq, bq), (wk, bk), (wv, bv), (wo, bo) = (
        weights(getattr(torch_attn, n))
        for n in ("q_proj", "k_proj", "v_proj", "out_proj")
    )

    def heads(a):  # (N, L, 8) -> (N, 2, L, 4)
        return a.reshape(a.shape[0], a.shape[1], 2, 4).transpose(0, 2, 1, 3)

    q, k, v = heads(x @ wq.T + bq), heads(c @ wk.T + bk), heads(c @ wv.T + bv)
    scores = np.where(
        mask[:, None, None, :], q @ k.transpose(0, 1, 3, 2) / 2.0, -np.inf
    )
    a = np.exp(scores - scores.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    y = (a @ v).transpose(0, 2, 1, 3).reshape(2, 5, 8)
    m = torch.as_tensor(mask) if half.name == "torch" else mask
    got = back(half, attn(feed(half, x), feed(half, c), mask=m))
    np.testing.assert_allclose(got, y @ wo.T + bo, **TOL)
    amap = attn.attention_map(feed(half, x), feed(half, c), m)  # (N, heads, Lq, Lk)
    amap = amap.detach().numpy() if half.name == "torch" else np.asarray(amap)
    np.testing.assert_allclose(amap, a, **TOL)


@pytest.mark.parametrize("context_dim", [6, 8])
def test_cross_attention_equals_the_builtins(rng, context_dim):
    torch.manual_seed(0)
    ours = TC.CrossAttention(8, context_dim, 2).eval()
    x, c = vec(rng, 2, 5, 8), vec(rng, 2, 4, context_dim)
    mask = rng.random((2, 5, 4)) > 0.3
    mask[..., 0] = True
    tx, tc, tm = (torch.as_tensor(a) for a in (x, c, mask))
    with torch.no_grad():
        want = ours(tx, tc, tm).numpy()
        builtin = TS.multihead_to_torch(ours).eval()
        got = builtin(tx, tc, tc, need_weights=False, **TS.torch_mask_kwargs(tm, 2))[0]
    np.testing.assert_allclose(got.numpy(), want, **TOL)
    twin = port_weights(ours, KC.CrossAttention(8, context_dim, 2))
    np.testing.assert_allclose(np.asarray(twin(x, c, mask=mask)), want, **TOL)
    keras_builtin = KS.multihead_to_keras(twin)  # called (query, value)
    np.testing.assert_allclose(
        np.asarray(keras_builtin(x, c, attention_mask=mask)), want, **TOL
    )


# -- parity torch -> Keras ------------------------------------------------------------


@pytest.mark.parametrize(
    "name,args,shapes",
    [
        ("FiLM", (4, 6), [(2, 6, 7, 5), (2, 4)]),
        ("FiLM", (4, 6), [(2, 6, 1, 1), (2, 4)]),
        ("FiLM", (4, 6), [(2, 6), (2, 4)]),
        ("GatedMultimodalUnit", ((5, 7), 4), [(3, 5), (3, 7)]),
        ("LowRankBilinear", ((5, 7), 4), [(3, 5), (3, 7)]),
        ("LowRankBilinear", ((8, 3), 6, 2), [(3, 8), (3, 3)]),
        ("CrossAttention", (8, 6, 4), [(2, 5, 8), (2, 3, 6)]),
    ],
)
def test_parity(rng, name, args, shapes):
    torch.manual_seed(0)
    module = getattr(TC, name)(*args).eval()
    twin = port_weights(module, getattr(KC, name)(*args))
    xs = [vec(rng, *shape) for shape in shapes]  # maps in NCHW

    def run(layer, inputs):
        # FiLM and CrossAttention take (x, other); the others a list [x_1, x_2]
        return layer(*inputs) if name in ("FiLM", "CrossAttention") else layer(inputs)

    with torch.no_grad():
        want = run(module, [torch.as_tensor(a) for a in xs]).numpy()
    got = np.asarray(
        run(twin, [a.transpose(0, 2, 3, 1) if a.ndim == 4 else a for a in xs])
    )
    got = got.transpose(0, 3, 1, 2) if got.ndim == 4 else got
    np.testing.assert_allclose(got, want, **TOL)


# -- bad input ------------------------------------------------------------------------


def test_film_bad_inputs(half, rng):
    film = half.lib.FiLM(4, 6)
    x, cond = feed(half, vec(rng, 2, 6, 3, 3)), feed(half, vec(rng, 2, 4))
    with pytest.raises(
        ValueError,
        match=r"FiLM expects cond of shape \(N, 4\); got "
        r"shape \(2, 5\), i.e. 5 features",
    ):
        film(x, feed(half, vec(rng, 2, 5)))
    with pytest.raises(
        ValueError, match=r"FiLM was built for 6 channels but got shape"
    ):
        film(feed(half, vec(rng, 2, 5, 3, 3)), cond)
    with pytest.raises(
        ValueError,
        match=r"FiLM needs the same batch size N for x and "
        r"cond; .* \(2 vs 3 examples\)",
    ):
        film(x, feed(half, vec(rng, 3, 4)))
    with pytest.raises(
        ValueError,
        match=r"FiLM expects x .* got shape \(2, 6, 3\) "
        r"\(rank 3\)",
    ):
        film(feed(half, vec(rng, 2, 6, 3)), cond)
    with pytest.raises(ValueError, match=r"FiLM: channels must be a positive integer"):
        half.lib.FiLM(4, 0)


@pytest.mark.parametrize("name", ["GatedMultimodalUnit", "LowRankBilinear"])
def test_two_modality_bad_inputs(half, rng, name):
    fuse = getattr(half.lib, name)((5, 7), 4)
    x1, x2 = feed(half, vec(rng, 3, 5)), feed(half, vec(rng, 3, 7))
    with pytest.raises(ValueError, match=rf"{name} takes a list of tensors"):
        fuse(x1)
    with pytest.raises(
        ValueError, match=rf"{name} fuses exactly two modalities.*got 3"
    ):
        fuse([x1, x2, x2])
    with pytest.raises(
        ValueError,
        match=rf"{name} expects x_2 of shape \(N, 7\); got "
        r"shape \(3, 6\)",
    ):
        fuse([x1, feed(half, vec(rng, 3, 6))])
    with pytest.raises(
        ValueError,
        match=rf"{name} needs the same batch size N for x_1 "
        r"and x_2.*\(3 vs 2 examples\)",
    ):
        fuse([x1, feed(half, vec(rng, 2, 7))])
    with pytest.raises(
        ValueError, match=r"got shape \(3, \d, 2, \d\) \(rank 4\)\. Pool"
    ):
        fuse([feed(half, vec(rng, 3, 5, 2, 2)), x2])
    with pytest.raises(
        ValueError,
        match=rf"{name}: in_features must be a pair of "
        r"widths.*got 5",
    ):
        getattr(half.lib, name)(5, 4)


def test_cross_attention_bad_inputs(half, rng):
    with pytest.raises(
        ValueError,
        match=r"CrossAttention: num_heads=3 does not divide "
        r"query_dim=8.*\[1, 2, 4, 8\]",
    ):
        half.lib.CrossAttention(8, 6, 3)
    attn = half.lib.CrossAttention(8, 6, 2)
    x, c = feed(half, vec(rng, 2, 5, 8)), feed(half, vec(rng, 2, 3, 6))
    with pytest.raises(
        ValueError,
        match=r"CrossAttention expects context of shape "
        r"\(N, L, context_dim\) = \(N, L, 6\); got shape \(2, 3, 8\)",
    ):
        attn(x, feed(half, vec(rng, 2, 3, 8)))
    with pytest.raises(
        ValueError,
        match=r"CrossAttention needs the same batch size N "
        r"for x and context.*\(2 vs 4 examples\)",
    ):
        attn(x, feed(half, vec(rng, 4, 3, 6)))
    with pytest.raises(ValueError, match=r"CrossAttention expects x .*rank 2.*batch"):
        attn(feed(half, vec(rng, 5, 8)), c)
    bad = np.ones((2, 5), bool)
    with pytest.raises(
        ValueError,
        match=r"CrossAttention expects a mask of shape "
        r"\(N, Lk\) = \(2, 3\) or \(N, Lq, Lk\) = \(2, 5, 3\).*"
        r"got shape \(2, 5\)",
    ):
        attn(x, c, mask=torch.as_tensor(bad) if half.name == "torch" else bad)
    ints = np.ones((2, 3), np.int32)
    with pytest.raises(ValueError, match=r"boolean mask \(True = attend\); got dtype"):
        attn(x, c, mask=torch.as_tensor(ints) if half.name == "torch" else ints)


def test_low_rank_bilinear_gradients_stay_finite_at_zero(half):
    """sign(s) sqrt(|s|) has an infinite slope at s = 0: the library sets it to 0 there,
    as the MFB code does, in both halves (TensorFlow would otherwise give NaN).
    """
    _, mfb = build(half.name, "LowRankBilinear", (4, 4), 3)
    zeros = np.zeros((2, 4), np.float32)
    if half.name == "torch":
        x = torch.zeros(2, 4, requires_grad=True)
        mfb([x, x]).sum().backward()
        grads = [x.grad] + [p.grad for p in mfb.parameters()]
        assert all(torch.isfinite(g).all() for g in grads)
    else:
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = keras.ops.sum(mfb([zeros, zeros]))
        grads = tape.gradient(loss, mfb.trainable_weights)
        assert all(np.isfinite(np.asarray(g)).all() for g in grads)


def test_keras_layers_in_a_functional_model(rng):
    """Symbolic inputs (unknown batch and lengths), and the replay of the recorded
    calls (x, cond), (x, context) and attention_mask when the model runs.
    """
    x, c = keras.Input((None, 8)), keras.Input((None, 6))
    m, img = keras.Input((None,), dtype="bool"), keras.Input((None, None, 4))
    tokens = KS.MultiHeadSelfAttention(8, 2)(x, mask=m)
    tokens = KC.CrossAttention(8, 6, 2)(tokens, c)
    pooled = keras.ops.mean(tokens, axis=1)
    maps = KC.FiLM(8, 4)(KS.NonLocalBlock(4)(img), pooled)
    model = keras.Model([x, c, m, img], maps)
    mask = rng.random((2, 5)) > 0.3
    mask[:, 0] = True
    out = model([vec(rng, 2, 5, 8), vec(rng, 2, 3, 6), mask, vec(rng, 2, 6, 6, 4)])
    assert tuple(out.shape) == (2, 6, 6, 4)
