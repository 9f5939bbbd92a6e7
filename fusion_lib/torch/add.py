"""Element-wise addition of feature maps, with optional 1x1 projections (NCHW).

Taught in the chapter on addition.
"""

from __future__ import annotations

import torch
from torch import nn

from fusion_lib._checks import check_maps_match, check_maps_same
from fusion_lib.torch._base import TORCH, check_out_buffer, like_weights

# How AddFusion projects branches of different widths, for its error messages.
PROJECT = (
    "project with a 1x1 conv first, e.g. AddFusion(in_channels={chans}, "
    "out_channels={out})"
)


class AddFusion(nn.Module):
    """Sum feature maps element-wise, projecting branches to a common width first if
    asked.

    xs: list of (N, C_i, H, W) -> (N, C_out, H, W); out = sum_i P_i(x_i), where
    P_i is a 1x1 conv C_i -> C_out (with bias) when C_i != C_out and the identity
    otherwise.
    in_channels=None: no projections; every input must already have the same shape.
    out_channels=None with in_channels given: C_out = max(in_channels).
    out: an optional preallocated (N, C_out, H, W) tensor of the result's dtype and
    device; the sum is written into it (torch.add(..., out=out), then add_ for every
    further input) and out is returned, so no fresh result is allocated. out may be
    the first input (in place). Autograd cannot record a write into a buffer: with an
    input that requires grad, out= raises (use it under torch.no_grad()).
    Taught in the chapter on addition.
    """

    def __init__(
        self, in_channels: list[int] | None = None, out_channels: int | None = None
    ):
        super().__init__()
        if in_channels is None and out_channels is not None:
            raise ValueError(
                "AddFusion: out_channels needs in_channels "
                "(one count per input branch)."
            )
        self.in_channels = (
            None if in_channels is None else [int(c) for c in in_channels]
        )
        if self.in_channels is not None and out_channels is None:
            out_channels = max(self.in_channels)
        self.out_channels = out_channels
        self.proj = nn.ModuleList(
            nn.Identity()
            if c == self.out_channels
            else nn.Conv2d(c, self.out_channels, kernel_size=1)
            for c in (self.in_channels or [])
        )
        # the first projection's weights fix the dtype the sum is computed in
        self._first_conv = next(
            (i for i, p in enumerate(self.proj) if isinstance(p, nn.Conv2d)), None
        )

    def check_inputs(self, xs) -> None:
        if self.in_channels is None:
            check_maps_same("AddFusion", xs, TORCH, PROJECT)
        else:
            check_maps_match("AddFusion", xs, TORCH, self.in_channels)

    def forward(
        self, xs: list[torch.Tensor], out: torch.Tensor | None = None
    ) -> torch.Tensor:
        self.check_inputs(xs)
        if self.in_channels is not None:
            if self._first_conv is not None:
                weight = self.proj[self._first_conv].weight
                xs = [like_weights(x, weight) for x in xs]
            xs = [p(x) for p, x in zip(self.proj, xs)]
        if out is not None:
            check_out_buffer("AddFusion", out, xs, tuple(xs[0].shape))
            if len(xs) == 1:  # AddFusion([c]): one branch, the sum is itself
                return out.copy_(xs[0])
            torch.add(xs[0], xs[1], out=out)
            for x in xs[2:]:
                out.add_(x)
            return out
        total = xs[0]
        for i in range(1, len(xs)):
            total = total + xs[i]
        return total

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}"
