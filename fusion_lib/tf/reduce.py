"""Concatenation followed by a per-pixel channel reduction, and resizing maps to a
common size (NHWC).

Taught in the chapter on concatenation followed by reduction.
"""

from __future__ import annotations

import keras

from fusion_lib._checks import check_input_map, check_maps_match, target_size
from fusion_lib.tf._base import KERAS, FusionLayer

RESIZE_MODES = ("bilinear", "nearest")


def resize_to(x, like, mode: str = "bilinear"):
    """Resize x to the spatial size of `like` (a tensor or an (h, w) pair), keeping N
    and C.

    x: (N, H, W, C) -> (N, h, w, C).
    mode="bilinear": `tf.image.resize` semantics, i.e. half-pixel centres: output
    pixel i samples input coordinate (i + 0.5) * H / h - 0.5. PyTorch's
    `F.interpolate(..., align_corners=False)` does the same.
    mode="nearest": TF's nearest (half-pixel rounding), torch's "nearest-exact".
    x must be floating point in both modes (Keras would round an integer map's
    interpolated values back to integers): to resize a label map, cast it, resize with
    mode="nearest", and cast it back. The target size must be known (keras.ops resizes
    to static sizes only).
    Taught in the chapter on concatenation followed by reduction.
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize_to mode must be one of {RESIZE_MODES}; got {mode!r}.")
    check_input_map("resize_to", x, KERAS)
    size = target_size("resize_to", like, KERAS)
    if None in size:
        raise ValueError(
            f"resize_to needs the target's spatial size; like has shape "
            f"{tuple(like.shape)}. In a Keras functional model give keras.Input a "
            "fixed size, e.g. keras.Input((64, 64, 3))."
        )
    return keras.ops.image.resize(
        x, size, interpolation=mode, antialias=False, data_format="channels_last"
    )


class ConcatReduce(FusionLayer):
    """Concatenate maps on the channel axis, then reduce the channels per pixel,
    normalise, activate.

    xs: list of (N, H, W, C_i) -> (N, H, W, C_out);
    out = act(norm(W [x_1; ...; x_k] + b)),
    W: (sum_i C_i, C_out) as Keras stores it, applied at every pixel independently.
    mode="conv": W is a 1x1 `Conv2D`; mode="linear": W is a `Dense` layer, which Keras
    applies to the last (channel) axis of each pixel. Both are the same map.
    norm=True: BatchNormalization (epsilon 1e-5, momentum 0.9: PyTorch's defaults) after
    W, and W has no bias (BN's shift would cancel it).
    act=True: ReLU at the end.
    split_weights=True: compute sum_i x_i W_i + b, W_i the rows of W that meet
    input i, without ever materialising the concatenated tensor. Same parameters, same
    result.
    Taught in the chapter on concatenation followed by reduction.
    """

    def __init__(
        self,
        in_channels: list[int],
        out_channels: int,
        mode: str = "conv",
        norm: bool = True,
        act: bool = True,
        split_weights: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if mode not in ("conv", "linear"):
            raise ValueError(
                f"ConcatReduce mode must be 'conv' or 'linear'; got {mode!r}."
            )
        self.in_channels = [int(c) for c in in_channels]
        self.out_channels, self.mode, self.split_weights = (
            int(out_channels),
            mode,
            split_weights,
        )
        self.use_norm, self.use_act = norm, act
        if mode == "conv":
            self.reduce = keras.layers.Conv2D(self.out_channels, 1, use_bias=not norm)
            self.reduce.build((None, None, None, sum(self.in_channels)))
        else:
            self.reduce = keras.layers.Dense(self.out_channels, use_bias=not norm)
            self.reduce.build((None, sum(self.in_channels)))
        self.norm = (
            keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9)
            if norm
            else keras.layers.Identity()
        )
        self.norm.build((None, None, None, self.out_channels))
        self.act = keras.layers.ReLU() if act else keras.layers.Identity()

    def check_inputs(self, xs) -> None:
        check_maps_match("ConcatReduce", xs, KERAS, self.in_channels)

    def weight_matrix(self):
        """W as a (sum_i C_i, C_out) matrix, whichever mode holds it."""
        return keras.ops.reshape(
            self.reduce.kernel, (sum(self.in_channels), self.out_channels)
        )

    def call(self, xs, training=None):
        y = (
            self._split_form(xs)
            if self.split_weights
            else self.reduce(keras.ops.concatenate(xs, axis=-1))
        )
        return self.act(self.norm(y, training=training))

    def _split_form(self, xs):
        weight, start, out = self.weight_matrix(), 0, None
        for x, c in zip(xs, self.in_channels):
            term = keras.ops.matmul(
                x, weight[start : start + c]
            )  # (N, H, W, C_i) @ (C_i, C_out)
            start += c
            out = term if out is None else out + term
        if self.reduce.use_bias:
            out = out + self.reduce.bias
        return out

    def get_config(self):
        return {
            **super().get_config(),
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "mode": self.mode,
            "norm": self.use_norm,
            "act": self.use_act,
            "split_weights": self.split_weights,
        }
