"""Copy the weights of a fusion_lib torch module into its Keras twin.

The two halves give every sublayer the same attribute name, so the port walks the torch
module's children by name and fills the Keras attribute of the same name:

| torch                         | Keras                        | conversion                          |
| ----------------------------- | ---------------------------- | ----------------------------------- |
| `nn.Conv2d` (O, I/g, kH, kW)  | `Conv2D` (kH, kW, I/g, O)    | `transpose(2, 3, 1, 0)`             |
| `nn.Linear` (O, I)            | `Dense` (I, O)               | transpose                           |
| `nn.BatchNorm2d/1d`           | `BatchNormalization`         | gamma, beta, running mean and var; eps must match |
| `nn.ModuleList`/`Sequential`  | list / `keras.Sequential`    | element by element                  |
| own `nn.Parameter` `name`     | Keras variable `name`        | same number of elements, reshaped   |

Modules without parameters or buffers (ReLU, Identity, pooling) are skipped. Any mismatch
raises `ValueError` naming the path of the offending sublayer. Taught in the introduction.
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
        raise ValueError(f"port: {path}: Keras weight has shape {tuple(var.shape)}, torch gives {value.shape}.")
    var.assign(value.astype(np.float32))


def _keras_children(layer):
    if isinstance(layer, keras.Sequential):
        return list(layer.layers)
    return list(layer)


def _port_leaf(module: nn.Module, layer, path: str) -> None:
    if isinstance(module, nn.Conv2d):
        if not isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            raise ValueError(f"port: {path}: torch Conv2d needs a Keras Conv2D, found {type(layer).__name__}.")
        kernel = _np(module.weight).transpose(2, 3, 1, 0)
        if isinstance(layer, keras.layers.DepthwiseConv2D):  # (kH, kW, 1, C) -> (kH, kW, C, 1)
            kernel = kernel.transpose(0, 1, 3, 2)
        _assign(layer.kernel, kernel, path + ".weight")
        if (module.bias is None) != (not layer.use_bias):
            raise ValueError(f"port: {path}: bias is {module.bias is not None} in torch, {layer.use_bias} in Keras.")
        if module.bias is not None:
            _assign(layer.bias, _np(module.bias), path + ".bias")
    elif isinstance(module, nn.Linear):
        if not isinstance(layer, keras.layers.Dense):
            raise ValueError(f"port: {path}: torch Linear needs a Keras Dense, found {type(layer).__name__}.")
        _assign(layer.kernel, _np(module.weight).T, path + ".weight")
        if module.bias is not None:
            _assign(layer.bias, _np(module.bias), path + ".bias")
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        if not isinstance(layer, keras.layers.BatchNormalization):
            raise ValueError(f"port: {path}: torch BatchNorm needs Keras BatchNormalization, found {type(layer).__name__}.")
        if not np.isclose(module.eps, layer.epsilon):
            raise ValueError(
                f"port: {path}: BatchNorm eps is {module.eps} in torch but {layer.epsilon} in Keras; "
                "build the Keras layer with epsilon=1e-5 (Keras defaults to 1e-3)."
            )
        if module.affine:
            _assign(layer.gamma, _np(module.weight), path + ".weight")
            _assign(layer.beta, _np(module.bias), path + ".bias")
        _assign(layer.moving_mean, _np(module.running_mean), path + ".running_mean")
        _assign(layer.moving_variance, _np(module.running_var), path + ".running_var")
    else:
        raise ValueError(f"port: {path}: no rule to port a {type(module).__name__} with weights.")


def _has_state(module: nn.Module) -> bool:
    return any(True for _ in module.parameters()) or any(True for _ in module.buffers())


def port_weights(module: nn.Module, layer, _path: str | None = None):
    """Copy every weight of torch `module` into the Keras `layer` built from the same arguments.

    Returns `layer`, so `port_weights(m, keras_twin)(x_nhwc)` reads well. Compare outputs in
    inference mode (`module.eval()`, `layer(x, training=False)`): BatchNorm's running statistics
    are what is copied.
    """
    path = _path or type(module).__name__
    if not _has_state(module):
        return layer
    if isinstance(module, (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d)):
        _port_leaf(module, layer, path)
        return layer
    if isinstance(module, (nn.ModuleList, nn.Sequential)):
        twins = _keras_children(layer)
        if len(module) != len(twins):
            raise ValueError(f"port: {path}: {len(module)} torch modules vs {len(twins)} Keras layers.")
        for i, (m, k) in enumerate(zip(module, twins)):
            port_weights(m, k, f"{path}[{i}]")
        return layer
    for name, param in module.named_parameters(recurse=False):
        var = getattr(layer, name, None)
        if var is None:
            raise ValueError(f"port: {path}.{name}: the Keras twin has no weight named {name!r}.")
        value = _np(param)
        if int(np.prod(var.shape)) != value.size:
            raise ValueError(f"port: {path}.{name}: {value.shape} in torch vs {tuple(var.shape)} in Keras.")
        _assign(var, value.reshape(tuple(var.shape)), f"{path}.{name}")
    for name, child in module.named_children():
        if not _has_state(child):
            continue
        twin = getattr(layer, name, None)
        if twin is None:
            raise ValueError(f"port: {path}.{name}: the Keras twin {type(layer).__name__} has no attribute {name!r}.")
        port_weights(child, twin, f"{path}.{name}")
    return layer
