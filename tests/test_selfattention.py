"""Self-attention: scaled dot-product attention from scratch, MultiHeadSelfAttention
against torch.nn.MultiheadAttention and keras.layers.MultiHeadAttention, the non-local
block; parity torch -> Keras by weight porting and the library's bad-input errors.

Tolerance rtol = atol = 1e-5 per operator (float32 on CPU; REFERENCE section 3).
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

import torch.nn.functional as F  # noqa: E402
from test_parity import randomize_batchnorm  # noqa: E402

import fusion_lib.tf.selfattention as KS  # noqa: E402
import fusion_lib.torch.selfattention as TS  # noqa: E402
from fusion_lib.port import port_multihead_attention, port_weights  # noqa: E402

TOL = dict(rtol=1e-5, atol=1e-5)
LIBS = {"torch": TS, "tf": KS}


@pytest.fixture(params=["torch", "tf"])
def fw(request):
    return request.param


def as_input(name, a):
    """numpy -> the framework's tensor, for sequences and masks (no layout change)."""
    if name == "torch":
        return torch.as_tensor(a)
    return keras.ops.convert_to_tensor(a)


def to_numpy(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def padded(rng, n, lk, lq=None):
    """A boolean mask, True = attend; every row keeps at least one key."""
    shape = (n, lk) if lq is None else (n, lq, lk)
    mask = rng.random(shape) > 0.4
    mask[..., 0] = True
    return mask


# -- scaled dot-product attention -----------------------------------------------------


@pytest.mark.parametrize("masked", [False, True])
def test_sdpa_matches_torch_functional(fw, rng, masked):
    q, k = rng.normal(size=(2, 3, 5, 8)), rng.normal(size=(2, 3, 7, 8))
    v = rng.normal(size=(2, 3, 7, 4))
    q, k, v = (a.astype(np.float32) for a in (q, k, v))
    mask = rng.random((2, 1, 5, 7)) > 0.5 if masked else None
    if masked:
        mask[0, 0, 2] = False  # a query with nothing to attend: zero output in both
    want = F.scaled_dot_product_attention(
        *(torch.as_tensor(a) for a in (q, k, v)),
        attn_mask=None if mask is None else torch.as_tensor(mask),
    ).numpy()
    lib = LIBS[fw]
    args = [as_input(fw, a) for a in (q, k, v)]
    m = None if mask is None else as_input(fw, mask)
    got = to_numpy(lib.scaled_dot_product_attention(*args, mask=m))
    np.testing.assert_allclose(got, want, **TOL)
    if masked:
        np.testing.assert_array_equal(got[0, :, 2], 0.0)


@pytest.mark.parametrize("masked", [False, True])
def test_sdpa_matches_keras_ops(fw, rng, masked):
    q, k, v = (rng.normal(size=(2, 3, 6, 4)).astype(np.float32) for _ in range(3))
    mask = padded(rng, 2, 6, lq=6)[:, None] if masked else None
    # keras.ops.dot_product_attention takes (batch, length, heads, dim)
    bthd = [np.swapaxes(a, 1, 2) for a in (q, k, v)]
    want = np.swapaxes(
        np.asarray(keras.ops.dot_product_attention(*bthd, mask=mask)), 1, 2
    )
    m = None if mask is None else as_input(fw, mask)
    got = LIBS[fw].scaled_dot_product_attention(
        *(as_input(fw, a) for a in (q, k, v)), mask=m
    )
    np.testing.assert_allclose(to_numpy(got), want, **TOL)


def test_attention_weights_are_a_softmax_over_unmasked_keys(fw, rng):
    q, k = (rng.normal(size=(2, 5, 4)).astype(np.float32) for _ in range(2))
    mask = padded(rng, 2, 5, lq=5)
    w = to_numpy(LIBS[fw].attention_weights(as_input(fw, q), as_input(fw, k)))
    scores = q @ k.transpose(0, 2, 1) / 2.0  # sqrt(d) = 2
    want = np.exp(scores - scores.max(-1, keepdims=True))
    np.testing.assert_allclose(w, want / want.sum(-1, keepdims=True), **TOL)
    w = to_numpy(
        LIBS[fw].attention_weights(as_input(fw, q), as_input(fw, k), as_input(fw, mask))
    )
    np.testing.assert_array_equal(w[~mask], 0.0)
    np.testing.assert_allclose(w.sum(-1), 1.0, **TOL)


# -- MultiHeadSelfAttention -----------------------------------------------------------


def test_mhsa_shapes_and_parameters(fw, rng):
    attn = LIBS[fw].MultiHeadSelfAttention(12, 3)
    x = as_input(fw, rng.normal(size=(2, 5, 12)).astype(np.float32))
    assert tuple(attn(x).shape) == (2, 5, 12)
    assert tuple(attn.attention_map(x).shape) == (2, 3, 5, 5)
    n = (
        sum(p.numel() for p in attn.parameters())
        if fw == "torch"
        else attn.count_params()
    )
    assert n == 4 * 12 * 12 + 4 * 12


@pytest.mark.parametrize("mask_kind", [None, "padding", "full"])
def test_mhsa_equals_torch_multihead_attention(rng, mask_kind):
    torch.manual_seed(0)
    ours = TS.MultiHeadSelfAttention(16, 4).eval()
    builtin = TS.multihead_to_torch(ours).eval()
    x = torch.as_tensor(rng.normal(size=(3, 6, 16)).astype(np.float32))
    mask = {None: None, "padding": padded(rng, 3, 6), "full": padded(rng, 3, 6, 6)}[
        mask_kind
    ]
    mask = None if mask is None else torch.as_tensor(mask)
    with torch.no_grad():
        want = builtin(x, x, x, need_weights=False, **TS.torch_mask_kwargs(mask, 4))[0]
        np.testing.assert_allclose(ours(x, mask).numpy(), want.numpy(), **TOL)
        # and back: a built-in module turned into ours
        back = TS.multihead_from_torch(builtin)
        np.testing.assert_allclose(back(x, mask).numpy(), want.numpy(), **TOL)


@pytest.mark.parametrize("mask_kind", [None, "padding", "full"])
def test_mhsa_equals_keras_multihead_attention(rng, mask_kind):
    keras.utils.set_random_seed(0)
    ours = KS.MultiHeadSelfAttention(16, 4)
    builtin = KS.multihead_to_keras(ours)
    x = rng.normal(size=(3, 6, 16)).astype(np.float32)
    mask = {None: None, "padding": padded(rng, 3, 6), "full": padded(rng, 3, 6, 6)}[
        mask_kind
    ]
    # Keras' order is (query, value, key); attention_mask has our polarity
    want = builtin(x, x, attention_mask=KS.keras_mask(mask, 6))
    np.testing.assert_allclose(np.asarray(ours(x, mask)), np.asarray(want), **TOL)


@pytest.mark.parametrize("mask_kind", [None, "padding", "full"])
def test_mhsa_parity_torch_to_keras(rng, mask_kind):
    torch.manual_seed(0)
    ours = TS.MultiHeadSelfAttention(16, 2).eval()
    twin = port_weights(ours, KS.MultiHeadSelfAttention(16, 2))
    x = rng.normal(size=(2, 7, 16)).astype(np.float32)
    mask = {None: None, "padding": padded(rng, 2, 7), "full": padded(rng, 2, 7, 7)}[
        mask_kind
    ]
    with torch.no_grad():
        want = ours(
            torch.as_tensor(x), None if mask is None else torch.as_tensor(mask)
        ).numpy()
    np.testing.assert_allclose(np.asarray(twin(x, mask)), want, **TOL)
    np.testing.assert_allclose(
        np.asarray(twin.attention_map(x, mask)),
        ours.attention_map(
            torch.as_tensor(x), None if mask is None else torch.as_tensor(mask)
        )
        .detach()
        .numpy(),
        **TOL,
    )


@pytest.mark.parametrize("kdim", [16, 6])
def test_port_torch_multihead_into_keras_multihead(rng, kdim):
    """REFERENCE trap 12: the per-head kernels of keras.layers.MultiHeadAttention."""
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(16, 4, kdim=kdim, vdim=kdim, batch_first=True)
    layer = keras.layers.MultiHeadAttention(4, key_dim=4)
    layer.build((None, None, 16), (None, None, kdim))
    port_multihead_attention(mha, layer)
    x = rng.normal(size=(2, 5, 16)).astype(np.float32)
    c = rng.normal(size=(2, 3, kdim)).astype(np.float32)
    mask = padded(rng, 2, 3)
    with torch.no_grad():
        want = mha(
            torch.as_tensor(x),
            torch.as_tensor(c),
            torch.as_tensor(c),
            key_padding_mask=~torch.as_tensor(mask),  # torch: True = ignore
            need_weights=False,
        )[0].numpy()
    got = layer(x, c, attention_mask=KS.keras_mask(mask, 5))  # Keras: True = attend
    np.testing.assert_allclose(np.asarray(got), want, **TOL)


# -- NonLocalBlock --------------------------------------------------------------------


@pytest.mark.parametrize("subsample", [True, False])
def test_non_local_block_starts_as_the_identity(half, rng, subsample):
    block = half.lib.NonLocalBlock(8, subsample=subsample)
    x = half.tensor(rng.normal(size=(2, 8, 6, 5)))
    for training in (False, True):  # BN's gamma = 0 (and beta = 0) in both modes
        if half.name == "torch":
            block.train(training)
            out = block(x)
        else:
            out = block(x, training=training)
        np.testing.assert_array_equal(half.numpy(out), half.numpy(x))


def non_local_numpy(module, x, subsample):
    """The embedded-Gaussian non-local block in numpy, from the torch weights."""

    def conv1x1(conv, a):
        w = conv.weight.detach().numpy()[:, :, 0, 0]
        return (
            np.einsum("oc,nchw->nohw", w, a) + conv.bias.detach().numpy()[:, None, None]
        )

    def pool(a):
        n, c, h, w = a.shape
        a = a[:, :, : h // 2 * 2, : w // 2 * 2]
        return a.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))

    theta = conv1x1(module.theta, x)
    phi, g = conv1x1(module.phi, x), conv1x1(module.g, x)
    if subsample:
        phi, g = pool(phi), pool(g)
    n, inner, h, w = theta.shape
    theta = theta.reshape(n, inner, -1).transpose(0, 2, 1)
    phi, g = phi.reshape(n, inner, -1), g.reshape(n, inner, -1).transpose(0, 2, 1)
    scores = theta @ phi / np.sqrt(inner)
    a = np.exp(scores - scores.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    y = (a @ g).transpose(0, 2, 1).reshape(n, inner, h, w)
    z = conv1x1(module.out, y)
    bn = module.bn
    mean, var = bn.running_mean.numpy(), bn.running_var.numpy()
    gamma, beta = bn.weight.detach().numpy(), bn.bias.detach().numpy()
    z = (z - mean[:, None, None]) / np.sqrt(var[:, None, None] + bn.eps)
    return x + gamma[:, None, None] * z + beta[:, None, None], a


@pytest.mark.parametrize("subsample", [True, False])
@pytest.mark.parametrize("hw", [(6, 6), (7, 5)])
def test_non_local_block_formula_and_parity(rng, subsample, hw):
    torch.manual_seed(0)
    block = randomize_batchnorm(TS.NonLocalBlock(8, subsample=subsample)).eval()
    x = rng.normal(size=(2, 8, *hw)).astype(np.float32)
    want, a = non_local_numpy(block, x, subsample)
    with torch.no_grad():
        got = block(torch.as_tensor(x)).numpy()
        aff = block.affinity(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    keys = (hw[0] // 2) * (hw[1] // 2) if subsample else hw[0] * hw[1]
    assert aff.shape == (2, hw[0] * hw[1], keys)
    np.testing.assert_allclose(aff, a, **TOL)
    twin = port_weights(block, KS.NonLocalBlock(8, subsample=subsample))
    out = np.asarray(twin(x.transpose(0, 2, 3, 1), training=False))
    np.testing.assert_allclose(out.transpose(0, 3, 1, 2), got, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        np.asarray(twin.affinity(x.transpose(0, 2, 3, 1))), aff, **TOL
    )


def test_non_local_block_inner_channels(half):
    assert half.lib.NonLocalBlock(16).inner_channels == 8
    assert half.lib.NonLocalBlock(16, 4).inner_channels == 4


# -- bad input ------------------------------------------------------------------------


def test_sdpa_bad_shapes(fw, rng):
    lib = LIBS[fw]

    def t(*shape):
        return as_input(fw, rng.normal(size=shape).astype(np.float32))

    with pytest.raises(
        ValueError, match=r"scaled_dot_product_attention: q and k .*d=8"
    ):
        lib.scaled_dot_product_attention(t(2, 5, 8), t(2, 6, 4), t(2, 6, 4))
    with pytest.raises(ValueError, match=r"k and v must hold the same .*Lk=6.*Lk=5"):
        lib.scaled_dot_product_attention(t(2, 5, 8), t(2, 6, 8), t(2, 5, 8))
    with pytest.raises(ValueError, match=r"same leading axes .*q \(2, 5, 8\)"):
        lib.scaled_dot_product_attention(t(2, 5, 8), t(3, 6, 8), t(3, 6, 8))
    with pytest.raises(
        ValueError, match=r"must broadcast to .*\(2, 5, 6\); got .*\(5, 5\)"
    ):
        mask = as_input(fw, np.ones((5, 5), bool))
        lib.scaled_dot_product_attention(t(2, 5, 8), t(2, 6, 8), t(2, 6, 8), mask)
    with pytest.raises(ValueError, match=r"boolean mask \(True = attend\); got dtype"):
        mask = as_input(fw, np.ones((2, 5, 6), np.float32))
        lib.scaled_dot_product_attention(t(2, 5, 8), t(2, 6, 8), t(2, 6, 8), mask)


def test_mhsa_heads_must_divide(fw):
    with pytest.raises(
        ValueError,
        match=r"MultiHeadSelfAttention: num_heads=5 does not divide embed_dim=12.*"
        r"\[1, 2, 3, 4, 6, 12\]",
    ):
        LIBS[fw].MultiHeadSelfAttention(12, 5)


def test_mhsa_bad_inputs(fw, rng):
    attn = LIBS[fw].MultiHeadSelfAttention(8, 2)
    with pytest.raises(
        ValueError,
        match=r"MultiHeadSelfAttention expects x of shape \(N, L, embed_dim\) = "
        r"\(N, L, 8\); got shape \(2, 5, 6\).*embed_dim=6",
    ):
        attn(as_input(fw, rng.normal(size=(2, 5, 6)).astype(np.float32)))
    with pytest.raises(
        ValueError, match=r"got shape \(2, 8, 4, 4\) \(rank 4\)\. Flatten"
    ):
        attn(as_input(fw, rng.normal(size=(2, 8, 4, 4)).astype(np.float32)))
    x = as_input(fw, rng.normal(size=(2, 5, 8)).astype(np.float32))
    with pytest.raises(
        ValueError, match=r"mask of shape \(N, Lk\) = \(2, 5\).*got shape \(2, 4\)"
    ):
        attn(x, as_input(fw, np.ones((2, 4), bool)))


def test_non_local_block_bad_inputs(half, rng):
    with pytest.raises(ValueError, match=r"NonLocalBlock was built for 8 channels"):
        half.lib.NonLocalBlock(8)(half.tensor(rng.normal(size=(2, 6, 4, 4))))
    with pytest.raises(
        ValueError, match=r"needs maps of at least 2x2.*\(1x5\).*subsample=False"
    ):
        half.lib.NonLocalBlock(4)(half.tensor(rng.normal(size=(2, 4, 1, 5))))
    with pytest.raises(ValueError, match=r"channels // 2 = 0 inner channels"):
        half.lib.NonLocalBlock(1)
