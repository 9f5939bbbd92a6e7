"""Skip connections that add or concatenate: residual, dense, U-Net and deep layer
aggregation blocks (NCHW).

Taught in the chapter on skip connections.
"""

from __future__ import annotations

import torch
from torch import nn

from fusion_lib._checks import (
    check_input_map,
    check_maps_match,
    check_stride,
    check_unet_skip,
    pad_amounts,
)
from fusion_lib.torch._base import TORCH, like_weights
from fusion_lib.torch.add import AddFusion
from fusion_lib.torch.concat import ConcatFusion, center_crop

UNET_MERGES = ("concat", "add")


class ResidualBlock(nn.Module):
    """ResNet's basic block (He et al., 2016), in torchvision's BasicBlock convention.

    x: (N, C_in, H, W) -> (N, C_out, H', W'), H' = (H - 1) // stride + 1 (same for W);
    out = relu(F(x) + S(x)),
    F(x) = BN(conv3x3(relu(BN(conv3x3_stride(x))))), both convs padding 1, no bias
    (BN's shift would cancel it), the stride on the first 3x3;
    S(x) = x when stride == 1 and C_in == C_out, else the projection
    BN(conv1x1_stride(x)) (no bias).
    With the last BN's gamma = beta = 0, F(x) = 0 and the block is relu(x) (identity on
    non-negative inputs): the usual "zero-init the residual" start.
    Taught in the chapter on skip connections.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.stride = check_stride("ResidualBlock", stride)
        self.conv1 = nn.Conv2d(
            in_channels, out_channels, 3, stride=self.stride, padding=1, bias=False
        )
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if self.stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=self.stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.shortcut = nn.Identity()

    def check_inputs(self, x) -> None:
        check_input_map("ResidualBlock", x, TORCH, self.in_channels, "in_channels")

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """F(x), the branch the block adds to its shortcut: (N, C_out, H', W')."""
        self.check_inputs(x)
        x = like_weights(x, self.conv1.weight)
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.residual(x)  # checks x first
        return self.relu(residual + self.shortcut(like_weights(x, self.conv1.weight)))

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"stride={self.stride}"
        )


class DenseLayer(nn.Module):
    """One layer of a DenseNet-BC block (Huang et al., 2017): it returns only its new
    features, as torchvision's `_DenseLayer` does.

    x: (N, C_in, H, W) -> (N, k, H, W), k = growth_rate;
    out = conv3x3(relu(BN(conv1x1(relu(BN(x)))))),
    conv1x1: C_in -> bn_size * k, conv3x3: bn_size * k -> k (padding 1), no biases.
    Parameters: 2 C_in + C_in * bn_size * k + 2 bn_size * k + 9 bn_size * k^2.
    Taught in the chapter on skip connections.
    """

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int = 4):
        super().__init__()
        self.in_channels, self.growth_rate = int(in_channels), int(growth_rate)
        self.bn_size = int(bn_size)
        hidden = bn_size * growth_rate
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU()
        self.conv1 = nn.Conv2d(in_channels, hidden, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(hidden)
        self.conv2 = nn.Conv2d(hidden, growth_rate, 3, padding=1, bias=False)

    def check_inputs(self, x) -> None:
        check_input_map("DenseLayer", x, TORCH, self.in_channels, "in_channels")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_inputs(x)
        h = self.conv1(self.relu(self.norm1(like_weights(x, self.conv1.weight))))
        return self.conv2(self.relu(self.norm2(h)))

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, growth_rate={self.growth_rate}, "
            f"bn_size={self.bn_size}"
        )


class DenseBlock(nn.Module):
    """A dense block: every layer reads the concatenation of the block's input and of
    all earlier layers' outputs (Huang et al., 2017).

    x: (N, C_0, H, W) -> (N, C_0 + L k, H, W), L = num_layers, k = growth_rate;
    x_l = DenseLayer_l(cat([x_0, x_1, ..., x_{l-1}])), layer l reading C_0 + l k
    channels; out = cat([x_0, x_1, ..., x_L]) in that order.
    Width grows linearly in L (attribute `out_channels`); parameters grow
    quadratically, since layer l's 1x1 conv has (C_0 + l k) * bn_size * k weights.
    Taught in the chapter on skip connections.
    """

    def __init__(
        self, num_layers: int, in_channels: int, growth_rate: int, bn_size: int = 4
    ):
        super().__init__()
        if num_layers < 1 or growth_rate < 1 or bn_size < 1:
            raise ValueError(
                "DenseBlock needs num_layers, growth_rate and bn_size >= 1; got "
                f"num_layers={num_layers}, growth_rate={growth_rate}, "
                f"bn_size={bn_size}."
            )
        self.num_layers, self.bn_size = int(num_layers), int(bn_size)
        self.in_channels, self.growth_rate = int(in_channels), int(growth_rate)
        self.out_channels = self.in_channels + num_layers * self.growth_rate
        self.dense_layers = nn.ModuleList(
            DenseLayer(self.in_channels + i * self.growth_rate, growth_rate, bn_size)
            for i in range(num_layers)
        )

    def check_inputs(self, x) -> None:
        check_input_map("DenseBlock", x, TORCH, self.in_channels, "in_channels")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_inputs(x)
        features = [like_weights(x, self.dense_layers[0].conv1.weight)]
        for layer in self.dense_layers:
            features.append(layer(torch.cat(features, dim=1)))
        return torch.cat(features, dim=1)

    def extra_repr(self) -> str:
        return (
            f"num_layers={self.num_layers}, in_channels={self.in_channels}, "
            f"growth_rate={self.growth_rate}, bn_size={self.bn_size}"
        )


class Transition(nn.Module):
    """DenseNet's transition between dense blocks: shrink the width, halve the size.

    x: (N, C_in, H, W) -> (N, C_out, H // 2, W // 2);
    out = avgpool2x2(conv1x1(relu(BN(x)))), conv1x1 without bias, pool stride 2.
    DenseNet-BC uses C_out = C_in // 2.
    Taught in the chapter on skip connections.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.pool = nn.AvgPool2d(2, stride=2)

    def check_inputs(self, x) -> None:
        check_input_map("Transition", x, TORCH, self.in_channels, "in_channels")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_inputs(x)
        x = like_weights(x, self.conv.weight)
        return self.pool(self.conv(self.relu(self.norm(x))))

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}"


class UNetUp(nn.Module):
    """One U-Net decoder step (Ronneberger et al., 2015): upsample, merge the encoder's
    skip, two 3x3 convs.

    xs = [x, skip], x: (N, C_in, h, w) from the coarser level, skip: (N, C_s, H, W)
    from the encoder, H >= 2h, W >= 2w -> (N, C_out, 2h, 2w) if crop else
    (N, C_out, H, W);
    up = ConvTranspose2d(C_in -> C_out, kernel 2, stride 2, with bias)(x): exactly
    2h x 2w, as in U-Net's "up-convolution" (the paper has C_in = 2 C_out, so this
    halves the width);
    crop=True: skip centre-cropped to 2h x 2w (offset (H - 2h) // 2, `center_crop`);
    crop=False: up zero-padded, centred, to H x W;
    merge="concat": m = cat([up, skip]), C_out + C_s channels;
    merge="add": m = up + P(skip), P a 1x1 conv C_s -> C_out with bias when
    C_s != C_out (`AddFusion`), the identity otherwise;
    out = relu(conv3x3(relu(conv3x3(m)))), padding 1, with biases: C_out channels.
    Taught in the chapter on skip connections.
    """

    def __init__(
        self,
        in_channels: int,
        skip_channels: int,
        out_channels: int,
        merge: str = "concat",
        crop: bool = True,
    ):
        super().__init__()
        if merge not in UNET_MERGES:
            raise ValueError(
                f"UNetUp merge must be one of {UNET_MERGES}; got {merge!r}."
            )
        self.in_channels, self.skip_channels = int(in_channels), int(skip_channels)
        self.out_channels, self.merge, self.crop = int(out_channels), merge, bool(crop)
        self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        if merge == "concat":
            self.fuse = ConcatFusion()
            merged = self.out_channels + self.skip_channels
        else:
            self.fuse = AddFusion([self.out_channels, self.skip_channels], out_channels)
            merged = self.out_channels
        self.convs = nn.Sequential(
            nn.Conv2d(merged, out_channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
            nn.ReLU(),
        )

    def check_inputs(self, xs) -> None:
        check_unet_skip(
            "UNetUp",
            xs,
            TORCH,
            f"crop={self.crop}",
            2,
            [self.in_channels, self.skip_channels],
            ["in_channels", "skip_channels"],
        )

    def align(self, up: torch.Tensor, skip: torch.Tensor):
        """Bring up and skip to one spatial size: crop the skip, or pad up."""
        if self.crop:
            return up, center_crop(skip, up)
        top, bottom, left, right = pad_amounts(
            tuple(up.shape[2:]), tuple(skip.shape[2:])
        )
        return nn.functional.pad(up, (left, right, top, bottom)), skip

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        self.check_inputs(xs)
        x, skip = (like_weights(t, self.up.weight) for t in xs)
        up, skip = self.align(self.up(x), skip)
        return self.convs(self.fuse([up, skip]))

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, skip_channels={self.skip_channels}, "
            f"out_channels={self.out_channels}, merge={self.merge!r}, "
            f"crop={self.crop}"
        )


class AggregationNode(nn.Module):
    """Deep Layer Aggregation's node (Yu et al., 2018): fuse children by a 1x1 conv
    over their concatenation.

    xs: list of (N, C_i, H, W), the node's children -> (N, C_out, H, W);
    out = relu(BN(W cat(xs)) + [x_0 if residual]), W a 1x1 conv sum_i C_i -> C_out
    without bias; residual=True adds the FIRST child, so it needs C_0 == C_out.
    Parameters: C_out * sum_i C_i + 2 C_out.
    Taught in the chapter on skip connections.
    """

    def __init__(
        self, in_channels: list[int], out_channels: int, residual: bool = False
    ):
        super().__init__()
        self.in_channels = [int(c) for c in in_channels]
        self.out_channels, self.residual = int(out_channels), bool(residual)
        if len(self.in_channels) < 2:
            raise ValueError(
                "AggregationNode fuses at least 2 children; got "
                f"in_channels={self.in_channels}."
            )
        if residual and self.in_channels[0] != self.out_channels:
            raise ValueError(
                "AggregationNode(residual=True) adds the first child to the output, so "
                f"in_channels[0] must equal out_channels; got in_channels="
                f"{self.in_channels} and out_channels={self.out_channels}. Use "
                "residual=False, or put a child of width out_channels first."
            )
        self.conv = nn.Conv2d(sum(self.in_channels), out_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()

    def check_inputs(self, xs) -> None:
        check_maps_match("AggregationNode", xs, TORCH, self.in_channels)

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        self.check_inputs(xs)
        xs = [like_weights(x, self.conv.weight) for x in xs]
        out = self.bn(self.conv(torch.cat(xs, dim=1)))
        if self.residual:
            out = out + xs[0]
        return self.relu(out)

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"residual={self.residual}"
        )
