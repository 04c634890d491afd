"""The training-curve plot written to every run folder."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402


def plot_training_curve(history: list[dict], val_metric: str, path: Path) -> None:
    """Training loss and the validation metric per epoch, side by side."""
    epochs = [r["epoch"] for r in history]
    fig, axes = plt.subplots(1, 2 if val_metric else 1, figsize=(10 if val_metric else 5, 3.5))
    axes = axes if val_metric else [axes]
    axes[0].plot(epochs, [r["loss"] for r in history], marker="o")
    axes[0].set(xlabel="epoch", ylabel="training loss", title="training loss")
    if val_metric:
        axes[1].plot(epochs, [r.get(val_metric) for r in history], marker="o", color="C1")
        axes[1].set(xlabel="epoch", ylabel=val_metric, title=val_metric)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
