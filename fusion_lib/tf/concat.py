"""Concatenation along the channel axis, and U-Net's crop-and-concat skip merge (NHWC).

Taught in the chapter on concatenation.
"""

from __future__ import annotations

import keras

from fusion_lib._checks import (
    NHWC,
    center_crop_box,
    check_map,
    check_maps_match,
    check_tensor,
    check_unet_skip,
    pad_amounts,
    target_size,
)
from fusion_lib.tf._base import KERAS, FusionLayer, write_out


class ConcatFusion(FusionLayer):
    """Stack feature maps along the channel axis.

    xs: list of (N, H, W, C_i) -> (N, H, W, sum_i C_i); out = concatenate(xs, axis=-1).
    Order matters: it fixes which input channels a following layer's weights see.
    out: an optional Variable (keras.Variable or tf.Variable) of the result's shape
    and dtype; the result is written into it with out.assign and out is returned.
    This is the nearest Keras has to torch's out=, and it is not the same: Keras
    computes the result into a fresh tensor first and assign then copies it into
    out's buffer, so eagerly it moves more bytes, not fewer. What it gives is one
    buffer that keeps the latest result across calls (e.g. state read by other code
    or a tf.function); the speed torch's out= buys comes in TensorFlow from XLA
    (tf.function(jit_compile=True)), which plans its buffers itself.
    Taught in the chapter on concatenation.
    """

    def check_inputs(self, xs) -> None:
        check_maps_match("ConcatFusion", xs, KERAS)

    def __call__(self, xs, out=None, **kwargs):
        result = super().__call__(xs, **kwargs)
        return result if out is None else write_out("ConcatFusion", out, result)

    def call(self, xs):
        return keras.ops.concatenate(xs, axis=-1)


def center_crop(x, like):
    """Crop the centre of x to the spatial size of `like` (a tensor or an (h, w) pair).

    x: (N, H, W, C) -> (N, h, w, C), the window starting at
    ((H - h) // 2, (W - w) // 2), as the original U-Net crops its encoder maps.
    Any dtype (it only slices), so it crops label maps too.
    Taught in the chapter on concatenation.
    """
    shape = check_tensor("center_crop", "x", x, KERAS)
    check_map("center_crop", shape, NHWC)
    target = target_size("center_crop", like, KERAS)
    top, left, h, w = center_crop_box("center_crop", shape, target, NHWC)
    return x[:, top : top + h, left : left + w, :]


class UNetSkipMerge(FusionLayer):
    """U-Net's skip merge: bring the encoder map to the decoder map's size, then
    concatenate.

    xs = [up, skip], up: (N, h, w, C_u), skip: (N, H, W, C_s) -> (N, ., ., C_u + C_s),
    with
    mode="crop": skip centre-cropped to h x w (the paper's valid convolutions shrink
                 maps);
    mode="pad":  up zero-padded (centred) to H x W (the common "same"-padding
                 variant).
    Output order is concatenate([up, skip]). Taught in the chapter on concatenation.
    """

    def __init__(self, mode: str = "crop", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("crop", "pad"):
            raise ValueError(
                f"UNetSkipMerge mode must be 'crop' or 'pad'; got {mode!r}."
            )
        self.mode = mode

    def check_inputs(self, xs) -> None:
        check_unet_skip(
            "UNetSkipMerge", xs, KERAS, f"mode={self.mode!r}", 1, form="[up, skip]"
        )

    def call(self, xs):
        up, skip = xs
        (h, w), (H, W) = up.shape[1:3], skip.shape[1:3]
        if self.mode == "crop":
            top, left = (H - h) // 2, (W - w) // 2  # center_crop's window
            skip = skip[:, top : top + h, left : left + w, :]
        else:
            top, bottom, left, right = pad_amounts((h, w), (H, W))
            up = keras.ops.pad(up, [[0, 0], [top, bottom], [left, right], [0, 0]])
        return keras.ops.concatenate([up, skip], axis=-1)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
