"""Automatic checks for the chapters' exercises.

Each `check_*` function calls the reader's function on several inputs and compares with a
reference. It prints "Correct: ..." when every case passes and raises AssertionError with a
message that says which case failed and why (a grader only needs to run the cell); when the
reader's function still raises NotImplementedError it prints what to do instead, so an untouched
exercise cell never shows an error. The checks return None, so a cell shows only their message.
Framework-free: everything is NumPy.
"""

from __future__ import annotations

import numpy as np


def _attempt(fn, *args):
    """Call fn; None means 'not attempted yet'."""
    try:
        return fn(*args), True
    except NotImplementedError:
        print(f"Not attempted yet: replace the `raise NotImplementedError` in `{fn.__name__}` and run this cell again.")
        return None, False


def _done(message: str) -> None:
    print(f"Correct: {message}")


def check_to_channels_last(fn) -> None:
    """Exercise (introduction): fn(x) turns an NCHW array into NHWC, keeping every value in place."""
    rng = np.random.default_rng(0)
    for shape in [(1, 3, 2, 2), (2, 5, 4, 3), (3, 1, 7, 1)]:
        x = rng.normal(size=shape)
        got, attempted = _attempt(fn, x)
        if not attempted:
            return None
        got = np.asarray(got)
        want = x.transpose(0, 2, 3, 1)
        assert got.shape == want.shape, (
            f"for an NCHW input of shape {shape} expected NHWC shape {want.shape}, got {got.shape}. "
            "NHWC keeps N first and moves C to the end: axes (0, 2, 3, 1)."
        )
        assert np.array_equal(got, want), (
            f"the shape {got.shape} is right but values moved: a reshape is not a transpose. "
            "Use x.transpose(0, 2, 3, 1)."
        )
    _done("NCHW -> NHWC is x.transpose(0, 2, 3, 1); a reshape would scramble the pixels.")


def check_concat_shape(fn) -> None:
    """Exercise (concatenation): fn(shapes, axis) returns the output shape of a concatenation,
    or raises ValueError when the shapes cannot be concatenated on that axis."""
    ok_cases = [
        ([(2, 3, 4, 4), (2, 5, 4, 4)], 1, (2, 8, 4, 4)),
        ([(2, 4, 4, 3), (2, 4, 4, 5), (2, 4, 4, 1)], -1, (2, 4, 4, 9)),
        ([(1, 2), (3, 2)], 0, (4, 2)),
        ([(2, 2, 2), (2, 2, 2)], 2, (2, 2, 4)),
    ]
    for shapes, axis, want in ok_cases:
        got, attempted = _attempt(fn, shapes, axis)
        if not attempted:
            return None
        assert tuple(got) == want, (
            f"concatenating {shapes} on axis {axis} gives {want}, you returned {tuple(got)}. "
            "Sizes add on the concatenation axis and must agree on every other axis."
        )
    bad_cases = [([(2, 3, 4, 4), (2, 5, 5, 4)], 1), ([(2, 3), (2, 3, 1)], 0), ([(1, 2), (3, 2)], 1)]
    for shapes, axis in bad_cases:
        try:
            got = fn(shapes, axis)
        except ValueError:
            continue
        raise AssertionError(
            f"concatenating {shapes} on axis {axis} is impossible (another axis differs, or the ranks do), "
            f"but your function returned {got} instead of raising ValueError."
        )
    _done("sizes add along the axis; every other axis, and the rank, must agree.")


def _conv2d_same(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Cross-correlation with 'same' zero padding. x: (C, H, W), w: (O, C, k, k) -> (O, H, W)."""
    k = w.shape[-1]
    p = k // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p)))
    H, W = x.shape[1:]
    out = np.zeros((w.shape[0], H, W))
    for i in range(k):
        for j in range(k):
            out += np.einsum("oc,chw->ohw", w[:, :, i, j], xp[:, i : i + H, j : j + W])
    return out


def check_tied_concat_kernel(fn) -> None:
    """Exercise (addition): fn(w_add) returns a kernel w_cat for the concatenated input such that
    conv(cat[x1, x2], w_cat) == conv(x1 + x2, w_add). w_add: (O, C, k, k) -> w_cat: (O, 2C, k, k)."""
    rng = np.random.default_rng(1)
    for O, C, k, H in [(2, 3, 3, 5), (4, 1, 1, 4), (1, 2, 5, 7)]:
        w_add = rng.normal(size=(O, C, k, k))
        got, attempted = _attempt(fn, w_add)
        if not attempted:
            return None
        w_cat = np.asarray(got)
        assert w_cat.shape == (O, 2 * C, k, k), (
            f"w_add of shape {w_add.shape} needs w_cat of shape {(O, 2 * C, k, k)} (twice the input channels); "
            f"got {w_cat.shape}."
        )
        x1, x2 = rng.normal(size=(C, H, H)), rng.normal(size=(C, H, H))
        want = _conv2d_same(x1 + x2, w_add)
        have = _conv2d_same(np.concatenate([x1, x2]), w_cat)
        err = np.abs(have - want).max()
        assert err < 1e-9, (
            f"conv(cat[x1, x2], w_cat) differs from conv(x1 + x2, w_add) by up to {err:.3g}. "
            "Channel c of x1 and channel c of x2 must meet the same kernel slice."
        )
    _done("w_cat = [w_add, w_add] along the input-channel axis: add is concat with tied kernels.")


class _NoConcat(np.ndarray):
    """An array that refuses to be concatenated: the split-weight exercise must not build [x1; x2]."""

    _joins = ("concatenate", "stack", "hstack", "vstack", "dstack", "column_stack", "block", "append")

    def __array_function__(self, func, types, args, kwargs):
        if func.__name__ in self._joins:
            raise AssertionError(
                f"np.{func.__name__} was called: the split form must never build the concatenated input. "
                "Multiply each input by its own block of columns of W and add the products."
            )
        args = tuple(np.asarray(a) if isinstance(a, _NoConcat) else a for a in args)
        return func(*args, **kwargs)


def check_split_reduce(fn) -> None:
    """Exercise (concatenation followed by reduction): fn(w, xs) returns W [x_1; ...; x_k] per pixel
    without concatenating. w: (O, sum_i C_i); xs: list of (C_i, H, W) arrays -> (O, H, W)."""
    rng = np.random.default_rng(2)
    for chans, O, H, W in [((3, 5), 4, 2, 3), ((1, 1, 2), 3, 4, 4), ((6,), 2, 1, 5)]:
        w = rng.normal(size=(O, sum(chans)))
        xs = [rng.normal(size=(c, H, W)) for c in chans]
        want = np.einsum("oc,chw->ohw", w, np.concatenate(xs))
        got, attempted = _attempt(fn, w, [x.view(_NoConcat) for x in xs])
        if not attempted:
            return None
        got = np.asarray(got)
        assert got.shape == want.shape, f"for inputs with {chans} channels and O={O}, expected shape {want.shape}, got {got.shape}."
        err = np.abs(got - want).max()
        assert err < 1e-9, (
            f"inputs with {chans} channels: your result differs from W [x_1; ...] by up to {err:.3g}. "
            "Input i meets the columns of W from sum(C_1..C_{i-1}) to sum(C_1..C_i)."
        )
    _done("W [x_1; x_2] = W_1 x_1 + W_2 x_2, with W_i the columns of W that meet input i.")


def check_head_params(fn) -> None:
    """Exercise (global pooling): fn(C, H, W, K) returns (flatten_head_params, gap_head_params),
    each head ending in one linear layer with bias to K classes."""
    for C, H, W, K in [(512, 7, 7, 1000), (2048, 7, 7, 1000), (32, 8, 8, 10), (3, 1, 5, 2)]:
        got, attempted = _attempt(fn, C, H, W, K)
        if not attempted:
            return None
        want = (C * H * W * K + K, C * K + K)
        assert tuple(got) == want, (
            f"for a {C}x{H}x{W} map and {K} classes expected (flatten, gap) = {want}, got {tuple(got)}. "
            "The flatten head's linear layer reads C*H*W numbers, the GAP head's reads C; both add K biases."
        )
    _done("flatten: C*H*W*K + K, GAP: C*K + K; the ratio approaches H*W.")


def check_se_params(fn) -> None:
    """Exercise (gating): fn(C, r) returns the parameter count of a Squeeze-and-Excitation block
    (two 1x1 convs with bias, C -> C // r -> C)."""
    for C, r in [(64, 16), (256, 16), (2048, 16), (48, 4), (10, 3)]:
        got, attempted = _attempt(fn, C, r)
        if not attempted:
            return None
        hidden = C // r
        want = 2 * C * hidden + hidden + C
        assert got == want, (
            f"for C={C}, r={r} expected {want}, got {got}. W1 has C * (C // r) weights and C // r biases, "
            "W2 has (C // r) * C weights and C biases."
        )
    _done("2 C (C // r) + C // r + C, i.e. 2C^2/r plus the biases.")


def check_channel_pool(fn) -> None:
    """Exercise (attention): fn(x) turns an NCHW array into CBAM's (N, 2, H, W) map [max, mean] over channels."""
    rng = np.random.default_rng(3)
    for shape in [(1, 4, 3, 3), (2, 7, 5, 2), (1, 1, 2, 2)]:
        x = rng.normal(size=shape)
        got, attempted = _attempt(fn, x)
        if not attempted:
            return None
        got = np.asarray(got)
        want = np.stack([x.max(1), x.mean(1)], axis=1)
        assert got.shape == want.shape, f"for x of shape {shape} expected {want.shape}, got {got.shape}: keep N, H, W and make 2 channels."
        if shape[1] > 1 and np.allclose(got, want[:, ::-1]):
            raise AssertionError("you stacked [mean, max] (timm's order); the original CBAM stacks [max, mean].")
        assert np.allclose(got, want), "channel 0 must be the max over channels, channel 1 the mean, at every pixel."
    _done("[max over C, mean over C], stacked on the channel axis: (N, 2, H, W).")
