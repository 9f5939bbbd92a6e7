"""The TensorFlow/Keras half of fusion_lib: NHWC Keras 3 layers.

Every class here has a PyTorch twin of the same name in `fusion_lib.torch`, in a file
of the same name.
"""

from fusion_lib.tf.add import AddFusion
from fusion_lib.tf.attention import (
    BAM,
    CBAM,
    ChannelAttention,
    SpatialAttention,
    channel_pool,
)
from fusion_lib.tf.concat import ConcatFusion, UNetSkipMerge, center_crop
from fusion_lib.tf.crossmodal import (
    CrossAttention,
    FiLM,
    GatedMultimodalUnit,
    LowRankBilinear,
)
from fusion_lib.tf.gating import GatedFusion, ProductFusion, SqueezeExcitation
from fusion_lib.tf.pooling import FlattenHead, GAPHead, GlobalPool
from fusion_lib.tf.pyramid import FeaturePyramid
from fusion_lib.tf.reduce import ConcatReduce, resize_to
from fusion_lib.tf.selfattention import (
    MultiHeadSelfAttention,
    NonLocalBlock,
    attention_weights,
    keras_mask,
    multihead_to_keras,
    scaled_dot_product_attention,
)
from fusion_lib.tf.skip import (
    AggregationNode,
    DenseBlock,
    DenseLayer,
    ResidualBlock,
    Transition,
    UNetUp,
)
from fusion_lib.tf.transformer import TransformerEncoderBlock, TransformerFusion

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
    "keras_mask",
    "multihead_to_keras",
    "resize_to",
    "scaled_dot_product_attention",
]
