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


def check_out_buffer(
    op: str, out, xs: list, shape: tuple, may_alias_first: bool = True
) -> None:
    """The out= of an element-wise or concatenating fusion: a tensor of the result's
    shape, dtype (torch's promotion of the inputs') and device, with autograd off.
    """
    from fusion_lib._checks import check_out, check_out_no_grad

    dtype = xs[0].dtype
    for x in xs[1:]:
        dtype = torch.promote_types(dtype, x.dtype)
    is_tensor = isinstance(out, torch.Tensor)
    check_out(
        op,
        out,
        xs,
        shape,
        str(dtype).removeprefix("torch."),
        TORCH,
        TORCH.is_tensor,
        "a torch.Tensor",
        (str(xs[0].device), str(out.device)) if is_tensor else None,
        may_alias_first,
    )
    check_out_no_grad(
        op,
        torch.is_grad_enabled()
        and (out.requires_grad or any(x.requires_grad for x in xs)),
    )
