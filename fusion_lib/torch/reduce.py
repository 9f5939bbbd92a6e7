"""Concatenation followed by a per-pixel channel reduction, and resizing maps to a
common size (NCHW).

Taught in the chapter on concatenation followed by reduction.
"""

from __future__ import annotations

import torch
from torch import nn

from fusion_lib._checks import check_input_map, check_maps_match, target_size
from fusion_lib.torch._base import TORCH, like_weights

RESIZE_MODES = ("bilinear", "nearest")


def resize_to(
    x: torch.Tensor, like: torch.Tensor | tuple[int, int], mode: str = "bilinear"
) -> torch.Tensor:
    """Resize x to the spatial size of `like` (a tensor or an (h, w) pair), keeping N
    and C.

    x: (N, C, H, W) -> (N, C, h, w).
    mode="bilinear": `F.interpolate(..., align_corners=False)`, i.e. half-pixel centres:
    output pixel i samples input coordinate (i + 0.5) * H / h - 0.5. This is what
    `tf.image.resize` does.
    mode="nearest": torch's "nearest-exact" (half-pixel rounding), which matches TF's
    "nearest"; torch's plain "nearest" floors instead and differs from TF on non-integer
    scale factors.
    x must be floating point in both modes (torch cannot resize integer maps): to
    resize a label map, cast it, resize with mode="nearest", and cast it back.
    Taught in the chapter on concatenation followed by reduction.
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize_to mode must be one of {RESIZE_MODES}; got {mode!r}.")
    check_input_map("resize_to", x, TORCH)
    size = target_size("resize_to", like, TORCH)
    if mode == "bilinear":
        return nn.functional.interpolate(
            x, size=size, mode="bilinear", align_corners=False
        )
    return nn.functional.interpolate(x, size=size, mode="nearest-exact")


class ConcatReduce(nn.Module):
    """Concatenate maps on the channel axis, then reduce the channels per pixel,
    normalise, activate.

    xs: list of (N, C_i, H, W) -> (N, C_out, H, W);
    out = act(norm(W [x_1; ...; x_k] + b)),
    W: (C_out, sum_i C_i), applied at every pixel independently.
    mode="conv": W is a 1x1 `nn.Conv2d`; mode="linear": W is an `nn.Linear` applied to
    the channel vector of each pixel (channels moved last and back). Both are the same
    map.
    norm=True: BatchNorm2d after W, and W has no bias (BN's shift would cancel it).
    act=True: ReLU at the end.
    split_weights=True: compute sum_i W_i x_i + b, W_i the columns of W that meet
    input i, without ever materialising the concatenated tensor. Same parameters, same
    result, less memory.
    Taught in the chapter on concatenation followed by reduction.
    """

    def __init__(
        self,
        in_channels: list[int],
        out_channels: int,
        mode: str = "conv",
        norm: bool = True,
        act: bool = True,
        split_weights: bool = False,
    ):
        super().__init__()
        if mode not in ("conv", "linear"):
            raise ValueError(
                f"ConcatReduce mode must be 'conv' or 'linear'; got {mode!r}."
            )
        self.in_channels = [int(c) for c in in_channels]
        self.out_channels, self.mode, self.split_weights = (
            int(out_channels),
            mode,
            split_weights,
        )
        self.use_norm, self.use_act = norm, act
        total = sum(self.in_channels)
        if mode == "conv":
            self.reduce = nn.Conv2d(
                total, self.out_channels, kernel_size=1, bias=not norm
            )
        else:
            self.reduce = nn.Linear(total, self.out_channels, bias=not norm)
        self.norm = nn.BatchNorm2d(self.out_channels) if norm else nn.Identity()
        self.act = nn.ReLU() if act else nn.Identity()

    def check_inputs(self, xs) -> None:
        check_maps_match("ConcatReduce", xs, TORCH, self.in_channels)

    def weight_matrix(self) -> torch.Tensor:
        """W as a (C_out, sum_i C_i) matrix, whichever mode holds it."""
        return self.reduce.weight.reshape(self.out_channels, sum(self.in_channels))

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        self.check_inputs(xs)
        xs = [like_weights(x, self.reduce.weight) for x in xs]
        y = self._split_form(xs) if self.split_weights else self._concat_form(xs)
        return self.act(self.norm(y))

    def _concat_form(self, xs: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat(xs, dim=1)
        if self.mode == "conv":
            return self.reduce(x)
        return self.reduce(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    def _split_form(self, xs: list[torch.Tensor]) -> torch.Tensor:
        n, _, h, w = xs[0].shape
        weight, start, out = self.weight_matrix(), 0, None
        for x, c in zip(xs, self.in_channels):
            # A contiguous weight slice keeps matmul from allocating a transposed copy
            # of its output.
            w_i, x_i = (
                weight[:, start : start + c].contiguous(),
                x.reshape(n, c, h * w),
            )  # x_i: a view
            start += c
            if out is None:
                out = torch.matmul(w_i, x_i)  # (N, C_out, H*W)
            else:
                out.baddbmm_(
                    w_i.expand(n, -1, -1), x_i
                )  # accumulate in place: no temporary of out's size
        if self.reduce.bias is not None:
            out.add_(self.reduce.bias[:, None])
        return out.reshape(n, self.out_channels, h, w)

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"mode={self.mode!r}, norm={self.use_norm}, act={self.use_act}, "
            f"split_weights={self.split_weights}"
        )
