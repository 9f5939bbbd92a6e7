"""Small real datasets that ship inside a package, so nothing downloads at run time."""

from __future__ import annotations

import numpy as np


def load_digits_split(seed: int = 0, test_fraction: float = 0.25, layout: str = "NCHW"):
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), split and scaled to [0, 1].

    Returns (X_train, y_train, X_test, y_test): X float32 of shape (N, 1, 8, 8) for layout="NCHW"
    or (N, 8, 8, 1) for "NHWC"; y int64 labels. The split is stratified and fixed by `seed`.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if layout not in ("NCHW", "NHWC"):
        raise ValueError(f"layout must be 'NCHW' (torch) or 'NHWC' (Keras); got {layout!r}.")
    digits = load_digits()
    X = (digits.images / 16.0).astype(np.float32)
    X = X[:, None] if layout == "NCHW" else X[..., None]
    y = digits.target.astype(np.int64)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=test_fraction, random_state=seed, stratify=y)
    return X_tr, y_tr, X_te, y_te
