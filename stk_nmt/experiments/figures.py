"""The examples' figures: matplotlib without a display, saved atomically as PNG, always closed."""

from __future__ import annotations

import os
from contextlib import contextmanager

from .files import save_figure


@contextmanager
def png_figure(path: str | os.PathLike, *grid, **subplots_kwargs):
    """Yield (fig, axes) of plt.subplots(*grid, **subplots_kwargs); save the figure to `path` when the
    block ends without an error, and close it either way."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in tests
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(*grid, **subplots_kwargs)
    try:
        yield fig, axes
        save_figure(fig, path)
    finally:
        plt.close(fig)
