"""Multiplicative fusion: element-wise products, sigmoid gates, SE (NHWC).

Taught in the chapter on multiplicative fusion and gating.
"""

from __future__ import annotations

import keras

from fusion_lib._checks import (
    check_input_map,
    check_maps_match,
    check_maps_same,
    check_reduction,
)
from fusion_lib.tf._base import KERAS, FusionLayer, write_out


class ProductFusion(FusionLayer):
    """Multiply feature maps element-wise.

    xs: list of (N, H, W, C) -> (N, H, W, C); out = x_1 * x_2 * ... * x_k.
    A feature survives only where every branch is large: a soft AND.
    out: an optional Variable (keras.Variable or tf.Variable) of the result's shape
    and dtype; the result is written into it with out.assign and out is returned.
    This is the nearest Keras has to torch's out=, and it is not the same: Keras
    computes the result into a fresh tensor first and assign then copies it into
    out's buffer, so eagerly it moves more bytes, not fewer. What it gives is one
    buffer that keeps the latest result across calls (e.g. state read by other code
    or a tf.function); the speed torch's out= buys comes in TensorFlow from XLA
    (tf.function(jit_compile=True)), which plans its buffers itself.
    Taught in the chapter on multiplicative fusion and gating.
    """

    def check_inputs(self, xs) -> None:
        check_maps_same("ProductFusion", xs, KERAS)

    def __call__(self, xs, out=None, **kwargs):
        result = super().__call__(xs, **kwargs)
        return result if out is None else write_out("ProductFusion", out, result)

    def call(self, xs):
        out = xs[0]
        for i in range(1, len(xs)):
            out = out * xs[i]
        return out


class GatedFusion(FusionLayer):
    """One branch gates another: sigmoid(1x1 conv of g) scales x per channel and pixel.

    xs = [x, g], x: (N, H, W, C), g: (N, H, W, C_g) -> (N, H, W, C);
    out = x * sigmoid(g W + b), W a 1x1 conv C_g -> C (C_g = channels when
    gate_channels is None). The value x passes unprojected: only the gate has weights.
    With g = x it is x * sigmoid(x W + b), and with W = I, b = 0 that is SiLU,
    x * sigmoid(x). It is not a gated linear unit (Dauphin et al., 2017), which gates a
    projection, (x V + c) * sigmoid(x W + b) (in the paper the two halves of one conv's
    output); GatedFusion([a, b]) with W = I, b = 0 equals glu(concat([a, b])).
    Taught in the chapter on multiplicative fusion and gating.
    """

    def __init__(self, channels: int, gate_channels: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.gate_channels = channels, gate_channels or channels
        self.gate = keras.layers.Conv2D(channels, 1)
        self.gate.build((None, None, None, self.gate_channels))

    def check_inputs(self, xs) -> None:
        check_maps_match(
            "GatedFusion",
            xs,
            KERAS,
            [self.channels, self.gate_channels],
            ["channels", "gate_channels"],
            count=2,
            form="[x, g]",
        )

    def gates(self, g):
        """sigmoid(g W + b): (N, H, W, C_g) -> (N, H, W, C), values in (0, 1)."""
        check_input_map("GatedFusion", g, KERAS, self.gate_channels, "gate_channels")
        return keras.ops.sigmoid(self.gate(g))

    def call(self, xs):
        x, g = xs
        return x * self.gates(g)

    def get_config(self):
        return {
            **super().get_config(),
            "channels": self.channels,
            "gate_channels": self.gate_channels,
        }


class SqueezeExcitation(FusionLayer):
    """Channel gating by a squeezed global descriptor (Hu et al., 2018).

    x: (N, H, W, C) -> (N, H, W, C); out = x * s with one gate per image and channel,
    s = sigmoid(W2 relu(W1 mean_hw(x) + b1) + b2), W1: C -> C // reduction,
    W2: C // reduction -> C, both 1x1 convs with bias, as in the original model and
    torchvision. Parameters: 2 C^2 / r + C / r + C. s is constant over H and W, so right
    before global average pooling SE is a gated MLP on the pooled vector:
    mean_hw(x * s) = s * mean_hw(x).
    Taught in the chapter on multiplicative fusion and gating.
    """

    def __init__(self, channels: int, reduction: int = 16, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.reduction = channels, reduction
        hidden = check_reduction("SqueezeExcitation", channels, reduction)
        self.fc1 = keras.layers.Conv2D(hidden, 1)
        self.fc1.build((None, 1, 1, channels))
        self.fc2 = keras.layers.Conv2D(channels, 1)
        self.fc2.build((None, 1, 1, hidden))

    def check_inputs(self, x) -> None:
        check_input_map("SqueezeExcitation", x, KERAS, self.channels)

    def gates(self, x):
        """The excitation: (N, H, W, C) -> (N, 1, 1, C), one gate in (0, 1) each."""
        self.check_inputs(x)
        squeezed = keras.ops.mean(x, axis=(1, 2), keepdims=True)
        return keras.ops.sigmoid(self.fc2(keras.ops.relu(self.fc1(squeezed))))

    def call(self, x):
        return x * self.gates(x)

    def get_config(self):
        return {
            **super().get_config(),
            "channels": self.channels,
            "reduction": self.reduction,
        }
