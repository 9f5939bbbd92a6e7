"""Global pooling over space, and the two classifier heads it decides between (NCHW).

Taught in the chapter on global pooling.
"""

from __future__ import annotations

import torch
from torch import nn

from fusion_lib._checks import NCHW, check_hw_size, check_input_map
from fusion_lib.torch._base import TORCH, like_weights


class GlobalPool(nn.Module):
    """Fuse all positions of a map into one vector per channel.

    x: (N, C, H, W) -> (N, C), or (N, C, 1, 1) with keepdims=True;
    mode="avg": out[n, c] = mean_{h,w} x[n, c, h, w];
    mode="max": max_{h,w} x[n, c, h, w].
    Taught in the chapter on global pooling.
    """

    def __init__(self, mode: str = "avg", keepdims: bool = False):
        super().__init__()
        if mode not in ("avg", "max"):
            raise ValueError(f"GlobalPool mode must be 'avg' or 'max'; got {mode!r}.")
        self.mode, self.keepdims = mode, keepdims

    def check_inputs(self, x) -> None:
        check_input_map("GlobalPool", x, TORCH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_inputs(x)
        if self.mode == "avg":
            return x.mean(dim=(2, 3), keepdim=self.keepdims)
        return x.amax(dim=(2, 3), keepdim=self.keepdims)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, keepdims={self.keepdims}"


class FlattenHead(nn.Module):
    """The pre-2014 classifier head: flatten the map, then one fully connected layer.

    x: (N, C, H, W) -> logits (N, num_classes); out = W vec(x) + b, vec flattening C,
    H, W in that order, W: (num_classes, C*H*W). Built for one input size:
    C*H*W*K + K parameters.
    Taught in the chapter on global pooling.
    """

    def __init__(self, in_channels: int, height: int, width: int, num_classes: int):
        super().__init__()
        self.in_channels, self.height, self.width = in_channels, height, width
        self.num_classes = num_classes
        self.fc = nn.Linear(in_channels * height * width, num_classes)

    def check_inputs(self, x) -> None:
        shape = check_input_map(
            "FlattenHead", x, TORCH, self.in_channels, "in_channels"
        )
        check_hw_size(
            "FlattenHead",
            shape,
            NCHW,
            (self.height, self.width),
            "A flatten head fixes the input size; GAPHead accepts any.",
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_inputs(x)
        return self.fc(like_weights(x, self.fc.weight).flatten(1))

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, height={self.height}, "
            f"width={self.width}, num_classes={self.num_classes}"
        )


class GAPHead(nn.Module):
    """The Network-in-Network / GoogLeNet head: global average pooling, then a linear
    layer.

    x: (N, C, H, W) -> logits (N, num_classes); out = W mean_{h,w}(x) + b,
    W: (num_classes, C).
    C*K + K parameters, whatever H and W are.
    Taught in the chapter on global pooling.
    """

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.in_channels, self.num_classes = in_channels, num_classes
        self.pool = GlobalPool("avg")
        self.fc = nn.Linear(in_channels, num_classes)

    def check_inputs(self, x) -> None:
        check_input_map("GAPHead", x, TORCH, self.in_channels, "in_channels")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_inputs(x)
        return self.fc(self.pool(like_weights(x, self.fc.weight)))

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, num_classes={self.num_classes}"
