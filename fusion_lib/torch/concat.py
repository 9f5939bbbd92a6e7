"""Concatenation along the channel axis, and U-Net's crop-and-concat skip merge (NCHW).

Taught in the chapter on concatenation.
"""

from __future__ import annotations

import torch
from torch import nn

from fusion_lib._checks import (
    NCHW,
    center_crop_box,
    check_map,
    check_maps_match,
    check_tensor,
    check_unet_skip,
    pad_amounts,
    target_size,
)
from fusion_lib.torch._base import TORCH, check_out_buffer


class ConcatFusion(nn.Module):
    """Stack feature maps along the channel axis.

    xs: list of (N, C_i, H, W) -> (N, sum_i C_i, H, W); out = cat(xs, dim=1).
    Order matters: it fixes which input channels a following layer's weights see.
    out: an optional preallocated (N, sum_i C_i, H, W) tensor of the result's dtype
    and device; torch.cat(xs, dim=1, out=out) writes into it and out is returned, so
    no fresh result is allocated. out may not be an input. Autograd cannot record a
    write into a buffer: with an input that requires grad, out= raises (use it under
    torch.no_grad()).
    Taught in the chapter on concatenation.
    """

    def check_inputs(self, xs) -> None:
        check_maps_match("ConcatFusion", xs, TORCH)

    def forward(
        self, xs: list[torch.Tensor], out: torch.Tensor | None = None
    ) -> torch.Tensor:
        self.check_inputs(xs)
        if out is None:
            return torch.cat(xs, dim=1)
        n, _, h, w = xs[0].shape
        shape = (n, sum(x.shape[1] for x in xs), h, w)
        check_out_buffer("ConcatFusion", out, xs, shape, may_alias_first=False)
        return torch.cat(xs, dim=1, out=out)


def center_crop(x: torch.Tensor, like: torch.Tensor | tuple[int, int]) -> torch.Tensor:
    """Crop the centre of x to the spatial size of `like` (a tensor or an (h, w) pair).

    x: (N, C, H, W) -> (N, C, h, w), the window starting at
    ((H - h) // 2, (W - w) // 2), as the original U-Net crops its encoder maps.
    Any dtype (it only slices), so it crops label maps too.
    Taught in the chapter on concatenation.
    """
    shape = check_tensor("center_crop", "x", x, TORCH)
    check_map("center_crop", shape, NCHW)
    target = target_size("center_crop", like, TORCH)
    top, left, h, w = center_crop_box("center_crop", shape, target, NCHW)
    return x[:, :, top : top + h, left : left + w]


class UNetSkipMerge(nn.Module):
    """U-Net's skip merge: bring the encoder map to the decoder map's size, then
    concatenate.

    xs = [up, skip], up: (N, C_u, h, w), skip: (N, C_s, H, W) -> (N, C_u + C_s, ., .),
    with
    mode="crop": skip centre-cropped to h x w (the paper's valid convolutions shrink
                 maps);
    mode="pad":  up zero-padded (centred) to H x W (the common "same"-padding
                 variant).
    Output order is cat([up, skip]). Taught in the chapter on concatenation.
    """

    def __init__(self, mode: str = "crop"):
        super().__init__()
        if mode not in ("crop", "pad"):
            raise ValueError(
                f"UNetSkipMerge mode must be 'crop' or 'pad'; got {mode!r}."
            )
        self.mode = mode

    def check_inputs(self, xs) -> None:
        check_unet_skip(
            "UNetSkipMerge", xs, TORCH, f"mode={self.mode!r}", 1, form="[up, skip]"
        )

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        self.check_inputs(xs)
        up, skip = xs
        (h, w), (H, W) = up.shape[2:], skip.shape[2:]
        if self.mode == "crop":
            top, left = (H - h) // 2, (W - w) // 2  # center_crop's window
            skip = skip[:, :, top : top + h, left : left + w]
        else:
            top, bottom, left, right = pad_amounts((h, w), (H, W))
            up = nn.functional.pad(up, (left, right, top, bottom))
        return torch.cat([up, skip], dim=1)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"
