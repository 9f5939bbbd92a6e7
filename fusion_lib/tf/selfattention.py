"""Self-attention: scaled dot-product attention, multi-head self-attention, the
non-local block (NHWC maps, (N, L, E) sequences).

Taught in the chapter on self-attention.
"""

from __future__ import annotations

import keras
import numpy as np

from fusion_lib._checks import (
    check_attention,
    check_attention_module,
    check_heads,
    check_input_map,
    check_mask,
    check_port_mask,
    check_tensors,
    check_tokens,
    check_width,
)
from fusion_lib.tf._base import KERAS, FusionLayer


def attention_weights(q, k, mask=None):
    """The attention matrix softmax(Q K^T / sqrt(d)), rows over the keys.

    q: (..., Lq, d), k: (..., Lk, d) -> (..., Lq, Lk), every row sums to 1.
    mask: boolean, broadcastable to (..., Lq, Lk), True = attend (the polarity of
    keras.layers.MultiHeadAttention's attention_mask). A masked score is replaced by the
    most negative float before the softmax, so its weight is exactly 0; a query whose
    row is all False gets weight 0 everywhere (zero output), as torch's
    F.scaled_dot_product_attention does (keras.layers.MultiHeadAttention spreads such a
    row uniformly instead).
    Taught in the chapter on self-attention.
    """
    check_attention("attention_weights", KERAS, {"q": q, "k": k}, mask)
    scale = q.shape[-1] ** -0.5
    scores = keras.ops.matmul(q, keras.ops.swapaxes(k, -1, -2)) * scale
    if mask is None:
        return keras.ops.softmax(scores, axis=-1)
    lowest = np.finfo(keras.backend.standardize_dtype(scores.dtype)).min
    scores = keras.ops.where(mask, scores, lowest)
    anyone = keras.ops.any(mask, axis=-1, keepdims=True)
    return keras.ops.softmax(scores, axis=-1) * keras.ops.cast(anyone, scores.dtype)


def scaled_dot_product_attention(q, k, v, mask=None):
    """Scaled dot-product attention written out: softmax(Q K^T / sqrt(d)) V.

    q: (..., Lq, d), k: (..., Lk, d), v: (..., Lk, dv) -> (..., Lq, dv); the leading
    axes (batch, heads) must agree. mask: boolean, broadcastable to (..., Lq, Lk),
    True = attend; see `attention_weights`. Unlike keras.layers.Attention (no 1/sqrt(d)
    by default), it always scales.
    Taught in the chapter on self-attention.
    """
    op = "scaled_dot_product_attention"
    check_attention(op, KERAS, {"q": q, "k": k, "v": v}, mask)
    return keras.ops.matmul(attention_weights(q, k, mask), v)


def split_heads(x, num_heads: int):
    """(N, L, E) -> (N, num_heads, L, E // num_heads): head h gets features
    h * E // num_heads ... (h + 1) * E // num_heads - 1, as in nn.MultiheadAttention.
    Taught in the chapter on self-attention.
    """
    shape = keras.ops.shape(x)
    x = keras.ops.reshape(x, (shape[0], shape[1], num_heads, x.shape[-1] // num_heads))
    return keras.ops.transpose(x, (0, 2, 1, 3))


def merge_heads(x):
    """(N, num_heads, L, d) -> (N, L, num_heads * d), the inverse of split_heads.
    Taught in the chapter on self-attention.
    """
    shape = keras.ops.shape(x)
    x = keras.ops.transpose(x, (0, 2, 1, 3))
    return keras.ops.reshape(x, (shape[0], shape[2], x.shape[2] * x.shape[3]))


def head_mask(mask):
    """A (N, Lk) or (N, Lq, Lk) mask made broadcastable over heads: (N, 1, 1|Lq, Lk).
    Taught in the chapter on self-attention.
    """
    if mask is None:
        return None
    if len(mask.shape) == 2:
        return mask[:, None, None, :]
    return mask[:, None]


def multi_head_attention(q, k, v, num_heads: int, mask=None):
    """Attention in num_heads subspaces of projected q (N, Lq, E), k, v (N, Lk, E) ->
    (N, Lq, E), the heads concatenated; scaled_dot_product_attention in each head.
    Taught in the chapter on self-attention.
    """
    out = keras.ops.matmul(
        attention_weights(
            split_heads(q, num_heads), split_heads(k, num_heads), head_mask(mask)
        ),
        split_heads(v, num_heads),
    )
    return merge_heads(out)


class MultiHeadSelfAttention(FusionLayer):
    """Multi-head self-attention over a token sequence (Vaswani et al., 2017).

    x: (N, L, E) -> (N, L, E); [Q; K; V] = x W_in + b_in with one packed Dense
    E -> 3E (columns [W_q, W_k, W_v]), each split into num_heads heads of
    E // num_heads features, head_i = softmax(Q_i K_i^T / sqrt(E // num_heads)) V_i,
    out = [head_1 ... head_H] W_out + b_out (E -> E).
    mask: optional boolean (N, L) (which tokens exist) or (N, L, L) (one row per
    query), True = attend, the polarity of keras.layers.MultiHeadAttention's
    attention_mask, which takes (query, value, key) in that order and wants the
    (N, L, L) form: see `multihead_to_keras` and `keras_mask`. A query with no key to
    attend gets a zero attention output (the built-in spreads it uniformly).
    Taught in the chapter on self-attention.
    """

    def __init__(self, embed_dim: int, num_heads: int, **kwargs):
        super().__init__(**kwargs)
        check_width("MultiHeadSelfAttention", "embed_dim", embed_dim)
        check_heads("MultiHeadSelfAttention", "embed_dim", embed_dim, num_heads)
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.in_proj = keras.layers.Dense(3 * embed_dim)
        self.in_proj.build((None, embed_dim))
        self.out_proj = keras.layers.Dense(embed_dim)
        self.out_proj.build((None, embed_dim))

    def check_inputs(self, x, mask=None) -> None:
        op = "MultiHeadSelfAttention"
        shape = check_tensors(op, {"x": x}, KERAS)["x"]
        check_tokens(op, "x", shape, self.embed_dim, "embed_dim")
        n, length, _ = shape
        check_mask(op, mask, KERAS, n, length, length)

    def __call__(self, x, mask=None, **kwargs):
        # Keras treats a call argument named `mask` as its own masking metadata, so
        # the mask reaches `call` as attention_mask (which is also how a functional
        # model replays this call).
        mask = kwargs.pop("attention_mask", mask)
        self.check_inputs(x, mask)
        return super().__call__(x, attention_mask=mask, **kwargs)

    def qkv(self, x):
        """(N, L, E) -> q, k, v, each (N, num_heads, L, E // num_heads)."""
        shape = keras.ops.shape(x)
        # one reshape and transpose of the packed projection splits q, k, v and heads
        h = self.num_heads
        packed = keras.ops.reshape(
            self.in_proj(x), (shape[0], shape[1], 3, h, self.embed_dim // h)
        )
        packed = keras.ops.transpose(packed, (2, 0, 3, 1, 4))
        # unstack, not packed[0], packed[1], packed[2]: TensorFlow differentiates each
        # index into a full-size tensor of zeros and sums the three (slower training)
        q, k, v = keras.ops.unstack(packed, 3, axis=0)
        return q, k, v

    def attention_map(self, x, mask=None):
        """The attention weights of every head: (N, L, E) -> (N, num_heads, L, L)."""
        self.check_inputs(x, mask)
        q, k, _ = self.qkv(x)
        return attention_weights(q, k, head_mask(mask))

    def call(self, x, attention_mask=None):
        q, k, v = self.qkv(x)
        out = keras.ops.matmul(attention_weights(q, k, head_mask(attention_mask)), v)
        return self.out_proj(merge_heads(out))

    def get_config(self):
        return {
            **super().get_config(),
            "embed_dim": self.embed_dim,
            "num_heads": self.num_heads,
        }


def keras_mask(mask, query_length: int):
    """Our mask (True = attend) as keras.layers.MultiHeadAttention's attention_mask
    (also True = attend), which must broadcast to (N, Lq, Lk): an (N, 1, Lk) mask does,
    an (N, Lk) one does not. (N, Lk) -> (N, Lq, Lk); an (N, Lq, Lk) mask as it is.
    Taught in the chapter on self-attention.
    """
    check_port_mask("keras_mask", mask, KERAS)
    check_width("keras_mask", "query_length", query_length)
    if mask is None or len(mask.shape) == 3:
        return mask
    return keras.ops.repeat(mask[:, None, :], query_length, axis=1)


def multihead_to_keras(attn) -> keras.layers.MultiHeadAttention:
    """The built-in twin of a MultiHeadSelfAttention or CrossAttention: a
    keras.layers.MultiHeadAttention(num_heads, key_dim=E // num_heads) holding the same
    weights (REFERENCE trap 12): W_q = kernel[:, :E] reshaped (E, H, E // H), the
    same for k and v, biases (H, E // H), output kernel (H, E // H, E).

    Call it as mha(x, x) (self) or mha(x, context) (cross): the order is (query, value,
    key) and key defaults to value; pass attention_mask=keras_mask(mask, Lq).
    Taught in the chapter on self-attention.
    """
    from fusion_lib.tf.crossmodal import CrossAttention  # it imports this module

    classes = (MultiHeadSelfAttention, CrossAttention)
    check_attention_module("multihead_to_keras", attn, classes)
    h = attn.num_heads
    if hasattr(attn, "in_proj"):  # MultiHeadSelfAttention
        e = kdim = attn.embed_dim
        kernel, bias = (w.numpy() for w in attn.in_proj.weights)
        kernels = [kernel[:, i * e : (i + 1) * e] for i in range(3)]
        biases = [bias[i * e : (i + 1) * e] for i in range(3)]
    else:  # CrossAttention: three Dense layers
        e, kdim = attn.query_dim, attn.context_dim
        projs = (attn.q_proj, attn.k_proj, attn.v_proj)
        kernels = [p.kernel.numpy() for p in projs]
        biases = [p.bias.numpy() for p in projs]
    mha = keras.layers.MultiHeadAttention(h, key_dim=e // h)
    mha.build((None, None, e), (None, None, kdim))
    weights = []
    for kernel, bias in zip(kernels, biases):
        weights += [kernel.reshape(kernel.shape[0], h, e // h), bias.reshape(h, e // h)]
    weights += [
        attn.out_proj.kernel.numpy().reshape(h, e // h, e),
        attn.out_proj.bias.numpy(),
    ]
    mha.set_weights(weights)
    return mha


class NonLocalBlock(FusionLayer):
    """Non-local block: every pixel attends to every (sub-sampled) pixel, plus a
    residual (Wang et al., 2018), in its original embedded-Gaussian form.

    x: (N, H, W, C) -> (N, H, W, C); theta, phi, g: 1x1 convs C -> inner (with bias),
    inner = inner_channels or C // 2; with subsample, phi(x) and g(x) are max-pooled
    2x2 (stride 2), so the H*W queries see (H // 2) * (W // 2) keys;
    A = softmax_keys(theta(x)^T phi(x) / sqrt(inner)), y = A g(x) (tokens in row-major
    H*W order), out = x + BN(W y) with W a 1x1 conv inner -> C (with bias) and the
    BatchNorm's gamma initialised to 0, so the block starts as the identity and can be
    dropped into a pretrained network. The pooling follows the paper's text (after phi
    and g); a popular PyTorch port omits the 1/sqrt(inner) scaling.
    Taught in the chapter on self-attention.
    """

    def __init__(
        self,
        channels: int,
        inner_channels: int | None = None,
        subsample: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        op = "NonLocalBlock"
        check_width(op, "channels", channels)
        if inner_channels is None and channels < 2:
            raise ValueError(
                f"{op}(channels={channels}) would reduce to channels // 2 = 0 inner "
                "channels; pass inner_channels explicitly."
            )
        if inner_channels is None:
            inner_channels = channels // 2
        inner = check_width(op, "inner_channels", inner_channels)
        self.channels, self.inner_channels, self.subsample = channels, inner, subsample
        self.theta = keras.layers.Conv2D(inner, 1)
        self.phi = keras.layers.Conv2D(inner, 1)
        self.g = keras.layers.Conv2D(inner, 1)
        for conv in (self.theta, self.phi, self.g):
            conv.build((None, None, None, channels))
        self.out = keras.layers.Conv2D(channels, 1)
        self.out.build((None, None, None, inner))
        # gamma = 0: the block starts as the identity. eps and momentum: PyTorch's.
        self.bn = keras.layers.BatchNormalization(
            epsilon=1e-5, momentum=0.9, gamma_initializer="zeros"
        )
        self.bn.build((None, None, None, channels))

    def check_inputs(self, x) -> None:
        check_input_map("NonLocalBlock", x, KERAS, self.channels)
        h, w = x.shape[1:3]
        if self.subsample and ((h is not None and h < 2) or (w is not None and w < 2)):
            raise ValueError(
                f"NonLocalBlock(subsample=True) max-pools keys 2x2 and needs maps of "
                f"at least 2x2; got shape {tuple(x.shape)} ({h}x{w}). Build it with "
                "subsample=False for such small maps."
            )

    def _keys(self, conv, x):
        y = conv(x)
        return keras.ops.max_pool(y, 2, 2, padding="valid") if self.subsample else y

    @staticmethod
    def _tokens(x):
        shape = keras.ops.shape(x)
        return keras.ops.reshape(x, (shape[0], shape[1] * shape[2], x.shape[-1]))

    def affinity(self, x):
        """The attention matrix A: (N, H, W, C) -> (N, H*W, H'*W'), rows sum to 1."""
        self.check_inputs(x)
        theta = self._tokens(self.theta(x))  # (N, HW, inner)
        phi = self._tokens(self._keys(self.phi, x))  # (N, H'W', inner)
        return attention_weights(theta, phi)

    def call(self, x, training=None):
        a = self.affinity(x)
        g = self._tokens(self._keys(self.g, x))  # (N, H'W', inner)
        shape = keras.ops.shape(x)
        y = keras.ops.reshape(
            keras.ops.matmul(a, g), (shape[0], shape[1], shape[2], self.inner_channels)
        )
        return x + self.bn(self.out(y), training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "channels": self.channels,
            "inner_channels": self.inner_channels,
            "subsample": self.subsample,
        }
