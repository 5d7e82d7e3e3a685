"""Painting by optimization (Gatys et al.): the image itself is optimized against the losses.

:mod:`.engine` runs a recipe (the :class:`Stylizer`), :mod:`.objective` is the loss of one
scale, whole or tile by tile, :mod:`.schedule` plans the coarse-to-fine scales,
:mod:`.optimizers` holds Adam, L-BFGS and iterate averaging, and :mod:`.tiling` lays out tiles
and estimates memory.
"""

from .engine import Progress, ProgressCallback, Result, Stylizer

__all__ = ["Progress", "ProgressCallback", "Result", "Stylizer"]
