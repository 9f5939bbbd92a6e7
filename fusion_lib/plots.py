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
    d.skip(a, c) draws a dashed skip connection over the boxes of a row.
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

    def skip(
        self, start: tuple, end: tuple, label: str = "", rise: float = 0.22
    ) -> None:
        """A dashed skip connection from the top of box `start` to the top of box `end`
        of the same row: up by `rise` above the boxes, across, and down with an
        arrowhead, so it clears the boxes in between; `label` sits on the top run."""
        (x0, y0), (x1, y1) = start, end
        top = min(y0, y1) - 0.28 - rise  # rows grow downwards; 0.28: half a box
        style = {"color": "#333333", "linewidth": 1.1, "linestyle": "--"}
        self.ax.plot([x0, x0, x1], [y0 - 0.28, top, top], **style)
        self.ax.add_patch(
            FancyArrowPatch(
                (x1, top), (x1, y1 - 0.28), arrowstyle="-|>", mutation_scale=11, **style
            )
        )
        if label:
            self.ax.text(
                (x0 + x1) / 2,
                top - 0.03,
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

    results: the dict from fusion_lib.experiments.run or .load (its score: accuracy,
    or the experiment's metric).
    """
    frameworks = list(results["results"])
    variants = list(next(iter(results["results"].values())))
    offsets = (
        np.linspace(-0.15, 0.15, len(frameworks)) if len(frameworks) > 1 else [0.0]
    )
    for f, (framework, offset) in enumerate(zip(frameworks, offsets)):
        for v, variant in enumerate(variants):
            row = results["results"][framework][variant]
            scores = row[results.get("metric", "accuracy")]
            accs = np.array(scores[test or next(iter(scores))])
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


def loss_curves(ax, results: dict, framework: str = "torch", colors=None):
    """Training loss per epoch, mean over seeds with the min-max band, per variant.

    colors: {variant: colour} for more variants than the colour cycle's ten (default:
    the cycle's C0, C1, ... in the variants' order).
    """
    for v, (variant, row) in enumerate(results["results"][framework].items()):
        curves = np.array(row["loss"])
        epochs = np.arange(1, curves.shape[1] + 1)
        color = (colors or {}).get(variant, f"C{v}")
        ax.plot(epochs, curves.mean(0), color=color, label=variant)
        ax.fill_between(epochs, curves.min(0), curves.max(0), color=color, alpha=0.2)
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
    ticks: bool = False,
    marks=None,
):
    """A row (or grid) of 2-D maps with colour bars; returns the figure.

    maps: a sequence of (H, W) arrays. shared_scale=True puts every panel on one colour
    scale with one colour bar, so values compare across panels. ticks=True numbers the
    rows and columns of the pixels; marks: one (row, col) or None per map, a pixel to
    circle (e.g. a query).
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
        if ticks:
            ax.axis("on")
            ax.set_xticks(range(maps[i].shape[1]))
            ax.set_yticks(range(maps[i].shape[0]))
            ax.tick_params(labelsize=7, length=2)
        if marks is not None and marks[i] is not None:
            row, col = marks[i]
            ax.plot(col, row, "o", ms=10, mfc="none", mec="red", mew=1.6)
        if titles:
            ax.set_title(titles[i], fontsize=9)
        if not shared_scale:
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if shared_scale:
        fig.colorbar(
            image, ax=axes.ravel().tolist(), fraction=0.03, pad=0.02, label=label
        )
    return fig


def loss_landscapes(results: dict, alphas, grid, variants=None):
    """Loss landscapes an experiment measured (Li et al., 2018), a row per framework.

    For each variant, the first seed's 2-D surface as filled contours of log10(loss) on
    one colour scale for all panels (+ marks the trained weights); in the last column
    the 1-D slices, mean over seeds and directions with the min-max band. results: a
    stored experiment whose rows' "measures" hold "loss_surface" (seeds, G, G: rows
    along the second direction) over `grid` and "loss_slices" (seeds, directions, A)
    over `alphas`. Returns the figure.
    """
    frameworks = list(results["results"])
    variants = list(variants or next(iter(results["results"].values())))
    rows = {f: results["results"][f] for f in frameworks}
    surfaces = {
        (f, v): np.log10(np.asarray(rows[f][v]["measures"]["loss_surface"][0]))
        for f in frameworks
        for v in variants
    }
    levels = np.linspace(
        min(s.min() for s in surfaces.values()),
        max(s.max() for s in surfaces.values()),
        16,
    )
    ncols = len(variants) + 1
    fig, axes = plt.subplots(
        len(frameworks),
        ncols,
        figsize=(2.2 * ncols + 1.4, 2.3 * len(frameworks) + 0.3),
        squeeze=False,
        layout="constrained",
    )
    last = len(frameworks) - 1
    for r, framework in enumerate(frameworks):
        name = FRAMEWORK_NAMES.get(framework, framework)
        for c, variant in enumerate(variants):
            ax, surface = axes[r, c], surfaces[(framework, variant)]
            image = ax.contourf(grid, grid, surface, levels=levels, cmap="viridis")
            ax.contour(grid, grid, surface, levels=levels, colors="k", linewidths=0.3)
            ax.plot(0, 0, "w+", markersize=8)
            ax.set(aspect="equal", xticks=[-1, 0, 1], yticks=[-1, 0, 1])
            ax.set_title(f"{name}: {variant}", fontsize=9)
            ax.set_xlabel("a (direction 1)" if r == last else "", fontsize=8)
            ax.set_ylabel("b (direction 2)" if c == 0 else "", fontsize=8)
            ax.tick_params(labelsize=7)
        ax = axes[r, -1]
        for c, variant in enumerate(variants):
            slices = np.asarray(rows[framework][variant]["measures"]["loss_slices"])
            slices = slices.reshape(-1, len(alphas))
            ax.semilogy(alphas, slices.mean(0), color=f"C{c}", label=variant)
            ax.fill_between(
                alphas, slices.min(0), slices.max(0), color=f"C{c}", alpha=0.2
            )
        ax.set_title(f"{name}: 1-D slices", fontsize=9)
        ax.set_xlabel("a" if r == last else "", fontsize=8)
        ax.set_ylabel("training loss", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    powers = np.arange(np.ceil(levels[0]), np.floor(levels[-1]) + 1)
    bar = fig.colorbar(image, ax=axes[:, :-1].ravel().tolist(), label="training loss")
    bar.set_ticks(powers, labels=[f"{10**p:g}" for p in powers])
    return fig
