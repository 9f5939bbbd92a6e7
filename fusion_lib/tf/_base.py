"""The one base class of the Keras half."""

from __future__ import annotations

import keras


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
        return super().__call__(xs, *args, **kwargs)
