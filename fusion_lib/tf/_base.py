"""The one base class of the Keras half, and what the Keras half calls a tensor."""

from __future__ import annotations

import keras
import numpy as np

from fusion_lib._checks import NHWC, Half


def _is_tensor(x) -> bool:
    """What Keras layers take: backend tensors, KerasTensors, Variables, NumPy
    arrays.
    """
    return isinstance(
        x, (np.ndarray, keras.KerasTensor, keras.Variable)
    ) or keras.ops.is_tensor(x)


_FLOATS = ("float16", "bfloat16", "float32", "float64")


def _float_dtypes() -> frozenset:
    """How the floating dtypes read on the tensors the fast checks meet: KerasTensor
    dtype names, NumPy dtypes, and the TensorFlow backend's DTypes.
    """
    dtypes = set(_FLOATS) | {np.dtype(n) for n in _FLOATS if n != "bfloat16"}
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        dtypes |= {tf.as_dtype(n) for n in _FLOATS}
    return frozenset(dtypes)


KERAS = Half(
    name="Keras",
    layout=NHWC,
    is_tensor=_is_tensor,
    dtype_name=lambda x: keras.backend.standardize_dtype(x.dtype),
    float_dtypes=_float_dtypes(),
    tensor_kind="a tensor (a Keras or backend tensor, or a NumPy array)",
    list_fix="np.asarray(x, dtype='float32')",
    float_fix="keras.ops.cast(x, 'float32')",
    bool_fix="keras.ops.greater(mask, 0)",
)


def max_over(x, axis, keepdims: bool = False):
    """keras.ops.max, except on an empty batch: run eagerly, keras.ops.max refuses any
    empty tensor, but the max over non-empty axes of an empty batch is an empty result.
    """
    if x.shape[0] == 0:
        return keras.ops.sum(x, axis=axis, keepdims=keepdims)
    return keras.ops.max(x, axis=axis, keepdims=keepdims)


def _empty_batch(xs) -> bool:
    """A known batch size of 0 (symbolic and unknown batches are not empty)."""
    for x in xs if isinstance(xs, (list, tuple)) else (xs,):
        shape = getattr(x, "shape", None)
        if shape is not None and len(shape) > 0 and shape[0] == 0:
            return True
    return False


class FusionLayer(keras.layers.Layer):
    """A Keras layer that validates its inputs before Keras' own `__call__` runs.

    Keras wraps any error raised inside `call()` in a message of its own; checking first
    means a bad shape reaches the user as fusion_lib's plain `ValueError`, exactly as in
    the torch half, whose `forward` starts with the same `check_inputs`.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Every fusion_lib layer builds its sublayers in __init__ (so fusion_lib.port
        # can fill them before any call); marking it built lets count_params() and
        # get_weights() work at once.
        self.built = True

    def check_inputs(self, xs) -> None:
        raise NotImplementedError

    def __call__(self, xs, *args, **kwargs):
        self.check_inputs(xs)
        if _empty_batch(xs):
            return self._empty_result(xs, *args, **kwargs)
        return super().__call__(xs, *args, **kwargs)

    def _empty_result(self, *args, **kwargs):
        """The result for an empty batch: TensorFlow's convolutions give a wrong shape
        on a batch of 0, so the layer is traced with an unknown batch instead and the
        traced output shapes are filled with no examples.
        """

        def symbolic(x):
            if not _is_tensor(x):
                return x
            return keras.KerasTensor((None, *x.shape[1:]), dtype=KERAS.dtype_name(x))

        args, kwargs = keras.tree.map_structure(symbolic, (args, kwargs))
        kwargs.pop("training", None)
        spec = self.compute_output_spec(*args, **kwargs)
        return keras.tree.map_structure(
            lambda t: keras.ops.zeros((0, *t.shape[1:]), dtype=t.dtype), spec
        )


def _is_variable(x) -> bool:
    if isinstance(x, keras.Variable):
        return True
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return isinstance(x, tf.Variable)
    return False


def write_out(op: str, out, result):
    """out.assign(result) after checking out is a Variable of the result's shape and
    dtype; returns out. The Keras half's nearest equivalent of torch's out=.
    """
    from fusion_lib._checks import check_out

    if isinstance(result, keras.KerasTensor):
        raise ValueError(
            f"{op}: out= writes a computed result into a Variable, so it needs "
            "concrete inputs (eager, or inside tf.function); got symbolic inputs "
            "(a functional model being built). Leave out=None there."
        )
    check_out(
        op,
        out,
        [],  # the result is computed before out is written: any aliasing is safe
        tuple(result.shape),
        KERAS.dtype_name(result),
        KERAS,
        _is_variable,
        "a Variable (keras.Variable or tf.Variable)",
    )
    out.assign(result)
    return out
