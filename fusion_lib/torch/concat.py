"""Concatenation along the channel axis, and U-Net's crop-and-concat skip merge (NCHW).

Taught in the chapter on concatenation.
"""

from __future__ import annotations

import torch
from torch import nn

from fusion_lib._checks import (
    NCHW,
    as_tensor_list,
    center_crop_box,
    check_all_but_channels,
    check_rank4,
    pad_amounts,
)


class ConcatFusion(nn.Module):
    """Stack feature maps along the channel axis.

    xs: list of (N, C_i, H, W) -> (N, sum_i C_i, H, W); out = cat(xs, dim=1).
    Order matters: it fixes which input channels a following layer's weights see.
    Taught in the chapter on concatenation.
    """

    def check_inputs(self, xs) -> None:
        xs = as_tensor_list("ConcatFusion", xs)
        check_all_but_channels("ConcatFusion", [tuple(x.shape) for x in xs], NCHW)

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        self.check_inputs(xs)
        return torch.cat(xs, dim=1)


def center_crop(x: torch.Tensor, like: torch.Tensor | tuple[int, int]) -> torch.Tensor:
    """Crop the centre of x to the spatial size of `like` (a tensor or an (h, w) pair).

    x: (N, C, H, W) -> (N, C, h, w), the window starting at
    ((H - h) // 2, (W - w) // 2), as the original U-Net crops its encoder maps.
    Taught in the chapter on concatenation.
    """
    if isinstance(like, torch.Tensor):
        check_rank4("center_crop", [tuple(like.shape)], NCHW)
        like = tuple(like.shape[2:])
    top, left, h, w = center_crop_box(tuple(x.shape), like, NCHW)
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
        xs = as_tensor_list("UNetSkipMerge", xs, min_count=2)
        if len(xs) != 2:
            raise ValueError(f"UNetSkipMerge takes [up, skip]; got {len(xs)} tensors.")
        check_rank4("UNetSkipMerge", [tuple(x.shape) for x in xs], NCHW)

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        self.check_inputs(xs)
        up, skip = xs
        if self.mode == "crop":
            skip = center_crop(skip, up)
        else:
            top, bottom, left, right = pad_amounts(
                tuple(up.shape[2:]), tuple(skip.shape[2:])
            )
            up = nn.functional.pad(up, (left, right, top, bottom))
        return ConcatFusion()([up, skip])

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"
