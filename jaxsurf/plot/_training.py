"""Training-curve figures: loss and accuracy per epoch of a training history.

A history is a list of per-epoch dicts as :func:`jaxsurf.train.fit` records
them (``epoch``, ``train_loss``, ``val_loss``, ``train_accuracy``, ...).
"""

from __future__ import annotations

import os
import textwrap

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from jaxsurf.plot._common import save_figure

__all__ = ["training_history", "training_curves"]


def training_history(history: list[dict[str, float]],
                     out: str | os.PathLike | None = None,
                     title: str | None = None) -> Figure:
    """Training curves: loss (left) and accuracy in % (right) per epoch, train
    solid and validation dashed.

    Args:
        history: per-epoch dicts with ``epoch`` and ``train_loss``/``val_loss``/
            ``train_accuracy``/``val_accuracy`` (those present are drawn).
        out: optional file to save (suffix chooses the format).
        title: optional figure title.

    Returns:
        A ``matplotlib.figure.Figure``.

    Example:
        >>> history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e,
        ...             "train_accuracy": 1 - 0.5 / e, "val_accuracy": 1 - 0.6 / e}
        ...            for e in range(1, 6)]          # e.g. jaxsurf.train.fit(...).history
        >>> fig = js.plot.training_history(history, out="curves.png")
    """
    if not history:
        raise ValueError("history is empty: train at least one epoch")
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(9, 3.6))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for split, style in (("train", "-"), ("val", "--")):
        if f"{split}_loss" in history[0]:
            ax_loss.plot(epochs, [h[f"{split}_loss"] for h in history], style, marker="o",
                         label=split)
        if f"{split}_accuracy" in history[0]:
            ax_acc.plot(epochs, [100 * h[f"{split}_accuracy"] for h in history], style,
                        marker="o", label=split)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, out, tight=False, any_format=True)
    return fig


def training_curves(history: list[dict[str, float]], out: str | os.PathLike | None = None,
                    title: str = "", *, regression: bool = False, loss: str = "loss"
                    ) -> Figure:
    """Training curves of a classifier (:func:`training_history`) or, for a
    regression model, one panel of the loss per epoch (train solid, validation
    dashed) titled ``title`` (wrapped at 55 characters).

    Args:
        history: per-epoch dicts with ``epoch``, ``train_loss`` and ``val_loss``.
        out: optional file to save.
        title: figure title.
        regression: draw the loss alone (no accuracy panel).
        loss: name of the loss for the y label (``"<loss> loss"``).

    Returns:
        A ``matplotlib.figure.Figure``.

    Example:
        >>> history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e}
        ...            for e in range(1, 6)]
        >>> fig = js.plot.training_curves(history, "curves.png", "mlp on sines",
        ...                               regression=True, loss="mse")
    """
    if not regression:
        return training_history(history, out=out, title=title)
    if not history:
        raise ValueError("history is empty: train at least one epoch")
    fig = Figure(figsize=(5.5, 3.8))
    ax = fig.add_subplot()
    epochs = [h["epoch"] for h in history]
    for split, style in (("train", "-"), ("val", "--")):
        ax.plot(epochs, [h[f"{split}_loss"] for h in history], style, marker="o", label=split)
    ax.set(xlabel="epoch", ylabel=f"{loss} loss")
    ax.set_title(textwrap.fill(title, 55), fontsize=10)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, out, tight=False, any_format=True)
    return fig
