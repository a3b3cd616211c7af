"""Per-class test accuracy against the class's training count, one series per run (PNG)."""

from __future__ import annotations

from typing import Dict, Sequence

from stk_nmt.files import atomic_write

from .class_profile import FEW_SHOT_BELOW, MANY_SHOT_ABOVE


def plot_per_class_accuracy(runs: Dict[str, dict], path: str, title: str = "") -> str:
    """runs: label -> metrics dict (train_counts, per_class_top1, top1). Written atomically to `path`."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError("the per-class accuracy plot needs matplotlib: pip install matplotlib (or pass --no-plot)") from err
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    markers = "osD^v<>"
    for i, (label, metrics) in enumerate(runs.items()):
        counts: Sequence[int] = metrics["train_counts"]
        acc = metrics["per_class_top1"]
        order = sorted(range(len(counts)), key=lambda c: -counts[c])
        xs = [counts[c] for c in order if acc[c] is not None]
        ys = [acc[c] for c in order if acc[c] is not None]
        ax.plot(xs, ys, marker=markers[i % len(markers)], linewidth=1, markersize=4,
                label=f"{label} (top-1 {metrics['top1']:.1f}%)")
    ax.set_xscale("log")
    ax.set_xlabel("training images of the class (log scale)")
    ax.set_ylabel("test top-1 accuracy of the class (%)")
    for boundary in (FEW_SHOT_BELOW, MANY_SHOT_ABOVE):  # the shot groups' edges
        ax.axvline(boundary, color="grey", linewidth=0.5, linestyle=":")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"), suffix=".png")
    finally:
        plt.close(fig)
    return path
