"""Self-attention: scaled dot-product attention, multi-head self-attention, the
non-local block (NCHW maps, (N, L, E) sequences).

Taught in the chapter on self-attention.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

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
from fusion_lib.torch._base import TORCH, like_weights


def _common_dtype(*xs: torch.Tensor) -> list[torch.Tensor]:
    """q, k (and v) in one dtype, promoted as torch.cat and + would; matmul refuses
    a mix.
    """
    dtype = xs[0].dtype
    for x in xs[1:]:
        dtype = torch.promote_types(dtype, x.dtype)
    return [x if x.dtype is dtype else x.to(dtype) for x in xs]


def attention_weights(
    q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """The attention matrix softmax(Q K^T / sqrt(d)), rows over the keys.

    q: (..., Lq, d), k: (..., Lk, d) -> (..., Lq, Lk), every row sums to 1.
    mask: boolean, broadcastable to (..., Lq, Lk), True = attend (the polarity of
    F.scaled_dot_product_attention). A masked score is replaced by the most negative
    float before the softmax, so its weight is exactly 0; a query whose row is all
    False gets weight 0 everywhere (zero output), as F.scaled_dot_product_attention
    does, instead of the NaN of a softmax over -inf alone.
    Taught in the chapter on self-attention.
    """
    check_attention("attention_weights", TORCH, {"q": q, "k": k}, mask)
    q, k = _common_dtype(q, k)
    scores = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5
    if mask is None:
        return scores.softmax(dim=-1)
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return scores.softmax(dim=-1) * mask.any(dim=-1, keepdim=True)


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Scaled dot-product attention written out: softmax(Q K^T / sqrt(d)) V.

    q: (..., Lq, d), k: (..., Lk, d), v: (..., Lk, dv) -> (..., Lq, dv); the leading
    axes (batch, heads) must agree. mask: boolean, broadcastable to (..., Lq, Lk),
    True = attend; see `attention_weights`. Equals
    torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask) for a
    boolean mask (a float attn_mask there is added to the scores instead).
    Taught in the chapter on self-attention.
    """
    op = "scaled_dot_product_attention"
    check_attention(op, TORCH, {"q": q, "k": k, "v": v}, mask)
    q, k, v = _common_dtype(q, k, v)
    return attention_weights(q, k, mask) @ v


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(N, L, E) -> (N, num_heads, L, E // num_heads): head h gets features
    h * E // num_heads ... (h + 1) * E // num_heads - 1, as in nn.MultiheadAttention.
    Taught in the chapter on self-attention.
    """
    n, length, e = x.shape
    return x.reshape(n, length, num_heads, e // num_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(N, num_heads, L, d) -> (N, L, num_heads * d), the inverse of split_heads.
    Taught in the chapter on self-attention.
    """
    n, h, length, d = x.shape
    return x.transpose(1, 2).reshape(n, length, h * d)


def head_mask(mask: torch.Tensor | None) -> torch.Tensor | None:
    """A (N, Lk) or (N, Lq, Lk) mask made broadcastable over heads: (N, 1, 1|Lq, Lk).
    Taught in the chapter on self-attention.
    """
    if mask is None:
        return None
    return mask[:, None, None, :] if mask.dim() == 2 else mask[:, None]


def multi_head_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    num_heads: int,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Attention in num_heads subspaces of projected q (N, Lq, E), k, v (N, Lk, E) ->
    (N, Lq, E), the heads concatenated. It runs the fused kernel
    F.scaled_dot_product_attention, the one nn.MultiheadAttention calls too, equal to
    scaled_dot_product_attention above (tested).
    Taught in the chapter on self-attention.
    """
    out = F.scaled_dot_product_attention(
        split_heads(q, num_heads),
        split_heads(k, num_heads),
        split_heads(v, num_heads),
        attn_mask=head_mask(mask),
    )
    return merge_heads(out)


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention over a token sequence (Vaswani et al., 2017).

    x: (N, L, E) -> (N, L, E); [Q; K; V] = x W_in^T + b_in with one packed Linear
    E -> 3E (rows [W_q; W_k; W_v], nn.MultiheadAttention's in_proj_weight), each split
    into num_heads heads of E // num_heads features, head_i = softmax(Q_i K_i^T /
    sqrt(E // num_heads)) V_i, out = [head_1 ... head_H] W_out^T + b_out (E -> E).
    mask: optional boolean (N, L) (which tokens exist) or (N, L, L) (one row per
    query), True = attend; a query with no key to attend gets a zero attention output.
    nn.MultiheadAttention's key_padding_mask and attn_mask mean the opposite
    (True = ignore) and it defaults to batch_first=False: see `multihead_to_torch` and
    `torch_mask_kwargs`. forward runs the fused F.scaled_dot_product_attention, equal
    to the written-out scaled_dot_product_attention (tested).
    Taught in the chapter on self-attention.
    """

    def __init__(self, embed_dim: int, num_heads: int):
        super().__init__()
        check_width("MultiHeadSelfAttention", "embed_dim", embed_dim)
        check_heads("MultiHeadSelfAttention", "embed_dim", embed_dim, num_heads)
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.in_proj = nn.Linear(embed_dim, 3 * embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)

    def check_inputs(self, x, mask=None) -> None:
        op = "MultiHeadSelfAttention"
        shape = check_tensors(op, {"x": x}, TORCH)["x"]
        check_tokens(op, "x", shape, self.embed_dim, "embed_dim")
        n, length, _ = shape
        check_mask(op, mask, TORCH, n, length, length)

    def qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, L, E) -> q, k, v, each (N, num_heads, L, E // num_heads)."""
        n, length, e = x.shape
        h = self.num_heads
        # one reshape and permute of the packed projection splits q, k, v and the heads
        packed = self.in_proj(x).reshape(n, length, 3, h, e // h)
        return packed.permute(2, 0, 3, 1, 4).unbind(0)

    def attention_map(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The attention weights of every head: (N, L, E) -> (N, num_heads, L, L)."""
        self.check_inputs(x, mask)
        q, k, _ = self.qkv(like_weights(x, self.in_proj.weight))
        return attention_weights(q, k, head_mask(mask))

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        self.check_inputs(x, mask)
        q, k, v = self.qkv(like_weights(x, self.in_proj.weight))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=head_mask(mask))
        return self.out_proj(merge_heads(out))

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"


def torch_mask_kwargs(mask: torch.Tensor | None, num_heads: int) -> dict:
    """Our mask (True = attend) as nn.MultiheadAttention's keyword (True = ignore).

    (N, Lk) -> {"key_padding_mask": ~mask}; (N, Lq, Lk) -> {"attn_mask": ~mask
    repeated per head, (N * num_heads, Lq, Lk)}; None -> {}.
    Taught in the chapter on self-attention.
    """
    check_port_mask("torch_mask_kwargs", mask, TORCH)
    check_width("torch_mask_kwargs", "num_heads", num_heads)
    if mask is None:
        return {}
    if mask.dim() == 2:
        return {"key_padding_mask": ~mask}
    return {"attn_mask": (~mask).repeat_interleave(num_heads, dim=0)}


@torch.no_grad()
def multihead_to_torch(attn: nn.Module) -> nn.MultiheadAttention:
    """The built-in twin of a MultiHeadSelfAttention or CrossAttention: an
    nn.MultiheadAttention(batch_first=True) holding the same weights.

    Call it as mha(x, x, x) (self) or mha(x, context, context) (cross) with
    **torch_mask_kwargs(mask, num_heads) and need_weights=False; out[0] equals ours.
    Taught in the chapter on self-attention.
    """
    from fusion_lib.torch.crossmodal import CrossAttention  # it imports this module

    classes = (MultiHeadSelfAttention, CrossAttention)
    check_attention_module("multihead_to_torch", attn, classes)
    if hasattr(attn, "in_proj"):  # MultiHeadSelfAttention
        e, kdim = attn.embed_dim, attn.embed_dim
        w, b = attn.in_proj.weight, attn.in_proj.bias
    else:  # CrossAttention: three Linear layers
        e, kdim = attn.query_dim, attn.context_dim
        projs = (attn.q_proj, attn.k_proj, attn.v_proj)
        w = torch.cat([p.weight for p in projs]) if kdim == e else None
        b = torch.cat([p.bias for p in projs])
    mha = nn.MultiheadAttention(
        e, attn.num_heads, kdim=kdim, vdim=kdim, batch_first=True
    )
    if w is not None:
        mha.in_proj_weight.copy_(w)
    else:
        mha.q_proj_weight.copy_(attn.q_proj.weight)
        mha.k_proj_weight.copy_(attn.k_proj.weight)
        mha.v_proj_weight.copy_(attn.v_proj.weight)
    mha.in_proj_bias.copy_(b)
    mha.out_proj.weight.copy_(attn.out_proj.weight)
    mha.out_proj.bias.copy_(attn.out_proj.bias)
    return mha


@torch.no_grad()
def multihead_from_torch(mha: nn.MultiheadAttention) -> MultiHeadSelfAttention:
    """A MultiHeadSelfAttention holding the weights of an nn.MultiheadAttention built
    with kdim = vdim = embed_dim, bias=True and no add_bias_kv / add_zero_attn.
    Taught in the chapter on self-attention.
    """
    check_attention_module("multihead_from_torch", mha, (nn.MultiheadAttention,))
    packed = mha.in_proj_weight is not None
    if not packed or mha.in_proj_bias is None or mha.bias_k is not None:
        raise ValueError(
            "multihead_from_torch needs nn.MultiheadAttention(embed_dim, num_heads) "
            "with kdim = vdim = embed_dim, bias=True, add_bias_kv=False; got "
            f"kdim={mha.kdim}, vdim={mha.vdim}, bias={mha.in_proj_bias is not None}, "
            f"add_bias_kv={mha.bias_k is not None}."
        )
    attn = MultiHeadSelfAttention(mha.embed_dim, mha.num_heads)
    attn.in_proj.weight.copy_(mha.in_proj_weight)
    attn.in_proj.bias.copy_(mha.in_proj_bias)
    attn.out_proj.weight.copy_(mha.out_proj.weight)
    attn.out_proj.bias.copy_(mha.out_proj.bias)
    return attn


class NonLocalBlock(nn.Module):
    """Non-local block: every pixel attends to every (sub-sampled) pixel, plus a
    residual (Wang et al., 2018), in its original embedded-Gaussian form.

    x: (N, C, H, W) -> (N, C, H, W); theta, phi, g: 1x1 convs C -> inner (with bias),
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
        self, channels: int, inner_channels: int | None = None, subsample: bool = True
    ):
        super().__init__()
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
        self.theta = nn.Conv2d(channels, inner, kernel_size=1)
        self.phi = nn.Conv2d(channels, inner, kernel_size=1)
        self.g = nn.Conv2d(channels, inner, kernel_size=1)
        self.out = nn.Conv2d(inner, channels, kernel_size=1)
        self.bn = nn.BatchNorm2d(channels)
        nn.init.zeros_(self.bn.weight)  # gamma = 0: the block starts as the identity

    def check_inputs(self, x) -> None:
        check_input_map("NonLocalBlock", x, TORCH, self.channels)
        h, w = x.shape[2:]
        if self.subsample and (h < 2 or w < 2):
            raise ValueError(
                f"NonLocalBlock(subsample=True) max-pools keys 2x2 and needs maps of "
                f"at least 2x2; got shape {tuple(x.shape)} ({h}x{w}). Build it with "
                "subsample=False for such small maps."
            )

    def _keys(self, conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        y = conv(x)
        return F.max_pool2d(y, 2) if self.subsample else y

    def affinity(self, x: torch.Tensor) -> torch.Tensor:
        """The attention matrix A: (N, C, H, W) -> (N, H*W, H'*W'), rows sum to 1."""
        self.check_inputs(x)
        x = like_weights(x, self.theta.weight)
        theta = self.theta(x).flatten(2).transpose(1, 2)  # (N, HW, inner)
        phi = self._keys(self.phi, x).flatten(2).transpose(1, 2)  # (N, H'W', inner)
        return attention_weights(theta, phi)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.affinity(x)  # checks x first
        x = like_weights(x, self.theta.weight)
        g = self._keys(self.g, x).flatten(2).transpose(1, 2)  # (N, H'W', inner)
        n, _, h, w = x.shape
        y = (a @ g).transpose(1, 2).reshape(n, self.inner_channels, h, w)
        return x + self.bn(self.out(y))

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, inner_channels={self.inner_channels}, "
            f"subsample={self.subsample}"
        )
