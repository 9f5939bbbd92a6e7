"""Element-wise addition of feature maps, with optional 1x1 projections (NHWC).

Taught in the chapter on addition.
"""

from __future__ import annotations

import keras

from fusion_lib._checks import check_maps_match, check_maps_same
from fusion_lib.tf._base import KERAS, FusionLayer, write_out

# How AddFusion projects branches of different widths, for its error messages.
PROJECT = (
    "project with a 1x1 conv first, e.g. AddFusion(in_channels={chans}, "
    "out_channels={out})"
)


class AddFusion(FusionLayer):
    """Sum feature maps element-wise, projecting branches to a common width first if
    asked.

    xs: list of (N, H, W, C_i) -> (N, H, W, C_out); out = sum_i P_i(x_i), where
    P_i is a 1x1 conv C_i -> C_out (with bias) when C_i != C_out and the identity
    otherwise.
    in_channels=None: no projections; every input must already have the same shape.
    out_channels=None with in_channels given: C_out = max(in_channels).
    out: an optional Variable (keras.Variable or tf.Variable) of the result's shape
    and dtype; the result is written into it with out.assign and out is returned.
    This is the nearest Keras has to torch's out=, and it is not the same: Keras
    computes the result into a fresh tensor first and assign then copies it into
    out's buffer, so eagerly it moves more bytes, not fewer. What it gives is one
    buffer that keeps the latest result across calls (e.g. state read by other code
    or a tf.function); the speed torch's out= buys comes in TensorFlow from XLA
    (tf.function(jit_compile=True)), which plans its buffers itself.
    Taught in the chapter on addition.
    """

    def __init__(
        self,
        in_channels: list[int] | None = None,
        out_channels: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if in_channels is None and out_channels is not None:
            raise ValueError(
                "AddFusion: out_channels needs in_channels "
                "(one count per input branch)."
            )
        self.in_channels = (
            None if in_channels is None else [int(c) for c in in_channels]
        )
        if self.in_channels is not None and out_channels is None:
            out_channels = max(self.in_channels)
        self.out_channels = out_channels
        self.proj = []
        for c in self.in_channels or []:
            p = (
                keras.layers.Identity()
                if c == out_channels
                else keras.layers.Conv2D(out_channels, 1)
            )
            p.build(
                (None, None, None, c)
            )  # weights exist at once, so fusion_lib.port can fill them
            self.proj.append(p)

    def check_inputs(self, xs) -> None:
        if self.in_channels is None:
            check_maps_same("AddFusion", xs, KERAS, PROJECT)
        else:
            check_maps_match("AddFusion", xs, KERAS, self.in_channels)

    def __call__(self, xs, out=None, **kwargs):
        result = super().__call__(xs, **kwargs)
        return result if out is None else write_out("AddFusion", out, result)

    def call(self, xs):
        if self.in_channels is not None:
            xs = [p(x) for p, x in zip(self.proj, xs)]
        out = xs[0]
        for i in range(1, len(xs)):
            out = out + xs[i]
        return out

    def get_config(self):
        return {
            **super().get_config(),
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
        }
