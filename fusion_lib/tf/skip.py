"""Skip connections that add or concatenate: residual, dense, U-Net and deep layer
aggregation blocks (NHWC).

Taught in the chapter on skip connections.
"""

from __future__ import annotations

import keras

from fusion_lib._checks import (
    check_input_map,
    check_maps_match,
    check_stride,
    check_unet_skip,
    pad_amounts,
)
from fusion_lib.tf._base import KERAS, FusionLayer
from fusion_lib.tf.add import AddFusion
from fusion_lib.tf.concat import ConcatFusion, center_crop

UNET_MERGES = ("concat", "add")


def _batch_norm(channels: int):
    """BatchNormalization with PyTorch's eps (1e-5) and momentum (Keras' 0.9 = 1 - 0.1),
    built at once so fusion_lib.port can fill it.
    """
    bn = keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9)
    bn.build((None, None, None, channels))
    return bn


def _conv(in_channels: int, filters: int, kernel_size: int, **kwargs):
    conv = keras.layers.Conv2D(filters, kernel_size, **kwargs)
    conv.build((None, None, None, in_channels))
    return conv


def _pad1(x):
    """Zero-pad H and W by 1 on every side, as torch's padding=1 does. Keras'
    padding="same" with stride 2 would pad only bottom/right on even sizes.
    """
    return keras.ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])


class ResidualBlock(FusionLayer):
    """ResNet's basic block (He et al., 2016), in torchvision's BasicBlock convention.

    x: (N, H, W, C_in) -> (N, H', W', C_out), H' = (H - 1) // stride + 1 (same for W);
    out = relu(F(x) + S(x)),
    F(x) = BN(conv3x3(relu(BN(conv3x3_stride(x))))), both convs padding 1, no bias
    (BN's shift would cancel it), the stride on the first 3x3;
    S(x) = x when stride == 1 and C_in == C_out, else the projection
    BN(conv1x1_stride(x)) (no bias).
    With the last BN's gamma = beta = 0, F(x) = 0 and the block is relu(x) (identity on
    non-negative inputs): the usual "zero-init the residual" start.
    Padding is explicit (1 on every side, then "valid" convs): Keras' padding="same"
    with stride 2 pads only bottom/right and would sample other pixels than torch.
    Taught in the chapter on skip connections.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.stride = check_stride("ResidualBlock", stride)
        self.conv1 = _conv(
            in_channels, out_channels, 3, strides=self.stride, use_bias=False
        )
        self.bn1 = _batch_norm(out_channels)
        self.relu = keras.layers.ReLU()
        self.conv2 = _conv(out_channels, out_channels, 3, use_bias=False)
        self.bn2 = _batch_norm(out_channels)
        if self.stride != 1 or in_channels != out_channels:
            self.shortcut = keras.Sequential(
                [
                    keras.layers.Conv2D(
                        out_channels, 1, strides=self.stride, use_bias=False
                    ),
                    keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9),
                ]
            )
            self.shortcut.build((None, None, None, in_channels))
        else:
            self.shortcut = keras.layers.Identity()

    def check_inputs(self, x) -> None:
        check_input_map("ResidualBlock", x, KERAS, self.in_channels, "in_channels")

    def residual(self, x, training=None):
        """F(x), the branch the block adds to its shortcut: (N, H', W', C_out)."""
        self.check_inputs(x)
        h = self.relu(self.bn1(self.conv1(_pad1(x)), training=training))
        return self.bn2(self.conv2(_pad1(h)), training=training)

    def call(self, x, training=None):
        shortcut = self.shortcut(x, training=training)
        return self.relu(self.residual(x, training=training) + shortcut)

    def get_config(self):
        return {
            **super().get_config(),
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "stride": self.stride,
        }


class DenseLayer(FusionLayer):
    """One layer of a DenseNet-BC block (Huang et al., 2017): it returns only its new
    features, as torchvision's `_DenseLayer` does.

    x: (N, H, W, C_in) -> (N, H, W, k), k = growth_rate;
    out = conv3x3(relu(BN(conv1x1(relu(BN(x)))))),
    conv1x1: C_in -> bn_size * k, conv3x3: bn_size * k -> k ("same"), no biases.
    Parameters: 2 C_in + C_in * bn_size * k + 2 bn_size * k + 9 bn_size * k^2
    (trainable; Keras also stores BN's moving mean and variance as weights).
    Taught in the chapter on skip connections.
    """

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.in_channels, self.growth_rate = int(in_channels), int(growth_rate)
        self.bn_size = int(bn_size)
        hidden = bn_size * growth_rate
        self.norm1 = _batch_norm(in_channels)
        self.relu = keras.layers.ReLU()
        self.conv1 = _conv(in_channels, hidden, 1, use_bias=False)
        self.norm2 = _batch_norm(hidden)
        self.conv2 = _conv(hidden, growth_rate, 3, padding="same", use_bias=False)

    def check_inputs(self, x) -> None:
        check_input_map("DenseLayer", x, KERAS, self.in_channels, "in_channels")

    def call(self, x, training=None):
        h = self.conv1(self.relu(self.norm1(x, training=training)))
        return self.conv2(self.relu(self.norm2(h, training=training)))

    def get_config(self):
        return {
            **super().get_config(),
            "in_channels": self.in_channels,
            "growth_rate": self.growth_rate,
            "bn_size": self.bn_size,
        }


class DenseBlock(FusionLayer):
    """A dense block: every layer reads the concatenation of the block's input and of
    all earlier layers' outputs (Huang et al., 2017).

    x: (N, H, W, C_0) -> (N, H, W, C_0 + L k), L = num_layers, k = growth_rate;
    x_l = DenseLayer_l(concatenate([x_0, x_1, ..., x_{l-1}])), layer l reading
    C_0 + l k channels; out = concatenate([x_0, x_1, ..., x_L]) in that order.
    Width grows linearly in L (attribute `out_channels`); parameters grow
    quadratically, since layer l's 1x1 conv has (C_0 + l k) * bn_size * k weights.
    Taught in the chapter on skip connections.
    """

    def __init__(
        self,
        num_layers: int,
        in_channels: int,
        growth_rate: int,
        bn_size: int = 4,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_layers < 1 or growth_rate < 1 or bn_size < 1:
            raise ValueError(
                "DenseBlock needs num_layers, growth_rate and bn_size >= 1; got "
                f"num_layers={num_layers}, growth_rate={growth_rate}, "
                f"bn_size={bn_size}."
            )
        self.num_layers, self.bn_size = int(num_layers), int(bn_size)
        self.in_channels, self.growth_rate = int(in_channels), int(growth_rate)
        self.out_channels = self.in_channels + num_layers * self.growth_rate
        self.dense_layers = [
            DenseLayer(self.in_channels + i * self.growth_rate, growth_rate, bn_size)
            for i in range(num_layers)
        ]

    def check_inputs(self, x) -> None:
        check_input_map("DenseBlock", x, KERAS, self.in_channels, "in_channels")

    def call(self, x, training=None):
        features = [x]
        for layer in self.dense_layers:
            inputs = keras.ops.concatenate(features, axis=-1)
            features.append(layer(inputs, training=training))
        return keras.ops.concatenate(features, axis=-1)

    def get_config(self):
        return {
            **super().get_config(),
            "num_layers": self.num_layers,
            "in_channels": self.in_channels,
            "growth_rate": self.growth_rate,
            "bn_size": self.bn_size,
        }


class Transition(FusionLayer):
    """DenseNet's transition between dense blocks: shrink the width, halve the size.

    x: (N, H, W, C_in) -> (N, H // 2, W // 2, C_out);
    out = avgpool2x2(conv1x1(relu(BN(x)))), conv1x1 without bias, pool stride 2.
    DenseNet-BC uses C_out = C_in // 2.
    Taught in the chapter on skip connections.
    """

    def __init__(self, in_channels: int, out_channels: int, **kwargs):
        super().__init__(**kwargs)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.norm = _batch_norm(in_channels)
        self.relu = keras.layers.ReLU()
        self.conv = _conv(in_channels, out_channels, 1, use_bias=False)
        self.pool = keras.layers.AveragePooling2D(2, strides=2)

    def check_inputs(self, x) -> None:
        check_input_map("Transition", x, KERAS, self.in_channels, "in_channels")

    def call(self, x, training=None):
        return self.pool(self.conv(self.relu(self.norm(x, training=training))))

    def get_config(self):
        return {
            **super().get_config(),
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
        }


class UNetUp(FusionLayer):
    """One U-Net decoder step (Ronneberger et al., 2015): upsample, merge the encoder's
    skip, two 3x3 convs.

    xs = [x, skip], x: (N, h, w, C_in) from the coarser level, skip: (N, H, W, C_s)
    from the encoder, H >= 2h, W >= 2w -> (N, 2h, 2w, C_out) if crop else
    (N, H, W, C_out);
    up = Conv2DTranspose(C_in -> C_out, kernel 2, stride 2, with bias)(x): exactly
    2h x 2w, as in U-Net's "up-convolution" (the paper has C_in = 2 C_out, so this
    halves the width);
    crop=True: skip centre-cropped to 2h x 2w (offset (H - 2h) // 2, `center_crop`);
    crop=False: up zero-padded, centred, to H x W;
    merge="concat": m = concatenate([up, skip]), C_out + C_s channels;
    merge="add": m = up + P(skip), P a 1x1 conv C_s -> C_out with bias when
    C_s != C_out (`AddFusion`), the identity otherwise;
    out = relu(conv3x3(relu(conv3x3(m)))), "same" padding, with biases: C_out channels.
    Taught in the chapter on skip connections.
    """

    def __init__(
        self,
        in_channels: int,
        skip_channels: int,
        out_channels: int,
        merge: str = "concat",
        crop: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if merge not in UNET_MERGES:
            raise ValueError(
                f"UNetUp merge must be one of {UNET_MERGES}; got {merge!r}."
            )
        self.in_channels, self.skip_channels = int(in_channels), int(skip_channels)
        self.out_channels, self.merge, self.crop = int(out_channels), merge, bool(crop)
        self.up = keras.layers.Conv2DTranspose(out_channels, 2, strides=2)
        self.up.build((None, None, None, in_channels))
        if merge == "concat":
            self.fuse = ConcatFusion()
            merged = self.out_channels + self.skip_channels
        else:
            self.fuse = AddFusion([self.out_channels, self.skip_channels], out_channels)
            merged = self.out_channels
        self.convs = keras.Sequential(
            [
                keras.layers.Conv2D(out_channels, 3, padding="same"),
                keras.layers.ReLU(),
                keras.layers.Conv2D(out_channels, 3, padding="same"),
                keras.layers.ReLU(),
            ]
        )
        self.convs.build((None, None, None, merged))

    def check_inputs(self, xs) -> None:
        check_unet_skip(
            "UNetUp",
            xs,
            KERAS,
            f"crop={self.crop}",
            2,
            [self.in_channels, self.skip_channels],
            ["in_channels", "skip_channels"],
        )

    def align(self, up, skip):
        """Bring up and skip to one spatial size: crop the skip, or pad up."""
        if self.crop:
            return up, center_crop(skip, up)
        top, bottom, left, right = pad_amounts(
            tuple(up.shape[1:3]), tuple(skip.shape[1:3])
        )
        return keras.ops.pad(up, [[0, 0], [top, bottom], [left, right], [0, 0]]), skip

    def call(self, xs):
        x, skip = xs
        up, skip = self.align(self.up(x), skip)
        return self.convs(self.fuse([up, skip]))

    def get_config(self):
        return {
            **super().get_config(),
            "in_channels": self.in_channels,
            "skip_channels": self.skip_channels,
            "out_channels": self.out_channels,
            "merge": self.merge,
            "crop": self.crop,
        }


class AggregationNode(FusionLayer):
    """Deep Layer Aggregation's node (Yu et al., 2018): fuse children by a 1x1 conv
    over their concatenation.

    xs: list of (N, H, W, C_i), the node's children -> (N, H, W, C_out);
    out = relu(BN(W concatenate(xs)) + [x_0 if residual]), W a 1x1 conv
    sum_i C_i -> C_out without bias; residual=True adds the FIRST child, so it needs
    C_0 == C_out. Parameters: C_out * sum_i C_i + 2 C_out (trainable).
    Taught in the chapter on skip connections.
    """

    def __init__(
        self,
        in_channels: list[int],
        out_channels: int,
        residual: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
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
        self.conv = _conv(sum(self.in_channels), out_channels, 1, use_bias=False)
        self.bn = _batch_norm(out_channels)
        self.relu = keras.layers.ReLU()

    def check_inputs(self, xs) -> None:
        check_maps_match("AggregationNode", xs, KERAS, self.in_channels)

    def call(self, xs, training=None):
        out = self.bn(self.conv(keras.ops.concatenate(xs, axis=-1)), training=training)
        if self.residual:
            out = out + xs[0]
        return self.relu(out)

    def get_config(self):
        return {
            **super().get_config(),
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "residual": self.residual,
        }
