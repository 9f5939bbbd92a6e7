"""The one base class of the Keras half."""

from __future__ import annotations

import keras


class FusionLayer(keras.layers.Layer):
    """A Keras layer that validates its inputs before Keras' own `__call__` runs.

    Keras wraps any error raised inside `call()` in a message of its own; checking first means
    a bad shape reaches the user as fusion_lib's plain `ValueError`, exactly as in the torch half,
    whose `forward` starts with the same `check_inputs`.
    """

    def check_inputs(self, xs) -> None:
        raise NotImplementedError

    def __call__(self, xs, *args, **kwargs):
        self.check_inputs(xs)
        return super().__call__(xs, *args, **kwargs)
