"""Framework-free checks for feature vectors (N, D) and token sequences (N, L, D).

The companion of `fusion_lib._checks` (feature maps) for the cross-modal and attention
operators. Both halves put features on the last axis of a vector or a sequence, so
unlike a map there is no layout to tell apart: torch and Keras raise the same text.
"""

from __future__ import annotations

from fusion_lib._checks import Layout, check_map, same_size, shape_str


def check_width(op: str, name: str, width) -> int:
    """A constructor width (features, channels, dims) must be a positive integer."""
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"{op}: {name} must be a positive integer; got {width!r}.")
    return width


def check_pair(op: str, name: str, widths) -> tuple[int, int]:
    """`in_features` of a two-modality operator: a pair of positive widths."""
    if isinstance(widths, int) or len(tuple(widths)) != 2:
        raise ValueError(
            f"{op}: {name} must be a pair of widths, one per modality, e.g. "
            f"{name}=(64, 32); got {widths!r}."
        )
    return tuple(check_width(op, f"{name}[{i}]", w) for i, w in enumerate(widths))


def check_heads(op: str, name: str, dim: int, num_heads: int) -> int:
    """The width every head gets, dim // num_heads; num_heads must divide dim."""
    check_width(op, "num_heads", num_heads)
    if dim % num_heads:
        divisors = [h for h in range(1, dim + 1) if dim % h == 0]
        raise ValueError(
            f"{op}: num_heads={num_heads} does not divide {name}={dim}; each head "
            f"gets {name} // num_heads features. Use num_heads in {divisors}."
        )
    return dim // num_heads


def check_features(op: str, name: str, shape: tuple, features: int) -> None:
    """A batch of feature vectors: shape (N, features)."""
    if len(shape) != 2:
        hint = " Add the batch axis (x[None])." if len(shape) == 1 else ""
        if len(shape) == 4:
            hint = " Pool a feature map to a vector first (GlobalPool)."
        raise ValueError(
            f"{op} expects {name} of shape (N, {features}); got shape "
            f"{shape_str(shape)} (rank {len(shape)}).{hint}"
        )
    if not same_size(shape[1], features):
        raise ValueError(
            f"{op} expects {name} of shape (N, {features}); got shape "
            f"{shape_str(shape)}, i.e. {shape[1]} features. Build it for "
            f"{shape[1]} features, or project {name} to {features} first."
        )


def check_map_or_features(op: str, shape: tuple, layout: Layout, channels: int) -> None:
    """A feature map in the half's layout, or a batch of (N, channels) vectors."""
    if len(shape) == 4:
        check_map(op, shape, layout, channels)
    elif len(shape) == 2:
        check_features(op, "x", shape, channels)
    else:
        dims = "(N, C, H, W)" if layout.name == "NCHW" else "(N, H, W, C)"
        raise ValueError(
            f"{op} expects x of shape {dims} or (N, C), with C = {channels}; got shape "
            f"{shape_str(shape)} (rank {len(shape)}). Add the batch axis if it is "
            "missing."
        )


def check_tokens(op: str, name: str, shape: tuple, dim: int, dim_name: str) -> None:
    """A batch of token sequences: shape (N, L, dim)."""
    if len(shape) != 3:
        hint = " Add the batch axis (x[None])." if len(shape) == 2 else ""
        if len(shape) == 4:
            hint = (
                " Flatten a feature map to H*W tokens first: (N, C, H, W) -> "
                "x.flatten(2).transpose(1, 2) in torch, (N, H, W, C) -> "
                "keras.ops.reshape(x, (N, H * W, C)) in Keras."
            )
        raise ValueError(
            f"{op} expects {name} of shape (N, L, {dim_name}) = (N, L, {dim}); got "
            f"shape {shape_str(shape)} (rank {len(shape)}).{hint}"
        )
    if not same_size(shape[2], dim):
        raise ValueError(
            f"{op} expects {name} of shape (N, L, {dim_name}) = (N, L, {dim}); got "
            f"shape {shape_str(shape)}, i.e. {shape[2]} features per token. Build it "
            f"with {dim_name}={shape[2]}, or project the tokens to {dim} first."
        )


def check_same_batch(op: str, named_shapes: dict[str, tuple]) -> None:
    """Every input describes the same N examples."""
    names = list(named_shapes)
    first = names[0]
    for name in names[1:]:
        a, b = named_shapes[first][0], named_shapes[name][0]
        if not same_size(a, b):
            raise ValueError(
                f"{op} needs the same batch size N for {first} and {name}; got "
                f"{shape_str(named_shapes[first])} and "
                f"{shape_str(named_shapes[name])} ({a} vs {b} examples)."
            )


def _check_bool(op: str, mask) -> None:
    if "bool" not in str(mask.dtype):
        raise ValueError(
            f"{op} takes a boolean mask (True = attend); got dtype {mask.dtype}. "
            "Convert with mask > 0 when 1 means attend; for an additive float mask, "
            "add it to the scores yourself."
        )


def check_mask(op: str, mask, n, lq, lk) -> None:
    """A boolean attention mask, True = attend, of shape (N, Lk) (which keys exist,
    the same for every query) or (N, Lq, Lk) (one row of keys per query).
    """
    if mask is None:
        return
    shape = tuple(mask.shape)
    _check_bool(op, mask)
    want = [(n, lk), (n, lq, lk)]
    if not any(
        len(shape) == len(w) and all(same_size(a, b) for a, b in zip(shape, w))
        for w in want
    ):
        raise ValueError(
            f"{op} expects a mask of shape (N, Lk) = {shape_str(want[0])} or "
            f"(N, Lq, Lk) = {shape_str(want[1])}, True = attend; got shape "
            f"{shape_str(shape)}. torch's key_padding_mask and attn_mask mean the "
            "opposite (True = ignore): pass ~mask from those."
        )


def check_attention(q: tuple, k: tuple, v: tuple, mask) -> None:
    """scaled_dot_product_attention: q (..., Lq, d), k (..., Lk, d), v (..., Lk, dv),
    equal leading axes; a boolean mask broadcastable to (..., Lq, Lk).
    """
    op = "scaled_dot_product_attention"
    for name, s in (("q", q), ("k", k), ("v", v)):
        if len(s) < 2:
            raise ValueError(
                f"{op} expects q (..., Lq, d), k (..., Lk, d), v (..., Lk, dv); "
                f"{name} has shape {shape_str(s)} (rank {len(s)})."
            )
    if not (len(q) == len(k) == len(v)) or not all(
        same_size(a, b) and same_size(a, c) for a, b, c in zip(q[:-2], k[:-2], v[:-2])
    ):
        raise ValueError(
            f"{op} needs the same leading axes (batch, heads) on q, k and v; got q "
            f"{shape_str(q)}, k {shape_str(k)}, v {shape_str(v)}."
        )
    if not same_size(q[-1], k[-1]):
        raise ValueError(
            f"{op}: q and k must have the same feature size d (the dot product runs "
            f"over it); got q {shape_str(q)} (d={q[-1]}) and k {shape_str(k)} "
            f"(d={k[-1]})."
        )
    if not same_size(k[-2], v[-2]):
        raise ValueError(
            f"{op}: k and v must hold the same number of keys Lk (one value per key); "
            f"got k {shape_str(k)} (Lk={k[-2]}) and v {shape_str(v)} (Lk={v[-2]})."
        )
    if mask is None:
        return
    _check_bool(op, mask)
    mask_shape = tuple(mask.shape)
    target = (*q[:-1], k[-2])
    ok = len(mask_shape) <= len(target) and all(
        m == 1 or same_size(m, t)
        for m, t in zip(reversed(mask_shape), reversed(target))
    )
    if not ok:
        raise ValueError(
            f"{op}: the mask must broadcast to the scores' shape (..., Lq, Lk) = "
            f"{shape_str(target)}; got a mask of shape {shape_str(mask_shape)}."
        )
