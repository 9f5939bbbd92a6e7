"""Experiments of the chapter on cross-modal fusion."""

from __future__ import annotations

import warnings

import numpy as np

from fusion_lib.data import (
    QUESTION_FAMILIES,
    QUESTIONS,
    answer_question,
    encode_question,
    load_digit_questions,
)
from fusion_lib.experiments import Experiment, predict, register

IDENTITY = [QUESTIONS.index(q) for q in QUESTION_FAMILIES["identity"]]


def digits_of(answers: np.ndarray) -> np.ndarray:
    """The digit of each image of the "every_question" test set, read off the true
    answers to "is it a 0" ... "is it a 9" (exactly one is yes): (N * 30,) -> (N,)."""
    table = np.asarray(answers).reshape(-1, len(QUESTIONS))
    return table[:, IDENTITY].argmax(axis=1)


def question_digit_accuracy(framework: str, model, X, y) -> np.ndarray:
    """Accuracy for each question (row, QUESTIONS order) about each digit (column) on
    the "every_question" test set X, y: (30, 10)."""
    logits = predict(framework, model, X)
    right = (logits.argmax(-1) == np.asarray(y)).reshape(-1, len(QUESTIONS))
    digits = digits_of(y)
    return np.stack([right[digits == d].mean(axis=0) for d in range(10)], axis=1)


def film_coefficients(framework: str, model) -> tuple[np.ndarray, np.ndarray]:
    """FiLM's (gamma, beta) for each of QUESTIONS in a trained "film" DigitVQANet:
    two (30, width) arrays, gamma = 1 + delta."""
    tokens = np.stack([encode_question(q) for q in QUESTIONS])
    if framework == "torch":
        import torch

        with torch.no_grad():
            q = model.question_tokens(torch.as_tensor(tokens)).mean(dim=1)
            return tuple(c.numpy() for c in model.film.coefficients(q))
    import keras

    q = keras.ops.mean(model.question_tokens(tokens), axis=1)
    return tuple(np.asarray(c) for c in model.film.coefficients(q))


def measure_vqa(framework: str, model, train: tuple, tests: dict) -> dict:
    """Every analysis of a trained DigitVQANet: its accuracy per question and digit on
    the every_question test set and, for FiLM, its coefficients per question."""
    X, y = tests["every_question"]
    table = question_digit_accuracy(framework, model, X, y)
    out = {"question_digit_accuracy": np.round(table, 4).tolist()}
    if model.fusion == "film":
        gamma, beta = film_coefficients(framework, model)
        out["film_gamma"] = np.round(gamma, 4).tolist()
        out["film_beta"] = np.round(beta, 4).tolist()
    return out


def question_weights() -> np.ndarray:
    """How often `ask_about_digits` asks each question (row, QUESTIONS order) about
    each digit (column), per image of that digit: (30, 10), every column sums to 3."""
    weights = np.zeros((len(QUESTIONS), 10))
    for j, q in enumerate(QUESTIONS):
        family = next(f for f, qs in QUESTION_FAMILIES.items() if q in qs)
        if family == "identity":
            k = int(q.split()[-1])
            weights[j] = np.where(np.arange(10) == k, 0.5, 0.5 / 9)
        else:
            weights[j] = 1 / len(QUESTION_FAMILIES[family])
    return weights


def answer_table_fit(features: str = "additive") -> dict:
    """The best a linear answer model does with a perfect digit recogniser: logistic
    regression on the truth table of (question, digit) pairs, weighted as the task
    asks them; returns its accuracy per family and over all questions ("all").

    features="question": one-hot(question) alone, the question's prior, what a model
    that ignores the image can do; "additive": one-hot(digit) and one-hot(question)
    side by side, so the yes-logit is a(digit) + b(question), the form of late fusion;
    "bilinear": their outer product, one weight per (question, digit) pair.
    """
    from sklearn.linear_model import LogisticRegression

    if features not in ("question", "additive", "bilinear"):
        raise ValueError(
            f"features must be 'question', 'additive' or 'bilinear'; got {features!r}."
        )
    q_idx, d_idx = np.meshgrid(np.arange(len(QUESTIONS)), np.arange(10), indexing="ij")
    q_idx, d_idx = q_idx.ravel(), d_idx.ravel()
    q_hot, d_hot = np.eye(len(QUESTIONS))[q_idx], np.eye(10)[d_idx]
    if features == "question":
        X = q_hot
    elif features == "additive":
        X = np.concatenate([d_hot, q_hot], axis=1)
    else:
        X = (q_hot[:, :, None] * d_hot[:, None, :]).reshape(len(q_idx), -1)
    y = truth_table().ravel()
    w = question_weights().ravel()
    with warnings.catch_warnings():
        # scikit-learn 1.6 with SciPy >= 1.16 (Colab's stack) passes lbfgs an option
        # SciPy no longer knows and warns "Unknown solver options: iprint"; the fit
        # is unaffected, and the warning would land in the chapter's output
        warnings.filterwarnings("ignore", message="Unknown solver options")
        fitted = LogisticRegression(C=1e4, max_iter=10_000).fit(X, y, w)
    right = fitted.predict(X) == y
    shape = (len(QUESTIONS), 10)
    return _per_family((right * w).reshape(shape).sum(1), w.reshape(shape).sum(1))


def truth_table() -> np.ndarray:
    """The true answers, question (row, QUESTIONS order) by digit (column): (30, 10)."""
    return np.array([[answer_question(q, d) for d in range(10)] for q in QUESTIONS])


def _per_family(right: np.ndarray, weights: np.ndarray) -> dict:
    """Weighted accuracy per family and over all questions, from per-question sums of
    the weights of right answers (30,) and of all answers (30,)."""
    out = {}
    for family, qs in QUESTION_FAMILIES.items():
        rows = [QUESTIONS.index(q) for q in qs]
        out[family] = float(right[rows].sum() / weights[rows].sum())
    out["all"] = float(right.sum() / weights.sum())
    return out


def additive_accuracy(order) -> dict:
    """The accuracy of the best additive answer model whose digit scores a(d) rank the
    digits as `order` (lowest first), with a perfect digit recogniser, per family and
    over all questions ("all").

    An additive model answers yes where a(d) + b(q) > 0: for each question the yes
    digits are the top of the ranking, cut where b(q) says; only the ranking and each
    question's cut matter, and each question takes its best cut. Weighted as the task
    asks (question_weights).
    """
    order = np.asarray(order)
    weights, truth = question_weights(), truth_table()
    gain = (weights * (2 * truth - 1))[:, order[::-1]]  # yes instead of no, top first
    cut = np.maximum(np.cumsum(gain, axis=1).max(axis=1), 0)  # or no yes at all
    return _per_family((weights * (1 - truth)).sum(1) + cut, weights.sum(1))


# What best_additive_order() returns (tests/test_crossmodal_chapter.py checks it).
ADDITIVE_BEST_ORDER = (0, 2, 4, 1, 3, 5, 7, 9, 6, 8)


def best_additive_order(chunk: int = 200_000) -> tuple[tuple, float]:
    """A ranking of the digits with the highest `additive_accuracy` (several tie: the
    first in lexicographic order) and that accuracy over all questions, by exhaustive
    search over all 10! = 3,628,800 rankings (10 to 30 s of one CPU core): the most
    accurate any additive (late-fusion) model can be on this task. Exact: the weights
    are multiples of 1/18, so the search sums integers."""
    import itertools

    weights, truth = question_weights(), truth_table()
    units = np.rint(weights * 18).astype(np.int16)  # exact: 1/2 = 9/18, 1/18
    gain = units * (2 * truth - 1)
    base = int((units * (1 - truth)).sum())
    rankings = itertools.permutations(range(10))
    best, best_order = -1, None
    while block := list(itertools.islice(rankings, chunk)):
        tops = np.array(block)[:, ::-1]  # top first
        cuts = np.cumsum(gain[:, tops], axis=2, dtype=np.int16).max(axis=2)
        totals = np.maximum(cuts, 0).sum(axis=0)
        i = int(totals.argmax())  # the first of the block's best
        if totals[i] > best:
            best, best_order = int(totals[i]), tuple(int(d) for d in block[i])
    return best_order, (base + best) / int(units.sum())


def accuracy_by_place(table) -> dict:
    """Where a question_digit_accuracy table (30, 10) is right: the mean accuracy of
    the comparisons about the digits beside their threshold (where the answer flips
    between two neighbouring digits) and about the others, and of the identity
    questions "is it a k" about k itself and about the other digits."""
    table, truth = np.asarray(table), truth_table()
    beside = np.zeros_like(truth, dtype=bool)
    beside[:, 1:] |= truth[:, 1:] != truth[:, :-1]
    beside[:, :-1] |= truth[:, :-1] != truth[:, 1:]
    compare = [QUESTIONS.index(q) for q in QUESTION_FAMILIES["compare"]]
    c, near = table[compare], beside[compare]
    i, itself = table[IDENTITY], truth[IDENTITY].astype(bool)
    return {
        "compare, beside the threshold": float(c[near].mean()),
        "compare, elsewhere": float(c[~near].mean()),
        "identity, about k": float(i[itself].mean()),
        "identity, other digits": float(i[~itself].mean()),
    }


QUESTION_KINDS = ("parity", "larger", "smaller", "identity")


def question_kind(question: str) -> str:
    """The kind of one of QUESTIONS: its family, the comparisons split by direction
    ("larger", "smaller")."""
    for word in ("larger", "smaller"):
        if word in question.split():
            return word
    return next(f for f, qs in QUESTION_FAMILIES.items() if question in qs)


def kind_cosines(gamma, beta) -> np.ndarray:
    """How alike FiLM's coefficients are within and between kinds of question.

    gamma, beta: (30, C), QUESTIONS order (film_coefficients). c_i = [gamma_i - 1;
    beta_i], centred (the mean over the 30 questions removed, so that what every
    question shares does not count); returns the mean cosine of c_i and c_j over the
    pairs of questions of kinds (a, b), QUESTION_KINDS order, (4, 4); the diagonal
    leaves out each question's cosine with itself.
    """
    coeffs = np.concatenate([np.asarray(gamma) - 1, np.asarray(beta)], axis=1)
    centred = coeffs - coeffs.mean(axis=0)
    unit = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    cos = unit @ unit.T
    kinds = np.array([question_kind(q) for q in QUESTIONS])
    out = np.zeros((len(QUESTION_KINDS), len(QUESTION_KINDS)))
    for i, a in enumerate(QUESTION_KINDS):
        for j, b in enumerate(QUESTION_KINDS):
            block = cos[np.ix_(kinds == a, kinds == b)]
            pairs = ~np.eye(*block.shape, dtype=bool) if a == b else slice(None)
            out[i, j] = block[pairs].mean()
    return out


def family_accuracy(results: dict, framework: str) -> tuple[list, list, np.ndarray]:
    """Mean accuracy over the seeds per variant and test set of stored results:
    (variants, test sets, (variants, test sets) array)."""
    table = results["results"][framework]
    variants = list(table)
    tests = list(next(iter(table.values()))["accuracy"])
    means = np.array(
        [[np.mean(table[v]["accuracy"][t]) for t in tests] for v in variants]
    )
    return variants, tests, means


register(
    Experiment(
        name="digit_vqa",
        chapter="Cross-modal fusion",
        question="which fusion of image and question answers questions about digits, "
        "and where does late fusion fail?",
        model="DigitVQANet",
        # mfb_k2: MFB with factor 2, within 0.2 % of the parameters of gmu, cross_attn
        # and joint_attn, to separate the bilinear form from MFB's extra parameters.
        # mfb_k1: factor 1 is `product` followed by the signed square root and the L2
        # normalisation, at product's parameter count: it separates MFB's
        # normalisation (mfb_k1 against product) from its rank (mfb_k2 against mfb_k1).
        variants={
            "late": {"fusion": "late"},
            "early": {"fusion": "early"},
            "concat": {"fusion": "concat"},
            "product": {"fusion": "product"},
            "film": {"fusion": "film"},
            "gmu": {"fusion": "gmu"},
            "mfb": {"fusion": "mfb"},
            "mfb_k2": {"fusion": "mfb", "factor": 2},
            "mfb_k1": {"fusion": "mfb", "factor": 1},
            "cross_attn": {"fusion": "cross_attn"},
            "joint_attn": {"fusion": "joint_attn"},
        },
        data=load_digit_questions,
        fit={"epochs": 30, "batch_size": 64, "lr": 1e-3},
        measure=measure_vqa,
    )
)
