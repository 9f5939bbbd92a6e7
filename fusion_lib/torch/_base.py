"""What the torch half calls a tensor, and the one cast its modules share."""

from __future__ import annotations

import torch

from fusion_lib._checks import NCHW, Half

TORCH = Half(
    name="torch",
    layout=NCHW,
    is_tensor=lambda x: isinstance(x, torch.Tensor),
    dtype_name=lambda x: str(x.dtype).removeprefix("torch."),
    float_dtypes=frozenset(
        {torch.float16, torch.bfloat16, torch.float32, torch.float64}
    ),
    tensor_kind="a torch.Tensor",
    numpy_fix="torch.as_tensor(x, dtype=torch.float32)",
    list_fix="torch.tensor(x, dtype=torch.float32)",
    float_fix="x.float()",
    bool_fix="mask > 0",
)


def like_weights(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x cast to the dtype of a module's weights, as the Keras half's layers cast
    their inputs to their compute dtype (no copy when the dtypes already agree).
    """
    return x if x.dtype is weight.dtype else x.to(weight.dtype)
