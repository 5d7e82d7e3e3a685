"""impasto: paint a photo in the style of an artwork (Gatys et al. neural style transfer).

Quick start::

    import impasto
    picture = impasto.stylize("photo.jpg", "painting.jpg")          # -> PIL.Image
    picture.save("painted.png")

For progress, cancellation and reuse of the loaded network, use :class:`Stylizer` with a
:class:`Recipe` (``Recipe.from_preset("fast", steps=100)``) and a :class:`CancelToken`.
``impasto.rerun("painted.png", "again.png")`` paints again the recipe a picture records (its
seed and inputs included). ``impasto.load_model("starry.impasto").paint("photo.jpg")`` paints with
a trained model in one pass.
"""

from ._version import __version__
from .api import load_model, run, stylize
from .cancel import CancelToken
from .errors import DivergedError, ImageError, ImpastoError, OutOfMemoryError, UsageError, WeightsError
from .feedforward.model import ModelError
from .optimize import Progress, Result, Stylizer
from .recipe import PRESETS, Recipe
from .reruns import RerunWarning, rerun

__all__ = [
    "PRESETS", "CancelToken", "DivergedError", "ImageError", "ImpastoError", "ModelError", "OutOfMemoryError",
    "Progress", "Recipe", "RerunWarning", "Result", "Stylizer", "UsageError", "WeightsError", "__version__",
    "load_model", "rerun", "run", "stylize",
]
