"""Framework-free input validation shared by the torch (NCHW) and Keras (NHWC) halves.

Every rule an operator enforces on its inputs lives here, so both halves raise the same
error, with the same text, for the same mistake: only the axes and the fixes are written
in each half's own layout and API (a `Half`, built by `fusion_lib.torch._base` and
`fusion_lib.tf._base`). Each message names the operator, what it received and what it
expected, and how to fix it.

Sections: 1. conventions and shape helpers; 2. inputs: tensors, lists, counts, dtypes;
3. feature maps; 4. vectors and token sequences; 5. attention; 6. constructor arguments;
7. preallocated outputs (out=).

The rules, decided once for every operator and function of both halves:

- What counts as a tensor. The torch half takes `torch.Tensor` only, as torch's own
  modules do: a NumPy array raises TypeError naming `torch.as_tensor(x,
  dtype=torch.float32)` (an implicit conversion would hide a float64 array and a copy).
  The Keras half takes what Keras layers take: backend tensors, symbolic KerasTensors,
  Variables and NumPy arrays. In neither half is a Python list of numbers a tensor (a
  list is the container of a fusion's inputs); None, numbers and strings are not either.
  Something that is not a tensor at all raises TypeError; a tensor of the wrong shape,
  size or dtype, and a wrong number of tensors, raise ValueError.
- Containers. A fusion takes a list or tuple of tensors. A single tensor, an empty list
  or the wrong count raises ValueError naming the count and the shapes received; an item
  that is not a tensor raises TypeError naming its position.
- Dtypes. Maps, vectors and tokens are floating point: an integer or bool tensor raises
  ValueError (center_crop, which only slices, takes any dtype; masks must be bool). A
  torch module with weights casts its inputs to its weights' dtype (float64 inputs to a
  float32 module give float32; `module.double()` computes in float64); torch operators
  without weights follow torch's type promotion (a float32/float64 mix gives float64,
  as `torch.cat` and `+` do). A Keras layer computes in its dtype policy: Keras itself
  casts floating inputs to the layer's compute dtype (float32 by default); the Keras
  functions promote as `keras.ops` do.
- Sizes. A batch of 0 gives an empty result of the right shape. Zero channels, height,
  width, features or tokens raise ValueError (a mean over nothing is NaN, a softmax over
  no keys is undefined). A size of None (unknown in a symbolic Keras tensor) agrees
  with any size; an operator that needs a spatial size to compute with raises ValueError
  when the model is built, naming the fix.
- Speed. The common valid call of an element-wise, concatenating or pooling operator is
  accepted by a fast predicate (`_fast_maps`, `_fast_map`, `_fast_pair`) that reads
  each tensor's shape and dtype once, builds no message and never raises; any other
  call goes through the full checks below, which hold the rules and build a message
  only when they fail. tests/test_bad_inputs.py checks that whatever a fast predicate
  accepts, the full checks accept too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# --- 1. conventions and shape helpers -------------------------------------------------


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


@dataclass(frozen=True)
class Half:
    """What one half calls a tensor, and how its fixes are spelled.

    `is_tensor` decides (slowly, completely); the fast predicates trust an object
    whose dtype is one of `float_dtypes` to be a tensor of this half (empty: always
    the full checks).
    """

    name: str  # "torch" or "Keras"
    layout: Layout
    is_tensor: Callable[[object], bool]
    dtype_name: Callable[[object], str]  # of a tensor: "float32", "int64", "bool"
    float_dtypes: frozenset = frozenset()
    tensor_kind: str = "a tensor"  # what the half takes, for messages
    numpy_fix: str = ""  # how to turn a NumPy array into a tensor ("" = accepted)
    list_fix: str = ""  # how to turn a nested Python list into a tensor
    float_fix: str = ""  # how to cast an integer tensor to float32
    bool_fix: str = ""  # how to turn a 0/1 tensor into a boolean mask


_ANY = Half("any", NCHW, lambda x: hasattr(x, "shape"), lambda x: str(x.dtype))


def shape_str(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def shapes_str(shapes) -> str:
    return ", ".join(shape_str(s) for s in shapes) if shapes else "no tensors"


def same_size(a, b) -> bool:
    """Sizes agree; None (an unknown size, e.g. a symbolic Keras batch axis) agrees
    with any.
    """
    return a is None or b is None or a == b


def same_shape(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(same_size(x, y) for x, y in zip(a, b))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


# --- 2. inputs: tensors, lists, counts, dtypes ----------------------------------------


def describe(x) -> str:
    """A short description of a value that is not what was expected."""
    if x is None:
        return "None"
    if isinstance(x, (list, tuple)):
        kind = type(x).__name__
        return f"a Python {kind} of {_plural(len(x), 'item')}"
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        module = type(x).__module__.split(".")[0]
        name = "NumPy array" if module == "numpy" else f"{module}.{type(x).__name__}"
        return f"a {name} of shape {shape_str(tuple(x.shape))} and dtype {x.dtype}"
    text = repr(x)
    text = text if len(text) <= 40 else text[:37] + "..."
    return f"a {type(x).__name__} ({text})"


def _not_a_tensor(op: str, what: str, x, half: Half) -> TypeError:
    fix = ""
    if isinstance(x, (list, tuple)) and half.list_fix:
        fix = f" To pass numbers, make them a tensor first: {half.list_fix}."
    elif type(x).__module__.split(".")[0] == "numpy" and half.numpy_fix:
        fix = f" This half takes no NumPy arrays: convert with {half.numpy_fix}."
    elif x is None:
        fix = " Pass a tensor here (did an earlier step return None?)."
    return TypeError(
        f"{op} takes {half.tensor_kind} for {what}; got {describe(x)}.{fix}"
    )


def check_tensor(op: str, name: str, x, half: Half) -> tuple:
    """One tensor argument: TypeError if x is not a tensor of this half. Returns its
    shape as a tuple.
    """
    if not half.is_tensor(x):
        raise _not_a_tensor(op, name, x, half)
    return tuple(x.shape)


def as_tensor_list(
    op: str,
    xs,
    half: Half | None = None,
    *,
    count: int | None = None,
    min_count: int = 2,
    form: str = "[x1, x2]",
) -> list:
    """A fusion's inputs: a list or tuple of tensors, `count` of them exactly (or at
    least `min_count`). `form` is how the call reads, for messages. Without a `half`,
    anything with a shape counts as a tensor.
    """
    half = half or _ANY
    if not isinstance(xs, (list, tuple)):
        if half.is_tensor(xs):
            raise ValueError(
                f"{op} takes a list of tensors, e.g. fuse({form}); got a single "
                f"tensor of shape {shape_str(tuple(xs.shape))}."
            )
        raise TypeError(
            f"{op} takes a list of tensors, e.g. fuse({form}); got {describe(xs)}."
        )
    xs = list(xs)
    for i, x in enumerate(xs):
        if not half.is_tensor(x):
            raise _not_a_tensor(op, f"input {i} of {form}", x, half)
    shapes = [tuple(x.shape) for x in xs]
    if count is not None and len(xs) != count:
        raise ValueError(
            f"{op} takes {form} ({_plural(count, 'tensor')}); got {len(xs)}: "
            f"{shapes_str(shapes)}."
        )
    if len(xs) < min_count:
        raise ValueError(
            f"{op} needs at least {_plural(min_count, 'tensor')} to fuse; got "
            f"{len(xs)}: {shapes_str(shapes)}."
        )
    return xs


def check_float(op: str, named: dict, half: Half) -> None:
    """Every tensor in `named` ({what: tensor}) is floating point."""
    for what, x in named.items():
        dtype = half.dtype_name(x)
        if not dtype.startswith(("float", "bfloat")):
            raise ValueError(
                f"{op} computes on floating-point tensors; {what} has dtype {dtype} "
                f"(shape {shape_str(tuple(x.shape))}). Convert it with "
                f"{half.float_fix}."
            )


def _inputs(xs) -> dict:
    return {f"input {i}": x for i, x in enumerate(xs)}


def _fast_maps(xs, half: Half, same: bool) -> bool:
    """The common valid call of a fusion, checked in well under a microsecond: a list
    or tuple of at least two 4-D maps with no empty axis, all of one dtype that the
    half lists in `float_dtypes` (only its own tensors carry those dtypes), with one
    shape (same=True) or one shape but for the channel axis (same=False). Never
    raises; False sends the call through the full checks.
    """
    if type(xs) is not list and type(xs) is not tuple:
        return False
    try:
        x0 = xs[0]
        s0, dtype = x0.shape, x0.dtype
        if dtype not in half.float_dtypes or len(s0) != 4 or 0 in s0 or len(xs) < 2:
            return False
        # xs[1] before any loop: two inputs are the common case, and a loop over a
        # slice costs as much as the check itself
        if same:
            x = xs[1]
            if x.dtype is not dtype or x.shape != s0:
                return False
            return len(xs) == 2 or all(
                x.dtype is dtype and x.shape == s0 for x in xs[2:]
            )
        h, w = half.layout.spatial_axes
        c = half.layout.channel_axis
        x = xs[1]
        s = x.shape
        if (
            x.dtype is not dtype
            or len(s) != 4
            or s[0] != s0[0]
            or s[h] != s0[h]
            or s[w] != s0[w]
            or not s[c]
        ):
            return False
        return len(xs) == 2 or all(
            _matches_but_channels(x, s0, dtype, half.layout) for x in xs[2:]
        )
    except (AttributeError, IndexError, TypeError):
        return False


def _matches_but_channels(x, s0, dtype, layout: Layout) -> bool:
    s = x.shape
    h, w = layout.spatial_axes
    return (
        x.dtype is dtype
        and len(s) == 4
        and s[0] == s0[0]
        and s[h] == s0[h]
        and s[w] == s0[w]
        and s[layout.channel_axis] > 0
    )


def _fast_map(x, half: Half):
    """One 4-D map with no empty axis, of a dtype the half lists in `float_dtypes`:
    returns its shape, or None to send the call through the full checks.
    """
    try:
        s = x.shape
        if x.dtype in half.float_dtypes and len(s) == 4 and 0 not in s:
            return s
    except (AttributeError, TypeError):
        pass
    return None


# --- 3. feature maps --------------------------------------------------------------


def check_rank4(op: str, shapes: list[tuple], layout: Layout) -> None:
    """4-D maps, every axis but the batch at least 1 (None: unknown, accepted)."""
    for i, s in enumerate(shapes):
        which = f"input {i} has" if len(shapes) > 1 else "got a tensor of"
        if len(s) != 4:
            hint = (
                f" Add the batch axis with {layout.add_batch_axis}."
                if len(s) == 3
                else ""
            )
            raise ValueError(
                f"{op} expects 4-D {layout.name} tensors; {which} shape {shape_str(s)} "
                f"(rank {len(s)}).{hint}"
            )
        if 0 in s[1:]:
            h, w = layout.spatial_axes
            names = {layout.channel_axis: "channels", h: "height", w: "width"}
            empty = [names[a] for a in sorted(names) if s[a] == 0]
            raise ValueError(
                f"{op} expects maps with at least one channel and one pixel; {which} "
                f"shape {shape_str(s)} ({layout.name}), with 0 {' and '.join(empty)}."
                " Only the batch axis may be empty."
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


def _float_maps(op: str, xs, half: Half, **count) -> list[tuple]:
    """The list, the tensors, their dtypes and ranks; returns the shapes."""
    xs = as_tensor_list(op, xs, half, **count)
    check_float(op, _inputs(xs), half)
    shapes = [tuple(x.shape) for x in xs]
    check_rank4(op, shapes, half.layout)
    return shapes


def check_maps_match(
    op: str,
    xs,
    half: Half,
    channels: list[int] | None = None,
    names: list[str] | None = None,
    **count,
) -> None:
    """Maps to concatenate (or to add after 1x1 projections): equal batch and spatial
    sizes, and, when `channels` is given, channels[i] channels on input i (`names[i]`
    is the constructor argument that fixes it; default in_channels[i]).
    """
    if channels is None and _fast_maps(xs, half, same=False):
        return
    # with channels, the count is checked against in_channels, which names it
    count.setdefault("min_count", 0 if channels is not None else 2)
    shapes = _float_maps(op, xs, half, **count)
    if channels is not None:
        _check_channels(op, shapes, channels, names, half.layout)
    _check_all_but_channels(op, shapes, half.layout)


def _check_all_but_channels(op: str, shapes: list[tuple], layout: Layout) -> None:
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


def check_maps_same(op: str, xs, half: Half, project: str | None = None) -> None:
    """Element-wise merges need identical shapes. `project` is how this operator
    projects branches of different widths, when it can (e.g. AddFusion's in_channels).
    """
    if _fast_maps(xs, half, same=True):
        return
    shapes = _float_maps(op, xs, half)
    layout = half.layout
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
            fix = (
                project.format(chans=chans, out=max(chans))
                if project
                else f"project with a 1x1 conv first, every branch to {max(chans)} "
                f"channels, then call {op}"
            )
            raise ValueError(msg + f" Channel counts {chans} differ: {fix}.")
        if not same_size(s[0], first[0]):
            raise ValueError(msg + " Batch sizes differ.")
        raise ValueError(
            msg + " Spatial sizes differ: resize the coarser map to the finer one's "
            "exact size (resize_to(coarse, fine)) or crop the larger one "
            "(center_crop) first."
        )


def _check_channels(
    op: str,
    shapes: list[tuple],
    expected: list[int],
    names: list[str] | None,
    layout: Layout,
) -> None:
    """Each input i must carry expected[i] channels on the layout's channel axis."""
    if len(shapes) != len(expected):
        raise ValueError(
            f"{op} was built for {len(expected)} inputs "
            f"(in_channels={list(expected)}); got {len(shapes)}: "
            f"{shapes_str(shapes)}."
        )
    names = names or [f"in_channels[{i}]" for i in range(len(expected))]
    c = layout.channel_axis
    other_c = 3 if c == 1 else 1
    for i, (s, e) in enumerate(zip(shapes, expected)):
        if not same_size(s[c], e):
            msg = (
                f"{op}: input {i} has shape {shape_str(s)}, i.e. {s[c]} channels on "
                f"axis {c} of {layout.name}, but {names[i]} = {e}."
            )
            if s[other_c] == e:
                msg += _layout_hint(layout)
            raise ValueError(msg)


def check_input_map(
    op: str,
    x,
    half: Half,
    channels: int | None = None,
    arg: str = "channels",
) -> tuple:
    """One feature map: a floating 4-D tensor, and `channels` channels on the layout's
    channel axis when given. `arg` names the constructor argument the fix should
    change. Returns the shape.
    """
    fast = _fast_map(x, half)
    if fast is not None and (
        channels is None or fast[half.layout.channel_axis] == channels
    ):
        return tuple(fast)
    shape = check_tensor(op, "x", x, half)
    check_float(op, {"x": x}, half)
    check_map(op, shape, half.layout, channels, arg)
    return shape


def check_map(
    op: str,
    shape: tuple,
    layout: Layout,
    channels: int | None = None,
    arg: str = "channels",
) -> None:
    """The shape half of check_input_map (also for callers that hold a shape)."""
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


def target_size(op: str, like, half: Half) -> tuple:
    """The (h, w) that center_crop and resize_to aim at: `like`'s spatial size when it
    is a map, else a pair of positive integers. Returns (h, w); in a symbolic Keras
    graph an unknown size stays None.
    """
    if (
        type(like) is tuple
        and len(like) == 2
        and type(like[0]) is int
        and type(like[1]) is int
        and like[0] > 0
        and like[1] > 0
    ):
        return like  # the common call, a pair of positive ints
    if half.is_tensor(like):
        shape = tuple(like.shape)
        check_map(op, shape, half.layout)
        return tuple(shape[a] for a in half.layout.spatial_axes)
    if not isinstance(like, (list, tuple)) or any(
        isinstance(d, (list, tuple)) for d in like
    ):
        nested = isinstance(like, (list, tuple)) and bool(half.list_fix)
        fix = f" To pass a map, make it a tensor first: {half.list_fix}." * nested
        raise TypeError(
            f"{op} takes the target as a map (its spatial size is used) or an (h, w) "
            f"pair of positive integers; got {describe(like)}.{fix}"
        )
    sizes = tuple(like)
    ok = len(sizes) == 2 and all(
        hasattr(d, "__index__") and not isinstance(d, bool) and int(d) >= 1
        for d in sizes
    )
    if not ok:
        raise ValueError(
            f"{op} takes the target size as an (h, w) pair of positive integers; got "
            f"{like!r}."
        )
    return tuple(int(d) for d in sizes)


def center_crop_box(
    op: str, x_shape: tuple, target_hw: tuple, layout: Layout
) -> tuple[int, int, int, int]:
    """(top, left, h, w) of the centred window of size target_hw, as U-Net crops:
    offset (H - h) // 2.
    """
    H, W = (x_shape[a] for a in layout.spatial_axes)
    h, w = target_hw
    if None in (H, W, h, w):
        raise ValueError(
            f"{op} needs known spatial sizes to crop; got a map of shape "
            f"{shape_str(x_shape)} and the target {h}x{w}. In a Keras functional "
            "model give keras.Input a fixed size, e.g. keras.Input((64, 64, 3))."
        )
    if h > H or w > W:
        raise ValueError(
            f"{op} cannot crop a {H}x{W} map (shape {shape_str(x_shape)}, "
            f"{layout.name}) to {h}x{w}: the target is larger. Pad the smaller map "
            "instead (UNetSkipMerge(mode='pad'))."
        )
    return (H - h) // 2, (W - w) // 2, h, w


def pad_amounts(
    small_hw: tuple[int, int], big_hw: tuple[int, int]
) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) zero padding that centres a small map inside a big
    one (the callers check small <= big first).
    """
    (h, w), (H, W) = small_hw, big_hw
    return (H - h) // 2, (H - h) - (H - h) // 2, (W - w) // 2, (W - w) - (W - w) // 2


def _fast_pair(xs, half: Half):
    """Two 4-D maps of one dtype the half lists in `float_dtypes`, no empty axis:
    their shapes, or None to send the call through the full checks.
    """
    if (type(xs) is not list and type(xs) is not tuple) or len(xs) != 2:
        return None
    try:
        a, b = xs
        sa, sb, dtype = a.shape, b.shape, a.dtype
        ok = len(sa) == 4 and len(sb) == 4 and 0 not in sa and 0 not in sb
        if ok and dtype in half.float_dtypes and b.dtype is dtype:
            return sa, sb
    except (AttributeError, TypeError):
        pass
    return None


def check_unet_skip(
    op: str,
    xs,
    half: Half,
    setting: str,
    scale: int,
    channels: list[int] | None = None,
    names: list[str] | None = None,
    form: str = "[x, skip]",
) -> None:
    """A U-Net merge of [x, skip]: one batch size, and the skip at least as large as x
    upsampled by `scale` (1 for UNetSkipMerge, 2 for UNetUp), since either the skip is
    cropped to that size or x is padded to the skip's size. `setting` is the operator's
    crop-or-pad argument as written (e.g. "crop=True"); its text must start with
    "crop" or "mode='crop'" when it crops. Both need known spatial sizes.
    """
    layout = half.layout
    h_axis, w_axis = layout.spatial_axes
    fast = _fast_pair(xs, half)
    if fast is not None and channels is None and None not in (*fast[0], *fast[1]):
        (sx, ss) = fast
        if (
            sx[0] == ss[0]
            and ss[h_axis] >= scale * sx[h_axis]
            and ss[w_axis] >= scale * sx[w_axis]
        ):
            return
    shapes = _float_maps(op, xs, half, count=2, form=form)
    if channels is not None:
        _check_channels(op, shapes, channels, names, layout)
    (x_shape, skip_shape), x_name = shapes, form[1:].split(",")[0]
    if not same_size(x_shape[0], skip_shape[0]):
        raise ValueError(
            f"{op} needs one batch size; got {x_name} {shape_str(x_shape)} and skip "
            f"{shape_str(skip_shape)} ({x_shape[0]} vs {skip_shape[0]})."
        )
    h, w = x_shape[h_axis], x_shape[w_axis]
    H, W = skip_shape[h_axis], skip_shape[w_axis]
    if None in (h, w, H, W):
        raise ValueError(
            f"{op} needs known spatial sizes to crop or pad; got {x_name} "
            f"{shape_str(x_shape)} and skip {shape_str(skip_shape)}. In a Keras "
            "functional model give keras.Input a fixed size, e.g. "
            "keras.Input((64, 64, 3))."
        )
    if H >= scale * h and W >= scale * w:
        return
    crops = setting in ("crop=True", "mode='crop'")
    target = "upsampled map" if scale > 1 else x_name
    how = (
        f"crops the skip to that size ({setting})"
        if crops
        else f"pads the {target} to the skip's size ({setting})"
    )
    grown = (
        f"upsamples {x_name} {shape_str(x_shape)} from {h}x{w} to "
        f"{scale * h}x{scale * w} and "
        if scale > 1
        else f"takes {x_name} {shape_str(x_shape)} ({h}x{w}) and "
    )
    raise ValueError(
        f"{op} {grown}{how}, so the skip must be at least {scale * h}x{scale * w}; "
        f"got skip {shape_str(skip_shape)} ({H}x{W}, {layout.name}). Pass {form} in "
        "that order, with the skip from the encoder level "
        + ("one step finer than x." if scale > 1 else "of the same or a finer size.")
    )


def check_pyramid(op: str, xs, half: Half, expected: list[int]) -> None:
    """Feature-pyramid levels: one per in_channels entry, each with its width, one
    batch size, ordered from high to low resolution (sizes never grow).
    """
    shapes = _float_maps(op, xs, half, min_count=1, form="[x_finest, ..., x_coarsest]")
    layout = half.layout
    c, (ha, wa) = layout.channel_axis, layout.spatial_axes
    if len(shapes) != len(expected):
        raise ValueError(
            f"{op} was built for {len(expected)} levels "
            f"(in_channels={list(expected)}); got {len(shapes)} maps: "
            f"{shapes_str(shapes)}. Pass one map per level, finest first."
        )
    if len(shapes) > 1 and any(s[a] is None for s in shapes for a in (ha, wa)):
        raise ValueError(
            f"{op} upsamples each level to the next finer level's exact size, so it "
            f"needs known spatial sizes; got {shapes_str(shapes)}. In a Keras "
            "functional model give keras.Input a fixed size, e.g. "
            "keras.Input((64, 64, 3))."
        )
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


# --- 4. vectors and token sequences -----------------------------------------------
# Both halves put features on the last axis of a vector or a sequence, so unlike a map
# there is no layout to tell apart: torch and Keras raise the same text.


def check_features(
    op: str, name: str, shape: tuple, features: int, arg: str | None = None
) -> None:
    """A batch of feature vectors: shape (N, features). `arg` names the constructor
    argument the fix should change.
    """
    if len(shape) != 2:
        hint = " Add the batch axis (x[None])." if len(shape) == 1 else ""
        if len(shape) == 4:
            hint = " Pool a feature map to a vector first (GlobalPool)."
        raise ValueError(
            f"{op} expects {name} of shape (N, {features}); got shape "
            f"{shape_str(shape)} (rank {len(shape)}).{hint}"
        )
    if not same_size(shape[1], features):
        build = f"with {arg}={shape[1]}" if arg else f"for {shape[1]} features"
        raise ValueError(
            f"{op} expects {name} of shape (N, {features}); got shape "
            f"{shape_str(shape)}, i.e. {shape[1]} features. Build it {build}, or "
            f"project {name} to {features} first."
        )


def check_vectors(op: str, xs, half: Half, in_features: tuple[int, int]) -> None:
    """The two modalities [x_1, x_2] of a vector fusion, (N, in_features[i]) each."""
    xs = as_tensor_list(op, xs, half, min_count=0, form="[x_1, x_2]")
    if len(xs) != 2:
        raise ValueError(
            f"{op} fuses exactly two modalities, [x_1, x_2]; got {len(xs)} tensors: "
            f"{shapes_str([tuple(x.shape) for x in xs])}."
        )
    check_float(op, {"x_1": xs[0], "x_2": xs[1]}, half)
    shapes = {f"x_{i + 1}": tuple(x.shape) for i, x in enumerate(xs)}
    for i, ((name, shape), d) in enumerate(zip(shapes.items(), in_features)):
        check_features(op, name, shape, d, f"in_features[{i}]")
    check_same_batch(op, shapes)


def check_map_or_features(op: str, shape: tuple, layout: Layout, channels: int) -> None:
    """A feature map in the half's layout, or a batch of (N, channels) vectors."""
    if len(shape) == 4:
        check_map(op, shape, layout, channels)
    elif len(shape) == 2:
        check_features(op, "x", shape, channels, "channels")
    else:
        dims = "(N, C, H, W)" if layout.name == "NCHW" else "(N, H, W, C)"
        raise ValueError(
            f"{op} expects x of shape {dims} or (N, C), with C = {channels}; got shape "
            f"{shape_str(shape)} (rank {len(shape)}). Add the batch axis if it is "
            "missing."
        )


def check_tokens(op: str, name: str, shape: tuple, dim: int, dim_name: str) -> None:
    """A batch of token sequences: shape (N, L, dim), L >= 1."""
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
    if shape[1] == 0:
        raise ValueError(
            f"{op} expects at least one token in {name}; got shape {shape_str(shape)} "
            "(L = 0). Only the batch axis may be empty."
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


def check_tensors(op: str, named: dict, half: Half) -> dict[str, tuple]:
    """Several named tensor arguments, all floating point; returns their shapes."""
    shapes = {name: check_tensor(op, name, x, half) for name, x in named.items()}
    check_float(op, named, half)
    return shapes


# --- 5. attention -----------------------------------------------------------------


def check_bool_mask(op: str, mask, half: Half) -> tuple:
    """A mask is a boolean tensor (True = attend); returns its shape."""
    shape = check_tensor(op, "mask", mask, half)
    dtype = half.dtype_name(mask)
    if dtype != "bool":
        raise ValueError(
            f"{op} takes a boolean mask (True = attend); got dtype {dtype}. "
            f"Convert with {half.bool_fix} when 1 means attend; for an additive "
            "float mask, add it to the scores yourself."
        )
    return shape


def check_mask(op: str, mask, half: Half, n, lq, lk) -> None:
    """A boolean attention mask, True = attend, of shape (N, Lk) (which keys exist,
    the same for every query) or (N, Lq, Lk) (one row of keys per query).
    """
    if mask is None:
        return
    shape = check_bool_mask(op, mask, half)
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


def check_attention(op: str, half: Half, named: dict, mask=None) -> None:
    """scaled_dot_product_attention, named = {"q": q, "k": k, "v": v} (and
    attention_weights, without v): q (..., Lq, d), k (..., Lk, d), v (..., Lk, dv),
    equal leading axes, every size but the leading ones at least 1; a boolean mask
    broadcastable to (..., Lq, Lk).
    """
    shapes = check_tensors(op, named, half)
    form = "q (..., Lq, d), k (..., Lk, d)" + (", v (..., Lk, dv)" * ("v" in named))
    for name, s in shapes.items():
        if len(s) < 2:
            raise ValueError(
                f"{op} expects {form}; {name} has shape {shape_str(s)} (rank {len(s)})."
            )
        if 0 in s[-2:]:
            raise ValueError(
                f"{op} expects at least one token and one feature in {name}; got "
                f"shape {shape_str(s)}. Only the leading (batch, head) axes may be "
                "empty."
            )
    q, k = shapes["q"], shapes["k"]
    v = shapes.get("v", k)
    listed = ", ".join(f"{name} {shape_str(s)}" for name, s in shapes.items())
    if not (len(q) == len(k) == len(v)) or not all(
        same_size(a, b) and same_size(a, c) for a, b, c in zip(q[:-2], k[:-2], v[:-2])
    ):
        raise ValueError(
            f"{op} needs the same leading axes (batch, heads) on {', '.join(shapes)}; "
            f"got {listed}."
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
    mask_shape = check_bool_mask(op, mask, half)
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


def check_port_mask(op: str, mask, half: Half) -> None:
    """A mask handed to a port helper: None, or a boolean (N, Lk) or (N, Lq, Lk)."""
    if mask is None:
        return
    shape = check_bool_mask(op, mask, half)
    if len(shape) not in (2, 3):
        raise ValueError(
            f"{op} takes a mask of shape (N, Lk) or (N, Lq, Lk), True = attend; got "
            f"shape {shape_str(shape)} (rank {len(shape)})."
        )


def check_attention_module(op: str, attn, classes: tuple) -> None:
    """The port helpers take one of fusion_lib's attention modules."""
    if not isinstance(attn, classes):
        names = " or ".join(c.__name__ for c in classes)
        raise TypeError(f"{op} takes a {names}; got {describe(attn)}.")


# --- 6. constructor arguments -----------------------------------------------------


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


def check_stride(op: str, stride) -> int:
    if isinstance(stride, bool) or int(stride) != stride or stride < 1:
        raise ValueError(f"{op}: stride must be a positive integer; got {stride!r}.")
    return int(stride)


# The batch orders `train_classifier` takes in both halves (None: the framework's own).
BATCH_ORDERS = ("reshuffled", "replayed")


def check_batch_order(order) -> None:
    if order is not None and order not in BATCH_ORDERS:
        raise ValueError(
            f"train_classifier: order must be None (the framework's own) or one of "
            f"{BATCH_ORDERS}; got {order!r}."
        )


# --- 7. preallocated outputs ------------------------------------------------------


def check_out(
    op: str,
    out,
    inputs: list,
    shape: tuple,
    dtype: str,
    half: Half,
    is_out: Callable[[object], bool],
    out_kind: str,
    devices: tuple[str, str] | None = None,
    may_alias_first: bool = True,
) -> None:
    """The `out=` buffer of an element-wise or concatenating fusion: `out_kind` (what
    `is_out` accepts), of exactly the result's `shape` and `dtype` (and, when
    `devices` = (expected, received) is given, on the inputs' device), and not one of
    the inputs it would overwrite before reading (the first input may be the buffer
    of an element-wise op, `may_alias_first`: that is the in-place form).
    """
    if not is_out(out):
        raise TypeError(
            f"{op} takes {out_kind} for out=; got {describe(out)}. Pass out=None for "
            "a fresh result."
        )
    got_shape, got_dtype = tuple(out.shape), half.dtype_name(out)
    make = f"allocate it once with the result's shape {shape_str(shape)} and {dtype}"
    if got_shape != tuple(shape):
        raise ValueError(
            f"{op}: out= must have the result's shape {shape_str(shape)}; got "
            f"{shape_str(got_shape)}: {make}."
        )
    if got_dtype != dtype:
        raise ValueError(
            f"{op}: out= must have the result's dtype {dtype}; got {got_dtype} "
            f"(shape {shape_str(got_shape)}): {make}."
        )
    if devices is not None and devices[0] != devices[1]:
        raise ValueError(
            f"{op}: out= must be on the inputs' device {devices[0]}; got one on "
            f"{devices[1]}: allocate it there."
        )
    for i, x in enumerate(inputs):
        if x is out and (i > 0 or not may_alias_first):
            raise ValueError(
                f"{op}: out= is input {i}, which the op would overwrite before reading "
                f"it; "
                + (
                    "pass a separate buffer."
                    if not may_alias_first
                    else "pass a separate buffer, or put that input first (in place)."
                )
            )


def check_out_no_grad(op: str, requires_grad: bool) -> None:
    """out= writes into an existing buffer, which autograd cannot record."""
    if requires_grad:
        raise ValueError(
            f"{op}: out= writes into a preallocated buffer, which autograd cannot "
            "differentiate through, and an input (or out itself) requires grad. For "
            "training drop out= (a fresh result); for inference call it under "
            "torch.no_grad()."
        )
