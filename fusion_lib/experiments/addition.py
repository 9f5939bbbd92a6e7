"""Experiments of the chapter on addition."""

from fusion_lib.data import load_digits_tests
from fusion_lib.experiments import Experiment, register

register(
    Experiment(
        name="add_vs_concat",
        chapter="Addition",
        question="does concatenation's extra freedom beat addition on digits?",
        model="TwoBranchNet",
        # add_wide: addition with width 22, within 1 % of concat's parameter count, to
        # separate the fusion from the capacity concatenation adds to the next conv.
        variants={
            "add": {"fusion": "add", "width": 16},
            "concat": {"fusion": "concat", "width": 16},
            "add_wide": {"fusion": "add", "width": 22},
        },
        data=load_digits_tests,
        fit={"epochs": 60, "batch_size": 128, "lr": 1e-2},
    )
)
