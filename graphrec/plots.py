"""The training-curve plot written to every run folder."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402


def plot_training_curve(history: list[dict], val_metric: str, path: Path) -> None:
    """Training loss and the validation metric per epoch, side by side. A closed-form model
    (rows without a loss) shows the validation metric against the setting it tried."""
    epochs = [r["epoch"] for r in history]
    panels = (["loss"] if any("loss" in r for r in history) else []) + (
        [val_metric] if val_metric else []
    )
    if not panels:
        panels = ["seconds"]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.5))
    axes = list(axes) if len(panels) > 1 else [axes]
    for ax, key, color in zip(axes, panels, ("C0", "C1"), strict=False):
        ax.plot(epochs, [r.get(key) for r in history], marker="o", color=color)
        title = "training loss" if key == "loss" else key
        ax.set(xlabel="epoch (closed form: the n-th setting tried)", ylabel=title, title=title)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_episodes(episodes: dict[str, list[float]], path: Path) -> None:
    """A reinforcement-learning run's loss, mean reward and epsilon per episode."""
    keys = [k for k in ("loss", "mean_reward", "epsilon") if episodes.get(k)]
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.5))
    axes = list(axes) if len(keys) > 1 else [axes]
    for ax, key, color in zip(axes, keys, ("C0", "C2", "C3"), strict=False):
        values = episodes[key]
        ax.plot(range(1, len(values) + 1), values, color=color, alpha=0.35, lw=0.8)
        w = max(1, len(values) // 50)  # a moving mean over about 2% of the run
        if w > 1:
            smooth = [
                sum(values[max(0, i - w + 1) : i + 1]) / min(w, i + 1) for i in range(len(values))
            ]
            ax.plot(range(1, len(values) + 1), smooth, color=color, lw=1.6)
        ax.set(xlabel="episode (one user's sequence)", ylabel=key, title=key.replace("_", " "))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
