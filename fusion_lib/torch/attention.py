"""Channel, spatial and mixed attention that rescales a feature map: CBAM, BAM (NCHW).

Taught in the chapter on spatial and mixed attention.
"""

from __future__ import annotations

import torch
from torch import nn

from fusion_lib._checks import check_input_map, check_reduction
from fusion_lib.torch._base import TORCH, like_weights

BAM_COMBINE = ("sum", "product")


def channel_pool(x: torch.Tensor) -> torch.Tensor:
    """CBAM's two maps that summarise every channel at each pixel, stacked [max, mean].

    x: (N, C, H, W) -> (N, 2, H, W); out[:, 0] = max_c x, out[:, 1] = mean_c x.
    The original CBAM code stacks max first; timm stacks [mean, max]. The order only
    decides which input channel of the following 7x7 conv sees which map.
    Taught in the chapter on spatial and mixed attention.
    """
    check_input_map("channel_pool", x, TORCH)
    return torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)


class ChannelAttention(nn.Module):
    """CBAM's channel gate: one shared MLP reads the average- and max-pooled vectors.

    x: (N, C, H, W) -> (N, C, H, W); out = x * sigmoid(MLP(mean_hw x) + MLP(max_hw x)),
    MLP = Linear(C, C // reduction), ReLU, Linear(C // reduction, C), both with bias.
    Taught in the chapter on spatial and mixed attention.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.channels, self.reduction = channels, reduction
        hidden = check_reduction("ChannelAttention", channels, reduction)
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels)
        )

    def check_inputs(self, x) -> None:
        check_input_map("ChannelAttention", x, TORCH, self.channels)

    def gates(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, 1, 1), one weight in (0, 1) per channel."""
        self.check_inputs(x)
        x = like_weights(x, self.mlp[0].weight)
        logits = self.mlp(x.mean(dim=(2, 3))) + self.mlp(x.amax(dim=(2, 3)))
        return torch.sigmoid(logits)[:, :, None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gates = self.gates(x)  # checks x first
        return like_weights(x, self.mlp[0].weight) * gates

    def extra_repr(self) -> str:
        return f"channels={self.channels}, reduction={self.reduction}"


class SpatialAttention(nn.Module):
    """CBAM's spatial gate: a k x k conv over the [max, mean] channel summaries.

    x: (N, C, H, W) -> (N, C, H, W); out = x * sigmoid(BN(conv_k(channel_pool(x)))),
    conv_k: 2 -> 1 channels, no bias, "same" padding; BN with eps 1e-5 and momentum
    0.01, as in the original code. Taught in the chapter on spatial and mixed attention.
    """

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                "SpatialAttention needs an odd kernel_size to keep H x W; "
                f"got {kernel_size}."
            )
        self.kernel_size = kernel_size
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

    def check_inputs(self, x) -> None:
        check_input_map("SpatialAttention", x, TORCH)

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, 1, H, W), one weight in (0, 1) per pixel."""
        self.check_inputs(x)
        pooled = channel_pool(like_weights(x, self.conv.weight))
        return torch.sigmoid(self.bn(self.conv(pooled)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.attention_map(x)  # checks x first
        return like_weights(x, self.conv.weight) * weights

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"


class CBAM(nn.Module):
    """Convolutional Block Attention Module (Woo et al., 2018): channel, then spatial.

    x: (N, C, H, W) -> (N, C, H, W); out = SpatialAttention(ChannelAttention(x)).
    In a ResNet block it goes after the last BN, before the residual addition.
    Taught in the chapter on spatial and mixed attention.
    """

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7):
        super().__init__()
        self.channels, self.reduction, self.kernel_size = (
            channels,
            reduction,
            kernel_size,
        )
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(kernel_size)

    def check_inputs(self, x) -> None:
        check_input_map("CBAM", x, TORCH, self.channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_inputs(x)
        return self.spatial(self.channel(x))

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, reduction={self.reduction}, "
            f"kernel_size={self.kernel_size}"
        )


class BAM(nn.Module):
    """Bottleneck Attention Module (Park et al., 2018): a channel and a spatial branch.

    x: (N, C, H, W) -> (N, C, H, W); out = x * (1 + sigmoid(M_c(x) + M_s(x))), where
    M_c(x) = Linear(BN1d+ReLU(Linear(mean_hw x))): C -> C/r -> C, shape (N, C, 1, 1);
    M_s(x) = 1x1 conv C -> C/r, two 3x3 convs with dilation d, each with BN+ReLU,
    1x1 conv C/r -> 1: shape (N, 1, H, W). The sum broadcasts to (N, C, H, W).
    combine="sum" is the paper's Eq. 2 (the default); combine="product" is what the
    official code computes, sigmoid(M_c(x) * M_s(x)): a different network, to be trained
    as such. Padding = d keeps H x W; on a map smaller than 2d + 1 the outer taps of the
    dilated convs read mostly zero padding.
    Taught in the chapter on spatial and mixed attention.
    """

    def __init__(
        self,
        channels: int,
        reduction: int = 16,
        dilation: int = 4,
        combine: str = "sum",
    ):
        super().__init__()
        if combine not in BAM_COMBINE:
            raise ValueError(
                f"BAM combine must be one of {BAM_COMBINE} (the paper sums the "
                f"branches, the official code multiplies them); got {combine!r}."
            )
        self.channels, self.reduction, self.dilation = channels, reduction, dilation
        self.combine = combine
        hidden = check_reduction("BAM", channels, reduction)
        self.channel = nn.Sequential(
            nn.Linear(channels, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, channels),
        )
        dilated = []
        for _ in range(2):
            dilated += [
                nn.Conv2d(hidden, hidden, 3, padding=dilation, dilation=dilation),
                nn.BatchNorm2d(hidden),
                nn.ReLU(),
            ]
        self.spatial = nn.Sequential(
            nn.Conv2d(channels, hidden, 1),
            nn.BatchNorm2d(hidden),
            nn.ReLU(),
            *dilated,
            nn.Conv2d(hidden, 1, 1),
        )

    def check_inputs(self, x) -> None:
        check_input_map("BAM", x, TORCH, self.channels)

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """sigmoid(M_c + M_s) or sigmoid(M_c * M_s): (N, C, H, W), values in (0, 1)."""
        self.check_inputs(x)
        x = like_weights(x, self.spatial[0].weight)
        m_c = self.channel(x.mean(dim=(2, 3)))[:, :, None, None]
        m_s = self.spatial(x)
        return torch.sigmoid(m_c + m_s if self.combine == "sum" else m_c * m_s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.attention_map(x)  # checks x first
        return like_weights(x, self.spatial[0].weight) * (1 + weights)

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, reduction={self.reduction}, "
            f"dilation={self.dilation}, combine={self.combine!r}"
        )
