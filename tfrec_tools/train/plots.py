"""Learning curves of every fold in one PNG (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import io
from collections.abc import Sequence

from tfrec_tools import fs


def plot_curves(
    folds: Sequence[tuple[int, dict[str, list[float]]]], monitor: str, path: str
) -> None:
    """Loss and ``monitor`` per epoch, training dashed and validation solid, one colour per
    fold; written as PNG to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = monitor.removeprefix("val_")
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for (fold, history), colour in zip(folds, plt.cm.tab10.colors * 10):
        for axis, key in zip(axes, ("loss", metric)):
            epochs = range(1, len(history.get(key, [])) + 1)
            axis.plot(epochs, history.get(key, []), "--", color=colour, label=f"fold {fold} train")
            axis.plot(
                epochs, history.get(f"val_{key}", []), "-", color=colour, label=f"fold {fold} valid"
            )
    for axis, key in zip(axes, ("loss", metric)):
        axis.set_xlabel("epoch")
        axis.set_title(key)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    fs.write_bytes_atomic(path, buffer.getvalue())
