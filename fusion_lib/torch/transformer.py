"""Transformer fusion: a pre-norm encoder block on tokens, and the fusion of several
feature maps by self-attention over all their pixels (NCHW maps, (N, L, D) tokens).

Taught in the chapter on self-attention.
"""

from __future__ import annotations

import torch
from torch import nn

from fusion_lib._checks import (
    NCHW,
    as_tensor_list,
    check_hw_size,
    check_input_map,
    check_same_batch,
    check_tensors,
    check_tokens,
    check_width,
    shape_str,
)
from fusion_lib.torch._base import TORCH, like_weights
from fusion_lib.torch.selfattention import MultiHeadSelfAttention


class TransformerEncoderBlock(nn.Module):
    """A pre-norm transformer encoder block (Vaswani et al., 2017, in the pre-norm
    order of ViT, Dosovitskiy et al., 2021).

    x: (N, L, D) -> (N, L, D), D = dim; every token attends to every token (no mask).
    h = x + MultiHeadSelfAttention(D, num_heads)(LN_1(x));
    out = h + MLP(LN_2(h)), MLP = Linear(D -> mlp_ratio D), exact GELU, Linear(-> D).
    LayerNorm eps 1e-5 (PyTorch's default; the Keras twin sets it). Parameters:
    4 D^2 + 4 D (attention) + 2 mlp_ratio D^2 + mlp_ratio D + D (MLP) + 4 D (norms).
    Taught in the chapter on self-attention.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: int = 2):
        super().__init__()
        op = "TransformerEncoderBlock"
        check_width(op, "dim", dim)
        hidden = dim * check_width(op, "mlp_ratio", mlp_ratio)
        self.dim, self.num_heads, self.mlp_ratio = dim, num_heads, mlp_ratio
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = MultiHeadSelfAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)
        )

    def check_inputs(self, x) -> None:
        op = "TransformerEncoderBlock"
        shape = check_tensors(op, {"x": x}, TORCH)["x"]
        check_tokens(op, "x", shape, self.dim, "dim")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_inputs(x)
        x = like_weights(x, self.norm1.weight)
        h = x + self.attn(self.norm1(x))
        return h + self.mlp(self.norm2(h))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_heads={self.num_heads}, mlp_ratio={self.mlp_ratio}"


class TransformerFusion(nn.Module):
    """Fuse feature maps by self-attention over all their pixels, as tokens.

    xs: list of M maps (N, C_i, H_i, W_i), one per in_channels entry, of the sizes
    (H_i, W_i) given -> list of M maps (N, D, H_i, W_i), D = dim.
    t_i = conv1x1_i(x_i) flattened to H_i W_i tokens in row-major order (C_i -> D);
    t = [t_1; ...; t_M] + P, concatenated along the sequence (L = sum_i H_i W_i) and
    P a learned (L, D) table of positional embeddings (ViT's init, std 0.02), which
    tells each token its place and its map; t = depth x TransformerEncoderBlock(D,
    num_heads, mlp_ratio), then LayerNorm; out_i = the tokens of map i, reshaped
    back. Every output pixel reads every pixel of every map, whatever the distance.
    Taught in the chapter on self-attention.
    """

    def __init__(
        self,
        in_channels: list[int],
        dim: int,
        num_heads: int,
        sizes: list[tuple[int, int]],
        mlp_ratio: int = 2,
        depth: int = 1,
    ):
        super().__init__()
        op = "TransformerFusion"
        self.in_channels = [check_width(op, "in_channels[i]", c) for c in in_channels]
        self.sizes = [tuple(int(s) for s in hw) for hw in sizes]
        if len(self.sizes) != len(self.in_channels):
            raise ValueError(
                f"{op} needs one (H, W) size per input map: in_channels has "
                f"{len(self.in_channels)} entries, sizes {len(self.sizes)}."
            )
        self.dim, self.num_heads = check_width(op, "dim", dim), num_heads
        self.mlp_ratio, self.depth = mlp_ratio, check_width(op, "depth", depth)
        self.projections = nn.ModuleList(nn.Conv2d(c, dim, 1) for c in in_channels)
        tokens = sum(h * w for h, w in self.sizes)
        self.pos_embed = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.blocks = nn.ModuleList(
            TransformerEncoderBlock(dim, num_heads, mlp_ratio) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim, eps=1e-5)

    def check_inputs(self, xs) -> list:
        op = "TransformerFusion"
        xs = as_tensor_list(op, xs, TORCH, min_count=1, form="[x1, x2]")
        if len(xs) != len(self.in_channels):
            raise ValueError(
                f"{op} was built for {len(self.in_channels)} maps (in_channels="
                f"{self.in_channels}); got {len(xs)}: "
                f"{', '.join(shape_str(x.shape) for x in xs)}."
            )
        for i, (x, c, hw) in enumerate(zip(xs, self.in_channels, self.sizes)):
            shape = check_input_map(op, x, TORCH, c, arg=f"in_channels[{i}]")
            check_hw_size(
                op,
                shape,
                NCHW,
                hw,
                "Its positional embeddings have one entry per pixel: build it with "
                "sizes= the maps' (H, W), or resize the map first.",
            )
        check_same_batch(op, {f"xs[{i}]": tuple(x.shape) for i, x in enumerate(xs)})
        return xs

    def tokens(self, xs: list[torch.Tensor]) -> torch.Tensor:
        """The encoder's input: (N, L, D) tokens of every map, positions added."""
        xs = self.check_inputs(xs)
        flat = [
            p(like_weights(x, p.weight)).flatten(2).transpose(1, 2)
            for p, x in zip(self.projections, xs)
        ]
        return torch.cat(flat, dim=1) + self.pos_embed

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        t = self.tokens(xs)
        for block in self.blocks:
            t = block(t)
        t = self.norm(t)
        counts = [h * w for h, w in self.sizes]
        return [
            part.transpose(1, 2).reshape(len(t), self.dim, h, w)
            for part, (h, w) in zip(t.split(counts, dim=1), self.sizes)
        ]

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, dim={self.dim}, "
            f"num_heads={self.num_heads}, sizes={self.sizes}, "
            f"mlp_ratio={self.mlp_ratio}, depth={self.depth}"
        )
