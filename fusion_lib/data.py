"""Small real datasets that ship inside a package, so nothing downloads at run time."""

from __future__ import annotations

import numpy as np


def load_digits_split(seed: int = 0, test_fraction: float = 0.25, layout: str = "NCHW"):
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), split and
    scaled to [0, 1].

    Returns (X_train, y_train, X_test, y_test): X float32 of shape (N, 1, 8, 8) for
    layout="NCHW" or (N, 8, 8, 1) for "NHWC"; y int64 labels. The split is stratified
    and fixed by `seed`.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if layout not in ("NCHW", "NHWC"):
        raise ValueError(
            f"layout must be 'NCHW' (torch) or 'NHWC' (Keras); got {layout!r}."
        )
    digits = load_digits()
    X = (digits.images / 16.0).astype(np.float32)
    X = X[:, None] if layout == "NCHW" else X[..., None]
    y = digits.target.astype(np.int64)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    return X_tr, y_tr, X_te, y_te


def load_digits_tests(seed: int = 0):
    """The digits split in the form `fusion_lib.experiments` expects (NCHW).

    Returns (X_train, y_train, {"test": (X_test, y_test)}).
    """
    X_tr, y_tr, X_te, y_te = load_digits_split(seed)
    return X_tr, y_tr, {"test": (X_te, y_te)}


def load_digits_with_train(seed: int = 0):
    """The digits split with the training set also scored, to measure the train/test
    gap (NCHW).

    Returns (X_train, y_train, {"test": (X_test, y_test), "train": (X_train, y_train)}).
    Taught in the chapter on skip connections.
    """
    X_tr, y_tr, X_te, y_te = load_digits_split(seed)
    return X_tr, y_tr, {"test": (X_te, y_te), "train": (X_tr, y_tr)}


def make_shapes_on_texture(n: int, size: int = 32, seed: int = 0):
    """Generated segmentation images: discs and squares on a textured background.

    Returns X (n, 1, size, size) float32 and masks y (n, size, size) int64 (1 inside a
    shape). Background and shapes carry stripes of different orientation and frequency
    with the same mean brightness, plus noise, so a pixel's value alone does not say
    which side it is on: the network must read the texture around it, and the mask's
    edges need full resolution. Taught in the chapter on skip connections.
    """
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size].astype(np.float32)
    X = np.empty((n, 1, size, size), np.float32)
    y = np.zeros((n, size, size), np.int64)
    for i in range(n):
        a, b = rng.uniform(0, np.pi, 2)
        phase = rng.uniform(0, 2 * np.pi, 2)
        back = np.sin(0.6 * (np.cos(a) * rows + np.sin(a) * cols) + phase[0])
        front = np.sin(1.8 * (np.cos(b) * rows + np.sin(b) * cols) + phase[1])
        mask = np.zeros((size, size), bool)
        for _ in range(rng.integers(1, 4)):
            r = rng.uniform(size / 10, size / 4)
            cy, cx = rng.uniform(r, size - r, 2)
            if rng.random() < 0.5:
                mask |= (rows - cy) ** 2 + (cols - cx) ** 2 <= r**2
            else:
                mask |= (abs(rows - cy) <= r) & (abs(cols - cx) <= r)
        image = np.where(mask, front, back) + 0.3 * rng.normal(size=(size, size))
        X[i, 0], y[i] = 0.5 + 0.25 * image, mask
    return X, y


def load_shapes_segmentation(seed: int = 0, n_train: int = 512, n_test: int = 128):
    """Shapes-on-texture segmentation data in the form of `fusion_lib.experiments`:
    (X_train, y_train, {"test": (X_test, y_test)}), NCHW, 32x32, masks (N, 32, 32).
    Taught in the chapter on skip connections.
    """
    X_tr, y_tr = make_shapes_on_texture(n_train, seed=2 * seed)
    X_te, y_te = make_shapes_on_texture(n_test, seed=2 * seed + 1)
    return X_tr, y_tr, {"test": (X_te, y_te)}


def on_canvas(images: np.ndarray, dy: int = 0, dx: int = 0, size: int = 20):
    """Place (N, 1, 8, 8) digits at the centre of a size x size zero canvas, moved by
    (dy, dx) pixels (down, right).

    Returns (N, 1, size, size) float32. Raises if the move would push the digit off the
    canvas. Taught in the chapter on global pooling.
    """
    top = (size - 8) // 2
    if not (0 <= top + dy <= size - 8 and 0 <= top + dx <= size - 8):
        raise ValueError(
            f"a move of ({dy}, {dx}) pushes an 8x8 digit off a {size}x{size} canvas; "
            f"keep |dy|, |dx| <= {top} or use a larger canvas."
        )
    canvas = np.zeros((len(images), 1, size, size), np.float32)
    canvas[:, :, top + dy : top + dy + 8, top + dx : top + dx + 8] = images
    return canvas


CANVAS_SHIFTS = (-4, -3, -2, -1, 0, 1, 2, 3, 4)


def load_digits_on_canvas(seed: int = 0, size: int = 20):
    """Digits centred on a size x size canvas for training; tests centred and shifted.

    Returns (X_train, y_train, tests) in NCHW with tests = {"centred": ..., "shifted":
    every test digit moved 4 pixels left and 4 pixels right (twice as many images),
    "dx=-4" ... "dx=+4": the test digits moved sideways by that many pixels}.
    Taught in the chapter on global pooling.
    """
    X_tr, y_tr, X_te, y_te = load_digits_split(seed)
    tests = {
        "centred": (on_canvas(X_te, size=size), y_te),
        "shifted": (
            np.concatenate([on_canvas(X_te, 0, d, size) for d in (-4, 4)]),
            np.concatenate([y_te, y_te]),
        ),
    }
    for dx in CANVAS_SHIFTS:
        tests[f"dx={dx:+d}"] = (on_canvas(X_te, 0, dx, size), y_te)
    return on_canvas(X_tr, size=size), y_tr, tests


SHAPE_CLASSES = ("square", "frame", "plus")


def draw_shape(shape: str, side: int) -> np.ndarray:
    """A side x side binary mask of one of SHAPE_CLASSES: a filled square, its outline
    ("frame") or a centred cross ("plus"), strokes max(1, side // 4) pixels wide.

    Taught in the chapter on feature pyramids.
    """
    if shape not in SHAPE_CLASSES:
        raise ValueError(f"shape must be one of {SHAPE_CLASSES}; got {shape!r}.")
    if side < 3:
        raise ValueError(f"side must be at least 3 pixels to tell shapes; got {side}.")
    stroke = max(1, side // 4)
    mask = np.zeros((side, side), np.float32)
    if shape == "square":
        mask[:] = 1
    elif shape == "frame":
        mask[:stroke], mask[-stroke:], mask[:, :stroke], mask[:, -stroke:] = 1, 1, 1, 1
    else:
        mid = (side - stroke) // 2
        mask[mid : mid + stroke], mask[:, mid : mid + stroke] = 1, 1
    return mask


SHAPE_SIDES = {"small": (3, 4, 5), "large": (14, 16, 18)}


def multiscale_shapes(n: int, scale: str, seed: int = 0, size: int = 32):
    """n noisy size x size images, each holding one shape of SHAPE_CLASSES at a random
    place, with side drawn from SHAPE_SIDES[scale] ("small" or "large").

    Returns (X, y): X float32 (n, 1, size, size), shape intensity 0.6..1 on Gaussian
    noise (std 0.25); y int64 labels, index into SHAPE_CLASSES, balanced.
    Taught in the chapter on feature pyramids.
    """
    if scale not in SHAPE_SIDES:
        raise ValueError(f"scale must be one of {list(SHAPE_SIDES)}; got {scale!r}.")
    rng = np.random.default_rng(seed)
    y = np.arange(n) % len(SHAPE_CLASSES)
    rng.shuffle(y)
    X = rng.normal(0.0, 0.25, (n, 1, size, size)).astype(np.float32)
    for i, label in enumerate(y):
        side = int(rng.choice(SHAPE_SIDES[scale]))
        top, left = rng.integers(0, size - side + 1, 2)
        mask = draw_shape(SHAPE_CLASSES[label], side) * rng.uniform(0.6, 1.0)
        X[i, 0, top : top + side, left : left + side] += mask
    return X, y.astype(np.int64)


def load_multiscale_shapes(seed: int = 0, n_train: int = 1800, n_test: int = 600):
    """Shapes of two very different sizes for `fusion_lib.experiments` (NCHW, 32x32).

    Returns (X_train, y_train, {"small": ..., "large": ...}): the training set mixes
    small (3-5 px) and large (14-18 px) shapes half and half; each test set holds one
    size only, so accuracy is measured per object size. The seed fixes every image.
    Taught in the chapter on feature pyramids.
    """
    half = n_train // 2
    parts = [
        multiscale_shapes(half, s, seed * 10 + k) for k, s in enumerate(SHAPE_SIDES)
    ]
    X_tr = np.concatenate([p[0] for p in parts])
    y_tr = np.concatenate([p[1] for p in parts])
    tests = {
        s: multiscale_shapes(n_test, s, seed * 10 + 5 + k)
        for k, s in enumerate(SHAPE_SIDES)
    }
    return X_tr, y_tr, tests


# -- Visual question answering on the digits (the chapter on cross-modal fusion) -----

VOCAB = ("<pad>", "is", "it", "a", "even", "odd", "larger", "smaller", "than") + tuple(
    str(d) for d in range(10)
)
QUESTION_LENGTH = 5  # tokens per question, padded at the end with "<pad>" (id 0)
QUESTION_FAMILIES = {
    "parity": ("is it even", "is it odd"),
    "compare": (
        *(f"is it larger than {k}" for k in range(9)),
        *(f"is it smaller than {k}" for k in range(1, 10)),
    ),
    "identity": tuple(f"is it a {k}" for k in range(10)),
}
QUESTIONS = tuple(q for family in QUESTION_FAMILIES.values() for q in family)


def answer_question(question: str, digit: int) -> int:
    """The true answer, 1 (yes) or 0 (no), to one of QUESTIONS about a digit.

    Taught in the chapter on cross-modal fusion.
    """
    words = question.split()
    if question not in QUESTIONS:
        raise ValueError(f"not one of the generated questions: {question!r}.")
    if words[-1] in ("even", "odd"):
        return int((digit % 2 == 0) == (words[-1] == "even"))
    k = int(words[-1])
    if words[2] == "larger":
        return int(digit > k)
    if words[2] == "smaller":
        return int(digit < k)
    return int(digit == k)


def encode_question(question: str) -> np.ndarray:
    """A question as QUESTION_LENGTH token ids into VOCAB, padded with 0 ("<pad>").

    Taught in the chapter on cross-modal fusion.
    """
    words = question.split()
    unknown = [w for w in words if w not in VOCAB]
    if unknown or len(words) > QUESTION_LENGTH:
        raise ValueError(
            f"a question is at most {QUESTION_LENGTH} words from VOCAB; got "
            f"{question!r} (unknown words: {unknown})."
        )
    ids = [VOCAB.index(w) for w in words]
    return np.array(ids + [0] * (QUESTION_LENGTH - len(ids)), np.int64)


def decode_question(tokens) -> str:
    """Token ids back to the question's words, without the padding."""
    return " ".join(VOCAB[int(t)] for t in tokens if int(t) != 0)


def ask_about_digits(digits: np.ndarray, seed: int = 0):
    """Three questions per digit, one from each of QUESTION_FAMILIES, and the answers.

    digits: (N,) int labels -> (questions (3N, QUESTION_LENGTH) int64 token ids,
    answers (3N,) int64, index (3N,) int64: the digit each question is about, family
    (3N,) names). Parity: "even" or "odd" with equal chance; compare: one of the 18
    comparisons uniformly; identity: "is it a d" about the true digit d half the time,
    otherwise another digit uniformly. With balanced digits every family answers yes
    half the time in expectation, so no question alone tells the answer on average
    (single questions can: "is it larger than 0" is mostly yes).
    """
    rng = np.random.default_rng(seed)
    texts, index = [], []
    for i, d in enumerate(np.asarray(digits)):
        others = [k for k in range(10) if k != d]
        ident = d if rng.random() < 0.5 else others[rng.integers(9)]
        texts += [
            QUESTION_FAMILIES["parity"][rng.integers(2)],
            QUESTION_FAMILIES["compare"][rng.integers(18)],
            f"is it a {ident}",
        ]
        index += [i, i, i]
    index = np.array(index, np.int64)
    questions = np.stack([encode_question(q) for q in texts])
    answers = np.array(
        [answer_question(q, int(digits[i])) for q, i in zip(texts, index)], np.int64
    )
    family = np.array([f for _ in range(len(digits)) for f in QUESTION_FAMILIES])
    return questions, answers, index, family


def load_digit_questions(seed: int = 0):
    """A visual-question-answering task on scikit-learn's digits, for
    `fusion_lib.experiments`: the answer needs the image *and* the question.

    The digits split of `load_digits_split(seed)` (train and test images never
    overlap), each image asked three generated questions (`ask_about_digits`, one per
    family). Returns (X_train, y_train, tests) with X = (images (N, 1, 8, 8) float32,
    questions (N, QUESTION_LENGTH) int64 token ids into VOCAB), y the answers (1 = yes,
    0 = no) and tests = {"test": every test question, "parity", "compare",
    "identity": the test questions of that family, "every_question": each test image
    asked all of QUESTIONS, in that order (image 0's 30 questions first)}. The seed
    fixes the split and the questions. Taught in the chapter on cross-modal fusion.
    """
    X_tr, d_tr, X_te, d_te = load_digits_split(seed)
    q_tr, y_tr, i_tr, _ = ask_about_digits(d_tr, seed=2 * seed)
    q_te, y_te, i_te, f_te = ask_about_digits(d_te, seed=2 * seed + 1)
    tests = {"test": ((X_te[i_te], q_te), y_te)}
    for name in QUESTION_FAMILIES:
        keep = f_te == name
        tests[name] = ((X_te[i_te[keep]], q_te[keep]), y_te[keep])
    every = np.stack([encode_question(q) for q in QUESTIONS])
    answers = [[answer_question(q, int(d)) for q in QUESTIONS] for d in d_te]
    tests["every_question"] = (
        (np.repeat(X_te, len(QUESTIONS), axis=0), np.tile(every, (len(d_te), 1))),
        np.array(answers, np.int64).reshape(-1),
    )
    return (X_tr[i_tr], q_tr), y_tr, tests
