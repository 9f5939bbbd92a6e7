"""The PyTorch half of fusion_lib: NCHW `torch.nn.Module`s.

Every class here has a Keras twin of the same name in `fusion_lib.tf`, in a file of the same name.
"""

from fusion_lib.torch.add import AddFusion
from fusion_lib.torch.attention import BAM, CBAM, ChannelAttention, SpatialAttention, channel_pool
from fusion_lib.torch.concat import ConcatFusion, UNetSkipMerge, center_crop
from fusion_lib.torch.gating import GatedFusion, ProductFusion, SqueezeExcitation
from fusion_lib.torch.pooling import FlattenHead, GAPHead, GlobalPool
from fusion_lib.torch.reduce import ConcatReduce, resize_to

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
