"""impasto: paint a photo in the style of an artwork (Gatys et al. neural style transfer).

Quick start::

    import impasto
    picture = impasto.stylize("photo.jpg", "painting.jpg")          # -> PIL.Image
    picture.save("painted.png")

For progress, cancellation and reuse of the loaded network, use :class:`Stylizer` with a
:class:`Recipe` (``Recipe.from_preset("fast", steps=100)``).
"""

from ._version import __version__
from .api import run, stylize
from .optimize import Progress, Result, Stylizer
from .errors import DivergedError, ImageError, ImpastoError, UsageError, WeightsError
from .recipe import PRESETS, Recipe

__all__ = [
    "PRESETS", "DivergedError", "ImageError", "ImpastoError", "Progress", "Recipe", "Result",
    "Stylizer", "UsageError", "WeightsError", "__version__", "run", "stylize",
]
