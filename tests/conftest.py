"""Fixtures for the library tests: one parametrised fixture runs a test against both
halves.
"""

import os

os.environ.setdefault(
    "TF_CPP_MIN_LOG_LEVEL", "2"
)  # before TensorFlow is imported anywhere

import numpy as np
import pytest


class Half:
    """A framework half, with helpers to feed it NCHW-shaped numpy data in its own
    layout.
    """

    def __init__(self, name):
        self.name = name
        if name == "torch":
            import torch

            import fusion_lib.torch as lib

            self.lib, self.layout = lib, "NCHW"
            self.tensor = lambda a: torch.as_tensor(
                np.ascontiguousarray(a, dtype=np.float32)
            )
            self.numpy = lambda t: t.detach().numpy()
        else:
            import fusion_lib.tf as lib

            self.lib, self.layout = lib, "NHWC"
            self.tensor = lambda a: np.ascontiguousarray(
                np.asarray(a, dtype=np.float32).transpose(0, 2, 3, 1)
            )
            self.numpy = lambda t: np.asarray(t).transpose(0, 3, 1, 2)

    def shape(self, nchw):
        n, c, h, w = nchw
        return (n, c, h, w) if self.layout == "NCHW" else (n, h, w, c)


@pytest.fixture(params=["torch", "tf"])
def half(request):
    return Half(request.param)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
