"""Multiplicative fusion: element-wise products, sigmoid gates, SE (NCHW).

Taught in the chapter on multiplicative fusion and gating.
"""

from __future__ import annotations

import torch
from torch import nn

from fusion_lib._checks import (
    check_input_map,
    check_maps_match,
    check_maps_same,
    check_reduction,
)
from fusion_lib.torch._base import TORCH, check_out_buffer, like_weights


class ProductFusion(nn.Module):
    """Multiply feature maps element-wise.

    xs: list of (N, C, H, W) -> (N, C, H, W); out = x_1 * x_2 * ... * x_k.
    A feature survives only where every branch is large: a soft AND.
    out: an optional preallocated (N, C, H, W) tensor of the result's dtype and
    device; the product is written into it (torch.mul(..., out=out), then mul_ for
    every further input) and out is returned, so no fresh result is allocated. out
    may be the first input (in place). Autograd cannot record a write into a buffer:
    with an input that requires grad, out= raises (use it under torch.no_grad()).
    Taught in the chapter on multiplicative fusion and gating.
    """

    def check_inputs(self, xs) -> None:
        check_maps_same("ProductFusion", xs, TORCH)

    def forward(
        self, xs: list[torch.Tensor], out: torch.Tensor | None = None
    ) -> torch.Tensor:
        self.check_inputs(xs)
        if out is not None:
            check_out_buffer("ProductFusion", out, xs, tuple(xs[0].shape))
            torch.mul(xs[0], xs[1], out=out)
            for x in xs[2:]:
                out.mul_(x)
            return out
        product = xs[0]
        for i in range(1, len(xs)):
            product = product * xs[i]
        return product


class GatedFusion(nn.Module):
    """One branch gates another: sigmoid(1x1 conv of g) scales x per channel and pixel.

    xs = [x, g], x: (N, C, H, W), g: (N, C_g, H, W) -> (N, C, H, W);
    out = x * sigmoid(W g + b), W a 1x1 conv C_g -> C (C_g = channels when
    gate_channels is None). The value x passes unprojected: only the gate has weights.
    With g = x it is x * sigmoid(W x + b), and with W = I, b = 0 that is SiLU,
    x * sigmoid(x). It is not a gated linear unit (Dauphin et al., 2017), which gates a
    projection, (V x + c) * sigmoid(W x + b) (in the paper the two halves of one conv's
    output); GatedFusion([a, b]) with W = I, b = 0 equals glu(cat([a, b])).
    Taught in the chapter on multiplicative fusion and gating.
    """

    def __init__(self, channels: int, gate_channels: int | None = None):
        super().__init__()
        self.channels, self.gate_channels = channels, gate_channels or channels
        self.gate = nn.Conv2d(self.gate_channels, channels, kernel_size=1)

    def check_inputs(self, xs) -> None:
        check_maps_match(
            "GatedFusion",
            xs,
            TORCH,
            [self.channels, self.gate_channels],
            ["channels", "gate_channels"],
            count=2,
            form="[x, g]",
        )

    def gates(self, g: torch.Tensor) -> torch.Tensor:
        """sigmoid(W g + b): (N, C_g, H, W) -> (N, C, H, W), values in (0, 1)."""
        check_input_map("GatedFusion", g, TORCH, self.gate_channels, "gate_channels")
        return torch.sigmoid(self.gate(like_weights(g, self.gate.weight)))

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        self.check_inputs(xs)
        x, g = xs
        return like_weights(x, self.gate.weight) * self.gates(g)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, gate_channels={self.gate_channels}"


class SqueezeExcitation(nn.Module):
    """Channel gating by a squeezed global descriptor (Hu et al., 2018).

    x: (N, C, H, W) -> (N, C, H, W); out = x * s with one gate per image and channel,
    s = sigmoid(W2 relu(W1 mean_hw(x) + b1) + b2), W1: C -> C // reduction,
    W2: C // reduction -> C, both 1x1 convs with bias, as in the original model and
    torchvision. Parameters: 2 C^2 / r + C / r + C. s is constant over H and W, so right
    before global average pooling SE is a gated MLP on the pooled vector:
    mean_hw(x * s) = s * mean_hw(x).
    Taught in the chapter on multiplicative fusion and gating.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.channels, self.reduction = channels, reduction
        hidden = check_reduction("SqueezeExcitation", channels, reduction)
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1)

    def check_inputs(self, x) -> None:
        check_input_map("SqueezeExcitation", x, TORCH, self.channels)

    def gates(self, x: torch.Tensor) -> torch.Tensor:
        """The excitation: (N, C, H, W) -> (N, C, 1, 1), one gate in (0, 1) each."""
        self.check_inputs(x)
        squeezed = like_weights(x, self.fc1.weight).mean(dim=(2, 3), keepdim=True)
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(squeezed))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gates = self.gates(x)  # checks x first
        return like_weights(x, self.fc1.weight) * gates

    def extra_repr(self) -> str:
        return f"channels={self.channels}, reduction={self.reduction}"
