"""Seeding and the environment report that every chapter prints in its setup cell.

Neither function imports a framework that is not installed, and importing this module
imports neither torch nor TensorFlow.
"""

from __future__ import annotations

import importlib.util
import platform
import random
import sys
from importlib import metadata

import numpy as np


def _installed(module: str) -> bool:
    return module in sys.modules or importlib.util.find_spec(module) is not None


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy, and PyTorch / TensorFlow (Keras) where they are installed.

    Seeded CPU training in either framework is bit-for-bit repeatable on one machine;
    the book prints rounded numbers so that the outputs also survive another CPU.
    """
    # PYTHONHASHSEED is not set here: it only acts when a Python process starts, and
    # nothing in the book depends on the order of a set or a dict of strings.
    random.seed(seed)
    np.random.seed(seed)
    if _installed("torch"):
        import torch

        torch.manual_seed(seed)
    if _installed("keras"):
        import keras

        keras.utils.set_random_seed(seed)  # seeds python, numpy and the TF backend


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def cuda_available() -> bool:
    """True when PyTorch is installed and sees a CUDA device (decides whether `gpu`
    cells run).
    """
    if not _installed("torch"):
        return False
    import torch

    return torch.cuda.is_available()


GPU_SKIP_LINE = "needs a CUDA GPU: skipped"


def cuda_or_skip() -> bool:
    """True where CUDA is available; elsewhere print one line and return False.

    The one rule for the book's `gpu` cells: each begins
    `if fusion_lib.cuda_or_skip():`, so it runs wherever CUDA is present (Colab's GPU
    runtime, a CUDA machine running `make run`) and, on a CPU, prints
    "needs a CUDA GPU: skipped" instead of stopping "Run all" with an error.
    """
    if cuda_available():
        return True
    print(GPU_SKIP_LINE)
    return False


def _device() -> str:
    if cuda_available():
        import torch

        return f"cuda ({torch.cuda.get_device_name(0)})"
    return "cpu"


def environment_report() -> str:
    """Two lines naming the versions and the device this chapter ran with.

    Line 1: fusion_lib, Python, NumPy; line 2: the frameworks and the device (each line
    stays within the book's 88 columns).
    """
    from fusion_lib import __version__

    first = [
        f"fusion_lib {__version__}",
        f"Python {platform.python_version()}",
        f"numpy {np.__version__}",
    ]
    parts = []
    for label, dists in (
        ("torch", ["torch"]),
        ("tensorflow", ["tensorflow", "tensorflow-cpu"]),
        ("keras", ["keras"]),
    ):
        v = next(filter(None, map(_version, dists)), None)
        if v:
            parts.append(f"{label} {v}")
    parts.append(f"device {_device()}")
    return " | ".join(first) + "\n" + " | ".join(parts)
