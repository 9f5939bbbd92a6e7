"""The TensorFlow/Keras half of fusion_lib: NHWC Keras 3 layers.

Every class here has a PyTorch twin of the same name in `fusion_lib.torch`, in a file of the same name.
"""

from fusion_lib.tf.add import AddFusion
from fusion_lib.tf.concat import ConcatFusion, UNetSkipMerge, center_crop

__all__ = ["AddFusion", "ConcatFusion", "UNetSkipMerge", "center_crop"]
