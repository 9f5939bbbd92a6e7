"""Feature pyramid network: top-down fusion of a backbone's multi-scale maps (NHWC).

Taught in the chapter on feature pyramids.
"""

from __future__ import annotations

import keras

from fusion_lib._checks import check_pyramid
from fusion_lib.tf._base import KERAS, FusionLayer
from fusion_lib.tf.reduce import resize_to


class FeaturePyramid(FusionLayer):
    """Feature Pyramid Network's top-down path with lateral connections (Lin et al.,
    2017), in torchvision's `FeaturePyramidNetwork` form.

    xs: list of L maps (N, H_i, W_i, C_i) ordered from high to low resolution
    (H_0 >= H_1 >= ...), C_i = in_channels[i] -> list of L maps (N, H_i, W_i, D),
    D = out_channels, plus one (N, (H_{L-1} - 1) // 2 + 1, ..., D) if extra_level;
    lateral_i = conv1x1_i(x_i) (C_i -> D, with bias);
    m_{L-1} = lateral_{L-1};  m_i = lateral_i + up(m_{i+1} to H_i x W_i);
    p_i = conv3x3_i(m_i) (D -> D, "same" padding, with bias); no activation anywhere;
    extra_level: p_L = maxpool(p_{L-1}, kernel 1, stride 2), i.e. every other pixel.
    up is nearest-neighbour to the lateral's exact size with half-pixel rounding:
    TF's "nearest", which equals torch's "nearest-exact", so both halves agree at odd
    sizes (13 -> 25). torchvision uses "nearest" (floor indexing): at odd sizes its
    results differ from this class by design; at exact x2 sizes they coincide.
    Taught in the chapter on feature pyramids.
    """

    def __init__(
        self,
        in_channels: list[int],
        out_channels: int,
        extra_level: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.in_channels = [int(c) for c in in_channels]
        if not self.in_channels:
            raise ValueError(
                "FeaturePyramid needs at least one level; got in_channels=[]."
            )
        self.out_channels, self.extra_level = int(out_channels), bool(extra_level)
        self.lateral_convs, self.output_convs = [], []
        for c in self.in_channels:
            lateral = keras.layers.Conv2D(out_channels, 1)
            lateral.build((None, None, None, c))
            output = keras.layers.Conv2D(out_channels, 3, padding="same")
            output.build((None, None, None, out_channels))
            self.lateral_convs.append(lateral)
            self.output_convs.append(output)
        self.pool = keras.layers.MaxPooling2D(pool_size=1, strides=2)

    def check_inputs(self, xs) -> None:
        check_pyramid("FeaturePyramid", xs, KERAS, self.in_channels)

    def call(self, xs):
        merged = self.lateral_convs[-1](xs[-1])
        outs = [self.output_convs[-1](merged)]
        for i in range(len(xs) - 2, -1, -1):
            lateral = self.lateral_convs[i](xs[i])
            merged = lateral + resize_to(merged, lateral, mode="nearest")
            outs.insert(0, self.output_convs[i](merged))
        if self.extra_level:
            outs.append(self.pool(outs[-1]))
        return outs

    def get_config(self):
        return {
            **super().get_config(),
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "extra_level": self.extra_level,
        }
