"""Framework-free input validation shared by the torch (NCHW) and Keras (NHWC) halves.

Every check works on plain shape tuples, so both halves raise the same `ValueError`
text for the same mistake, only with the axes and the fix written in their own layout.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    """Where the channel axis lives, and how to fix a tensor given in the other
    layout.
    """

    name: str  # "NCHW" or "NHWC"
    channel_axis: int
    spatial_axes: tuple[int, int]
    add_batch_axis: str
    from_other_layout: str

    @property
    def other(self) -> str:
        return "NHWC" if self.name == "NCHW" else "NCHW"


NCHW = Layout("NCHW", 1, (2, 3), "x.unsqueeze(0)", "x.permute(0, 3, 1, 2)")
NHWC = Layout("NHWC", 3, (1, 2), "x[None]", "keras.ops.transpose(x, (0, 2, 3, 1))")


def shape_str(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def same_size(a, b) -> bool:
    """Sizes agree; None (an unknown size, e.g. a symbolic Keras batch axis) agrees
    with any.
    """
    return a is None or b is None or a == b


def same_shape(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(same_size(x, y) for x, y in zip(a, b))


def as_tensor_list(op: str, xs, *, min_count: int = 2) -> list:
    """Accept a list or tuple of tensors, as `keras.layers.Concatenate` does."""
    if hasattr(xs, "shape") and not isinstance(xs, (list, tuple)):
        raise ValueError(
            f"{op} takes a list of tensors, e.g. fuse([x1, x2]); got a single tensor "
            f"of shape {shape_str(xs.shape)}."
        )
    xs = list(xs)
    if len(xs) < min_count:
        raise ValueError(
            f"{op} needs at least {min_count} tensors to fuse; got {len(xs)}."
        )
    return xs


def check_rank4(op: str, shapes: list[tuple], layout: Layout) -> None:
    for i, s in enumerate(shapes):
        if len(s) != 4:
            hint = (
                f" Add the batch axis with {layout.add_batch_axis}."
                if len(s) == 3
                else ""
            )
            which = f"input {i} has" if len(shapes) > 1 else "got a tensor of"
            raise ValueError(
                f"{op} expects 4-D {layout.name} tensors; {which} shape {shape_str(s)} "
                f"(rank {len(s)}).{hint}"
            )


def _looks_like_other_layout(shapes: list[tuple], layout: Layout) -> bool:
    """True when the shapes agree everywhere except on the *other* layout's channel
    axis.
    """
    other_c = 3 if layout.name == "NCHW" else 1
    keep = [a for a in range(4) if a != other_c]
    first = shapes[0]
    same_elsewhere = all(all(same_size(s[a], first[a]) for a in keep) for s in shapes)
    differs_there = any(not same_size(s[other_c], first[other_c]) for s in shapes)
    return same_elsewhere and differs_there


def _layout_hint(layout: Layout) -> str:
    return (
        f" The input looks {layout.other} "
        f"(channels {'last' if layout.other == 'NHWC' else 'first'}); "
        f"this half expects {layout.name}: convert with {layout.from_other_layout}."
    )


def check_all_but_channels(op: str, shapes: list[tuple], layout: Layout) -> None:
    """Batch and spatial sizes must agree (concatenation, or addition after 1x1
    projections).
    """
    check_rank4(op, shapes, layout)
    first = shapes[0]
    for i, s in enumerate(shapes[1:], start=1):
        h0, w0 = (first[a] for a in layout.spatial_axes)
        h, w = (s[a] for a in layout.spatial_axes)
        if same_size(s[0], first[0]) and same_size(h, h0) and same_size(w, w0):
            continue
        msg = (
            f"{op} needs equal batch and spatial sizes (every axis but C, axis "
            f"{layout.channel_axis} of {layout.name}); got {shape_str(first)} and "
            f"{shape_str(s)} (input 0 vs {i})."
        )
        if _looks_like_other_layout(shapes, layout):
            raise ValueError(msg + _layout_hint(layout))
        if not same_size(s[0], first[0]):
            raise ValueError(msg + " Batch sizes differ.")
        raise ValueError(
            msg
            + f" Spatial sizes {h0}x{w0} vs {h}x{w} differ: resize the coarser map to "
            "the finer one's exact size (resize_to(coarse, fine)) or crop the larger "
            "one (center_crop) first."
        )


def check_same_shapes(op: str, shapes: list[tuple], layout: Layout) -> None:
    """Element-wise merges need identical shapes."""
    check_rank4(op, shapes, layout)
    first = shapes[0]
    c = layout.channel_axis
    for i, s in enumerate(shapes[1:], start=1):
        if same_shape(s, first):
            continue
        msg = (
            f"{op} needs identical shapes; got {shape_str(first)} and {shape_str(s)} "
            f"(input 0 vs {i})."
        )
        if _looks_like_other_layout(shapes, layout):
            raise ValueError(msg + _layout_hint(layout))
        spatial_same = all(same_size(s[a], first[a]) for a in layout.spatial_axes)
        if spatial_same and same_size(s[0], first[0]):
            chans = [sh[c] for sh in shapes]
            raise ValueError(
                msg + f" Channel counts {chans} differ: project with a 1x1 conv first, "
                f"e.g. {op}(in_channels={chans}, out_channels={max(chans)})."
            )
        raise ValueError(
            msg + " Spatial sizes differ: resize the coarser map to the finer one's "
            "exact size (resize_to(coarse, fine)) or crop the larger one "
            "(center_crop) first."
        )


def check_channels(
    op: str, shapes: list[tuple], expected: list[int], layout: Layout
) -> None:
    """Each input i must carry expected[i] channels on the layout's channel axis."""
    check_rank4(op, shapes, layout)
    if len(shapes) != len(expected):
        raise ValueError(
            f"{op} was built for {len(expected)} inputs "
            f"(in_channels={list(expected)}); got {len(shapes)}."
        )
    c = layout.channel_axis
    other_c = 3 if c == 1 else 1
    for i, (s, e) in enumerate(zip(shapes, expected)):
        if not same_size(s[c], e):
            msg = (
                f"{op}: input {i} has shape {shape_str(s)}, i.e. {s[c]} channels on "
                f"axis {c} of {layout.name}, but in_channels[{i}] = {e}."
            )
            if s[other_c] == e:
                msg += _layout_hint(layout)
            raise ValueError(msg)


def center_crop_box(
    x_shape: tuple, target_hw: tuple[int, int], layout: Layout
) -> tuple[int, int, int, int]:
    """(top, left, h, w) of the centred window of size target_hw, as U-Net crops:
    offset (H - h) // 2.
    """
    check_rank4("center_crop", [x_shape], layout)
    H, W = (x_shape[a] for a in layout.spatial_axes)
    h, w = (int(d) for d in target_hw)
    if H is None or W is None:
        raise ValueError(
            f"center_crop needs known spatial sizes; got {shape_str(x_shape)}."
        )
    if h > H or w > W:
        raise ValueError(
            f"center_crop cannot crop a {H}x{W} map (shape {shape_str(x_shape)}, "
            f"{layout.name}) to {h}x{w}: the target is larger. Pad the smaller map "
            "instead (UNetSkipMerge(mode='pad'))."
        )
    return (H - h) // 2, (W - w) // 2, h, w


def pad_amounts(
    small_hw: tuple[int, int], big_hw: tuple[int, int]
) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) zero padding that centres a small map inside a big
    one.
    """
    (h, w), (H, W) = small_hw, big_hw
    if h > H or w > W:
        raise ValueError(
            f"cannot pad a {h}x{w} map to the smaller {H}x{W}; crop it instead."
        )
    return (H - h) // 2, (H - h) - (H - h) // 2, (W - w) // 2, (W - w) - (W - w) // 2


def check_map(
    op: str,
    shape: tuple,
    layout: Layout,
    channels: int | None = None,
    arg: str = "channels",
) -> None:
    """One feature map: rank 4, and `channels` channels on the layout's channel axis
    when given. `arg` names the constructor argument the fix should change.
    """
    check_rank4(op, [shape], layout)
    c = layout.channel_axis
    if channels is None or same_size(shape[c], channels):
        return
    msg = (
        f"{op} was built for {channels} channels but got shape {shape_str(shape)}, "
        f"i.e. {shape[c]} channels on axis {c} of {layout.name}."
    )
    other_c = 3 if c == 1 else 1
    if shape[other_c] == channels:
        msg += _layout_hint(layout)
    else:
        msg += (
            f" Build it with {arg}={shape[c]}, or project the map to {channels} "
            "channels with a 1x1 conv first."
        )
    raise ValueError(msg)


def check_reduction(op: str, channels: int, reduction: int) -> int:
    """The squeezed width channels // reduction of SE, CBAM and BAM; at least one
    channel.
    """
    if reduction < 1:
        raise ValueError(
            f"{op}: reduction must be a positive integer; got {reduction}."
        )
    hidden = channels // reduction
    if hidden < 1:
        raise ValueError(
            f"{op}(channels={channels}, reduction={reduction}) would squeeze to "
            f"{channels} // {reduction} = 0 channels. Use reduction <= {channels}."
        )
    return hidden


def check_hw_size(
    op: str, shape: tuple, layout: Layout, expected_hw: tuple[int, int], fix: str
) -> None:
    """A layer built for one spatial size (e.g. a flatten head) must get exactly that
    size.
    """
    check_rank4(op, [shape], layout)
    hw = tuple(shape[a] for a in layout.spatial_axes)
    if not all(same_size(a, b) for a, b in zip(hw, expected_hw)):
        raise ValueError(
            f"{op} was built for {expected_hw[0]}x{expected_hw[1]} maps but got shape "
            f"{shape_str(shape)} ({hw[0]}x{hw[1]}, {layout.name}). {fix}"
        )


def check_pyramid(op: str, shapes: list[tuple], expected: list[int], layout: Layout):
    """Feature-pyramid levels: one per in_channels entry, each with its width, one
    batch size, ordered from high to low resolution (sizes never grow).
    """
    check_rank4(op, shapes, layout)
    if len(shapes) != len(expected):
        raise ValueError(
            f"{op} was built for {len(expected)} levels "
            f"(in_channels={list(expected)}); got {len(shapes)} maps. Pass one map "
            "per level, finest first."
        )
    c, (ha, wa) = layout.channel_axis, layout.spatial_axes
    got = [s[c] for s in shapes]
    if got != list(expected) and got[::-1] == list(expected):
        raise ValueError(
            f"{op} expects levels ordered from high to low resolution, with "
            f"in_channels={list(expected)}; got maps with {got} channels, i.e. the "
            "levels look reversed (coarsest first). Pass the finest map first."
        )
    for i, (s, e) in enumerate(zip(shapes, expected)):
        if not same_size(s[c], e):
            msg = (
                f"{op}: level {i} has shape {shape_str(s)}, i.e. {s[c]} channels on "
                f"axis {c} of {layout.name}, but in_channels[{i}] = {e}."
            )
            if s[3 if c == 1 else 1] == e:
                msg += _layout_hint(layout)
            raise ValueError(msg)
        if not same_size(s[0], shapes[0][0]):
            raise ValueError(
                f"{op} needs one batch size across levels; got {shapes[0][0]} at "
                f"level 0 {shape_str(shapes[0])} and {s[0]} at level {i} "
                f"{shape_str(s)}."
            )
    for i in range(1, len(shapes)):
        (h0, w0), (h, w) = ((s[ha], s[wa]) for s in (shapes[i - 1], shapes[i]))
        known = [(a, b) for a, b in ((h0, h), (w0, w)) if None not in (a, b)]
        if any(b > a for a, b in known):
            sizes = ", ".join(f"{s[ha]}x{s[wa]}" for s in shapes)
            raise ValueError(
                f"{op} expects levels ordered from high to low resolution; got sizes "
                f"{sizes}: level {i} ({h}x{w}) is larger than level {i - 1} "
                f"({h0}x{w0}). Pass the finest map first (reverse the list?)."
            )


def check_unet_skip(
    op: str, x_shape: tuple, skip_shape: tuple, layout: Layout, crop: bool
) -> None:
    """U-Net decoder step: the skip must be at least as large as the decoder map
    upsampled x2, since it is either cropped to it (crop=True) or the upsampled map is
    padded to it (crop=False). One batch size.
    """
    check_rank4(op, [x_shape, skip_shape], layout)
    if not same_size(x_shape[0], skip_shape[0]):
        raise ValueError(
            f"{op} needs one batch size; got x {shape_str(x_shape)} and skip "
            f"{shape_str(skip_shape)}."
        )
    h, w = (x_shape[a] for a in layout.spatial_axes)
    H, W = (skip_shape[a] for a in layout.spatial_axes)
    if None in (h, w, H, W) or (H >= 2 * h and W >= 2 * w):
        return
    how = (
        "crops the skip to that size (crop=True)"
        if crop
        else "pads the upsampled map to the skip's size (crop=False)"
    )
    raise ValueError(
        f"{op} upsamples x {shape_str(x_shape)} from {h}x{w} to {2 * h}x{2 * w} and "
        f"{how}, so the skip must be at least {2 * h}x{2 * w}; got skip "
        f"{shape_str(skip_shape)} ({H}x{W}, {layout.name}). Pass [x, skip] in that "
        "order, with the skip from the encoder level one step finer than x."
    )
