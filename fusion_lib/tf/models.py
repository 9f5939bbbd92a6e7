"""Small whole networks the chapters train on real data (NHWC).

Taught in the chapter on addition.
"""

from __future__ import annotations

import keras
import numpy as np

from fusion_lib.tf.add import AddFusion
from fusion_lib.tf.attention import BAM, CBAM
from fusion_lib.tf.concat import ConcatFusion
from fusion_lib.tf.gating import SqueezeExcitation

ATTENTION_BLOCKS = ("none", "se", "cbam", "bam")


class TwoBranchNet(keras.Model):
    """Two convolutional branches fused by addition or concatenation, then a shared head.

    x: (N, H, W, C_in) -> logits (N, num_classes).
    branch3 = ReLU(conv3x3(x)), branch5 = ReLU(conv5x5(x)), both C_in -> width, "same" padding;
    fused = branch3 + branch5 (fusion="add", width channels) or concat (fusion="concat", 2*width);
    head = ReLU(conv3x3(fused) -> width), global average pool, Dense(width -> num_classes).
    Only the head conv's input width differs between the two fusions.
    Taught in the chapter on addition.
    """

    def __init__(self, fusion: str = "add", in_channels: int = 1, width: int = 16, num_classes: int = 10, **kwargs):
        super().__init__(**kwargs)
        if fusion not in ("add", "concat"):
            raise ValueError(f"TwoBranchNet fusion must be 'add' or 'concat'; got {fusion!r}.")
        self.fusion_mode = fusion
        self.branch3 = keras.layers.Conv2D(width, 3, padding="same", activation="relu")
        self.branch5 = keras.layers.Conv2D(width, 5, padding="same", activation="relu")
        self.fuse = AddFusion() if fusion == "add" else ConcatFusion()
        self.head = keras.layers.Conv2D(width, 3, padding="same", activation="relu")
        self.classifier = keras.layers.Dense(num_classes)
        # Build now so the weights exist (for count_params and fusion_lib.port) before any call.
        self.branch3.build((None, None, None, in_channels))
        self.branch5.build((None, None, None, in_channels))
        self.head.build((None, None, None, width if fusion == "add" else 2 * width))
        self.classifier.build((None, width))

    def call(self, x):
        h = self.head(self.fuse([self.branch3(x), self.branch5(x)]))
        return self.classifier(keras.ops.mean(h, axis=(1, 2)))


class AttentionNet(keras.Model):
    """A small CNN with one attention block before its classifier, for the digits experiments.

    x: (N, H, W, C_in) -> logits (N, num_classes).
    features = ReLU(conv3x3(ReLU(conv3x3(x)))), C_in -> width -> width, "same" padding;
    attended = block(features), block = identity ("none"), SqueezeExcitation ("se"),
    CBAM ("cbam") or BAM ("bam"), each with the given reduction;
    logits = Dense(mean_hw(attended)). The variants differ only in the block.
    Taught in the chapters on multiplicative fusion and gating, and on spatial and mixed attention.
    """

    def __init__(self, attention: str = "se", in_channels: int = 1, width: int = 32, num_classes: int = 10, reduction: int = 4, **kwargs):
        super().__init__(**kwargs)
        if attention not in ATTENTION_BLOCKS:
            raise ValueError(f"AttentionNet attention must be one of {ATTENTION_BLOCKS}; got {attention!r}.")
        self.attention = attention
        self.conv1 = keras.layers.Conv2D(width, 3, padding="same", activation="relu")
        self.conv2 = keras.layers.Conv2D(width, 3, padding="same", activation="relu")
        self.conv1.build((None, None, None, in_channels))
        self.conv2.build((None, None, None, width))
        blocks = {"se": SqueezeExcitation, "cbam": CBAM, "bam": BAM}
        self.block = keras.layers.Identity() if attention == "none" else blocks[attention](width, reduction)
        self.classifier = keras.layers.Dense(num_classes)
        self.classifier.build((None, width))

    def features(self, x):
        """The map the attention block reads: (N, H, W, C_in) -> (N, H, W, width)."""
        return self.conv2(self.conv1(x))

    def call(self, x, training=None):
        return self.classifier(keras.ops.mean(self.block(self.features(x), training=training), axis=(1, 2)))


def count_params(layer) -> int:
    """Number of trainable scalars."""
    return int(sum(np.prod(w.shape) for w in layer.trainable_weights))


def fit_classifier(model, data, epochs: int = 20, batch_size: int = 64, lr: float = 3e-3, seed: int = 0):
    """Train with Adam on cross-entropy; return test accuracy.

    data = (X_train, y_train, X_test, y_test) as numpy arrays, X in NHWC.
    Seeds Keras (python, numpy, TF) with `seed`, so runs repeat exactly on one machine.
    BatchNorm statistics are recomputed with the final weights before testing (see below).
    """
    X_tr, y_tr, X_te, y_te = data
    keras.utils.set_random_seed(seed)
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(X_tr, y_tr, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0)
    recalibrate_batchnorm(model, X_tr, batch_size)
    logits = model.predict(X_te, batch_size=512, verbose=0)
    return float((logits.argmax(1) == y_te).mean())


def recalibrate_batchnorm(model, X, batch_size: int = 64) -> None:
    """Recompute every BatchNormalization's moving statistics with the final weights ("precise BN").

    During training the moving mean and variance average batches seen by *earlier* weights;
    after a fast schedule they lag the final network and inference-mode accuracy collapses.
    Setting momentum to 1 - 1/k for the k-th batch makes the moving statistics the equal-weight
    average over one pass of X, as in the PyTorch twin. A model without BatchNorm is untouched.
    """
    norms = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    if not norms:
        return
    momenta = [bn.momentum for bn in norms]
    for k, start in enumerate(range(0, len(X), batch_size), start=1):
        for bn in norms:
            bn.momentum = 1.0 - 1.0 / k  # k = 1 overwrites the old statistics
        model(X[start : start + batch_size], training=True)
    for bn, momentum in zip(norms, momenta):
        bn.momentum = momentum
