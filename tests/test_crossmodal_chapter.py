"""The chapter on cross-modal fusion: the digit questions (fusion_lib.data), the
DigitVQANet of both halves (parity by weight porting, bad inputs, late fusion's
additive structure), training on (images, questions) inputs, the experiment's
measurements and the chapter's exercise checks.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

import fusion_lib.tf.models as KM  # noqa: E402
import fusion_lib.tf.training as KT  # noqa: E402
import fusion_lib.torch.models as TM  # noqa: E402
import fusion_lib.torch.training as TT  # noqa: E402
from fusion_lib import exercises, experiments  # noqa: E402
from fusion_lib.data import (  # noqa: E402
    QUESTION_FAMILIES,
    QUESTION_LENGTH,
    QUESTIONS,
    VOCAB,
    answer_question,
    ask_about_digits,
    decode_question,
    encode_question,
    load_digit_questions,
    load_digits_split,
)
from fusion_lib.exercises import WrongAnswer  # noqa: E402
from fusion_lib.experiments import crossmodal as vqa_lib  # noqa: E402
from fusion_lib.experiments.crossmodal import (  # noqa: E402
    digits_of,
    film_coefficients,
    question_digit_accuracy,
)
from fusion_lib.port import port_weights  # noqa: E402

TOL = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def vqa():
    return load_digit_questions(0)


def batch(vqa, n=24, test="test"):
    (images, questions), y = vqa[2][test]
    return images[:n], questions[:n], y[:n]


def twins(fusion, **kwargs):
    """A seeded torch DigitVQANet and its Keras twin with the ported weights."""
    torch.manual_seed(0)
    net = TM.DigitVQANet(fusion, **kwargs).eval()
    return net, port_weights(net, KM.DigitVQANet(fusion, **kwargs))


def torch_logits(net, images, questions):
    with torch.no_grad():
        return net((torch.as_tensor(images), torch.as_tensor(questions))).numpy()


def keras_logits(net, images, questions):
    return np.asarray(net((images.transpose(0, 2, 3, 1), questions), training=False))


# -- the data ---------------------------------------------------------------------


def test_questions_encode_and_decode():
    assert len(QUESTIONS) == 30 and len(set(QUESTIONS)) == 30
    for q in QUESTIONS:
        ids = encode_question(q)
        assert ids.shape == (QUESTION_LENGTH,) and ids.dtype == np.int64
        assert decode_question(ids) == q
    assert VOCAB[0] == "<pad>"
    # every question has a different bag of words: a mean of embeddings can tell them
    bags = {
        tuple(np.bincount(encode_question(q), minlength=len(VOCAB))) for q in QUESTIONS
    }
    assert len(bags) == len(QUESTIONS)


def test_answers_follow_the_questions():
    assert answer_question("is it even", 4) == 1
    assert answer_question("is it odd", 4) == 0
    assert answer_question("is it larger than 5", 6) == 1
    assert answer_question("is it larger than 5", 5) == 0
    assert answer_question("is it smaller than 5", 4) == 1
    assert answer_question("is it smaller than 5", 5) == 0
    assert answer_question("is it a 3", 3) == 1 and answer_question("is it a 3", 8) == 0


@pytest.mark.parametrize(
    "call, says",
    [
        (lambda: encode_question("is it blue"), "unknown words: \\['blue'\\]"),
        (lambda: encode_question("is it a 3 or a 4"), "at most 5 words"),
        (lambda: answer_question("is it a 12", 1), "not one of the generated"),
    ],
)
def test_bad_questions_are_refused_with_advice(call, says):
    with pytest.raises(ValueError, match=says):
        call()


def test_three_questions_per_image_one_per_family():
    digits = np.arange(10).repeat(20)
    questions, answers, index, family = ask_about_digits(digits, seed=3)
    assert questions.shape == (600, QUESTION_LENGTH)
    assert np.array_equal(index, np.arange(200).repeat(3))
    assert list(family[:3]) == list(QUESTION_FAMILIES)
    for q, a, i in zip(questions, answers, index):
        assert a == answer_question(decode_question(q), int(digits[i]))
    for name in QUESTION_FAMILIES:
        assert 0.4 < answers[family == name].mean() < 0.6, name


def test_load_digit_questions_needs_both_modalities(vqa):
    (images, questions), y, tests = vqa
    X_tr, d_tr, X_te, d_te = load_digits_split(0)
    assert images.shape == (3 * len(X_tr), 1, 8, 8) and images.dtype == np.float32
    assert questions.shape == (3 * len(X_tr), QUESTION_LENGTH)
    assert set(tests) == {"test", *QUESTION_FAMILIES, "every_question"}
    assert sum(len(tests[f][1]) for f in QUESTION_FAMILIES) == len(tests["test"][1])
    # the same question gets both answers (about different digits), and the same
    # image gets both answers (to different questions): neither modality suffices
    texts = np.array([decode_question(q) for q in questions])
    for q in ("is it even", "is it larger than 4", "is it a 7"):
        assert set(y[texts == q]) == {0, 1}
    per_image = y.reshape(-1, 3)
    assert (per_image.min(1) != per_image.max(1)).any()
    # the test images are the split's test images, every one asked every question
    (every_images, every_questions), every_y = tests["every_question"]
    assert np.array_equal(every_images[:: len(QUESTIONS)], X_te)
    assert np.array_equal(digits_of(every_y), d_te)
    assert decode_question(every_questions[len(QUESTIONS) + 2]) == QUESTIONS[2]


def test_the_seed_fixes_the_split_and_the_questions(vqa):
    again = load_digit_questions(0)
    other = load_digit_questions(1)
    assert np.array_equal(vqa[0][1], again[0][1]) and np.array_equal(vqa[1], again[1])
    assert not np.array_equal(vqa[0][1], other[0][1])


# -- the network, both halves -------------------------------------------------------


@pytest.mark.parametrize("fusion", TM.VQA_FUSIONS)
def test_parity_by_weight_porting(vqa, fusion):
    images, questions, _ = batch(vqa)
    net, net_k = twins(fusion)
    assert TT.count_params(net) == KT.count_params(net_k)
    want = torch_logits(net, images, questions)
    assert want.shape == (len(images), 2)
    np.testing.assert_allclose(keras_logits(net_k, images, questions), want, **TOL)


def test_parity_of_the_factor_and_width_arguments(vqa):
    images, questions, _ = batch(vqa, 8)
    net, net_k = twins("mfb", factor=2, width=16)
    np.testing.assert_allclose(
        keras_logits(net_k, images, questions),
        torch_logits(net, images, questions),
        **TOL,
    )


def test_fusions_that_skip_embeddings_have_none():
    assert not hasattr(TM.DigitVQANet("early"), "word_embedding")
    assert TM.DigitVQANet("early").conv1.in_channels == 1 + len(VOCAB)


def test_the_mfb_control_has_the_others_parameter_budget():
    counts = {
        name: TT.count_params(TM.DigitVQANet(**kwargs))
        for name, kwargs in experiments.get("digit_vqa").variants.items()
    }
    for other in ("gmu", "cross_attn", "joint_attn"):
        assert abs(counts["mfb_k2"] / counts[other] - 1) < 0.005, other
    assert counts["mfb"] > 1.3 * counts["mfb_k2"]
    assert counts["mfb_k1"] == counts["product"]  # the normalisation costs nothing


def normalised(h):
    s = np.sign(h) * np.sqrt(np.abs(h))
    return s / np.linalg.norm(s, axis=1, keepdims=True)


def test_mfb_of_factor_one_is_the_product_normalised(vqa):
    """mfb_k1 is exactly `product` followed by MFB's signed root and L2 norm, in both
    halves: copy product's weights into it and compare the fused vectors."""
    images, questions, _ = batch(vqa, 8)
    product, product_k = twins("product")
    k1 = TM.DigitVQANet("mfb", factor=1).eval()
    state = {
        k.replace("image_proj", "mfb.proj.0").replace("question_proj", "mfb.proj.1"): w
        for k, w in product.state_dict().items()
    }
    k1.load_state_dict(state)
    k1_k = port_weights(k1, KM.DigitVQANet("mfb", factor=1))
    inputs = (torch.as_tensor(images), torch.as_tensor(questions))
    with torch.no_grad():
        h, f = product.fused(inputs).numpy(), k1.fused(inputs).numpy()
    np.testing.assert_allclose(f, normalised(h), **TOL)
    inputs_k = (images.transpose(0, 2, 3, 1), questions)
    h_k, f_k = np.asarray(product_k.fused(inputs_k)), np.asarray(k1_k.fused(inputs_k))
    np.testing.assert_allclose(f_k, normalised(h_k), **TOL)
    assert not np.allclose(h, normalised(h), atol=1e-2)  # the normalisation does act


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_late_fusion_is_additive_and_the_others_are_not(vqa, framework):
    images, questions, _ = batch(vqa, 6)
    for fusion, additive in [("late", True), ("film", False), ("mfb", False)]:
        net, net_k = twins(fusion)
        if framework == "torch":
            def logits_of(i, q, net=net):
                return torch_logits(net, i, q)
        else:
            def logits_of(i, q, net=net_k):
                return keras_logits(net, i, q)
        n = len(images)
        margin = np.empty((n, n))  # margin[a, b]: image a asked question b
        for b in range(n):
            logits = logits_of(images, np.repeat(questions[b : b + 1], n, axis=0))
            margin[:, b] = logits[:, 1] - logits[:, 0]
        # the interaction contrast of every 2 x 2 square of images and questions
        square = (
            margin[:, None, :, None]
            + margin[None, :, None, :]
            - margin[:, None, None, :]
            - margin[None, :, :, None]
        )
        assert (np.abs(square).max() < 1e-4) == additive, fusion


@pytest.mark.parametrize(
    "make, says",
    [
        (lambda i, q: i, "inputs = \\(images, questions\\)"),
        (lambda i, q: (i, q, q), "inputs = \\(images, questions\\)"),
        (lambda i, q: (i[:, 0], q), "one channel"),
        (lambda i, q: (i, q.astype("float32")), "integer token ids"),
        (lambda i, q: (i, q[:, None]), "integer token ids"),
        (lambda i, q: (i[:3], q), "3 images but 4 questions"),
        (lambda i, q: (i, q + 30), "\\[0, 19\\)"),
    ],
)
def test_bad_inputs_are_refused_with_advice(vqa, make, says):
    images, questions, _ = batch(vqa, 4)
    net, net_k = TM.DigitVQANet("film"), KM.DigitVQANet("film")
    inputs = make(images, questions)  # NumPy, then each array as a torch tensor
    inputs = (
        tuple(torch.as_tensor(a) for a in inputs)
        if isinstance(inputs, tuple)
        else torch.as_tensor(inputs)
    )
    with pytest.raises(ValueError, match=says):
        net(inputs)
    with pytest.raises(ValueError, match=says):
        net_k(make(images.transpose(0, 2, 3, 1), questions))


def test_the_other_layout_is_named(vqa):
    images, questions, _ = batch(vqa, 4)
    with pytest.raises(ValueError, match="That is NHWC: use images.permute"):
        TM.DigitVQANet("late")(
            (torch.as_tensor(images.transpose(0, 2, 3, 1)), torch.as_tensor(questions))
        )
    with pytest.raises(ValueError, match="That is NCHW: use images.transpose"):
        KM.DigitVQANet("late")((images, questions))


@pytest.mark.parametrize("models", [TM, KM], ids=["torch", "tf"])
def test_bad_arguments_are_refused(models):
    with pytest.raises(ValueError, match="fusion must be one of"):
        models.DigitVQANet("sum")
    with pytest.raises(ValueError, match="divisible by num_heads=3"):
        models.DigitVQANet("joint_attn", width=32, num_heads=3)


# -- training on (images, questions) --------------------------------------------------


def test_both_halves_train_on_a_tuple_of_inputs(vqa):
    (images, questions), y, _ = vqa
    X, y = (images[:256], questions[:256]), y[:256]
    torch.manual_seed(0)
    net = TM.DigitVQANet("film")
    loss = TT.train_classifier(net, X, y, epochs=3, lr=3e-3)
    assert len(loss) == 3 and np.isfinite(loss).all() and loss[-1] < loss[0]
    assert 0.0 <= TT.accuracy(net, X, y) <= 1.0
    keras.utils.set_random_seed(0)
    net_k = KM.DigitVQANet("film")
    loss_k = KT.train_classifier(net_k, experiments._nhwc(X), y, epochs=3, lr=3e-3)
    assert len(loss_k) == 3 and np.isfinite(loss_k).all() and loss_k[-1] < loss_k[0]
    assert 0.0 <= KT.accuracy(net_k, list(experiments._nhwc(X)), y) <= 1.0


class TwoInputBN(torch.nn.Module):
    """A BatchNorm over a feature of two inputs: (a, b) -> BN(a + b)."""

    def __init__(self):
        super().__init__()
        self.norm = torch.nn.BatchNorm1d(2)

    def forward(self, inputs):
        a, b = inputs
        return self.norm(a + b)


class TwoInputBNK(keras.Model):
    def __init__(self):
        super().__init__()
        self.norm = keras.layers.BatchNormalization(epsilon=1e-5)
        self.norm.build((None, 2))

    def call(self, inputs, training=None):
        a, b = inputs
        return self.norm(a + b, training=training)


def test_precise_batchnorm_reads_tuples_of_inputs():
    rng = np.random.default_rng(0)
    a, b = rng.normal(2.0, 1.0, (100, 2)), rng.normal(1.0, 2.0, (100, 2))
    a, b = a.astype("float32"), b.astype("float32")
    total = a + b
    net = TwoInputBN()
    TT.recalibrate_batchnorm(net, (a, b), batch_size=25)
    # equal-weight average of the four batch means: the mean of all 100
    np.testing.assert_allclose(net.norm.running_mean.numpy(), total.mean(0), rtol=1e-5)
    net_k = TwoInputBNK()
    KT.recalibrate_batchnorm(net_k, (a, b), batch_size=25)
    np.testing.assert_allclose(
        np.asarray(net_k.norm.moving_mean), total.mean(0), rtol=1e-5
    )


def test_the_runner_moves_only_image_arrays_to_nhwc():
    images = np.zeros((2, 1, 8, 8), np.float32)
    tokens = np.zeros((2, 5), np.int64)
    moved = experiments._nhwc((images, tokens))
    assert isinstance(moved, tuple)
    assert moved[0].shape == (2, 8, 8, 1) and moved[1] is tokens
    assert experiments._nhwc(images).shape == (2, 8, 8, 1)  # one array, as before
    net = TM.DigitVQANet("concat")
    logits = experiments.predict("torch", net, (images, tokens))
    assert logits.shape == (2, 2)


def test_a_live_run_of_the_experiment(vqa):
    result = experiments.run(
        "digit_vqa", frameworks=("torch",), seeds=(0,), variants=["late"], epochs=1
    )
    row = result["results"]["torch"]["late"]
    assert set(row["accuracy"]) == {"test", *QUESTION_FAMILIES, "every_question"}
    table = np.array(row["measures"]["question_digit_accuracy"][0])
    assert table.shape == (len(QUESTIONS), 10) and ((0 <= table) & (table <= 1)).all()
    # every_question asks every question about every image equally often per digit
    every = row["accuracy"]["every_question"][0]
    d_te = load_digits_split(0)[3]
    weights = np.bincount(d_te, minlength=10) / len(d_te)
    assert abs((table * weights).sum(1).mean() - every) < 1e-3


# -- what the experiment measures -------------------------------------------------


def test_question_digit_accuracy_of_an_oracle(vqa):
    """A network that answers from the true answers scores 1 everywhere."""
    (images, questions), y = vqa[2]["every_question"]
    n = 40 * len(QUESTIONS)
    X, y = (images[:n], questions[:n]), y[:n]

    class Oracle(torch.nn.Module):
        def forward(self, inputs):
            return torch.nn.functional.one_hot(torch.as_tensor(y), 2).float()

    table = question_digit_accuracy("torch", Oracle(), X, y)
    seen = np.isin(np.arange(10), digits_of(y))
    assert table.shape == (30, 10) and np.all(table[:, seen] == 1.0)


def test_film_coefficients_agree_between_the_halves():
    net, net_k = twins("film")
    (gamma, beta), (gamma_k, beta_k) = (
        film_coefficients("torch", net),
        film_coefficients("tf", net_k),
    )
    assert gamma.shape == beta.shape == (len(QUESTIONS), 32)
    np.testing.assert_allclose(gamma_k, gamma, **TOL)
    np.testing.assert_allclose(beta_k, beta, **TOL)


# -- the exercise checks ---------------------------------------------------------------


@pytest.fixture(autouse=True)
def fresh_tries():
    exercises._tries.clear()


def mfb(x1, x2, U, V, factor):
    p = (x1 @ U) * (x2 @ V)
    s = p.reshape(len(p), -1, factor).sum(-1)
    s = np.sign(s) * np.sqrt(np.abs(s))
    return s / np.linalg.norm(s, axis=-1, keepdims=True)


def test_low_rank_bilinear_check_accepts_mfb_and_the_library_agrees(capsys):
    exercises.check_low_rank_bilinear(mfb)
    assert capsys.readouterr().out.startswith("Correct:")
    from fusion_lib.torch.crossmodal import LowRankBilinear

    layer = LowRankBilinear((3, 4), 2, factor=5)
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=(6, 3)), rng.normal(size=(6, 4))
    with torch.no_grad():
        for proj in layer.proj:
            proj.bias.zero_()
        got = layer([torch.as_tensor(x1).float(), torch.as_tensor(x2).float()])
    U, V = (p.weight.detach().double().numpy().T for p in layer.proj)
    np.testing.assert_allclose(got.numpy(), mfb(x1, x2, U, V, 5), atol=1e-5)


def _strided(x1, x2, U, V, factor):
    p = (x1 @ U) * (x2 @ V)
    s = p.reshape(len(p), factor, -1).sum(1)
    s = np.sign(s) * np.sqrt(np.abs(s))
    return s / np.linalg.norm(s, axis=-1, keepdims=True)


def _no_root(x1, x2, U, V, factor):
    s = ((x1 @ U) * (x2 @ V)).reshape(len(x1), -1, factor).sum(-1)
    return s / np.linalg.norm(s, axis=-1, keepdims=True)


def _no_norm(x1, x2, U, V, factor):
    s = ((x1 @ U) * (x2 @ V)).reshape(len(x1), -1, factor).sum(-1)
    return np.sign(s) * np.sqrt(np.abs(s))


@pytest.mark.parametrize(
    "wrong, says",
    [
        (_strided, "every o-th element"),
        (_no_root, "signed square root is missing"),
        (_no_norm, "L2 normalisation is missing"),
        (lambda x1, x2, U, V, k: np.sqrt(np.abs(mfb(x1, x2, U, V, k))), "differs"),
    ],
)
def test_low_rank_bilinear_check_names_the_mistake(wrong, says):
    with pytest.raises(WrongAnswer, match=says):
        exercises.check_low_rank_bilinear(wrong)


def film_from_concat(W, b, C):
    O, D = W.shape[0], W.shape[1] - C
    G = np.concatenate([np.zeros((O, D)), W[:, C:]])
    return W[:, :C], G, np.concatenate([np.zeros(O), b])


def test_concat_as_film_check_accepts_the_split(capsys):
    exercises.check_concat_as_film(film_from_concat)
    assert capsys.readouterr().out.startswith("Correct:")


def _gamma_two(W, b, C):
    W_x, G, g = film_from_concat(W, b, C)
    return W_x, G, g + np.concatenate([np.ones(W.shape[0]), np.zeros(W.shape[0])])


def _beta_first(W, b, C):
    W_x, G, g = film_from_concat(W, b, C)
    O = W.shape[0]
    return W_x, np.concatenate([G[O:], G[:O]]), np.concatenate([g[O:], g[:O]])


@pytest.mark.parametrize(
    "wrong, says",
    [
        (_gamma_two, "gamma = 1 \\+ delta = 2"),
        (_beta_first, "you put beta first"),
        (lambda W, b, C: (W[:, :C], W[:, C:], b), "G of shape"),
        (lambda W, b, C: (W,), "returned 1 items"),
    ],
)
def test_concat_as_film_check_names_the_mistake(wrong, says):
    with pytest.raises(WrongAnswer, match=says):
        exercises.check_concat_as_film(wrong)


# -- what an additive (late-fusion) model can answer --------------------------------


def test_question_weights_follow_the_generator():
    weights = vqa_lib.question_weights()
    assert weights.shape == (len(QUESTIONS), 10)
    np.testing.assert_allclose(weights.sum(axis=0), 3.0)  # three questions per image
    digits = np.arange(10).repeat(2000)
    questions, _, index, _ = ask_about_digits(digits, seed=0)
    texts = [decode_question(q) for q in questions]
    counts = np.zeros_like(weights)
    for text, i in zip(texts, index):
        counts[QUESTIONS.index(text), digits[i]] += 1
    np.testing.assert_allclose(counts / 2000, weights, atol=0.03)


def test_an_additive_model_cannot_answer_what_a_bilinear_one_can():
    additive = vqa_lib.answer_table_fit("additive")
    assert additive["parity"] == pytest.approx(0.5)
    assert additive["identity"] == pytest.approx(0.5)
    assert vqa_lib.answer_table_fit("bilinear") == pytest.approx(
        dict.fromkeys(additive, 1.0)
    )
    with pytest.raises(ValueError, match="'additive' or 'bilinear'"):
        vqa_lib.answer_table_fit("product")
    # the least-loss additive model is no better than the question alone
    assert vqa_lib.answer_table_fit("question") == pytest.approx(additive, abs=1e-3)
    assert vqa_lib.answer_table_fit("question")["compare"] > 0.7  # priors are lopsided


def brute_force_additive(order):
    """additive_accuracy by trying every cut of every question (no cumulative sums)."""
    weights, truth = vqa_lib.question_weights(), vqa_lib.truth_table()
    order = list(order)
    right = 0.0
    for j in range(len(QUESTIONS)):
        best = 0.0
        for cut in range(11):
            yes = set(order[10 - cut :])
            says = np.array([d in yes for d in range(10)])
            best = max(best, (weights[j] * (says == truth[j])).sum())
        right += best
    return right / weights.sum()


def test_additive_accuracy_takes_each_questions_best_cut():
    shuffled = (9, 2, 5, 0, 7, 1, 8, 3, 6, 4)
    for order in [range(10), vqa_lib.ADDITIVE_BEST_ORDER, shuffled]:
        got = vqa_lib.additive_accuracy(order)["all"]
        assert got == pytest.approx(brute_force_additive(order))
    # a(d) = d answers every "larger than k": the comparisons that threshold one score
    larger = [QUESTIONS.index(f"is it larger than {k}") for k in range(9)]
    weights, truth = vqa_lib.question_weights(), vqa_lib.truth_table()
    gain = (weights * (2 * truth - 1))[larger][:, ::-1]
    best = (weights * (1 - truth))[larger].sum(1) + np.cumsum(gain, 1).max(1)
    np.testing.assert_allclose(best, weights[larger].sum(1))


def test_the_stored_best_ranking_is_what_the_exhaustive_search_finds():
    """All 10! rankings (about 10 s): none answers more than ADDITIVE_BEST_ORDER, the
    number the chapter prints, which is far above the least-loss additive model."""
    order, accuracy = vqa_lib.best_additive_order()
    assert order == vqa_lib.ADDITIVE_BEST_ORDER
    best = vqa_lib.additive_accuracy(order)["all"]
    assert accuracy == pytest.approx(best)
    assert best > vqa_lib.answer_table_fit("additive")["all"] + 0.15


# -- the chapter's analyses of the stored results ------------------------------------


def test_accuracy_by_place_splits_the_comparisons_at_their_thresholds():
    ones = vqa_lib.accuracy_by_place(np.ones((len(QUESTIONS), 10)))
    assert ones == pytest.approx(dict.fromkeys(ones, 1.0))
    zeros = vqa_lib.accuracy_by_place(np.zeros((len(QUESTIONS), 10)))
    assert zeros == pytest.approx(dict.fromkeys(ones, 0.0))
    table = np.ones((len(QUESTIONS), 10))
    row = QUESTIONS.index("is it larger than 4")
    table[row, [4, 5]] = 0.0  # wrong only about the two digits beside 4 | 5
    got = vqa_lib.accuracy_by_place(table)
    assert got["compare, beside the threshold"] < 1.0
    assert got["compare, elsewhere"] == 1.0
    table = np.ones((len(QUESTIONS), 10))
    table[QUESTIONS.index("is it a 3"), 3] = 0.0  # wrong about the 3 itself
    got = vqa_lib.accuracy_by_place(table)
    assert got["identity, about k"] == pytest.approx(0.9)
    assert got["identity, other digits"] == 1.0


def test_question_kinds_split_the_comparisons_by_direction():
    kinds = [vqa_lib.question_kind(q) for q in QUESTIONS]
    assert kinds.count("parity") == 2 and kinds.count("identity") == 10
    assert kinds.count("larger") == kinds.count("smaller") == 9
    assert set(kinds) == set(vqa_lib.QUESTION_KINDS)


def test_kind_cosines_are_centred_and_leave_out_the_self_pairs():
    kinds = np.array([vqa_lib.question_kind(q) for q in QUESTIONS])
    rng = np.random.default_rng(0)
    directions = dict(zip(vqa_lib.QUESTION_KINDS, np.eye(4, 8)))
    shared = 5.0 * np.ones(8)  # what every question shares: removed by the centring
    coeffs = np.stack([shared + directions[k] for k in kinds])
    coeffs += 1e-3 * rng.normal(size=coeffs.shape)
    gamma, beta = 1 + coeffs[:, :4], coeffs[:, 4:]
    cos = vqa_lib.kind_cosines(gamma, beta)
    assert cos.shape == (4, 4)
    np.testing.assert_allclose(cos, cos.T, atol=1e-12)
    assert np.all(np.diag(cos) > 0.99)  # one direction per kind, tiny noise
    assert np.all(cos[~np.eye(4, dtype=bool)] < 0)  # centred: kinds point apart
    raw = coeffs / np.linalg.norm(coeffs, axis=1, keepdims=True)
    assert (raw @ raw.T).min() > 0.9  # uncentred, the shared part makes all alike


def test_summary_gives_one_seed_no_spread():
    row = {"params": 10, "accuracy": {"test": [0.5]}, "loss": [[0.7]]}
    one = experiments.summary({"results": {"torch": {"v": row}}})
    assert one.endswith("test accuracy 0.500, 1 seed, 10 parameters")
    assert "±" not in one
    row["accuracy"]["test"] = [0.5, 0.7]
    two = experiments.summary({"results": {"torch": {"v": row}}})
    assert "0.600 ± 0.100 over 2 seeds" in two  # the population std, ddof=0
