"""The PyTorch half of fusion_lib: NCHW `torch.nn.Module`s.

Every class here has a Keras twin of the same name in `fusion_lib.tf`, in a file of the same name.
"""

from fusion_lib.torch.add import AddFusion
from fusion_lib.torch.concat import ConcatFusion, UNetSkipMerge, center_crop

__all__ = ["AddFusion", "ConcatFusion", "UNetSkipMerge", "center_crop"]
