"""The PyTorch half of fusion_lib: NCHW `torch.nn.Module`s.

Every class here has a Keras twin of the same name in `fusion_lib.tf`, in a file
of the same name.
"""

from fusion_lib.torch.add import AddFusion
from fusion_lib.torch.attention import (
    BAM,
    CBAM,
    ChannelAttention,
    SpatialAttention,
    channel_pool,
)
from fusion_lib.torch.concat import ConcatFusion, UNetSkipMerge, center_crop
from fusion_lib.torch.crossmodal import (
    CrossAttention,
    FiLM,
    GatedMultimodalUnit,
    LowRankBilinear,
)
from fusion_lib.torch.gating import GatedFusion, ProductFusion, SqueezeExcitation
from fusion_lib.torch.pooling import FlattenHead, GAPHead, GlobalPool
from fusion_lib.torch.pyramid import FeaturePyramid
from fusion_lib.torch.reduce import ConcatReduce, resize_to
from fusion_lib.torch.selfattention import (
    MultiHeadSelfAttention,
    NonLocalBlock,
    attention_weights,
    multihead_from_torch,
    multihead_to_torch,
    scaled_dot_product_attention,
    torch_mask_kwargs,
)
from fusion_lib.torch.skip import (
    AggregationNode,
    DenseBlock,
    DenseLayer,
    ResidualBlock,
    Transition,
    UNetUp,
)
from fusion_lib.torch.transformer import TransformerEncoderBlock, TransformerFusion

__all__ = [
    "AddFusion",
    "AggregationNode",
    "BAM",
    "CBAM",
    "ChannelAttention",
    "ConcatFusion",
    "ConcatReduce",
    "CrossAttention",
    "DenseBlock",
    "DenseLayer",
    "FeaturePyramid",
    "FiLM",
    "FlattenHead",
    "GAPHead",
    "GatedFusion",
    "GatedMultimodalUnit",
    "GlobalPool",
    "LowRankBilinear",
    "MultiHeadSelfAttention",
    "NonLocalBlock",
    "ProductFusion",
    "ResidualBlock",
    "SpatialAttention",
    "SqueezeExcitation",
    "TransformerEncoderBlock",
    "TransformerFusion",
    "Transition",
    "UNetSkipMerge",
    "UNetUp",
    "attention_weights",
    "center_crop",
    "channel_pool",
    "multihead_from_torch",
    "multihead_to_torch",
    "resize_to",
    "scaled_dot_product_attention",
    "torch_mask_kwargs",
]
