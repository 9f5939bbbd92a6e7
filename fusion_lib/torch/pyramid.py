"""Feature pyramid network: top-down fusion of a backbone's multi-scale maps (NCHW).

Taught in the chapter on feature pyramids.
"""

from __future__ import annotations

import torch
from torch import nn

from fusion_lib._checks import check_pyramid
from fusion_lib.torch._base import TORCH, like_weights
from fusion_lib.torch.reduce import resize_to


class FeaturePyramid(nn.Module):
    """Feature Pyramid Network's top-down path with lateral connections (Lin et al.,
    2017), in torchvision's `FeaturePyramidNetwork` form.

    xs: list of L maps (N, C_i, H_i, W_i) ordered from high to low resolution
    (H_0 >= H_1 >= ...), C_i = in_channels[i] -> list of L maps (N, D, H_i, W_i),
    D = out_channels, plus one (N, D, (H_{L-1} - 1) // 2 + 1, ...) if extra_level;
    lateral_i = conv1x1_i(x_i) (C_i -> D, with bias);
    m_{L-1} = lateral_{L-1};  m_i = lateral_i + up(m_{i+1} to H_i x W_i);
    p_i = conv3x3_i(m_i) (D -> D, padding 1, with bias); no activation anywhere;
    extra_level: p_L = maxpool(p_{L-1}, kernel 1, stride 2), i.e. every other pixel.
    up is nearest-neighbour to the lateral's exact size with half-pixel rounding:
    torch's "nearest-exact", which equals TF's "nearest", so both halves agree at odd
    sizes (13 -> 25). torchvision uses "nearest" (floor indexing): at odd sizes its
    results differ from this class by design; at exact x2 sizes they coincide.
    Taught in the chapter on feature pyramids.
    """

    def __init__(
        self, in_channels: list[int], out_channels: int, extra_level: bool = False
    ):
        super().__init__()
        self.in_channels = [int(c) for c in in_channels]
        if not self.in_channels:
            raise ValueError(
                "FeaturePyramid needs at least one level; got in_channels=[]."
            )
        self.out_channels, self.extra_level = int(out_channels), bool(extra_level)
        self.lateral_convs = nn.ModuleList(
            nn.Conv2d(c, out_channels, 1) for c in self.in_channels
        )
        self.output_convs = nn.ModuleList(
            nn.Conv2d(out_channels, out_channels, 3, padding=1)
            for _ in self.in_channels
        )

    def check_inputs(self, xs) -> None:
        check_pyramid("FeaturePyramid", xs, TORCH, self.in_channels)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        self.check_inputs(xs)
        xs = [like_weights(x, self.lateral_convs[0].weight) for x in xs]
        merged = self.lateral_convs[-1](xs[-1])
        outs = [self.output_convs[-1](merged)]
        for i in range(len(xs) - 2, -1, -1):
            lateral = self.lateral_convs[i](xs[i])
            merged = lateral + resize_to(merged, lateral, mode="nearest")
            outs.insert(0, self.output_convs[i](merged))
        if self.extra_level:
            outs.append(nn.functional.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return outs

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"extra_level={self.extra_level}"
        )
