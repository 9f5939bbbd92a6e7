"""fusion_lib: the operators of *Feature Fusion in Deep Networks*, in PyTorch and Keras.

- `fusion_lib.torch`: NCHW `torch.nn.Module`s.
- `fusion_lib.tf`: NHWC Keras 3 layers with the same names, arguments and math.
- `fusion_lib.port`: copy a torch module's weights into its Keras twin.

This top-level package is framework-free: importing it imports neither torch nor
TensorFlow.
"""

from fusion_lib.costs import (
    batchnorm_params,
    conv2d_flops,
    conv2d_macs,
    conv2d_params,
    linear_flops,
    linear_params,
)
from fusion_lib.env import cuda_or_skip, environment_report, seed_everything
from fusion_lib.source import show_source, source_markdown

__version__ = "0.1.0"

__all__ = [
    "batchnorm_params",
    "conv2d_flops",
    "conv2d_macs",
    "conv2d_params",
    "cuda_or_skip",
    "environment_report",
    "linear_flops",
    "linear_params",
    "seed_everything",
    "show_source",
    "source_markdown",
]
