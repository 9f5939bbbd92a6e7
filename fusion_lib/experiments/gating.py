"""Experiments of the chapter on multiplicative fusion and gating."""

from fusion_lib.data import load_digits_tests
from fusion_lib.experiments import Experiment, register

NET = {"width": 32, "reduction": 4}

register(
    Experiment(
        name="se_position",
        chapter="Multiplication and gating",
        question="does an SE block help a small digits CNN, right before pooling "
        "or between its two convolutions?",
        model="AttentionNet",
        variants={
            "none": {"attention": "none", **NET},
            "se_head": {"attention": "se", "position": "head", **NET},
            "se_middle": {"attention": "se", "position": "middle", **NET},
        },
        data=load_digits_tests,
        fit={"epochs": 20, "batch_size": 128, "lr": 1e-2},
    )
)
