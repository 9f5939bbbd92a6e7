"""Copy the weights of a fusion_lib torch module into its Keras twin.

The two halves give every sublayer the same attribute name, so the port walks the torch
module's children by name and fills the Keras attribute of the same name:

| torch                        | Keras                     | conversion                |
| ---------------------------- | ------------------------- | ------------------------- |
| `nn.Conv2d` (O, I/g, kH, kW) | `Conv2D` (kH, kW, I/g, O) | `transpose(2, 3, 1, 0)`   |
| `nn.ConvTranspose2d`         | `Conv2DTranspose`         | `transpose(2, 3, 1, 0)`   |
| (I, O, kH, kW)               | (kH, kW, O, I)            | (groups=1)                |
| `nn.Linear` (O, I)           | `Dense` (I, O)            | transpose                 |
| `nn.BatchNorm2d/1d`          | `BatchNormalization`      | gamma, beta, running mean |
|                              |                           | and var; eps must match   |
| `nn.LayerNorm` (last axis)   | `LayerNormalization`      | gamma, beta; eps must     |
|                              |                           | match                     |
| `nn.ModuleList`/`Sequential` | list / `keras.Sequential` | element by element        |
| own `nn.Parameter` `name`    | Keras variable `name`     | same number of elements,  |
|                              |                           | reshaped                  |

Modules without parameters or buffers (ReLU, Identity, pooling) are skipped. Any
mismatch raises `ValueError` naming the path of the offending sublayer. Taught in the
introduction.
"""

from __future__ import annotations

import keras
import numpy as np
import torch
from torch import nn


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _assign(var, value: np.ndarray, path: str) -> None:
    if tuple(var.shape) != value.shape:
        raise ValueError(
            f"port: {path}: Keras weight has shape {tuple(var.shape)}, "
            f"torch gives {value.shape}."
        )
    var.assign(value.astype(np.float32))


def _keras_children(layer):
    if isinstance(layer, keras.Sequential):
        return list(layer.layers)
    return list(layer)


def _check_norm(module: nn.Module, layer, keras_class, path: str) -> None:
    """A torch norm layer ports into `keras_class` with the same epsilon."""
    kind = type(module).__name__.removesuffix("1d").removesuffix("2d")
    if not isinstance(layer, keras_class):
        raise ValueError(
            f"port: {path}: torch {kind} needs Keras {keras_class.__name__}, "
            f"found {type(layer).__name__}."
        )
    if not np.isclose(module.eps, layer.epsilon):
        raise ValueError(
            f"port: {path}: {kind} eps is {module.eps} in torch but "
            f"{layer.epsilon} in Keras; "
            "build the Keras layer with epsilon=1e-5 (Keras defaults to 1e-3)."
        )


def _port_leaf(module: nn.Module, layer, path: str) -> None:
    if isinstance(module, nn.Conv2d):
        if not isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            raise ValueError(
                f"port: {path}: torch Conv2d needs a Keras Conv2D, "
                f"found {type(layer).__name__}."
            )
        kernel = _np(module.weight).transpose(2, 3, 1, 0)
        if isinstance(
            layer, keras.layers.DepthwiseConv2D
        ):  # (kH, kW, 1, C) -> (kH, kW, C, 1)
            kernel = kernel.transpose(0, 1, 3, 2)
        _assign(layer.kernel, kernel, path + ".weight")
        if (module.bias is None) != (not layer.use_bias):
            raise ValueError(
                f"port: {path}: bias is {module.bias is not None} in torch, "
                f"{layer.use_bias} in Keras."
            )
        if module.bias is not None:
            _assign(layer.bias, _np(module.bias), path + ".bias")
    elif isinstance(module, nn.ConvTranspose2d):
        if not isinstance(layer, keras.layers.Conv2DTranspose) or module.groups != 1:
            raise ValueError(
                f"port: {path}: torch ConvTranspose2d (groups=1) needs a Keras "
                f"Conv2DTranspose, found {type(layer).__name__}."
            )
        kernel = _np(module.weight).transpose(2, 3, 1, 0)  # (I, O, kH, kW) -> Keras'
        _assign(layer.kernel, kernel, path + ".weight")
        if (module.bias is None) != (not layer.use_bias):
            raise ValueError(
                f"port: {path}: bias is {module.bias is not None} in torch, "
                f"{layer.use_bias} in Keras."
            )
        if module.bias is not None:
            _assign(layer.bias, _np(module.bias), path + ".bias")
    elif isinstance(module, nn.Linear):
        if not isinstance(layer, keras.layers.Dense):
            raise ValueError(
                f"port: {path}: torch Linear needs a Keras Dense, "
                f"found {type(layer).__name__}."
            )
        _assign(layer.kernel, _np(module.weight).T, path + ".weight")
        if module.bias is not None:
            _assign(layer.bias, _np(module.bias), path + ".bias")
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        _check_norm(module, layer, keras.layers.BatchNormalization, path)
        if module.affine:
            _assign(layer.gamma, _np(module.weight), path + ".weight")
            _assign(layer.beta, _np(module.bias), path + ".bias")
        _assign(layer.moving_mean, _np(module.running_mean), path + ".running_mean")
        _assign(layer.moving_variance, _np(module.running_var), path + ".running_var")
    elif isinstance(module, nn.LayerNorm):
        _check_norm(module, layer, keras.layers.LayerNormalization, path)
        if module.elementwise_affine:
            _assign(layer.gamma, _np(module.weight), path + ".weight")
            if module.bias is not None:
                _assign(layer.beta, _np(module.bias), path + ".bias")
    else:
        raise ValueError(
            f"port: {path}: no rule to port a {type(module).__name__} with weights."
        )


def _has_state(module: nn.Module) -> bool:
    return any(True for _ in module.parameters()) or any(True for _ in module.buffers())


def port_weights(module: nn.Module, layer, _path: str | None = None):
    """Copy every weight of torch `module` into the Keras `layer` built from the same
    arguments.

    Returns `layer`, so `port_weights(m, keras_twin)(x_nhwc)` reads well. Compare
    outputs in inference mode (`module.eval()`, `layer(x, training=False)`): BatchNorm's
    running statistics are what is copied.
    """
    path = _path or type(module).__name__
    if not _has_state(module):
        return layer
    leaves = (
        nn.Conv2d,
        nn.ConvTranspose2d,
        nn.Linear,
        nn.BatchNorm1d,
        nn.BatchNorm2d,
        nn.LayerNorm,
    )
    if isinstance(module, leaves):
        _port_leaf(module, layer, path)
        return layer
    if isinstance(module, (nn.ModuleList, nn.Sequential)):
        twins = _keras_children(layer)
        if len(module) != len(twins):
            raise ValueError(
                f"port: {path}: {len(module)} torch modules vs {len(twins)} "
                "Keras layers."
            )
        for i, (m, k) in enumerate(zip(module, twins)):
            port_weights(m, k, f"{path}[{i}]")
        return layer
    for name, param in module.named_parameters(recurse=False):
        var = getattr(layer, name, None)
        if var is None:
            raise ValueError(
                f"port: {path}.{name}: the Keras twin has no weight named {name!r}."
            )
        value = _np(param)
        if int(np.prod(var.shape)) != value.size:
            raise ValueError(
                f"port: {path}.{name}: {value.shape} in torch vs "
                f"{tuple(var.shape)} in Keras."
            )
        _assign(var, value.reshape(tuple(var.shape)), f"{path}.{name}")
    for name, child in module.named_children():
        if not _has_state(child):
            continue
        twin = getattr(layer, name, None)
        if twin is None:
            raise ValueError(
                f"port: {path}.{name}: the Keras twin {type(layer).__name__} "
                f"has no attribute {name!r}."
            )
        port_weights(child, twin, f"{path}.{name}")
    return layer


def port_multihead_attention(mha: nn.MultiheadAttention, layer):
    """Copy a torch `nn.MultiheadAttention` into a `keras.layers.MultiHeadAttention`.

    The Keras layer must be built with num_heads = H and key_dim = E // H, for query
    width E and key/value width kdim (mha.kdim): `layer.build((None, None, E),
    (None, None, kdim))`. Kernels are stored per head (REFERENCE trap 12):
    W_q = in_proj_weight[:E].T.reshape(E, H, E // H) (k, v: the next slices, or
    q/k/v_proj_weight when kdim != E), biases reshaped (H, E // H), output kernel
    out_proj.weight.T.reshape(H, E // H, E). Then `layer(x, context)` (Keras' order is
    query, value, key) equals `mha(x, context, context)[0]` of a batch_first=True mha,
    with Keras' attention_mask True = attend where torch's masks say True = ignore.
    Returns `layer`. Taught in the chapter on self-attention.
    """
    e, h = mha.embed_dim, mha.num_heads
    if mha.in_proj_bias is None or mha.bias_k is not None or mha.add_zero_attn:
        raise ValueError(
            "port_multihead_attention: needs bias=True, add_bias_kv=False, "
            "add_zero_attn=False; Keras' MultiHeadAttention has no equivalent."
        )
    if mha.in_proj_weight is not None:
        qkv = [_np(mha.in_proj_weight[i * e : (i + 1) * e]) for i in range(3)]
    else:
        qkv = [
            _np(w) for w in (mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight)
        ]
    bias = _np(mha.in_proj_bias).reshape(3, h, e // h)
    names = ("query", "key", "value")
    values = []
    for i, w in enumerate(qkv):
        values += [w.T.reshape(w.shape[1], h, e // h), bias[i]]
    values += [_np(mha.out_proj.weight).T.reshape(h, e // h, e), _np(mha.out_proj.bias)]
    if len(layer.weights) != len(values):
        raise ValueError(
            f"port_multihead_attention: the Keras layer has {len(layer.weights)} "
            "weights, expected 8; build it first (layer.build(query_shape, "
            "value_shape)) with use_bias=True."
        )
    paths = [f"{n}.{p}" for n in (*names, "output") for p in ("kernel", "bias")]
    for var, value, path in zip(layer.weights, values, paths):
        _assign(var, value, f"MultiheadAttention -> MultiHeadAttention {path}")
    return layer
