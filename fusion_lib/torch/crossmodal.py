"""Cross-modal fusion: one modality conditions, gates, multiplies or attends to another
(NCHW maps, (N, D) vectors, (N, L, D) tokens).

Taught in the chapter on cross-modal fusion.
"""

from __future__ import annotations

import torch
from torch import nn

from fusion_lib._checks import (
    NCHW,
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
from fusion_lib.torch._base import TORCH, like_weights
from fusion_lib.torch.selfattention import (
    attention_weights,
    head_mask,
    multi_head_attention,
    split_heads,
)


class FiLM(nn.Module):
    """Feature-wise linear modulation (Perez et al., 2018): the condition predicts a
    scale and a shift for every channel.

    x: (N, C, H, W) or (N, C), cond: (N, cond_features) -> the shape of x;
    [delta, beta] = W cond + b, one Linear cond_features -> 2 C (outputs :C are delta,
    C: are beta); gamma = 1 + delta; out = gamma * x + beta, broadcast over H and W.
    gamma = 1 + delta is the paper's training trick, and the choice made here: with
    the generator's weights at zero FiLM is the identity, and at a small init it starts
    near it instead of multiplying every feature by about 0. (Plain gamma = W cond + b
    is this module with 1 subtracted from delta's bias.) Parameters:
    (cond_features + 1) * 2 C. Special cases: delta = 0 is a conditional bias, what
    concatenating cond and applying a linear layer does (W [x; z] = W_x x + W_z z);
    beta = 0 is a conditional scale, multiplicative gating.
    Taught in the chapter on cross-modal fusion.
    """

    def __init__(self, cond_features: int, channels: int):
        super().__init__()
        check_width("FiLM", "cond_features", cond_features)
        check_width("FiLM", "channels", channels)
        self.cond_features, self.channels = cond_features, channels
        self.generator = nn.Linear(cond_features, 2 * channels)

    def check_inputs(self, x, cond) -> None:
        shapes = check_tensors("FiLM", {"x": x, "cond": cond}, TORCH)
        check_map_or_features("FiLM", shapes["x"], NCHW, self.channels)
        check_features(
            "FiLM", "cond", shapes["cond"], self.cond_features, "cond_features"
        )
        check_same_batch("FiLM", shapes)

    def coefficients(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(gamma, beta) = (1 + delta, beta): (N, cond_features) -> two (N, C)."""
        cond = like_weights(cond, self.generator.weight)
        delta, beta = self.generator(cond).chunk(2, dim=-1)
        return 1 + delta, beta

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        self.check_inputs(x, cond)
        x = like_weights(x, self.generator.weight)
        gamma, beta = self.coefficients(cond)
        if x.dim() == 4:
            gamma, beta = gamma[:, :, None, None], beta[:, :, None, None]
        return gamma * x + beta

    def extra_repr(self) -> str:
        return f"cond_features={self.cond_features}, channels={self.channels}"


class GatedMultimodalUnit(nn.Module):
    """Gated multimodal unit (Arevalo et al., 2017): a learned, per-example and
    per-feature convex mix of two modalities.

    xs = [x_1, x_2], x_i: (N, in_features[i]) -> (N, out_features);
    h_i = tanh(W_i x_i + b_i), z = sigmoid(W_z [x_1; x_2] + b_z),
    out = z * h_1 + (1 - z) * h_2. W_1, W_2: in_features[i] -> out_features,
    W_z: in_features[0] + in_features[1] -> out_features, all Linear with bias (the
    paper writes the formula without biases). z near 1 picks modality 1, near 0
    modality 2.
    Taught in the chapter on cross-modal fusion.
    """

    def __init__(self, in_features: tuple[int, int], out_features: int):
        super().__init__()
        op = "GatedMultimodalUnit"
        self.in_features = check_pair(op, "in_features", in_features)
        self.out_features = check_width(op, "out_features", out_features)
        self.proj = nn.ModuleList(nn.Linear(d, out_features) for d in self.in_features)
        self.gate = nn.Linear(sum(self.in_features), out_features)

    def check_inputs(self, xs) -> None:
        check_vectors("GatedMultimodalUnit", xs, TORCH, self.in_features)

    def gates(self, xs: list[torch.Tensor]) -> torch.Tensor:
        """z = sigmoid(W_z [x_1; x_2] + b_z): (N, out_features), the weight of x_1."""
        self.check_inputs(xs)
        xs = [like_weights(x, self.gate.weight) for x in xs]
        return torch.sigmoid(self.gate(torch.cat(xs, dim=-1)))

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        z = self.gates(xs)  # checks xs first
        xs = [like_weights(x, self.gate.weight) for x in xs]
        h1, h2 = (torch.tanh(p(x)) for p, x in zip(self.proj, xs))
        return z * h1 + (1 - z) * h2

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


def signed_sqrt(s: torch.Tensor) -> torch.Tensor:
    """sign(s) * sqrt(|s|), element-wise, with gradient 0 where s = 0.

    The true derivative 1 / (2 sqrt(|s|)) is infinite at 0; the MFB code's
    sqrt(relu(s)) - sqrt(relu(-s)) gives 0 there in torch but NaN (inf * 0) in
    TensorFlow, so both halves take the square root of 1 wherever s = 0 and discard it.
    Taught in the chapter on cross-modal fusion.
    """
    nonzero = s != 0
    root = torch.sqrt(torch.where(nonzero, s.abs(), torch.ones_like(s)))
    return torch.where(nonzero, torch.sign(s) * root, torch.zeros_like(s))


class LowRankBilinear(nn.Module):
    """Multi-modal factorized bilinear pooling, MFB (Yu et al., 2017): a bilinear
    interaction of two vectors through rank-`factor` factors.

    xs = [x_1, x_2], x_i: (N, in_features[i]) -> (N, out_features), unit L2 norm;
    p = (U x_1 + b_U) * (V x_2 + b_V), U, V Linear in_features[i] -> factor *
    out_features; s_j = sum of p over the j-th group of `factor` consecutive elements
    (sum pooling); s = sign(s) sqrt(|s|) (signed square root); out = s / ||s||_2.
    Each s_j = x_1^T (sum_r u_jr v_jr^T) x_2 + linear terms: a bilinear form of rank
    `factor`. The MFB paper (factor 5, out 1000) puts dropout on p while training; add
    nn.Dropout around this module for that, it has none.
    Taught in the chapter on cross-modal fusion.
    """

    def __init__(
        self, in_features: tuple[int, int], out_features: int, factor: int = 5
    ):
        super().__init__()
        op = "LowRankBilinear"
        self.in_features = check_pair(op, "in_features", in_features)
        self.out_features = check_width(op, "out_features", out_features)
        self.factor = check_width(op, "factor", factor)
        self.proj = nn.ModuleList(
            nn.Linear(d, factor * out_features) for d in self.in_features
        )

    def check_inputs(self, xs) -> None:
        check_vectors("LowRankBilinear", xs, TORCH, self.in_features)

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        self.check_inputs(xs)
        xs = [like_weights(x, self.proj[0].weight) for x in xs]
        p = self.proj[0](xs[0]) * self.proj[1](xs[1])
        s = p.reshape(-1, self.out_features, self.factor).sum(dim=-1)
        s = signed_sqrt(s)
        return s / s.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"factor={self.factor}"
        )


class CrossAttention(nn.Module):
    """Multi-head cross-attention: tokens of one modality query the tokens of another.

    x: (N, Lq, query_dim), context: (N, Lk, context_dim) -> (N, Lq, query_dim);
    Q = x W_q^T + b_q (query_dim -> query_dim), K = context W_k^T + b_k and
    V = context W_v^T + b_v (context_dim -> query_dim), split into num_heads heads of
    query_dim // num_heads features, head_i = softmax(Q_i K_i^T / sqrt(query_dim //
    num_heads)) V_i, out = [head_1 ... head_H] W_out^T + b_out (query_dim -> query_dim).
    mask: optional boolean (N, Lk) (which context tokens exist) or (N, Lq, Lk),
    True = attend; a query with no key to attend gets a zero attention output.
    nn.MultiheadAttention(query_dim, num_heads, kdim=context_dim, vdim=context_dim)
    computes the same (see `multihead_to_torch`), with the opposite mask polarity.
    Taught in the chapter on cross-modal fusion.
    """

    def __init__(self, query_dim: int, context_dim: int, num_heads: int):
        super().__init__()
        op = "CrossAttention"
        check_width(op, "query_dim", query_dim)
        check_width(op, "context_dim", context_dim)
        check_heads(op, "query_dim", query_dim, num_heads)
        self.query_dim, self.context_dim = query_dim, context_dim
        self.num_heads = num_heads
        self.q_proj = nn.Linear(query_dim, query_dim)
        self.k_proj = nn.Linear(context_dim, query_dim)
        self.v_proj = nn.Linear(context_dim, query_dim)
        self.out_proj = nn.Linear(query_dim, query_dim)

    def check_inputs(self, x, context, mask=None) -> None:
        op = "CrossAttention"
        shapes = check_tensors(op, {"x": x, "context": context}, TORCH)
        check_tokens(op, "x", shapes["x"], self.query_dim, "query_dim")
        check_tokens(op, "context", shapes["context"], self.context_dim, "context_dim")
        check_same_batch(op, shapes)
        (n, lq, _), lk = shapes["x"], shapes["context"][1]
        check_mask(op, mask, TORCH, n, lq, lk)

    def attention_map(
        self,
        x: torch.Tensor,
        context: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Every head's weights on the context: (N, num_heads, Lq, Lk)."""
        self.check_inputs(x, context, mask)
        x, context = (like_weights(t, self.q_proj.weight) for t in (x, context))
        h = self.num_heads
        q, k = split_heads(self.q_proj(x), h), split_heads(self.k_proj(context), h)
        return attention_weights(q, k, head_mask(mask))

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        self.check_inputs(x, context, mask)
        x, context = (like_weights(t, self.q_proj.weight) for t in (x, context))
        q, k, v = self.q_proj(x), self.k_proj(context), self.v_proj(context)
        return self.out_proj(multi_head_attention(q, k, v, self.num_heads, mask))

    def extra_repr(self) -> str:
        return (
            f"query_dim={self.query_dim}, context_dim={self.context_dim}, "
            f"num_heads={self.num_heads}"
        )
