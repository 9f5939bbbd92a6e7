"""Small whole networks the chapters train on real data (NCHW).

Taught in the chapter on addition.
"""

from __future__ import annotations

import torch
from torch import nn

from fusion_lib.torch.add import AddFusion
from fusion_lib.torch.attention import BAM, CBAM
from fusion_lib.torch.concat import ConcatFusion
from fusion_lib.torch.gating import SqueezeExcitation

ATTENTION_BLOCKS = ("none", "se", "cbam", "bam")


class TwoBranchNet(nn.Module):
    """Two convolutional branches fused by addition or concatenation, then a shared head.

    x: (N, C_in, H, W) -> logits (N, num_classes).
    branch3 = ReLU(conv3x3(x)), branch5 = ReLU(conv5x5(x)), both C_in -> width, "same" padding;
    fused = branch3 + branch5 (fusion="add", width channels) or cat (fusion="concat", 2*width);
    head = ReLU(conv3x3(fused) -> width), global average pool, Linear(width -> num_classes).
    Only the head conv's input width differs between the two fusions.
    Taught in the chapter on addition.
    """

    def __init__(self, fusion: str = "add", in_channels: int = 1, width: int = 16, num_classes: int = 10):
        super().__init__()
        if fusion not in ("add", "concat"):
            raise ValueError(f"TwoBranchNet fusion must be 'add' or 'concat'; got {fusion!r}.")
        self.fusion_mode = fusion
        self.branch3 = nn.Conv2d(in_channels, width, kernel_size=3, padding=1)
        self.branch5 = nn.Conv2d(in_channels, width, kernel_size=5, padding=2)
        self.fuse = AddFusion() if fusion == "add" else ConcatFusion()
        self.head = nn.Conv2d(width if fusion == "add" else 2 * width, width, kernel_size=3, padding=1)
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = torch.relu(self.branch3(x)), torch.relu(self.branch5(x))
        h = torch.relu(self.head(self.fuse([a, b])))
        return self.classifier(h.mean(dim=(2, 3)))


class AttentionNet(nn.Module):
    """A small CNN with one attention block before its classifier, for the digits experiments.

    x: (N, C_in, H, W) -> logits (N, num_classes).
    features = ReLU(conv3x3(ReLU(conv3x3(x)))), C_in -> width -> width, "same" padding;
    attended = block(features), block = identity ("none"), SqueezeExcitation ("se"),
    CBAM ("cbam") or BAM ("bam"), each with the given reduction;
    logits = Linear(mean_hw(attended)). The variants differ only in the block.
    Taught in the chapters on multiplicative fusion and gating, and on spatial and mixed attention.
    """

    def __init__(self, attention: str = "se", in_channels: int = 1, width: int = 32, num_classes: int = 10, reduction: int = 4):
        super().__init__()
        if attention not in ATTENTION_BLOCKS:
            raise ValueError(f"AttentionNet attention must be one of {ATTENTION_BLOCKS}; got {attention!r}.")
        self.attention = attention
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(width, width, kernel_size=3, padding=1)
        blocks = {"se": SqueezeExcitation, "cbam": CBAM, "bam": BAM}
        self.block = nn.Identity() if attention == "none" else blocks[attention](width, reduction)
        self.classifier = nn.Linear(width, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The map the attention block reads: (N, C_in, H, W) -> (N, width, H, W)."""
        return torch.relu(self.conv2(torch.relu(self.conv1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.block(self.features(x)).mean(dim=(2, 3)))


def count_params(module: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def measure_flops(module: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of one forward pass on x, counted by torch's FlopCounterMode (2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops()


def fit_classifier(model: nn.Module, data, epochs: int = 20, batch_size: int = 64, lr: float = 3e-3, seed: int = 0):
    """Train with Adam on cross-entropy; return test accuracy.

    data = (X_train, y_train, X_test, y_test) as numpy arrays, X in NCHW.
    The batch order is drawn from a generator seeded with `seed`, so runs repeat exactly.
    BatchNorm statistics are recomputed with the final weights before testing (see below).
    """
    X_tr, y_tr, X_te, y_te = (torch.as_tensor(a) for a in data)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(X_tr), generator=gen).split(batch_size):
            opt.zero_grad()
            nn.functional.cross_entropy(model(X_tr[idx]), y_tr[idx]).backward()
            opt.step()
    recalibrate_batchnorm(model, X_tr, batch_size)
    model.eval()
    with torch.no_grad():
        return (model(X_te).argmax(1) == y_te).float().mean().item()


def recalibrate_batchnorm(model: nn.Module, X: torch.Tensor, batch_size: int = 64) -> None:
    """Recompute every BatchNorm's running statistics with the final weights ("precise BN").

    During training the running mean and variance are moving averages over batches seen by
    *earlier* weights; after a fast schedule they lag the final network and inference-mode
    accuracy collapses. One pass over X in training mode, averaging all batches equally, fixes
    that. A model without BatchNorm is left untouched.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for batch in X.split(batch_size):
            model(batch)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
