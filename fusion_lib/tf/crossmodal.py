"""Cross-modal fusion: one modality conditions, gates, multiplies or attends to another
(NHWC maps, (N, D) vectors, (N, L, D) tokens).

Taught in the chapter on cross-modal fusion.
"""

from __future__ import annotations

import keras

from fusion_lib._checks import (
    NHWC,
    check_features,
    check_heads,
    check_map_or_features,
    check_mask,
    check_pair,
    check_same_batch,
    check_tensors,
    check_tokens,
    check_vectors,
    check_width,
)
from fusion_lib.tf._base import KERAS, FusionLayer
from fusion_lib.tf.selfattention import (
    attention_weights,
    head_mask,
    multi_head_attention,
    split_heads,
)


def _dense(units: int, in_features: int):
    layer = keras.layers.Dense(units)
    layer.build((None, in_features))
    return layer


class FiLM(FusionLayer):
    """Feature-wise linear modulation (Perez et al., 2018): the condition predicts a
    scale and a shift for every channel.

    x: (N, H, W, C) or (N, C), cond: (N, cond_features) -> the shape of x;
    [delta, beta] = cond W + b, one Dense cond_features -> 2 C (outputs :C are delta,
    C: are beta); gamma = 1 + delta; out = gamma * x + beta, broadcast over H and W.
    gamma = 1 + delta is the paper's training trick, and the choice made here: with
    the generator's weights at zero FiLM is the identity, and at a small init it starts
    near it instead of multiplying every feature by about 0. (Plain gamma = cond W + b
    is this layer with 1 subtracted from delta's bias.) Parameters:
    (cond_features + 1) * 2 C. Special cases: delta = 0 is a conditional bias, what
    concatenating cond and applying a linear layer does (W [x; z] = W_x x + W_z z);
    beta = 0 is a conditional scale, multiplicative gating.
    Taught in the chapter on cross-modal fusion.
    """

    def __init__(self, cond_features: int, channels: int, **kwargs):
        super().__init__(**kwargs)
        check_width("FiLM", "cond_features", cond_features)
        check_width("FiLM", "channels", channels)
        self.cond_features, self.channels = cond_features, channels
        self.generator = _dense(2 * channels, cond_features)

    def check_inputs(self, x, cond) -> None:
        shapes = check_tensors("FiLM", {"x": x, "cond": cond}, KERAS)
        check_map_or_features("FiLM", shapes["x"], NHWC, self.channels)
        check_features(
            "FiLM", "cond", shapes["cond"], self.cond_features, "cond_features"
        )
        check_same_batch("FiLM", shapes)

    def __call__(self, x, cond, **kwargs):
        # FusionLayer validates a single input; FiLM validates both, then calls Keras.
        self.check_inputs(x, cond)
        return keras.layers.Layer.__call__(self, x, cond, **kwargs)

    def coefficients(self, cond):
        """(gamma, beta) = (1 + delta, beta): (N, cond_features) -> two (N, C)."""
        delta, beta = keras.ops.split(self.generator(cond), 2, axis=-1)
        return 1 + delta, beta

    def call(self, x, cond):
        gamma, beta = self.coefficients(cond)
        if len(x.shape) == 4:
            gamma, beta = gamma[:, None, None, :], beta[:, None, None, :]
        return gamma * x + beta

    def get_config(self):
        return {
            **super().get_config(),
            "cond_features": self.cond_features,
            "channels": self.channels,
        }


class GatedMultimodalUnit(FusionLayer):
    """Gated multimodal unit (Arevalo et al., 2017): a learned, per-example and
    per-feature convex mix of two modalities.

    xs = [x_1, x_2], x_i: (N, in_features[i]) -> (N, out_features);
    h_i = tanh(x_i W_i + b_i), z = sigmoid([x_1; x_2] W_z + b_z),
    out = z * h_1 + (1 - z) * h_2. W_1, W_2: in_features[i] -> out_features,
    W_z: in_features[0] + in_features[1] -> out_features, all Dense with bias (the
    paper writes the formula without biases). z near 1 picks modality 1, near 0
    modality 2.
    Taught in the chapter on cross-modal fusion.
    """

    def __init__(self, in_features: tuple[int, int], out_features: int, **kwargs):
        super().__init__(**kwargs)
        op = "GatedMultimodalUnit"
        self.in_features = check_pair(op, "in_features", in_features)
        self.out_features = check_width(op, "out_features", out_features)
        self.proj = [_dense(out_features, d) for d in self.in_features]
        self.gate = _dense(out_features, sum(self.in_features))

    def check_inputs(self, xs) -> None:
        check_vectors("GatedMultimodalUnit", xs, KERAS, self.in_features)

    def gates(self, xs):
        """z = sigmoid([x_1; x_2] W_z + b_z): (N, out_features), the weight of x_1."""
        self.check_inputs(xs)
        return keras.ops.sigmoid(self.gate(keras.ops.concatenate(list(xs), axis=-1)))

    def call(self, xs):
        z = self.gates(xs)
        h1, h2 = (keras.ops.tanh(p(x)) for p, x in zip(self.proj, xs))
        return z * h1 + (1 - z) * h2

    def get_config(self):
        return {
            **super().get_config(),
            "in_features": self.in_features,
            "out_features": self.out_features,
        }


def signed_sqrt(s):
    """sign(s) * sqrt(|s|), element-wise, with gradient 0 where s = 0.

    The true derivative 1 / (2 sqrt(|s|)) is infinite at 0; the MFB code's
    sqrt(relu(s)) - sqrt(relu(-s)) gives 0 there in torch but NaN (inf * 0) in
    TensorFlow, so both halves take the square root of 1 wherever s = 0 and discard it.
    Taught in the chapter on cross-modal fusion.
    """
    nonzero = keras.ops.not_equal(s, 0)
    root = keras.ops.sqrt(keras.ops.where(nonzero, keras.ops.abs(s), 1.0))
    return keras.ops.where(nonzero, keras.ops.sign(s) * root, 0.0)


class LowRankBilinear(FusionLayer):
    """Multi-modal factorized bilinear pooling, MFB (Yu et al., 2017): a bilinear
    interaction of two vectors through rank-`factor` factors.

    xs = [x_1, x_2], x_i: (N, in_features[i]) -> (N, out_features), unit L2 norm;
    p = (x_1 U + b_U) * (x_2 V + b_V), U, V Dense in_features[i] -> factor *
    out_features; s_j = sum of p over the j-th group of `factor` consecutive elements
    (sum pooling); s = sign(s) sqrt(|s|) (signed square root); out = s / ||s||_2.
    Each s_j = x_1^T (sum_r u_jr v_jr^T) x_2 + linear terms: a bilinear form of rank
    `factor`. The MFB paper (factor 5, out 1000) puts dropout on p while training; add
    keras.layers.Dropout around this layer for that, it has none.
    Taught in the chapter on cross-modal fusion.
    """

    def __init__(
        self,
        in_features: tuple[int, int],
        out_features: int,
        factor: int = 5,
        **kwargs,
    ):
        super().__init__(**kwargs)
        op = "LowRankBilinear"
        self.in_features = check_pair(op, "in_features", in_features)
        self.out_features = check_width(op, "out_features", out_features)
        self.factor = check_width(op, "factor", factor)
        self.proj = [_dense(factor * out_features, d) for d in self.in_features]

    def check_inputs(self, xs) -> None:
        check_vectors("LowRankBilinear", xs, KERAS, self.in_features)

    def call(self, xs):
        p = self.proj[0](xs[0]) * self.proj[1](xs[1])
        s = keras.ops.sum(
            keras.ops.reshape(p, (-1, self.out_features, self.factor)), axis=-1
        )
        s = signed_sqrt(s)
        norm = keras.ops.sqrt(keras.ops.sum(s * s, axis=-1, keepdims=True))
        return s / keras.ops.maximum(norm, 1e-12)

    def get_config(self):
        return {
            **super().get_config(),
            "in_features": self.in_features,
            "out_features": self.out_features,
            "factor": self.factor,
        }


class CrossAttention(FusionLayer):
    """Multi-head cross-attention: tokens of one modality query the tokens of another.

    x: (N, Lq, query_dim), context: (N, Lk, context_dim) -> (N, Lq, query_dim);
    Q = x W_q + b_q (query_dim -> query_dim), K = context W_k + b_k and
    V = context W_v + b_v (context_dim -> query_dim), split into num_heads heads of
    query_dim // num_heads features, head_i = softmax(Q_i K_i^T / sqrt(query_dim //
    num_heads)) V_i, out = [head_1 ... head_H] W_out + b_out (query_dim -> query_dim).
    mask: optional boolean (N, Lk) (which context tokens exist) or (N, Lq, Lk),
    True = attend; a query with no key to attend gets a zero attention output.
    keras.layers.MultiHeadAttention(num_heads, key_dim=query_dim // num_heads) computes
    the same (see `multihead_to_keras`), called as mha(x, context): (query, value).
    Taught in the chapter on cross-modal fusion.
    """

    def __init__(self, query_dim: int, context_dim: int, num_heads: int, **kwargs):
        super().__init__(**kwargs)
        op = "CrossAttention"
        check_width(op, "query_dim", query_dim)
        check_width(op, "context_dim", context_dim)
        check_heads(op, "query_dim", query_dim, num_heads)
        self.query_dim, self.context_dim = query_dim, context_dim
        self.num_heads = num_heads
        self.q_proj = _dense(query_dim, query_dim)
        self.k_proj = _dense(query_dim, context_dim)
        self.v_proj = _dense(query_dim, context_dim)
        self.out_proj = _dense(query_dim, query_dim)

    def check_inputs(self, x, context, mask=None) -> None:
        op = "CrossAttention"
        shapes = check_tensors(op, {"x": x, "context": context}, KERAS)
        check_tokens(op, "x", shapes["x"], self.query_dim, "query_dim")
        check_tokens(op, "context", shapes["context"], self.context_dim, "context_dim")
        check_same_batch(op, shapes)
        (n, lq, _), lk = shapes["x"], shapes["context"][1]
        check_mask(op, mask, KERAS, n, lq, lk)

    def __call__(self, x, context, mask=None, **kwargs):
        # FusionLayer validates a single input; this validates all three, then calls
        # Keras, passing the mask as attention_mask (Keras reserves `mask`; a
        # functional model replays the call with attention_mask).
        mask = kwargs.pop("attention_mask", mask)
        self.check_inputs(x, context, mask)
        return keras.layers.Layer.__call__(
            self, x, context, attention_mask=mask, **kwargs
        )

    def attention_map(self, x, context, mask=None):
        """Every head's weights on the context: (N, num_heads, Lq, Lk)."""
        self.check_inputs(x, context, mask)
        h = self.num_heads
        q, k = split_heads(self.q_proj(x), h), split_heads(self.k_proj(context), h)
        return attention_weights(q, k, head_mask(mask))

    def call(self, x, context, attention_mask=None):
        q, k, v = self.q_proj(x), self.k_proj(context), self.v_proj(context)
        return self.out_proj(
            multi_head_attention(q, k, v, self.num_heads, attention_mask)
        )

    def get_config(self):
        return {
            **super().get_config(),
            "query_dim": self.query_dim,
            "context_dim": self.context_dim,
            "num_heads": self.num_heads,
        }
