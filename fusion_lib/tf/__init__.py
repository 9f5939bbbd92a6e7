"""The TensorFlow/Keras half of fusion_lib: NHWC Keras 3 layers.

Every class here has a PyTorch twin of the same name in `fusion_lib.torch`, in a file of the same name.
"""

from fusion_lib.tf.add import AddFusion
from fusion_lib.tf.attention import BAM, CBAM, ChannelAttention, SpatialAttention, channel_pool
from fusion_lib.tf.concat import ConcatFusion, UNetSkipMerge, center_crop
from fusion_lib.tf.gating import GatedFusion, ProductFusion, SqueezeExcitation
from fusion_lib.tf.pooling import FlattenHead, GAPHead, GlobalPool
from fusion_lib.tf.reduce import ConcatReduce, resize_to

__all__ = [
    "AddFusion",
    "BAM",
    "CBAM",
    "ChannelAttention",
    "ConcatFusion",
    "ConcatReduce",
    "FlattenHead",
    "GAPHead",
    "GatedFusion",
    "GlobalPool",
    "ProductFusion",
    "SpatialAttention",
    "SqueezeExcitation",
    "UNetSkipMerge",
    "center_crop",
    "channel_pool",
    "resize_to",
]
