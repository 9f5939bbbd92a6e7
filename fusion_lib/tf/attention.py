"""Channel, spatial and mixed attention that rescales a feature map: CBAM, BAM (NHWC).

Taught in the chapter on spatial and mixed attention.
"""

from __future__ import annotations

import keras

from fusion_lib._checks import check_input_map, check_reduction
from fusion_lib.tf._base import KERAS, FusionLayer, max_over

BAM_COMBINE = ("sum", "product")


def _batch_norm(momentum: float = 0.9):
    """BatchNormalization with PyTorch's eps (1e-5); Keras momentum = 1 - torch's."""
    return keras.layers.BatchNormalization(epsilon=1e-5, momentum=momentum)


def channel_pool(x):
    """CBAM's two maps that summarise every channel at each pixel, stacked [max, mean].

    x: (N, H, W, C) -> (N, H, W, 2); out[..., 0] = max_c x, out[..., 1] = mean_c x.
    The original CBAM code stacks max first; timm stacks [mean, max]. The order only
    decides which input channel of the following 7x7 conv sees which map.
    Taught in the chapter on spatial and mixed attention.
    """
    check_input_map("channel_pool", x, KERAS)
    return keras.ops.concatenate(
        [
            max_over(x, axis=-1, keepdims=True),
            keras.ops.mean(x, axis=-1, keepdims=True),
        ],
        axis=-1,
    )


class ChannelAttention(FusionLayer):
    """CBAM's channel gate: one shared MLP reads the average- and max-pooled vectors.

    x: (N, H, W, C) -> (N, H, W, C); out = x * sigmoid(MLP(mean_hw x) + MLP(max_hw x)),
    MLP = Dense(C // reduction), ReLU, Dense(C), both with bias.
    Taught in the chapter on spatial and mixed attention.
    """

    def __init__(self, channels: int, reduction: int = 16, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.reduction = channels, reduction
        hidden = check_reduction("ChannelAttention", channels, reduction)
        self.mlp = keras.Sequential(
            [
                keras.layers.Dense(hidden),
                keras.layers.ReLU(),
                keras.layers.Dense(channels),
            ]
        )
        self.mlp.build((None, channels))

    def check_inputs(self, x) -> None:
        check_input_map("ChannelAttention", x, KERAS, self.channels)

    def gates(self, x):
        """(N, H, W, C) -> (N, 1, 1, C), one weight in (0, 1) per channel."""
        self.check_inputs(x)
        logits = self.mlp(keras.ops.mean(x, axis=(1, 2))) + self.mlp(
            max_over(x, axis=(1, 2))
        )
        return keras.ops.sigmoid(logits)[:, None, None, :]

    def call(self, x):
        return x * self.gates(x)

    def get_config(self):
        return {
            **super().get_config(),
            "channels": self.channels,
            "reduction": self.reduction,
        }


class SpatialAttention(FusionLayer):
    """CBAM's spatial gate: a k x k conv over the [max, mean] channel summaries.

    x: (N, H, W, C) -> (N, H, W, C); out = x * sigmoid(BN(conv_k(channel_pool(x)))),
    conv_k: 2 -> 1 channels, no bias, "same" padding; BN with eps 1e-5 and momentum
    0.99 (PyTorch's 0.01), as in the original code.
    Taught in the chapter on spatial and mixed attention.
    """

    def __init__(self, kernel_size: int = 7, **kwargs):
        super().__init__(**kwargs)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                "SpatialAttention needs an odd kernel_size to keep H x W; "
                f"got {kernel_size}."
            )
        self.kernel_size = kernel_size
        self.conv = keras.layers.Conv2D(1, kernel_size, padding="same", use_bias=False)
        self.conv.build((None, None, None, 2))
        self.bn = _batch_norm(momentum=0.99)
        self.bn.build((None, None, None, 1))

    def check_inputs(self, x) -> None:
        check_input_map("SpatialAttention", x, KERAS)

    def attention_map(self, x, training=None):
        """(N, H, W, C) -> (N, H, W, 1), one weight in (0, 1) per pixel."""
        self.check_inputs(x)
        logits = self.bn(self.conv(channel_pool(x)), training=training)
        return keras.ops.sigmoid(logits)

    def call(self, x, training=None):
        return x * self.attention_map(x, training=training)

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size}


class CBAM(FusionLayer):
    """Convolutional Block Attention Module (Woo et al., 2018): channel, then spatial.

    x: (N, H, W, C) -> (N, H, W, C); out = SpatialAttention(ChannelAttention(x)).
    In a ResNet block it goes after the last BN, before the residual addition.
    Taught in the chapter on spatial and mixed attention.
    """

    def __init__(
        self, channels: int, reduction: int = 16, kernel_size: int = 7, **kwargs
    ):
        super().__init__(**kwargs)
        self.channels, self.reduction, self.kernel_size = (
            channels,
            reduction,
            kernel_size,
        )
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(kernel_size)

    def check_inputs(self, x) -> None:
        check_input_map("CBAM", x, KERAS, self.channels)

    def call(self, x, training=None):
        return self.spatial(self.channel(x), training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "channels": self.channels,
            "reduction": self.reduction,
            "kernel_size": self.kernel_size,
        }


class BAM(FusionLayer):
    """Bottleneck Attention Module (Park et al., 2018): a channel and a spatial branch.

    x: (N, H, W, C) -> (N, H, W, C); out = x * (1 + sigmoid(M_c(x) + M_s(x))), where
    M_c(x) = Dense(BN+ReLU(Dense(mean_hw x))): C -> C/r -> C, shape (N, 1, 1, C);
    M_s(x) = 1x1 conv C -> C/r, two 3x3 convs with dilation d, each with BN+ReLU,
    1x1 conv C/r -> 1: shape (N, H, W, 1). The sum broadcasts to (N, H, W, C).
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
        **kwargs,
    ):
        super().__init__(**kwargs)
        if combine not in BAM_COMBINE:
            raise ValueError(
                f"BAM combine must be one of {BAM_COMBINE} (the paper sums the "
                f"branches, the official code multiplies them); got {combine!r}."
            )
        self.channels, self.reduction, self.dilation = channels, reduction, dilation
        self.combine = combine
        hidden = check_reduction("BAM", channels, reduction)
        self.channel = keras.Sequential(
            [
                keras.layers.Dense(hidden),
                _batch_norm(),
                keras.layers.ReLU(),
                keras.layers.Dense(channels),
            ]
        )
        self.channel.build((None, channels))
        dilated = []
        for _ in range(2):
            dilated += [
                keras.layers.Conv2D(hidden, 3, padding="same", dilation_rate=dilation),
                _batch_norm(),
                keras.layers.ReLU(),
            ]
        self.spatial = keras.Sequential(
            [
                keras.layers.Conv2D(hidden, 1),
                _batch_norm(),
                keras.layers.ReLU(),
                *dilated,
                keras.layers.Conv2D(1, 1),
            ]
        )
        self.spatial.build((None, None, None, channels))

    def check_inputs(self, x) -> None:
        check_input_map("BAM", x, KERAS, self.channels)

    def attention_map(self, x, training=None):
        """sigmoid(M_c + M_s) or sigmoid(M_c * M_s): (N, H, W, C), values in (0, 1)."""
        self.check_inputs(x)
        pooled = keras.ops.mean(x, axis=(1, 2))
        m_c = self.channel(pooled, training=training)[:, None, None, :]
        m_s = self.spatial(x, training=training)
        return keras.ops.sigmoid(m_c + m_s if self.combine == "sum" else m_c * m_s)

    def call(self, x, training=None):
        return x * (1 + self.attention_map(x, training=training))

    def get_config(self):
        return {
            **super().get_config(),
            "channels": self.channels,
            "reduction": self.reduction,
            "dilation": self.dilation,
            "combine": self.combine,
        }
