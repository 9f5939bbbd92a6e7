"""Automatic checks for the chapters' exercises, fit for grading.

Each `check_*` function calls the reader's function on several inputs and compares the
answer with a reference, through one shared loop (`_grade`):

- every case right: prints "Correct: ..." and returns None;
- the function still raises NotImplementedError: prints what to do, returns None, so an
  untouched exercise cell shows no error (and earns no points under a grader);
- anything wrong (a wrong value, a wrong type such as None or a string, an exception
  from the reader's code): raises `WrongAnswer` with a diagnosis of the mistake. The
  first wrong try of a check says what is wrong; later tries add a hint to fix it.
  `WrongAnswer` is raised explicitly, never by `assert`, so `python -O` grades the same.

Framework-free: everything is NumPy.
"""

from __future__ import annotations

import ctypes
import sys
import textwrap
import tracemalloc

import numpy as np

WIDTH = 88  # the book's line width, for every printed message


class WrongAnswer(AssertionError):
    """A check found a wrong answer; the message says what is wrong."""


_tries: dict[str, int] = {}


def _say(text: str) -> None:
    print(textwrap.fill(text, WIDTH, subsequent_indent="  "))


class _Wrong(Exception):
    """Raised by a judge: what is wrong, and a hint for the next try."""

    def __init__(self, diagnosis: str, hint: str = ""):
        super().__init__(diagnosis)
        self.diagnosis, self.hint = diagnosis, hint


def _fail(check: str, diagnosis: str, hint: str) -> None:
    _tries[check] = _tries.get(check, 0) + 1
    text = diagnosis if _tries[check] == 1 or not hint else f"{diagnosis} Hint: {hint}"
    raise WrongAnswer(textwrap.fill(text, WIDTH))


def _grade(check: str, fn, cases, judge, done: str) -> None:
    """The shared attempt/compare loop of every check.

    cases: argument tuples for fn; judge(args, answer) raises _Wrong when the answer is
    wrong. Prints "Correct: done" when every case passes.
    """
    if not callable(fn):
        _fail(
            check,
            f"{check} needs your function itself; got {type(fn).__name__}.",
            "pass the function's name, without calling it: check(my_function).",
        )
    for args in cases:
        try:
            answer = fn(*args)
        except NotImplementedError:
            name = getattr(fn, "__name__", "your function")
            _say(
                f"Not attempted yet: replace the `raise NotImplementedError` in "
                f"`{name}` and run this cell again."
            )
            return None
        except _Wrong as wrong:
            _fail(check, wrong.diagnosis, wrong.hint)
        except Exception as err:  # the reader's code failed: diagnose, do not crash
            _fail(
                check,
                f"your function raised {type(err).__name__}: {err}",
                "run it by hand on a small input and read the traceback.",
            )
        try:
            judge(args, answer)
        except _Wrong as wrong:
            _fail(check, wrong.diagnosis, wrong.hint)
    _say(f"Correct: {done}")
    return None


def _returned(answer, what: str) -> None:
    if answer is None:
        raise _Wrong(
            f"your function returned None instead of {what}.",
            "did you forget the `return` statement?",
        )


def _array(answer, want_shape: tuple, what: str = "an array") -> np.ndarray:
    """The answer as a float array of want_shape, or _Wrong naming what came back."""
    _returned(answer, what)
    if isinstance(answer, (str, bytes)):
        raise _Wrong(
            f"your function returned a string ({answer[:40]!r}) instead of {what}.",
            "return the array itself, not a description of it.",
        )
    if hasattr(answer, "detach"):  # a torch tensor
        answer = answer.detach().cpu().numpy()
    try:
        got = np.asarray(answer, dtype=float)
    except (TypeError, ValueError) as err:
        raise _Wrong(
            f"your function returned a {type(answer).__name__} that is not a "
            f"numeric array ({err}).",
            "return a NumPy array.",
        ) from None
    if got.shape != tuple(want_shape):
        raise _Wrong(
            f"expected {what} of shape {tuple(want_shape)}; your function "
            f"returned shape {got.shape}.",
            "check which axes your code keeps, adds or moves.",
        )
    return got


def _sequence(answer, length: int, what: str) -> tuple:
    """The answer as a tuple of `length` integers, or _Wrong naming what came back."""
    _returned(answer, what)
    if isinstance(answer, (str, bytes)):
        raise _Wrong(
            f"expected {what}; your function returned a string, {answer!r}.",
            f"return a tuple of {length} integers, not text.",
        )
    if not hasattr(answer, "__len__"):
        raise _Wrong(
            f"expected {what}; your function returned {answer!r}.",
            f"return a tuple of {length} integers.",
        )
    if len(answer) != length:
        raise _Wrong(
            f"expected {what} ({length} numbers); your function returned "
            f"{len(answer)}: {tuple(answer)!r}.",
            f"return exactly {length}.",
        )
    return tuple(answer)


def check_to_channels_last(fn) -> None:
    """Exercise (introduction): fn(x) turns an NCHW array into NHWC, keeping every
    value in place."""
    rng = np.random.default_rng(0)
    cases = [(rng.normal(size=s),) for s in [(1, 3, 2, 2), (2, 5, 4, 3), (3, 1, 7, 1)]]

    def judge(args, answer):
        (x,) = args
        want = x.transpose(0, 2, 3, 1)
        got = _array(answer, want.shape, "an NHWC array")
        if not np.array_equal(got, want):
            raise _Wrong(
                f"the shape {got.shape} is right but values moved to other "
                "places: the pixel (h, w) of channel c must stay the same number.",
                "a reshape re-reads memory in order; a transpose moves values. "
                "Use x.transpose(0, 2, 3, 1).",
            )

    _grade(
        "check_to_channels_last",
        fn,
        cases,
        judge,
        "NCHW -> NHWC is x.transpose(0, 2, 3, 1); a reshape would scramble the pixels.",
    )


def check_concat_shape(fn) -> None:
    """Exercise (concatenation): fn(shapes, axis) returns the output shape of a
    concatenation, or raises ValueError when the shapes cannot be concatenated."""
    good = [
        ([(2, 3, 4, 4), (2, 5, 4, 4)], 1, (2, 8, 4, 4)),
        ([(2, 4, 4, 3), (2, 4, 4, 5), (2, 4, 4, 1)], -1, (2, 4, 4, 9)),
        ([(1, 2), (3, 2)], 0, (4, 2)),
        ([(2, 2, 2), (2, 2, 2)], 2, (2, 2, 4)),
    ]
    bad = [
        ([(2, 3, 4, 4), (2, 5, 5, 4)], 1),
        ([(2, 3), (2, 3, 1)], 0),
        ([(1, 2), (3, 2)], 1),
    ]
    expected = {id(shapes): want for shapes, _, want in good}

    def call(shapes, axis):
        if id(shapes) in expected:
            return fn(shapes, axis)
        try:
            answer = fn(shapes, axis)
        except ValueError:
            return "raised"
        raise _Wrong(
            f"concatenating {shapes} on axis {axis} is impossible (another axis "
            f"differs, or the ranks do), but your function returned {answer!r} "
            "instead of raising ValueError.",
            "compare every axis except the concatenation axis, and the ranks.",
        )

    def judge(args, answer):
        shapes, axis = args
        if id(shapes) not in expected:
            return
        want = expected[id(shapes)]
        got = _sequence(answer, len(want), "a shape")
        if got != want:
            raise _Wrong(
                f"concatenating {shapes} on axis {axis}: your function "
                f"returned {got}, which is not the output shape.",
                "sizes add on the concatenation axis and are kept on the others.",
            )

    call.__name__ = getattr(fn, "__name__", "your function")
    cases = [(s, a) for s, a, _ in good] + bad
    _grade(
        "check_concat_shape",
        call if callable(fn) else fn,
        cases,
        judge,
        "sizes add along the axis; every other axis, and the rank, must agree.",
    )


def _conv2d_same(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Cross-correlation with 'same' zero padding. x: (C, H, W), w: (O, C, k, k)."""
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
    """Exercise (addition): fn(w_add) returns a kernel w_cat for the concatenated input
    such that conv(cat[x1, x2], w_cat) == conv(x1 + x2, w_add).
    w_add: (O, C, k, k) -> w_cat: (O, 2C, k, k)."""
    rng = np.random.default_rng(1)
    sizes = [(2, 3, 3, 5), (4, 1, 1, 4), (1, 2, 5, 7)]
    cases = [(rng.normal(size=(O, C, k, k)),) for O, C, k, _ in sizes]
    inputs = {
        id(c[0]): [rng.normal(size=(C, H, H)) for _ in range(2)]
        for c, (O, C, k, H) in zip(cases, sizes)
    }

    def judge(args, answer):
        (w_add,) = args
        O, C, k, _ = w_add.shape
        w_cat = _array(
            answer, (O, 2 * C, k, k), "a kernel with twice the input channels"
        )
        x1, x2 = inputs[id(w_add)]
        err = np.abs(
            _conv2d_same(np.concatenate([x1, x2]), w_cat) - _conv2d_same(x1 + x2, w_add)
        ).max()
        if not err < 1e-9:
            raise _Wrong(
                f"conv(cat[x1, x2], w_cat) differs from conv(x1 + x2, w_add) by "
                f"up to {err:.3g}.",
                "channel c of x1 and channel c of x2 must meet the same kernel "
                "slice: the two halves of w_cat along axis 1.",
            )

    _grade(
        "check_tied_concat_kernel",
        fn,
        cases,
        judge,
        "w_cat = [w_add, w_add] along the input-channel axis: add is concat with tied "
        "kernels.",
    )


class _NoConcat(np.ndarray):
    """An array that refuses NumPy's joining functions (a fast, explicit refusal)."""

    _joins = (
        "concatenate",
        "stack",
        "hstack",
        "vstack",
        "dstack",
        "column_stack",
        "block",
        "append",
    )

    def __array_function__(self, func, types, args, kwargs):
        if func.__name__ in self._joins:
            raise _Wrong(
                f"np.{func.__name__} was called: the split form must never build "
                "the concatenated input.",
                "multiply each input by its own block of columns of W and add "
                "the products.",
            )
        args = tuple(np.asarray(a) if isinstance(a, _NoConcat) else a for a in args)
        return func(*args, **kwargs)


def _peak_resident_bytes() -> int | None:
    """The process's peak resident memory (Linux VmHWM), or None elsewhere."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak_resident() -> bool:
    """Reset VmHWM to the current resident size, and make large allocations map fresh
    pages (glibc's mmap threshold fixed at 128 KiB), so that any large temporary (from
    NumPy, torch or anything else) raises the peak."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
        except (OSError, AttributeError):
            pass
    return True


def _extra_memory(fn, *args) -> tuple[object, int]:
    """Call fn; return its answer and the most memory it held at once beyond its inputs.

    Two witnesses, the larger wins: tracemalloc (every NumPy allocation) and, on Linux,
    the process's peak resident memory (allocations of any library, e.g. torch.cat).
    """
    resident = _reset_peak_resident()
    before = _peak_resident_bytes() if resident else None
    tracemalloc.start()
    try:
        answer = fn(*args)
        _, traced = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    after = _peak_resident_bytes() if resident else None
    rss = after - before if before is not None and after is not None else 0
    return answer, max(traced, rss)


def check_split_reduce(fn) -> None:
    """Exercise (concatenation followed by reduction): fn(w, xs) returns
    W [x_1; ...; x_k] per pixel without concatenating.
    w: (O, sum_i C_i); xs: list of (C_i, H, W) arrays -> (O, H, W).

    How it tells that a solution concatenates, by whatever route (np.concatenate, a
    copy into a new array, a list comprehension, torch.cat after converting the inputs):
    the inputs refuse NumPy's joining functions, and on a large case it measures the
    most memory your function holds at once (tracemalloc for NumPy; the process's peak
    resident memory on Linux for anything else). Building [x_1; ...; x_k] needs as much
    memory as all the inputs together; the split form needs only outputs of (O, H, W).
    """
    rng = np.random.default_rng(2)
    shapes = [
        ((3, 5), 4, 2, 3),
        ((1, 1, 2), 3, 4, 4),
        ((6,), 2, 1, 5),
        ((96, 64), 2, 128, 128),
    ]  # the last one is large: the memory witness
    cases = []
    for chans, O, H, W in shapes:
        w = rng.normal(size=(O, sum(chans)))
        xs = [rng.normal(size=(c, H, W)).view(_NoConcat) for c in chans]
        cases.append((w, xs))
    budget = {}

    def measured(w, xs):
        if w is cases[-1][0]:
            fn(w, xs)  # a warm-up call, so first-time imports are not counted
        answer, extra = _extra_memory(fn, w, xs)
        budget[id(w)] = extra
        return answer

    measured.__name__ = getattr(fn, "__name__", "your function")

    def judge(args, answer):
        w, xs = args
        plain = [np.asarray(x) for x in xs]
        want = np.einsum("oc,chw->ohw", w, np.concatenate(plain))
        got = _array(answer, want.shape, "an (O, H, W) array")
        err = np.abs(got - want).max()
        if not err < 1e-9:
            chans = [x.shape[0] for x in xs]
            raise _Wrong(
                f"inputs with {chans} channels: your result differs from "
                f"W [x_1; ...] by up to {err:.3g}.",
                "input i meets the columns of W from sum(C_1..C_{i-1}) to "
                "sum(C_1..C_i).",
            )
        concat_bytes = sum(x.nbytes for x in plain)
        if concat_bytes > 2**24 and budget[id(w)] > 0.75 * concat_bytes:
            raise _Wrong(
                f"right values, but your function held "
                f"{budget[id(w)] / 2**20:.0f} MiB at once, as much as the "
                f"concatenated input ({concat_bytes / 2**20:.0f} MiB): it builds "
                "[x_1; ...; x_k] (or copies every input) somewhere.",
                "never join or copy the inputs: W_i x_i for each input, summed "
                "into one (O, H, W) result.",
            )

    _grade(
        "check_split_reduce",
        measured if callable(fn) else fn,
        cases,
        judge,
        "W [x_1; x_2] = W_1 x_1 + W_2 x_2, with W_i the columns of W that meet "
        "input i.",
    )


def check_head_params(fn) -> None:
    """Exercise (global pooling): fn(C, H, W, K) returns
    (flatten_head_params, gap_head_params), each head ending in one linear layer with
    bias to K classes."""
    cases = [(512, 7, 7, 1000), (2048, 7, 7, 1000), (32, 8, 8, 10), (3, 1, 5, 2)]

    def judge(args, answer):
        C, H, W, K = args
        want = (C * H * W * K + K, C * K + K)
        got = _sequence(answer, 2, "(flatten head parameters, GAP head parameters)")
        if got != want:
            which = "flatten" if got[0] != want[0] else "GAP"
            raise _Wrong(
                f"for a {C}x{H}x{W} map and {K} classes your {which} head "
                f"count {got[0 if which == 'flatten' else 1]} is wrong.",
                "the flatten head's linear layer reads C*H*W numbers, the GAP "
                "head's reads C; both add K biases.",
            )

    _grade(
        "check_head_params",
        fn,
        cases,
        judge,
        "flatten: C*H*W*K + K, GAP: C*K + K; the ratio approaches H*W.",
    )


def check_se_params(fn) -> None:
    """Exercise (gating): fn(C, r) returns the parameter count of a
    Squeeze-and-Excitation block (two 1x1 convs with bias, C -> C // r -> C)."""
    cases = [(64, 16), (256, 16), (2048, 16), (48, 4), (10, 3)]

    def judge(args, answer):
        C, r = args
        hidden = C // r
        want = 2 * C * hidden + hidden + C
        if isinstance(answer, bool) or not isinstance(answer, (int, np.integer)):
            kind = "a string" if isinstance(answer, str) else type(answer).__name__
            raise _Wrong(
                f"expected an integer count; your function returned {kind}: "
                f"{answer!r}.",
                "count with integers: C // r, not C / r.",
            )
        if answer != want:
            nobias = 2 * C * hidden
            raise _Wrong(
                f"for C={C}, r={r} your count {answer} is "
                f"{'missing the biases' if answer == nobias else 'wrong'}.",
                "W1 has C * (C // r) weights and C // r biases, W2 has "
                "(C // r) * C weights and C biases.",
            )

    _grade(
        "check_se_params",
        fn,
        cases,
        judge,
        "2 C (C // r) + C // r + C, i.e. 2C^2/r plus the biases.",
    )


def check_channel_pool(fn) -> None:
    """Exercise (attention): fn(x) turns an NCHW array into CBAM's (N, 2, H, W) map
    [max, mean] over channels."""
    rng = np.random.default_rng(3)
    cases = [(rng.normal(size=s),) for s in [(1, 4, 3, 3), (2, 7, 5, 2), (1, 1, 2, 2)]]

    def judge(args, answer):
        (x,) = args
        want = np.stack([x.max(1), x.mean(1)], axis=1)
        got = _array(answer, want.shape, "an (N, 2, H, W) array")
        if x.shape[1] > 1 and np.allclose(got, want[:, ::-1]):
            raise _Wrong(
                "you stacked [mean, max] (timm's order); the original CBAM "
                "stacks [max, mean].",
                "swap the two channels.",
            )
        if not np.allclose(got, want):
            raise _Wrong(
                "channel 0 must be the max over channels and channel 1 the "
                "mean, at every pixel; yours differ.",
                "reduce over axis 1 and keep it: x.max(1) and x.mean(1), "
                "stacked on axis 1.",
            )

    _grade(
        "check_channel_pool",
        fn,
        cases,
        judge,
        "[max over C, mean over C], stacked on the channel axis: (N, 2, H, W).",
    )


def _nearest_rows(n_in: int, n_out: int, half_pixel: bool) -> np.ndarray:
    """Source index of each output row: floor((i + 0.5) n_in / n_out) (half-pixel, TF
    and torch "nearest-exact") or floor(i n_in / n_out) (torch "nearest")."""
    i = np.arange(n_out) + (0.5 if half_pixel else 0.0)
    return np.minimum(np.floor(i * n_in / n_out).astype(int), n_in - 1)


def _top_down(xs, half_pixel: bool = True, recursive: bool = True) -> list:
    """m_{L-1} = x_{L-1}, m_j = x_j + up(m_{j+1}) (or up(x_{j+1}) if not recursive)."""
    out = [xs[-1]]
    for j in range(len(xs) - 2, -1, -1):
        src, (h, w) = out[0] if recursive else xs[j + 1], xs[j].shape[2:]
        rows = _nearest_rows(src.shape[2], h, half_pixel)
        cols = _nearest_rows(src.shape[3], w, half_pixel)
        out.insert(0, xs[j] + src[:, :, rows][:, :, :, cols])
    return out


def check_top_down_merge(fn) -> None:
    """Exercise (feature pyramids): fn(xs) takes NCHW arrays of equal channel count,
    ordered from high to low resolution, and returns FPN's merged maps with identity
    laterals: m_{L-1} = x_{L-1}, m_i = x_i + up(m_{i+1}), up = half-pixel nearest
    resize to x_i's exact size."""
    rng = np.random.default_rng(4)
    sizes = [[25, 13, 7], [16, 8, 4], [9, 5], [6]]
    cases = [([rng.normal(size=(1, 2, s, s + 1)) for s in ss],) for ss in sizes]

    def judge(args, answer):
        (xs,) = args
        want = _top_down(xs)
        if answer is None or isinstance(answer, (str, bytes)):
            _array(answer, want[0].shape, "a list of merged maps")
        if not hasattr(answer, "__len__") or len(answer) != len(xs):
            raise _Wrong(
                f"expected a list of {len(xs)} merged maps, one per level; your "
                f"function returned {answer!r:.60}.",
                "return [m_0, ..., m_{L-1}], finest first, as the inputs are ordered.",
            )
        got = [
            _array(a, w.shape, f"merged map {i}")
            for i, (a, w) in enumerate(zip(answer, want))
        ]
        if all(np.allclose(g, w) for g, w in zip(got, want)):
            return
        if all(np.allclose(g, w) for g, w in zip(got, _top_down(xs, False))):
            raise _Wrong(
                "your upsampling floors the source index (torch's 'nearest', "
                "torchvision's FPN); at odd sizes such as 13 -> 25 it picks other "
                "pixels than TF's nearest and this book's FeaturePyramid.",
                "the source row of output row i is floor((i + 0.5) * H_in / H_out).",
            )
        if all(np.allclose(g, w) for g, w in zip(got, _top_down(xs, True, False))):
            raise _Wrong(
                "you add the upsampled *input* x_{i+1}; FPN adds the upsampled "
                "*merged* map m_{i+1}, so the coarsest map reaches every level.",
                "loop from the coarsest level down and keep the running merged map.",
            )
        raise _Wrong(
            "your merged maps differ from x_i + up(m_{i+1}).",
            "m_{L-1} = x_{L-1}; then from coarse to fine, resize the last merged "
            "map to x_i's exact (H, W) by half-pixel nearest and add x_i.",
        )

    _grade(
        "check_top_down_merge",
        fn,
        cases,
        judge,
        "m_i = x_i + up(m_{i+1}) with half-pixel nearest, TF's and FeaturePyramid's.",
    )


def check_dense_block_params(fn) -> None:
    """Exercise (skip connections): fn(L, C0, k, bn_size) returns the trainable
    parameter count of a DenseBlock (BN-ReLU-1x1 conv to bn_size*k, BN-ReLU-3x3 conv to
    k, no conv biases; layer l reads C0 + l k channels)."""
    cases = [(1, 16, 8, 4), (4, 16, 8, 4), (6, 64, 32, 4), (12, 3, 12, 2)]
    cases.append((24, 64, 32, 4))

    def judge(args, answer):
        L, C0, k, b = args
        want = sum(
            2 * (C0 + i * k) + (C0 + i * k) * b * k + 2 * b * k + 9 * b * k * k
            for i in range(L)
        )
        if isinstance(answer, bool) or not isinstance(answer, (int, np.integer)):
            kind = "a string" if isinstance(answer, str) else type(answer).__name__
            raise _Wrong(
                f"expected an integer count; your function returned {kind}: "
                f"{answer!r}.",
                "count with integers.",
            )
        if answer != want:
            convs = sum((C0 + i * k) * b * k + 9 * b * k * k for i in range(L))
            raise _Wrong(
                f"for L={L}, C0={C0}, k={k}, bn_size={b} your count {answer} is "
                f"{'missing the BatchNorms' if answer == convs else 'wrong'}.",
                "layer l has 2 (C0 + l k) BN parameters, (C0 + l k) b k in the 1x1 "
                "conv, 2 b k in the second BN and 9 b k^2 in the 3x3 conv.",
            )

    _grade(
        "check_dense_block_params",
        fn,
        cases,
        judge,
        "the 1x1 conv's input grows by k per layer, so the sum is quadratic in L.",
    )
