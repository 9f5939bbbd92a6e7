"""Closed-form costs the chapters derive, so the book can compare them with measured
counts.

Conventions (used everywhere in the book):
- parameters count every trainable scalar;
- MACs count multiply-accumulates; FLOPs = 2 * MACs (one multiply and one add), which is
  what `torch.utils.flop_counter.FlopCounterMode` reports for convolutions and matmuls.
  Many papers say "FLOPs" for what is really MACs (e.g. ResNet-50's "3.8 GFLOPs").
"""

from __future__ import annotations


def conv2d_params(
    c_in: int, c_out: int, kernel_size: int, bias: bool = True, groups: int = 1
) -> int:
    """Parameters of a k x k convolution:
    c_out * (c_in / groups) * k^2 (+ c_out biases).
    """
    if c_in % groups or c_out % groups:
        raise ValueError(f"groups={groups} must divide c_in={c_in} and c_out={c_out}.")
    return c_out * (c_in // groups) * kernel_size**2 + (c_out if bias else 0)


def conv2d_macs(
    c_in: int, c_out: int, kernel_size: int, h_out: int, w_out: int, groups: int = 1
) -> int:
    """Multiply-accumulates of a k x k convolution producing a (c_out, h_out, w_out)
    map, per image.
    """
    return c_out * (c_in // groups) * kernel_size**2 * h_out * w_out


def conv2d_flops(
    c_in: int, c_out: int, kernel_size: int, h_out: int, w_out: int, groups: int = 1
) -> int:
    """FLOPs (2 per MAC) of a k x k convolution, per image; biases not counted."""
    return 2 * conv2d_macs(c_in, c_out, kernel_size, h_out, w_out, groups)


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Parameters of a fully connected layer: in * out (+ out biases)."""
    return in_features * out_features + (out_features if bias else 0)


def linear_flops(in_features: int, out_features: int) -> int:
    """FLOPs (2 per MAC) of a fully connected layer, per sample; biases not counted."""
    return 2 * in_features * out_features


def batchnorm_params(channels: int) -> int:
    """Trainable parameters of BatchNorm (gamma and beta); running statistics are
    buffers.
    """
    return 2 * channels
