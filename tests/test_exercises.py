"""The exercise checks as a grader relies on them (fusion_lib/exercises.py)."""

import inspect
import subprocess
import sys

import numpy as np
import pytest
from test_library import _split_reduce  # the split form, shared with its tests

from fusion_lib import exercises
from fusion_lib.exercises import WrongAnswer

CHECKS = {
    name: fn
    for name, fn in inspect.getmembers(exercises, inspect.isfunction)
    if name.startswith("check_")
}


@pytest.fixture(autouse=True)
def fresh_tries():
    exercises._tries.clear()


def test_every_check_uses_the_shared_loop():
    for name, check in CHECKS.items():
        assert "_grade(" in inspect.getsource(check), name
    assert "assert " not in inspect.getsource(exercises), "never grade with assert"


def test_wrong_answers_fail_under_python_O():
    code = (
        "from fusion_lib.exercises import check_se_params, WrongAnswer\n"
        "try:\n    check_se_params(lambda C, r: 0)\n"
        "except WrongAnswer:\n    print('refused')\n"
    )
    out = subprocess.run(
        [sys.executable, "-O", "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "refused"


@pytest.mark.parametrize("name", sorted(CHECKS))
@pytest.mark.parametrize(
    "answer, says",
    [(None, "returned None"), ("text", "string"), ([1], "")],
)
def test_a_wrong_type_of_answer_gets_a_diagnosis(name, answer, says):
    check = CHECKS[name]
    def fn(*args):
        return answer

    with pytest.raises(WrongAnswer) as err:
        check(fn)
    assert says in str(err.value)
    assert "Traceback" not in str(err.value)


def test_not_a_function_gets_a_diagnosis():
    with pytest.raises(WrongAnswer, match="needs your function itself"):
        exercises.check_to_channels_last("x.transpose(0, 2, 3, 1)")


def test_a_crash_in_the_readers_code_is_diagnosed():
    with pytest.raises(WrongAnswer, match="your function raised ZeroDivisionError"):
        exercises.check_se_params(lambda C, r: C // 0)


def test_the_hint_comes_only_after_a_first_wrong_try():
    wrong = lambda C, r: 2 * C * (C // r)  # noqa: E731  (forgets the biases)
    with pytest.raises(WrongAnswer) as first:
        exercises.check_se_params(wrong)
    assert "missing the biases" in str(first.value) and "Hint" not in str(first.value)
    with pytest.raises(WrongAnswer) as second:
        exercises.check_se_params(wrong)
    assert "Hint:" in str(second.value)


def _via_plain_arrays(w, xs):
    return np.einsum("oc,chw->ohw", w, np.concatenate([np.asarray(x) for x in xs]))


def _via_list_comprehension(w, xs):
    rows = np.array([channel for x in xs for channel in np.asarray(x)])
    return np.einsum("oc,chw->ohw", w, rows)


def _via_torch_cat(w, xs):
    import torch

    joined = torch.cat([torch.from_numpy(np.asarray(x)) for x in xs])
    return torch.einsum("oc,chw->ohw", torch.from_numpy(w), joined).numpy()


def _via_np_concatenate(w, xs):
    return np.einsum("oc,chw->ohw", w, np.concatenate(xs))


def test_split_reduce_accepts_the_split_form(capsys):
    exercises.check_split_reduce(_split_reduce)
    assert capsys.readouterr().out.startswith("Correct:")


@pytest.mark.parametrize(
    "route, says",
    [
        (_via_np_concatenate, "np.concatenate was called"),
        (_via_plain_arrays, "as much as the concatenated input"),
        (_via_list_comprehension, "as much as the concatenated input"),
        (_via_torch_cat, "as much as the concatenated input"),
    ],
)
def test_split_reduce_refuses_every_route_to_the_concatenation(route, says):
    if route is _via_torch_cat and not sys.platform.startswith("linux"):
        pytest.skip("torch allocations are measured through /proc on Linux")
    with pytest.raises(WrongAnswer, match=says):
        exercises.check_split_reduce(route)


def test_messages_fit_the_books_width(capsys):
    exercises.check_tied_concat_kernel(lambda w: np.concatenate([w, w], axis=1))

    def untouched(x):
        raise NotImplementedError

    exercises.check_to_channels_last(untouched)
    for line in capsys.readouterr().out.splitlines():
        assert len(line) <= 88, line


def _untouched(*args):
    raise NotImplementedError


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_an_untouched_exercise_shows_no_error_to_a_reader(name, capsys, monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("FUSION_LIB_GRADING", raising=False)
    assert CHECKS[name](_untouched) is None
    assert capsys.readouterr().out.startswith("Not attempted yet")


@pytest.mark.parametrize("name", sorted(CHECKS))
@pytest.mark.parametrize(
    "variable, value",
    [("NBGRADER_EXECUTION", "autograde"), ("NBGRADER_EXECUTION", "validate"),
     ("FUSION_LIB_GRADING", "1")],
)
def test_an_untouched_exercise_fails_under_a_grader(name, variable, value, monkeypatch):
    """nbgrader sets NBGRADER_EXECUTION in the kernel it autogrades with: an untouched
    answer must make the check cell fail (zero points), not print and pass."""
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.setenv(variable, value)
    with pytest.raises(WrongAnswer, match=r"Not attempted: (.|\n)* scores\szero"):
        CHECKS[name](_untouched)
