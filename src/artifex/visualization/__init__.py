"""Figures for diffusion models: image grids, forward-process grids and training curves.

matplotlib (the ``examples`` extra) is imported only when a figure is drawn, so importing
this package, or ``artifex``, does not import it.
"""

from artifex.visualization.curves import moving_average, plot_training_curve
from artifex.visualization.images import (
    make_grid,
    noised_images,
    save_image_grid,
    save_noising_grid,
    to_display,
)

__all__ = [
    "make_grid",
    "moving_average",
    "noised_images",
    "plot_training_curve",
    "save_image_grid",
    "save_noising_grid",
    "to_display",
]
