"""Global pooling over space, and the two classifier heads it decides between (NHWC).

Taught in the chapter on global pooling.
"""

from __future__ import annotations

import keras

from fusion_lib._checks import NHWC, check_hw_size, check_input_map
from fusion_lib.tf._base import KERAS, FusionLayer, max_over


class GlobalPool(FusionLayer):
    """Fuse all positions of a map into one vector per channel.

    x: (N, H, W, C) -> (N, C), or (N, 1, 1, C) with keepdims=True;
    mode="avg": out[n, c] = mean_{h,w} x[n, h, w, c]
    (= keras.layers.GlobalAveragePooling2D);
    mode="max": max_{h,w} x[n, h, w, c] (= keras.layers.GlobalMaxPooling2D).
    Taught in the chapter on global pooling.
    """

    def __init__(self, mode: str = "avg", keepdims: bool = False, **kwargs):
        super().__init__(**kwargs)
        if mode not in ("avg", "max"):
            raise ValueError(f"GlobalPool mode must be 'avg' or 'max'; got {mode!r}.")
        self.mode, self.keepdims = mode, keepdims

    def check_inputs(self, x) -> None:
        check_input_map("GlobalPool", x, KERAS)

    def call(self, x):
        if self.mode == "avg":
            return keras.ops.mean(x, axis=(1, 2), keepdims=self.keepdims)
        return max_over(x, axis=(1, 2), keepdims=self.keepdims)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "keepdims": self.keepdims}


class FlattenHead(FusionLayer):
    """The pre-2014 classifier head: flatten the map, then one fully connected layer.

    x: (N, H, W, C) -> logits (N, num_classes); out = W vec(x) + b, vec flattening C,
    H, W in that order (the map is moved channels-first before the flatten, so the
    weights are PyTorch's: a plain Keras Flatten would order H, W, C and need the
    kernel's rows permuted), W: (C*H*W, num_classes). Built for one input size:
    C*H*W*K + K parameters.
    Taught in the chapter on global pooling.
    """

    def __init__(
        self, in_channels: int, height: int, width: int, num_classes: int, **kwargs
    ):
        super().__init__(**kwargs)
        self.in_channels, self.height, self.width, self.num_classes = (
            in_channels,
            height,
            width,
            num_classes,
        )
        self.fc = keras.layers.Dense(num_classes)
        self.fc.build((None, in_channels * height * width))

    def check_inputs(self, x) -> None:
        shape = check_input_map(
            "FlattenHead", x, KERAS, self.in_channels, "in_channels"
        )
        check_hw_size(
            "FlattenHead",
            shape,
            NHWC,
            (self.height, self.width),
            "A flatten head fixes the input size; GAPHead accepts any.",
        )

    def call(self, x):
        chw = keras.ops.transpose(x, (0, 3, 1, 2))
        return self.fc(
            keras.ops.reshape(chw, (-1, self.in_channels * self.height * self.width))
        )

    def get_config(self):
        return {
            **super().get_config(),
            "in_channels": self.in_channels,
            "height": self.height,
            "width": self.width,
            "num_classes": self.num_classes,
        }


class GAPHead(FusionLayer):
    """The Network-in-Network / GoogLeNet head: global average pooling, then a linear
    layer.

    x: (N, H, W, C) -> logits (N, num_classes); out = W mean_{h,w}(x) + b,
    W: (C, num_classes).
    C*K + K parameters, whatever H and W are.
    Taught in the chapter on global pooling.
    """

    def __init__(self, in_channels: int, num_classes: int, **kwargs):
        super().__init__(**kwargs)
        self.in_channels, self.num_classes = in_channels, num_classes
        self.pool = GlobalPool("avg")
        self.fc = keras.layers.Dense(num_classes)
        self.fc.build((None, in_channels))

    def check_inputs(self, x) -> None:
        check_input_map("GAPHead", x, KERAS, self.in_channels, "in_channels")

    def call(self, x):
        return self.fc(self.pool(x))

    def get_config(self):
        return {
            **super().get_config(),
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
        }
