"""Small whole networks the chapters train on real data (NCHW).

Taught in the chapter on addition.
"""

from __future__ import annotations

import torch
from torch import nn

from fusion_lib.data import VOCAB
from fusion_lib.torch.add import AddFusion
from fusion_lib.torch.attention import BAM, CBAM
from fusion_lib.torch.concat import ConcatFusion
from fusion_lib.torch.crossmodal import (
    CrossAttention,
    FiLM,
    GatedMultimodalUnit,
    LowRankBilinear,
)
from fusion_lib.torch.gating import SqueezeExcitation
from fusion_lib.torch.pooling import FlattenHead, GAPHead
from fusion_lib.torch.pyramid import FeaturePyramid
from fusion_lib.torch.reduce import ConcatReduce, resize_to
from fusion_lib.torch.selfattention import MultiHeadSelfAttention

ATTENTION_BLOCKS = ("none", "se", "cbam", "bam")
ATTENTION_POSITIONS = ("head", "middle")


def check_attention_net(attention: str, position: str, combine: str) -> None:
    """AttentionNet's arguments, refused with advice (shared by both halves' checks)."""
    if attention not in ATTENTION_BLOCKS:
        raise ValueError(
            f"AttentionNet attention must be one of {ATTENTION_BLOCKS}; "
            f"got {attention!r}."
        )
    if position not in ATTENTION_POSITIONS:
        raise ValueError(
            f"AttentionNet position must be one of {ATTENTION_POSITIONS}; "
            f"got {position!r}."
        )
    if combine != "sum" and attention != "bam":
        raise ValueError(
            f"AttentionNet combine={combine!r} applies to attention='bam' only; "
            f"got attention={attention!r}."
        )


class TwoBranchNet(nn.Module):
    """Two convolutional branches fused by addition or concatenation, then one head.

    x: (N, C_in, H, W) -> logits (N, num_classes).
    branch3 = ReLU(conv3x3(x)), branch5 = ReLU(conv5x5(x)), both C_in -> width,
    "same" padding; fused = branch3 + branch5 (fusion="add", width channels) or cat
    (fusion="concat", 2*width); head = ReLU(conv3x3(fused) -> width), global average
    pool, Linear(width -> num_classes).
    Only the head conv's input width differs between the two fusions.
    Taught in the chapter on addition.
    """

    def __init__(
        self,
        fusion: str = "add",
        in_channels: int = 1,
        width: int = 16,
        num_classes: int = 10,
    ):
        super().__init__()
        if fusion not in ("add", "concat"):
            raise ValueError(
                f"TwoBranchNet fusion must be 'add' or 'concat'; got {fusion!r}."
            )
        self.fusion_mode = fusion
        self.branch3 = nn.Conv2d(in_channels, width, kernel_size=3, padding=1)
        self.branch5 = nn.Conv2d(in_channels, width, kernel_size=5, padding=2)
        self.fuse = AddFusion() if fusion == "add" else ConcatFusion()
        self.head = nn.Conv2d(
            width if fusion == "add" else 2 * width, width, kernel_size=3, padding=1
        )
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = torch.relu(self.branch3(x)), torch.relu(self.branch5(x))
        h = torch.relu(self.head(self.fuse([a, b])))
        return self.classifier(h.mean(dim=(2, 3)))


class AttentionNet(nn.Module):
    """A small CNN with one attention block, for the digits experiments.

    x: (N, C_in, H, W) -> logits (N, num_classes).
    conv1, conv2 = ReLU(conv3x3), C_in -> width -> width, "same" padding;
    block = identity ("none"), SqueezeExcitation ("se"), CBAM ("cbam") or BAM ("bam",
    its branches combined by combine="sum" or "product"), each with the given reduction.
    position="head": logits = Linear(mean_hw(block(conv2(conv1(x))))), the block right
    before global average pooling, where a channel gate acts on the pooled vector and
    a spatial gate weights the pooling (attention pooling);
    position="middle": logits = Linear(mean_hw(conv2(block(conv1(x))))), so conv2 reads
    the gated map. The variants differ only in the block and its place.
    Taught in the chapters on multiplicative fusion and gating, and on spatial and
    mixed attention.
    """

    def __init__(
        self,
        attention: str = "se",
        in_channels: int = 1,
        width: int = 32,
        num_classes: int = 10,
        reduction: int = 4,
        position: str = "head",
        combine: str = "sum",
    ):
        super().__init__()
        check_attention_net(attention, position, combine)
        self.attention, self.position = attention, position
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(width, width, kernel_size=3, padding=1)
        self.block = (
            nn.Identity()
            if attention == "none"
            else BAM(width, reduction, combine=combine)
            if attention == "bam"
            else {"se": SqueezeExcitation, "cbam": CBAM}[attention](width, reduction)
        )
        self.classifier = nn.Linear(width, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The map the attention block reads: (N, C_in, H, W) -> (N, width, H, W)."""
        h = torch.relu(self.conv1(x))
        return h if self.position == "middle" else torch.relu(self.conv2(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.block(self.features(x))
        if self.position == "middle":
            h = torch.relu(self.conv2(h))
        return self.classifier(h.mean(dim=(2, 3)))


class HeadNet(nn.Module):
    """A convolutional trunk with a flatten head or a global-average-pooling head.

    x: (N, C_in, size, size) -> logits (N, num_classes).
    features = ReLU(BN(conv3x3)) C_in -> width, 2x2 max pool (size -> size // 2), then
    `depth` times ReLU(BN(conv3x3)) width -> width, all "same" padding; with depth=3
    each output position sees 16x16 input pixels. head = FlattenHead(width, size // 2,
    size // 2, num_classes) (head="flatten") or GAPHead(width, num_classes) ("gap").
    The variants share the trunk; only the head differs.
    Taught in the chapter on global pooling.
    """

    def __init__(
        self,
        head: str = "gap",
        in_channels: int = 1,
        width: int = 16,
        depth: int = 3,
        size: int = 20,
        num_classes: int = 10,
    ):
        super().__init__()
        if head not in ("flatten", "gap"):
            raise ValueError(f"HeadNet head must be 'flatten' or 'gap'; got {head!r}.")
        layers = []
        for i in range(depth + 1):
            layers += [
                nn.Conv2d(width if i else in_channels, width, 3, padding=1),
                nn.BatchNorm2d(width),
                nn.ReLU(),
            ]
            if i == 0:
                layers.append(nn.MaxPool2d(2))
        self.trunk = nn.Sequential(*layers)
        self.head = (
            FlattenHead(width, size // 2, size // 2, num_classes)
            if head == "flatten"
            else GAPHead(width, num_classes)
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Trunk output: (N, C_in, size, size) -> (N, width, size/2, size/2)."""
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


SKIP_KINDS = ("none", "add", "concat")


def check_skip_stack(skip: str, depth: int) -> None:
    """SkipStack's arguments, refused with advice (shared by both halves' checks)."""
    if skip not in SKIP_KINDS:
        raise ValueError(f"SkipStack skip must be one of {SKIP_KINDS}; got {skip!r}.")
    if depth < 1:
        raise ValueError(f"SkipStack needs depth >= 1; got depth={depth}.")


class SkipStack(nn.Module):
    """A deep stack of blocks: no skips, residual (add) skips or dense (concat) ones.

    x: (N, C_in, H, W) -> logits (N, num_classes).
    stem: h_0 = ReLU(BN(conv3x3(x))), C_in -> width; then `depth` blocks:
    skip="none": h_l = ReLU(F_l(h_{l-1})), F_l = ResidualBlock(width, width).residual
    (conv3x3-BN-ReLU-conv3x3-BN), the shortcut never used: a plain stack, same weights;
    skip="add": h_l = ResidualBlock(width, width)(h_{l-1})
    = ReLU(F_l(h_{l-1}) + h_{l-1});
    skip="concat": h_l = cat([h_{l-1}, DenseLayer(C_0 + (l-1) k, k)(h_{l-1})]), k =
    growth_rate: width + depth * k channels at the end;
    head: global average pool, Linear(-> num_classes).
    `lesion`: indices of blocks deleted at inference (the block passes h_{l-1} on;
    a deleted dense layer adds k zero channels), the lesion test of Veit et al. (2016).
    Taught in the chapter on skip connections.
    """

    def __init__(
        self,
        skip: str = "add",
        depth: int = 8,
        in_channels: int = 1,
        width: int = 16,
        growth_rate: int = 8,
        num_classes: int = 10,
    ):
        super().__init__()
        from fusion_lib.torch.skip import DenseLayer, ResidualBlock

        check_skip_stack(skip, depth)
        self.skip, self.depth, self.growth_rate = skip, int(depth), int(growth_rate)
        self.lesion: set[int] = set()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        )
        if skip == "concat":
            self.blocks = nn.ModuleList(
                DenseLayer(width + i * growth_rate, growth_rate) for i in range(depth)
            )
            out = width + depth * growth_rate
        else:
            self.blocks = nn.ModuleList(
                ResidualBlock(width, width) for _ in range(depth)
            )
            out = width
        self.classifier = nn.Linear(out, num_classes)

    def block(self, i: int, h: torch.Tensor) -> torch.Tensor:
        """Block i applied to h (the identity, or k zero channels, if lesioned)."""
        layer = self.blocks[i]
        if self.skip == "concat":
            new = layer(h)
            return torch.cat([h, torch.zeros_like(new) if i in self.lesion else new], 1)
        if i in self.lesion:
            return h
        if self.skip == "add":
            return layer(h)
        return torch.relu(layer.residual(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for i in range(self.depth):
            h = self.block(i, h)
        return self.classifier(h.mean(dim=(2, 3)))


class ConcatPyramid(nn.Module):
    """FeaturePyramid's top-down path with concatenation instead of addition.

    xs: list of L maps (N, C_i, H_i, W_i), high to low resolution -> list of L maps
    (N, D, H_i, W_i), D = out_channels.
    lateral_i = conv1x1_i(x_i) (C_i -> D); m_{L-1} = lateral_{L-1};
    m_i = ConcatReduce([lateral_i, up(m_{i+1})]) (a 1x1 conv 2D -> D with bias, no
    norm, no activation); p_i = conv3x3_i(m_i) (D -> D). `up` is FeaturePyramid's
    nearest resize to the lateral's exact size. With the 1x1 weights [I I] it is
    FeaturePyramid exactly; it costs (L - 1) (2 D^2 + D) parameters more.
    Taught in the chapter on feature pyramids.
    """

    def __init__(self, in_channels: list[int], out_channels: int):
        super().__init__()
        self.in_channels, d = [int(c) for c in in_channels], int(out_channels)
        self.lateral_convs = nn.ModuleList(nn.Conv2d(c, d, 1) for c in in_channels)
        self.merges = nn.ModuleList(
            ConcatReduce([d, d], d, norm=False, act=False) for _ in in_channels[1:]
        )
        self.output_convs = nn.ModuleList(
            nn.Conv2d(d, d, 3, padding=1) for _ in in_channels
        )

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        merged = self.lateral_convs[-1](xs[-1])
        outs = [self.output_convs[-1](merged)]
        for i in range(len(xs) - 2, -1, -1):
            lateral = self.lateral_convs[i](xs[i])
            up = resize_to(merged, lateral, mode="nearest")
            merged = self.merges[i]([lateral, up])
            outs.insert(0, self.output_convs[i](merged))
        return outs


PYRAMIDS = ("coarse", "levels", "add", "concat")


class PyramidNet(nn.Module):
    """A three-stage CNN whose classifier reads one pyramid level or all of them.

    x: (N, C_in, H, W) -> logits (N, num_classes), H and W divisible by 8.
    stem = maxpool2(ReLU(conv3x3 C_in -> 8)); c_1, c_2, c_3 = ReLU(conv3x3) with
    16, 32, 64 channels at H/2, H/4, H/8 (a 2x2 max pool before c_2 and c_3).
    pyramid="coarse": p = FeaturePyramid([64], D)(c_3), one level (single scale);
    "levels": FeaturePyramid([C_l], D)(c_l) for each level alone (no top-down path);
    "add": FeaturePyramid([16, 32, 64], D) (lateral 1x1, top-down add, 3x3 output);
    "concat": ConcatPyramid([16, 32, 64], D) (top-down concat, then a 1x1 conv).
    logits = Linear(cat_l max_hw(ReLU(p_l))), D = width. The variants share the
    backbone; only the fusion after it differs.
    Taught in the chapter on feature pyramids.
    """

    def __init__(
        self,
        pyramid: str = "add",
        in_channels: int = 1,
        width: int = 16,
        num_classes: int = 3,
    ):
        super().__init__()
        if pyramid not in PYRAMIDS:
            raise ValueError(
                f"PyramidNet pyramid must be one of {PYRAMIDS}; got {pyramid!r}."
            )
        self.pyramid_mode, chans = pyramid, [16, 32, 64]
        self.stem = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.stages = nn.ModuleList(
            nn.Conv2d(c_in, c, 3, padding=1) for c_in, c in zip([8, 16, 32], chans)
        )
        if pyramid == "add":
            self.pyramids = nn.ModuleList([FeaturePyramid(chans, width)])
        elif pyramid == "concat":
            self.pyramids = nn.ModuleList([ConcatPyramid(chans, width)])
        else:
            keep = chans if pyramid == "levels" else chans[-1:]
            self.pyramids = nn.ModuleList(FeaturePyramid([c], width) for c in keep)
        levels = 1 if pyramid == "coarse" else len(chans)
        self.classifier = nn.Linear(levels * width, num_classes)

    def backbone(self, x: torch.Tensor) -> list[torch.Tensor]:
        """c_1, c_2, c_3: (N, 16, H/2, W/2), (N, 32, H/4, W/4), (N, 64, H/8, W/8)."""
        h = nn.functional.max_pool2d(torch.relu(self.stem(x)), 2)
        cs = []
        for i, stage in enumerate(self.stages):
            h = torch.relu(stage(nn.functional.max_pool2d(h, 2) if i else h))
            cs.append(h)
        return cs

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The pyramid levels the classifier reads, each (N, width, h_l, w_l)."""
        cs = self.backbone(x)
        if self.pyramid_mode in ("add", "concat"):
            return self.pyramids[0](cs)
        if self.pyramid_mode == "coarse":
            cs = cs[-1:]
        return [p([c])[0] for p, c in zip(self.pyramids, cs)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = [torch.relu(p).amax(dim=(2, 3)) for p in self.features(x)]
        return self.classifier(torch.cat(pooled, dim=1))


UNET_SKIPS = ("concat", "add", "none")


class TinyUNet(nn.Module):
    """A two-level U-Net whose decoder merges the encoder's maps by concat, add or not
    at all.

    x: (N, C_in, H, W), H and W divisible by 4 -> logits (N, num_classes, H, W).
    enc1 = 2 x (conv3x3, ReLU): C_in -> w at H x W;
    enc2 = maxpool2, 2 x (conv3x3, ReLU): w -> 2w;
    bottom = maxpool2, 2 x (conv3x3, ReLU): 2w -> 4w;
    up2 = UNetUp(4w, 2w, 2w)([bottom, enc2]), up1 = UNetUp(2w, w, w)([up2, enc1]),
    head = conv1x1 w -> num_classes (all convs padding 1 or 0, with bias).
    skip="concat" | "add" is UNetUp's merge; skip="none" is the add merge fed zeros
    instead of the encoder map: the same weights as "add", no information through the
    skips. Taught in the chapter on skip connections.
    """

    def __init__(
        self,
        skip: str = "concat",
        in_channels: int = 1,
        width: int = 8,
        num_classes: int = 2,
    ):
        super().__init__()
        from fusion_lib.torch.skip import UNetUp

        if skip not in UNET_SKIPS:
            raise ValueError(
                f"TinyUNet skip must be one of {UNET_SKIPS}; got {skip!r}."
            )
        self.skip = skip

        def double_conv(c_in, c_out):
            return nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(c_out, c_out, 3, padding=1),
                nn.ReLU(),
            )

        w, merge = width, "concat" if skip == "concat" else "add"
        self.enc1, self.enc2 = double_conv(in_channels, w), double_conv(w, 2 * w)
        self.bottom, self.pool = double_conv(2 * w, 4 * w), nn.MaxPool2d(2)
        self.up2 = UNetUp(4 * w, 2 * w, 2 * w, merge=merge)
        self.up1 = UNetUp(2 * w, w, w, merge=merge)
        self.head = nn.Conv2d(w, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        b = self.bottom(self.pool(e2))
        if self.skip == "none":
            e1, e2 = torch.zeros_like(e1), torch.zeros_like(e2)
        return self.head(self.up1([self.up2([b, e2]), e1]))


TWO_SCALE_FUSIONS = ("concat", "se", "cbam", "nonlocal", "transformer")


class TwoScaleNet(nn.Module):
    """A small CNN that computes a fine and a coarse map of one image and fuses them.

    x: (N, C_in, size, size), size even -> logits (N, num_classes).
    fine = ReLU(conv3x3(x)), C_in -> 16 at size x size; coarse =
    ReLU(conv3x3(maxpool2(fine))), 16 -> 32 at size/2 x size/2, "same" padding.
    fusion="concat": m = ConcatReduce([16, 32], width)([fine, up(coarse)]) (1x1 conv,
    BN, ReLU; up = nearest resize to the fine map's size), h = ReLU(conv3x3(m));
    "se", "cbam", "nonlocal": the same h, then SqueezeExcitation(width, 4), CBAM(width,
    4) or NonLocalBlock(width) (sub-sampled keys) on it;
    "transformer": h = TransformerFusion([16, 32], width, num_heads, [(size, size),
    (size/2, size/2)]) of [fine, coarse], every pixel of both maps a token;
    logits = Linear(mean of h over all its positions), width -> num_classes.
    The backbone and the classifier are shared; `width` sets each fusion's parameter
    budget (the experiment picks one per fusion so that the totals agree).
    Taught in the chapter on self-attention.
    """

    def __init__(
        self,
        fusion: str = "concat",
        in_channels: int = 1,
        width: int = 32,
        num_heads: int = 4,
        size: int = 8,
        num_classes: int = 10,
    ):
        super().__init__()
        from fusion_lib.torch.selfattention import NonLocalBlock
        from fusion_lib.torch.transformer import TransformerFusion

        if fusion not in TWO_SCALE_FUSIONS:
            raise ValueError(
                f"TwoScaleNet fusion must be one of {TWO_SCALE_FUSIONS}; "
                f"got {fusion!r}."
            )
        if size < 2 or size % 2:
            raise ValueError(
                f"TwoScaleNet needs an even size >= 2 (the coarse map is size / 2); "
                f"got size={size}."
            )
        self.fusion_mode = fusion
        self.fine = nn.Conv2d(in_channels, 16, 3, padding=1)
        self.coarse = nn.Conv2d(16, 32, 3, padding=1)
        if fusion == "transformer":
            sizes = [(size, size), (size // 2, size // 2)]
            self.fuse = TransformerFusion([16, 32], width, num_heads, sizes)
        else:
            self.fuse = ConcatReduce([16, 32], width)
            self.mix = nn.Conv2d(width, width, 3, padding=1)
            self.block = (
                nn.Identity()
                if fusion == "concat"
                else SqueezeExcitation(width, 4)
                if fusion == "se"
                else CBAM(width, 4)
                if fusion == "cbam"
                else NonLocalBlock(width)
            )
        self.classifier = nn.Linear(width, num_classes)

    def backbone(self, x: torch.Tensor) -> list[torch.Tensor]:
        """fine (N, 16, size, size) and coarse (N, 32, size/2, size/2)."""
        fine = torch.relu(self.fine(x))
        return [fine, torch.relu(self.coarse(nn.functional.max_pool2d(fine, 2)))]

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The fused maps the classifier averages, each (N, width, h, w)."""
        fine, coarse = self.backbone(x)
        if self.fusion_mode == "transformer":
            return self.fuse([fine, coarse])
        m = self.fuse([fine, resize_to(coarse, fine, mode="nearest")])
        return [self.block(torch.relu(self.mix(m)))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([h.flatten(2) for h in self.features(x)], dim=2).mean(2)
        return self.classifier(pooled)


# -- Visual question answering: one network, nine fusions (cross-modal fusion) --------

VQA_FUSIONS = (
    "late",
    "early",
    "concat",
    "product",
    "film",
    "gmu",
    "mfb",
    "cross_attn",
    "joint_attn",
)


def check_digit_vqa_net(fusion: str, width: int, num_heads: int) -> None:
    """DigitVQANet's arguments, refused with advice (shared by both halves' checks)."""
    if fusion not in VQA_FUSIONS:
        raise ValueError(
            f"DigitVQANet fusion must be one of {VQA_FUSIONS}; got {fusion!r}."
        )
    if width % num_heads:
        raise ValueError(
            f"DigitVQANet width={width} must be divisible by num_heads={num_heads} "
            "(the attention fusions split it into heads)."
        )


def check_vqa_inputs(inputs, vocab_size: int) -> None:
    """DigitVQANet's inputs = (images, questions), refused with advice."""
    if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
        got = tuple(inputs.shape) if hasattr(inputs, "shape") else type(inputs).__name__
        raise ValueError(
            "DigitVQANet takes one argument, inputs = (images, questions): images "
            f"(N, 1, H, W) and token ids (N, L); got {got}."
        )
    images, questions = inputs
    img, qs = tuple(images.shape), tuple(questions.shape)
    if len(img) != 4 or img[1] != 1:
        nhwc = len(img) == 4 and img[-1] == 1
        hint = " That is NHWC: use images.permute(0, 3, 1, 2)." if nhwc else ""
        raise ValueError(
            f"DigitVQANet images must be (N, 1, H, W), NCHW with one channel; got "
            f"{img}.{hint}"
        )
    if len(qs) != 2 or questions.is_floating_point():
        raise ValueError(
            f"DigitVQANet questions must be integer token ids (N, L); got shape {qs}, "
            f"dtype {questions.dtype}. Encode them with "
            "fusion_lib.data.encode_question."
        )
    if img[0] != qs[0]:
        raise ValueError(
            f"DigitVQANet got {img[0]} images but {qs[0]} questions; pass one "
            "question per image (repeat an image to ask it several questions)."
        )
    if qs[0] * qs[1] and not 0 <= int(questions.min()) <= int(questions.max()) < (
        vocab_size
    ):
        raise ValueError(
            f"DigitVQANet token ids must lie in [0, {vocab_size}) (vocab_size); got "
            f"ids from {int(questions.min())} to {int(questions.max())}."
        )


class DigitVQANet(nn.Module):
    """Answers yes/no questions about an 8x8 digit: one network, nine fusions.

    inputs = (images (N, 1, 8, 8) float, questions (N, L) int token ids) -> logits
    (N, num_answers). D = width.
    Image: h = conv3x3(ReLU(conv3x3(x))) (1 -> D -> D, "same"), m = maxpool2(ReLU(h)),
    (N, D, 4, 4); its tokens t_img = m as 16 vectors (N, 16, D), its vector
    v = mean_hw(m) (N, D). Question: word embeddings t_q = E[questions] (N, L, D)
    (E: (vocab_size, D), a plain parameter), q = mean_L(t_q) (N, D).
    fusion, where the question meets the image:
    "late": logits = A_v(v) + A_q(q), two per-modality answer MLPs D -> D -> answers,
    summed (late fusion of per-modality predictions);
    "early": the raw question, its bag of words (vocab_size word counts), tiled over
    the pixels and concatenated to x as input channels of the first conv
    (1 + vocab_size -> D; no word embedding); f = v;
    "concat": f = [v; q] (2D); "product": f = (P v + b_P) * (Q q + b_Q), P, Q: D -> D;
    "film": h = FiLM(D, D)(h, q) before the ReLU, f = v;
    "gmu": f = GatedMultimodalUnit((D, D), D)([v, q]);
    "mfb": f = LowRankBilinear((D, D), D, factor)([v, q]);
    "cross_attn": f = mean_L(t_q + CrossAttention(D, D, num_heads)(t_q, t_img));
    "joint_attn": z = [t_img + e_0; t_q + e_1] along the sequence (N, 16 + L, D),
    e = modality embeddings (2, D); z = z + MultiHeadSelfAttention(D, num_heads)(z),
    f = mean over the 16 + L tokens.
    Every fusion but "late": logits = W_2 ReLU(W_1 f + b_1) + b_2, W_1: |f| -> D.
    The variants share the encoders and the answer MLP's shape; only the fusion
    differs (and with it the parameter count). The padding token is a word like any
    other (not masked): every question has a fixed length, so nothing is lost.
    Taught in the chapter on cross-modal fusion.
    """

    def __init__(
        self,
        fusion: str = "film",
        width: int = 32,
        vocab_size: int = len(VOCAB),
        num_heads: int = 4,
        factor: int = 5,
        num_answers: int = 2,
    ):
        super().__init__()
        check_digit_vqa_net(fusion, width, num_heads)
        self.fusion, self.vocab_size, d = fusion, vocab_size, width
        self.conv1 = nn.Conv2d(
            1 + (vocab_size if fusion == "early" else 0), d, 3, padding=1
        )
        self.conv2 = nn.Conv2d(d, d, 3, padding=1)
        if fusion != "early":  # early fusion reads the raw words, not embeddings
            self.word_embedding = nn.Parameter(torch.randn(vocab_size, d))
        if fusion == "late":
            self.image_hidden = nn.Linear(d, d)
            self.image_answer = nn.Linear(d, num_answers)
            self.question_hidden = nn.Linear(d, d)
            self.question_answer = nn.Linear(d, num_answers)
            return
        if fusion == "film":
            self.film = FiLM(d, d)
        elif fusion == "product":
            self.image_proj, self.question_proj = nn.Linear(d, d), nn.Linear(d, d)
        elif fusion == "gmu":
            self.gmu = GatedMultimodalUnit((d, d), d)
        elif fusion == "mfb":
            self.mfb = LowRankBilinear((d, d), d, factor)
        elif fusion == "cross_attn":
            self.cross = CrossAttention(d, d, num_heads)
        elif fusion == "joint_attn":
            self.modality = nn.Parameter(torch.randn(2, d))
            self.joint = MultiHeadSelfAttention(d, num_heads)
        self.hidden = nn.Linear(2 * d if fusion == "concat" else d, d)
        self.answer = nn.Linear(d, num_answers)

    def question_tokens(self, questions: torch.Tensor) -> torch.Tensor:
        """t_q: (N, L) token ids -> (N, L, D) word embeddings."""
        return self.word_embedding[questions.long()]

    def bag_of_words(self, questions: torch.Tensor) -> torch.Tensor:
        """How often each word occurs: (N, L) token ids -> (N, vocab_size)."""
        one_hot = nn.functional.one_hot(questions.long(), self.vocab_size)
        return one_hot.sum(dim=1).to(self.conv1.weight.dtype)

    def image_map(
        self, images: torch.Tensor, questions: torch.Tensor
    ) -> torch.Tensor:
        """m: (N, 1, H, W) -> (N, D, H/2, W/2); the question enters here for "early"
        (its bag of words, tiled, as input channels) and "film" (q modulates h)."""
        x = images
        if self.fusion == "early":
            words = self.bag_of_words(questions)[:, :, None, None]
            x = torch.cat([images, words.expand(-1, -1, *images.shape[2:])], dim=1)
        h = self.conv2(torch.relu(self.conv1(x)))
        if self.fusion == "film":
            h = self.film(h, self.question_tokens(questions).mean(dim=1))
        return nn.functional.max_pool2d(torch.relu(h), 2)

    def fused(self, inputs) -> torch.Tensor:
        """f, the fused vector the answer MLP reads (not defined for "late")."""
        images, questions = inputs
        m = self.image_map(images, questions)
        v = m.mean(dim=(2, 3))
        if self.fusion in ("early", "film"):
            return v  # the question already shaped the image map
        t_q = self.question_tokens(questions)
        q = t_q.mean(dim=1)
        t_img = m.flatten(2).transpose(1, 2)  # (N, 16, D), row-major positions
        if self.fusion == "concat":
            return torch.cat([v, q], dim=1)
        if self.fusion == "product":
            return self.image_proj(v) * self.question_proj(q)
        if self.fusion == "gmu":
            return self.gmu([v, q])
        if self.fusion == "mfb":
            return self.mfb([v, q])
        if self.fusion == "cross_attn":
            return (t_q + self.cross(t_q, t_img)).mean(dim=1)
        if self.fusion == "joint_attn":
            z = torch.cat([t_img + self.modality[0], t_q + self.modality[1]], dim=1)
            return (z + self.joint(z)).mean(dim=1)

    def modality_logits(self, inputs) -> tuple[torch.Tensor, torch.Tensor]:
        """"late" only: the image's and the question's own answer logits."""
        images, questions = inputs
        q = self.question_tokens(questions).mean(dim=1)
        v = self.image_map(images, questions).mean(dim=(2, 3))
        image = self.image_answer(torch.relu(self.image_hidden(v)))
        return image, self.question_answer(torch.relu(self.question_hidden(q)))

    def forward(self, inputs) -> torch.Tensor:
        check_vqa_inputs(inputs, self.vocab_size)
        if self.fusion == "late":
            image, question = self.modality_logits(inputs)
            return image + question
        return self.answer(torch.relu(self.hidden(self.fused(inputs))))


# -- One backbone, seven fusion points (choosing a fusion method) ---------------------

FUSION_POINTS = (
    "concat",
    "add",
    "multiply",
    "se",
    "cbam",
    "concat_reduce",
    "attention",
)


def check_fusion_point_net(
    fusion: str, width: int, reduction: int, num_heads: int, size: int, pool: bool
) -> None:
    """FusionPointNet's arguments, refused with advice (the same in both halves)."""
    if fusion not in FUSION_POINTS:
        raise ValueError(
            f"FusionPointNet fusion must be one of {FUSION_POINTS}; got {fusion!r}."
        )
    if width < 1:
        raise ValueError(f"FusionPointNet needs width >= 1; got width={width}.")
    if fusion in ("se", "cbam") and (2 * width) % reduction:
        raise ValueError(
            f"FusionPointNet fusion={fusion!r} needs 2 * width divisible by "
            f"reduction (it gates the 2 * width concatenated channels); got "
            f"width={width}, reduction={reduction}."
        )
    if fusion == "attention" and width % num_heads:
        raise ValueError(
            f"FusionPointNet width={width} must be divisible by num_heads="
            f"{num_heads} (the attention fusion splits it into heads)."
        )
    if size < 2 or (pool and size % 2):
        raise ValueError(
            f"FusionPointNet needs size >= 2, even when pool=True (the stem halves "
            f"it); got size={size}, pool={pool}."
        )


class FusionPointNet(nn.Module):
    """One backbone whose two branches meet at one fusion point, seven ways.

    x: (N, C_in, size, size) -> logits (N, num_classes). w = width, H = W = size
    (size / 2 with pool=True).
    stem: s = ReLU(conv3x3(x)), C_in -> w, then a 2x2 max pool if pool;
    local = ReLU(conv3x3(s)) and context = ReLU(conv3x3, dilation 2 (s)), w -> w each
    (the same 9 w^2 + w parameters; the context branch sees 5x5 pixels of s);
    fusion of [local, context], f with C_f channels:
    "concat": cat (C_f = 2w); "add": local + context (w); "multiply": local * context
    (w); "se": SqueezeExcitation(2w, reduction)(cat) (2w); "cbam": CBAM(2w,
    reduction)(cat) (2w); "concat_reduce": ConcatReduce([w, w], w)(...) (1x1 conv, BN,
    ReLU; w); "attention": every local pixel a query of CrossAttention(w, w,
    num_heads) over the H W context pixels, f = local + attended (w);
    head: h = ReLU(conv3x3(f)), C_f -> w, logits = Linear(mean_hw(h)), w ->
    num_classes. The variants share everything but the fusion and the head conv's
    input width (2w after the concatenating fusions: the confound the chapter names).
    Taught in the chapter on choosing a fusion method.
    """

    def __init__(
        self,
        fusion: str = "concat",
        in_channels: int = 1,
        width: int = 16,
        num_classes: int = 10,
        reduction: int = 4,
        num_heads: int = 2,
        size: int = 8,
        pool: bool = False,
    ):
        super().__init__()
        check_fusion_point_net(fusion, width, reduction, num_heads, size, pool)
        self.fusion_mode, self.pool = fusion, bool(pool)
        w = width
        self.stem = nn.Conv2d(in_channels, w, 3, padding=1)
        self.local = nn.Conv2d(w, w, 3, padding=1)
        self.context = nn.Conv2d(w, w, 3, padding=2, dilation=2)
        self.fuse = self._fusion(fusion, w, num_heads)
        self.gate = (
            SqueezeExcitation(2 * w, reduction)
            if fusion == "se"
            else CBAM(2 * w, reduction)
            if fusion == "cbam"
            else nn.Identity()
        )
        wide = fusion in ("concat", "se", "cbam")
        self.head = nn.Conv2d(2 * w if wide else w, w, 3, padding=1)
        self.classifier = nn.Linear(w, num_classes)

    @staticmethod
    def _fusion(fusion: str, w: int, num_heads: int) -> nn.Module:
        from fusion_lib.torch.gating import ProductFusion

        if fusion in ("concat", "se", "cbam"):
            return ConcatFusion()
        if fusion == "concat_reduce":
            return ConcatReduce([w, w], w)
        if fusion == "attention":
            return CrossAttention(w, w, num_heads)
        return AddFusion() if fusion == "add" else ProductFusion()

    def branches(self, x: torch.Tensor) -> list[torch.Tensor]:
        """local and context, each (N, width, H, W): the fusion point's inputs."""
        s = torch.relu(self.stem(x))
        if self.pool:
            s = nn.functional.max_pool2d(s, 2)
        return [torch.relu(self.local(s)), torch.relu(self.context(s))]

    def fused(self, x: torch.Tensor) -> torch.Tensor:
        """f, the fusion point's output: (N, C_f, H, W)."""
        local, context = self.branches(x)
        if self.fusion_mode != "attention":
            return self.gate(self.fuse([local, context]))
        n, c, h, w = local.shape
        q, kv = (t.flatten(2).transpose(1, 2) for t in (local, context))
        attended = self.fuse(q, kv).transpose(1, 2).reshape(n, c, h, w)
        return local + attended

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.head(self.fused(x)))
        return self.classifier(h.mean(dim=(2, 3)))
