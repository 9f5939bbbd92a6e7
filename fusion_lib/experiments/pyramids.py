"""Experiments of the chapter on feature pyramids."""

from fusion_lib.data import load_multiscale_shapes
from fusion_lib.experiments import Experiment, register

register(
    Experiment(
        name="pyramid_readout",
        chapter="Feature pyramids",
        question="do FPN features beat the coarsest level alone on small and large "
        "shapes, and does a concat top-down path beat the add one?",
        model="PyramidNet",
        # levels: every level read without a top-down path, to separate what the
        # top-down fusion adds from what reading the fine levels at all adds.
        variants={
            "coarse": {"pyramid": "coarse"},
            "levels": {"pyramid": "levels"},
            "add": {"pyramid": "add"},
            "concat": {"pyramid": "concat"},
        },
        data=load_multiscale_shapes,
        fit={"epochs": 15, "batch_size": 64, "lr": 3e-3},
    )
)
