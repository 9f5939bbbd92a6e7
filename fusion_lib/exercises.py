"""Automatic checks for the chapters' exercises, fit for grading.

Each `check_*` function calls the reader's function on several inputs and compares the
answer with a reference, through one shared loop (`_grade`):

- every case right: prints "Correct: ..." and returns None;
- the function still raises NotImplementedError: prints what to do and returns None,
  so an untouched exercise shows no error to a reader; under a grader (`grading()`:
  nbgrader sets NBGRADER_EXECUTION while it autogrades or validates, other graders set
  FUSION_LIB_GRADING=1) it raises `WrongAnswer`, so an untouched exercise scores zero;
- anything wrong (a wrong value, a wrong type such as None or a string, an exception
  from the reader's code): raises `WrongAnswer` with a diagnosis of the mistake. The
  first wrong try of a check says what is wrong; later tries add a hint to fix it.
  `WrongAnswer` is raised explicitly, never by `assert`, so `python -O` grades the same.

Framework-free: everything is NumPy.
"""

from __future__ import annotations

import ctypes
import os
import sys
import textwrap
import tracemalloc

import numpy as np

WIDTH = 88  # the book's line width, for every printed message


class WrongAnswer(AssertionError):
    """A check found a wrong answer; the message says what is wrong."""


_tries: dict[str, int] = {}


def grading() -> bool:
    """True under a grader, where an untouched exercise must fail: nbgrader sets
    NBGRADER_EXECUTION ("autograde" or "validate") in the kernel it grades with; any
    other grader sets FUSION_LIB_GRADING=1. One switch for every check (`_grade`)."""
    return bool(os.environ.get("NBGRADER_EXECUTION")) or (
        os.environ.get("FUSION_LIB_GRADING") == "1"
    )


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
            if grading():
                raise WrongAnswer(
                    textwrap.fill(
                        f"Not attempted: `{name}` still raises NotImplementedError, "
                        "so this exercise scores zero.",
                        WIDTH,
                    )
                ) from None
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


def _dense_terms(L: int, C0: int, k: int, b: int) -> tuple[int, int]:
    """P(L) of a DenseBlock split into its linear and its quadratic term in L."""
    linear = L * ((2 + b * k) * C0 + 2 * b * k + 9 * b * k * k)
    return linear, (2 + b * k) * k * L * (L - 1) // 2


def _dense_crossover(C0: int, k: int, b: int) -> int:
    L = 1
    while _dense_terms(L, C0, k, b)[1] <= _dense_terms(L, C0, k, b)[0]:
        L += 1
    return L


def check_dense_crossover(fn) -> None:
    """Exercise (skip connections): fn(C0, k, bn_size) returns the smallest number of
    layers L of a DenseBlock(L, C0, k, bn_size) whose quadratic parameter term,
    (2 + b k) k L (L - 1) / 2, is larger than its linear one,
    L ((2 + b k) C0 + 2 b k + 9 b k^2)."""
    # (16, 2, 1): the two terms are equal at L = 27, so the answer is 28
    cases = [(64, 32, 4), (16, 2, 1), (24, 12, 4), (3, 12, 2), (256, 32, 4)]

    def judge(args, answer):
        C0, k, b = args
        want = _dense_crossover(C0, k, b)
        if isinstance(answer, bool) or not isinstance(answer, (int, np.integer)):
            kind = "a string" if isinstance(answer, str) else type(answer).__name__
            raise _Wrong(
                f"expected an integer number of layers; your function returned "
                f"{kind}: {answer!r}.",
                "return the depth L itself, an int.",
            )
        if answer == want:
            return
        linear, quadratic = _dense_terms(int(answer), C0, k, b)
        if answer == want - 1 and quadratic == linear:
            diagnosis = "the two terms are equal there; the quadratic must be larger."
        elif answer < want:
            diagnosis = "the linear term is still the larger one there."
        else:
            diagnosis = f"the quadratic term is already larger at L = {want}."
        raise _Wrong(
            f"for C0={C0}, k={k}, bn_size={b} you answered L = {answer}: {diagnosis}",
            "the quadratic term is larger when (2 + b k) k (L - 1) / 2 > "
            "(2 + b k) C0 + 2 b k + 9 b k^2: solve for L - 1, or count up from L = 1.",
        )

    _grade(
        "check_dense_crossover",
        fn,
        cases,
        judge,
        f"{_dense_crossover(64, 32, 4)} layers for C0 = 64, k = 32, bn_size = b = 4; "
        "in general L = floor(2 C0/k + (4b + 18bk)/(2 + bk)) + 2, about 2 C0/k + 20.",
    )


def _softmax(scores: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(scores - scores.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _attention(q, k, v, mask=None, scale=None, axis=-1):
    """softmax(q k^T * scale) v, masked scores at -inf (mask True = attend)."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    scores = q @ np.swapaxes(k, -1, -2) * scale
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    with np.errstate(invalid="ignore"):  # a wrong guess may mask a whole column
        return _softmax(scores, axis) @ v


def check_scaled_attention(fn) -> None:
    """Exercise (self-attention): fn(q, k, v, mask) returns softmax(q k^T / sqrt(d)) v
    for NumPy q (..., Lq, d), k (..., Lk, d), v (..., Lk, dv); mask is None or a
    boolean array broadcastable to (..., Lq, Lk), True = attend."""
    rng = np.random.default_rng(5)

    def case(lead, lq, lk, d, dv, masked):
        q, k = rng.normal(size=(*lead, lq, d)), rng.normal(size=(*lead, lk, d))
        v = rng.normal(size=(*lead, lk, dv))
        mask = None
        if masked:
            mask = rng.random((*lead, lq, lk)) > 0.4
            # every query keeps a key, and would keep one with the polarity reversed
            mask[..., 0], mask[..., -1] = True, False
        return q, k, v, mask

    cases = [
        case((), 3, 5, 16, 2, False),
        case((2,), 4, 4, 9, 3, False),
        case((2, 3), 5, 6, 4, 4, True),
        case((1,), 4, 7, 25, 2, True),
    ]

    def judge(args, answer):
        q, k, v, mask = args
        want = _attention(q, k, v, mask)
        got = _array(answer, want.shape, f"an output of shape {want.shape}")
        if np.allclose(got, want, atol=1e-6):
            return
        d = q.shape[-1]
        guesses = [
            (
                _attention(q, k, v, mask, scale=1.0),
                "you did not scale the scores: softmax(q k^T) saturates as d grows.",
                "multiply the scores by 1 / sqrt(d), d = q.shape[-1].",
            ),
            (
                _attention(q, k, v, mask, scale=1.0 / d),
                "you divided the scores by d; the factor is 1 / sqrt(d), which "
                "keeps their variance at 1 for unit-variance q and k.",
                "use d ** -0.5.",
            ),
            (
                _attention(q, k, v, mask, axis=-2),
                "your softmax runs over the queries; each query's weights over the "
                "keys must sum to 1.",
                "softmax over the last axis of the (..., Lq, Lk) scores.",
            ),
        ]
        if mask is not None:
            guesses += [
                (
                    _attention(q, k, v, ~mask),
                    "your mask has the opposite polarity: True means attend here "
                    "(as in F.scaled_dot_product_attention and Keras), not ignore "
                    "(as in nn.MultiheadAttention's masks).",
                    "set the scores where mask is False to -inf.",
                ),
                (
                    _attention(q, k, v),
                    "your function ignores the mask: masked keys must get weight 0.",
                    "set the scores where mask is False to -inf before the softmax.",
                ),
            ]
        for wrong, diagnosis, hint in guesses:
            if np.allclose(got, wrong, atol=1e-6, equal_nan=True):
                raise _Wrong(diagnosis, hint)
        raise _Wrong(
            f"for q {q.shape}, k {k.shape}, v {v.shape} your output differs from "
            "softmax(q k^T / sqrt(d)) v.",
            "scores = q @ k.swapaxes(-1, -2) / sqrt(d); mask; softmax over the keys; "
            "then @ v.",
        )

    _grade(
        "check_scaled_attention",
        fn,
        cases,
        judge,
        "softmax(q k^T / sqrt(d)) v, masked keys at -inf, softmax over the keys.",
    )


def check_map_tokens(fn) -> None:
    """Exercise (self-attention): fn(x) turns an NCHW NumPy map (N, C, H, W) into
    (N, H*W, C) tokens in row-major order: token h * W + w is the pixel (h, w)."""
    rng = np.random.default_rng(6)
    cases = [(rng.normal(size=s),) for s in [(1, 3, 2, 4), (2, 5, 3, 3), (2, 1, 4, 2)]]

    def judge(args, answer):
        (x,) = args
        n, c, h, w = x.shape
        want = x.transpose(0, 2, 3, 1).reshape(n, h * w, c)
        got = _array(answer, want.shape, f"(N, H*W, C) = {want.shape} tokens")
        if np.array_equal(got, want):
            return
        if np.array_equal(got, x.reshape(n, h * w, c)):
            raise _Wrong(
                "you reshaped without moving the channel axis: each 'token' then "
                "holds numbers of one channel from several pixels.",
                "move the channels last first: x.transpose(0, 2, 3, 1), then reshape.",
            )
        if np.array_equal(got, x.transpose(0, 3, 2, 1).reshape(n, h * w, c)):
            raise _Wrong(
                "your tokens are in column-major order (token w * H + h); the book, "
                "torch's flatten(2) and Keras' reshape of an NHWC map use row-major "
                "order, token h * W + w.",
                "transpose to (N, H, W, C), not (N, W, H, C).",
            )
        raise _Wrong(
            "your tokens hold other values than the pixels' channel vectors.",
            "token h * W + w must be x[n, :, h, w].",
        )

    _grade(
        "check_map_tokens",
        fn,
        cases,
        judge,
        "(N, C, H, W) -> x.transpose(0, 2, 3, 1).reshape(N, H * W, C), row-major.",
    )


def _mfb(x1, x2, U, V, factor, groups="consecutive", root=True, norm=True):
    """MFB pooling in NumPy: (x1 U) * (x2 V), sum-pooled over groups of `factor`
    elements ("consecutive": j*factor .. j*factor + factor - 1; "strided": j, j + o,
    ...), signed square root, L2 normalisation; the last three can be left out."""
    p = (x1 @ U) * (x2 @ V)
    o = p.shape[-1] // factor
    if groups == "consecutive":
        s = p.reshape(len(p), o, factor).sum(-1)
    else:
        s = p.reshape(len(p), factor, o).sum(1)
    if root == "abs":
        s = np.sqrt(np.abs(s))
    elif root:
        s = np.sign(s) * np.sqrt(np.abs(s))
    if norm:
        s = s / np.maximum(np.linalg.norm(s, axis=-1, keepdims=True), 1e-12)
    return s


def check_low_rank_bilinear(fn) -> None:
    """Exercise (cross-modal fusion): fn(x1, x2, U, V, factor) returns MFB pooling,
    without biases: p = (x1 U) * (x2 V), s_j = the sum of the j-th group of `factor`
    consecutive elements of p, s = sign(s) sqrt(|s|), out = s / ||s||_2 per row.
    x1: (N, d1), x2: (N, d2), U: (d1, factor * o), V: (d2, factor * o) -> (N, o)."""
    rng = np.random.default_rng(7)
    sizes = [(3, 4, 5, 5, 2), (2, 6, 3, 2, 4), (4, 3, 3, 3, 1), (1, 5, 2, 4, 3)]
    cases = [
        (
            rng.normal(size=(n, d1)),
            rng.normal(size=(n, d2)),
            rng.normal(size=(d1, k * o)),
            rng.normal(size=(d2, k * o)),
            k,
        )
        for n, d1, d2, k, o in sizes
    ]

    def judge(args, answer):
        x1, x2, U, V, k = args
        want = _mfb(*args)
        got = _array(answer, want.shape, f"an (N, o) = {want.shape} array")
        if np.allclose(got, want, atol=1e-8):
            return
        guesses = [
            (
                {"groups": "strided"},
                "you pooled every o-th element (p.reshape(N, factor, o).sum(1)); MFB "
                "sums groups of `factor` consecutive elements, which is what makes "
                "each output a rank-`factor` bilinear form of its own factors.",
                "p.reshape(N, o, factor).sum(-1).",
            ),
            (
                {"root": False},
                "the signed square root is missing: MFB takes sign(s) sqrt(|s|) "
                "before normalising, to tame the products' large values.",
                "s = np.sign(s) * np.sqrt(np.abs(s)).",
            ),
            (
                {"root": "abs"},
                "you took sqrt(|s|) and lost the sign; the signed square root keeps "
                "it: sign(s) sqrt(|s|).",
                "multiply by np.sign(s).",
            ),
            (
                {"norm": False},
                "the L2 normalisation is missing: every output row has unit length.",
                "divide each row by its norm, np.linalg.norm(s, axis=-1, "
                "keepdims=True).",
            ),
        ]
        for change, diagnosis, hint in guesses:
            wrong = _mfb(*args, **change)
            if got.shape == wrong.shape and np.allclose(got, wrong, atol=1e-8):
                raise _Wrong(diagnosis, hint)
        raise _Wrong(
            f"for x1 {x1.shape}, x2 {x2.shape} and factor {k} your output differs "
            "from MFB pooling.",
            "p = (x1 @ U) * (x2 @ V); sum groups of factor consecutive elements; "
            "signed square root; divide each row by its L2 norm.",
        )

    _grade(
        "check_low_rank_bilinear",
        fn,
        cases,
        judge,
        "project, multiply, sum-pool consecutive groups of factor, signed square "
        "root, L2-normalise: MFB.",
    )


def check_concat_as_film(fn) -> None:
    """Exercise (cross-modal fusion): fn(W, b, C) turns a linear layer on [x; z],
    W: (O, C + D), b: (O,), into (W_x, G, g): W_x (O, C) and a FiLM generator
    [delta; beta] = G z + g, G: (2 O, D), g: (2 O,), gamma = 1 + delta, such that
    FiLM(W_x x, z) = gamma * (W_x x) + beta equals W [x; z] + b for every x, z."""
    rng = np.random.default_rng(8)
    sizes = [(4, 3, 2), (2, 5, 3), (3, 1, 4), (1, 2, 1)]
    cases = [
        (rng.normal(size=(O, C + D)), rng.normal(size=O), C) for O, C, D in sizes
    ]

    def judge(args, answer):
        W, b, C = args
        O, D = W.shape[0], W.shape[1] - C
        _returned(answer, "(W_x, G, g)")
        if isinstance(answer, (str, bytes)) or not hasattr(answer, "__len__"):
            kind = "a string" if isinstance(answer, (str, bytes)) else "a number"
            raise _Wrong(
                f"expected three arrays (W_x, G, g); your function returned {kind}, "
                f"{answer!r:.60}.",
                "return a tuple: W_x, G, g.",
            )
        if len(answer) != 3:
            raise _Wrong(
                f"expected three arrays (W_x, G, g); your function returned "
                f"{len(answer)} items.",
                "return W_x (O, C), G (2 O, D) and g (2 O,).",
            )
        W_x = _array(answer[0], (O, C), f"W_x of shape {(O, C)}")
        G = _array(answer[1], (2 * O, D), f"G of shape {(2 * O, D)}")
        g = _array(answer[2], (2 * O,), f"g of shape {(2 * O,)}")
        x, z = rng.normal(size=(C, 3)), rng.normal(size=(D, 3))
        want = W @ np.concatenate([x, z]) + b[:, None]
        coeffs = G @ z + g[:, None]
        got = (1 + coeffs[:O]) * (W_x @ x) + coeffs[O:]
        if np.allclose(got, want, atol=1e-8):
            return
        if np.allclose(coeffs[:O], 1) and np.allclose(got - W_x @ x, want):
            raise _Wrong(
                "your generator makes delta = 1, so gamma = 1 + delta = 2: FiLM "
                "doubles W_x x. This FiLM predicts delta, and gamma = 1 + delta.",
                "leave delta at 0: zero rows :O of G and entries :O of g.",
            )
        swapped = (1 + coeffs[O:]) * (W_x @ x) + coeffs[:O]
        if np.allclose(swapped, want, atol=1e-8):
            raise _Wrong(
                "you put beta first; the generator's outputs :O are delta (the "
                "scale's part) and O: are beta (the shift).",
                "rows O: of G are W[:, C:], entries O: of g are b.",
            )
        raise _Wrong(
            "FiLM(W_x x, z) with your W_x, G, g differs from W [x; z] + b.",
            "split W by columns: W_x = W[:, :C] meets x and W_z = W[:, C:] meets z; "
            "W_z z + b is a shift that depends on z (beta), and the scale stays 1.",
        )

    _grade(
        "check_concat_as_film",
        fn,
        cases,
        judge,
        "W [x; z] + b = W_x x + (W_z z + b): a conditional bias, FiLM with delta = 0 "
        "and beta = W_z z + b.",
    )


def check_attention_flops(fn) -> None:
    """Exercise (choosing a fusion method): fn(L, d) returns the FLOPs (2 per
    multiply-add) of attention's two matrix products for one image, L tokens of d
    features summed over the heads: Q K^T and weights @ V, 2 L^2 d each, 4 L^2 d in
    all (the part FlopCounterMode misses in the CPU's fused attention kernel)."""
    cases = [(64, 16), (256, 16), (1, 8), (100, 32), (49, 64)]

    def judge(args, answer):
        L, d = args
        want = 4 * L * L * d
        if isinstance(answer, bool) or not isinstance(answer, (int, np.integer)):
            kind = "a string" if isinstance(answer, str) else type(answer).__name__
            raise _Wrong(
                f"expected an integer count; your function returned {kind}: "
                f"{answer!r}.",
                "multiply integers: L * L * d needs no division.",
            )
        if answer != want:
            why = {
                2 * L * L * d: "half the answer: multiply-adds, or one product only",
                L * L * d: "a quarter of the answer: one product's multiply-adds",
                want + 8 * L * d * d: "the projections counted too",
            }.get(int(answer), "wrong")
            raise _Wrong(
                f"for L={L}, d={d} your count {answer} is {why}.",
                "Q K^T is (L x d) @ (d x L): L^2 d multiply-adds; weights @ V is "
                "(L x L) @ (L x d): L^2 d more; a multiply-add is 2 FLOPs.",
            )

    _grade(
        "check_attention_flops",
        fn,
        cases,
        judge,
        "4 L^2 d: 2 L^2 d for Q K^T and 2 L^2 d for weights @ V, whatever the "
        "number of heads.",
    )
