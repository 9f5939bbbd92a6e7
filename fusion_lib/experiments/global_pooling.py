"""Experiments of the chapter on global pooling."""

from fusion_lib.data import load_digits_on_canvas
from fusion_lib.experiments import Experiment, register

register(
    Experiment(
        name="flatten_vs_gap",
        chapter="Global pooling",
        question="trained on centred digits, which head still reads shifted ones?",
        model="HeadNet",
        variants={
            "flatten": {"head": "flatten", "width": 16, "size": 20},
            "gap": {"head": "gap", "width": 16, "size": 20},
        },
        data=load_digits_on_canvas,
        fit={"epochs": 40, "batch_size": 64, "lr": 3e-3},
    )
)
