"""The book's figures: data-flow diagrams, experiment results over seeds, feature maps.

Framework-free (matplotlib and NumPy), so every figure looks the same in the HTML book,
in Jupyter and in Colab. Each chapter draws at least three: the operator's data flow
(`Diagram`), the experiment's result (`seed_spread`, `loss_curves`) and what the fused
features or gates look like (`show_maps`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

# One colour per kind of box, the same in every chapter's diagrams.
KIND_COLOURS = {
    "tensor": "#dbe9f6",  # a feature map or vector
    "op": "#fde3c8",  # a parameter-free operation (concat, add, multiply, pool)
    "layer": "#d9f0d3",  # a layer with weights (conv, linear, norm)
    "gate": "#f3d7ef",  # a sigmoid / softmax producing weights
}
FRAMEWORK_MARKERS = {"torch": "o", "tf": "s"}
FRAMEWORK_NAMES = {"torch": "PyTorch", "tf": "Keras"}


class Diagram:
    """A box-and-arrow data-flow diagram on a grid of (column, row) positions.

    d = Diagram(cols=4, rows=2)
    a = d.box(0, 0, "x1\\n(N, C1, H, W)", "tensor"); b = d.box(0, 1, "x2", "tensor")
    c = d.box(1, 0.5, "concat", "op"); d.arrow(a, c); d.arrow(b, c)
    Kinds: tensor, op, layer, gate (colours in KIND_COLOURS, explained by d.legend()).
    """

    def __init__(self, cols: float, rows: float, title: str = "", scale: float = 1.9):
        width, height = max(cols, 1) * scale, max(rows, 1) * scale * 0.62
        self.fig, self.ax = plt.subplots(figsize=(min(width, 9.0), height + 0.5))
        self.ax.set_xlim(-0.6, cols - 0.4)
        self.ax.set_ylim(rows - 0.4, -0.6)
        self.ax.axis("off")
        self.kinds: set[str] = set()
        if title:
            self.ax.set_title(title, fontsize=11)

    def box(self, col: float, row: float, text: str, kind: str = "tensor") -> tuple:
        if kind not in KIND_COLOURS:
            raise ValueError(
                f"kind must be one of {sorted(KIND_COLOURS)}; got {kind!r}."
            )
        self.kinds.add(kind)
        patch = FancyBboxPatch(
            (col - 0.42, row - 0.28),
            0.84,
            0.56,
            boxstyle="round,pad=0.02,rounding_size=0.08",
            facecolor=KIND_COLOURS[kind],
            edgecolor="#444444",
            linewidth=1.0,
        )
        self.ax.add_patch(patch)
        self.ax.text(col, row, text, ha="center", va="center", fontsize=8.5)
        return (col, row)

    def arrow(
        self, start: tuple, end: tuple, label: str = "", dashed: bool = False
    ) -> None:
        (x0, y0), (x1, y1) = start, end
        dx, dy = x1 - x0, y1 - y0
        # leave the boxes' edges: 0.42 wide, 0.28 high (half sizes)
        t = min(0.42 / abs(dx) if dx else np.inf, 0.28 / abs(dy) if dy else np.inf)
        a = (x0 + t * dx, y0 + t * dy)
        b = (x1 - t * dx, y1 - t * dy)
        self.ax.add_patch(
            FancyArrowPatch(
                a,
                b,
                arrowstyle="-|>",
                mutation_scale=11,
                linewidth=1.1,
                color="#333333",
                linestyle="--" if dashed else "-",
            )
        )
        if label:
            self.ax.text(
                (a[0] + b[0]) / 2,
                (a[1] + b[1]) / 2 - 0.08,
                label,
                ha="center",
                va="bottom",
                fontsize=7.5,
                color="#333333",
            )

    def legend(self) -> None:
        from matplotlib.patches import Patch

        handles = [
            Patch(facecolor=KIND_COLOURS[k], edgecolor="#444444", label=k)
            for k in KIND_COLOURS
            if k in self.kinds
        ]
        self.ax.legend(
            handles=handles,
            loc="lower center",
            ncol=len(handles),
            fontsize=8,
            frameon=False,
            bbox_to_anchor=(0.5, -0.12),
        )

    def show(self):
        self.legend()
        self.fig.tight_layout()
        return self.fig


def seed_spread(
    ax, results: dict, test: str | None = None, ylabel: str = "test accuracy"
):
    """Every seed as a dot, mean ± std as a bar, per variant, one colour per framework.

    results: the dict from fusion_lib.experiments.run or .load.
    """
    frameworks = list(results["results"])
    variants = list(next(iter(results["results"].values())))
    offsets = (
        np.linspace(-0.15, 0.15, len(frameworks)) if len(frameworks) > 1 else [0.0]
    )
    for f, (framework, offset) in enumerate(zip(frameworks, offsets)):
        for v, variant in enumerate(variants):
            row = results["results"][framework][variant]
            accs = np.array(row["accuracy"][test or next(iter(row["accuracy"]))])
            x = v + offset
            ax.scatter(
                [x] * len(accs),
                accs,
                color=f"C{f}",
                alpha=0.45,
                s=18,
                marker=FRAMEWORK_MARKERS.get(framework, "o"),
            )
            ax.errorbar(
                x,
                accs.mean(),
                yerr=accs.std(),
                fmt=FRAMEWORK_MARKERS.get(framework, "o"),
                color=f"C{f}",
                capsize=5,
                label=f"{FRAMEWORK_NAMES.get(framework, framework)}"
                if v == 0
                else None,
            )
    ax.set_xticks(range(len(variants)), variants)
    ax.set_xlim(-0.6, len(variants) - 0.4)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(
        fontsize=8,
        title=f"mean ± std, {len(results['config']['seeds'])} seeds",
        title_fontsize=8,
    )
    return ax


def loss_curves(ax, results: dict, framework: str = "torch"):
    """Training loss per epoch, mean over seeds with the min-max band, per variant."""
    for v, (variant, row) in enumerate(results["results"][framework].items()):
        curves = np.array(row["loss"])
        epochs = np.arange(1, curves.shape[1] + 1)
        ax.plot(epochs, curves.mean(0), color=f"C{v}", label=variant)
        ax.fill_between(epochs, curves.min(0), curves.max(0), color=f"C{v}", alpha=0.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"training loss ({FRAMEWORK_NAMES.get(framework, framework)})")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    return ax


def show_maps(
    maps,
    titles=None,
    cmap: str = "viridis",
    label: str = "value",
    shared_scale: bool = True,
    ncols: int | None = None,
):
    """A row (or grid) of 2-D maps with colour bars; returns the figure.

    maps: a sequence of (H, W) arrays. shared_scale=True puts every panel on one colour
    scale with one colour bar, so values compare across panels.
    """
    maps = [np.asarray(m, dtype=float) for m in maps]
    if any(m.ndim != 2 for m in maps):
        raise ValueError(
            f"show_maps needs 2-D (H, W) maps; got shapes {[m.shape for m in maps]}."
        )
    ncols = ncols or len(maps)
    nrows = int(np.ceil(len(maps) / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(1.9 * ncols + 0.8, 1.9 * nrows + 0.3), squeeze=False
    )
    lo, hi = min(m.min() for m in maps), max(m.max() for m in maps)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= len(maps):
            continue
        kwargs = {"vmin": lo, "vmax": hi} if shared_scale else {}
        image = ax.imshow(maps[i], cmap=cmap, **kwargs)
        if titles:
            ax.set_title(titles[i], fontsize=9)
        if not shared_scale:
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if shared_scale:
        fig.colorbar(
            image, ax=axes.ravel().tolist(), fraction=0.03, pad=0.02, label=label
        )
    return fig
