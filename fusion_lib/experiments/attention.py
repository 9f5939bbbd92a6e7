"""Experiments of the chapter on spatial and mixed attention."""

from fusion_lib.data import load_digits_tests
from fusion_lib.experiments import Experiment, register

NET = {"width": 32, "reduction": 4}

register(
    Experiment(
        name="attention_blocks",
        chapter="Spatial and mixed attention",
        question="CBAM, BAM with the paper's sum and BAM with the official code's "
        "product, each trained on its own, against no block",
        model="AttentionNet",
        variants={
            "none": {"attention": "none", **NET},
            "cbam": {"attention": "cbam", **NET},
            "bam_sum": {"attention": "bam", "combine": "sum", **NET},
            "bam_product": {"attention": "bam", "combine": "product", **NET},
        },
        data=load_digits_tests,
        fit={"epochs": 20, "batch_size": 128, "lr": 1e-2},
    )
)
