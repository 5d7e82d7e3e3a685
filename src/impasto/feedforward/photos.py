"""The photos a feed-forward model trains on, and random crops of them.

A :class:`PhotoSet` holds the training photos in memory as ``uint8`` arrays (each shrunk once so
its long side is at most a little above the size pictures are painted at). Without a folder of the
user's photos it uses the colour and grey photos that scikit-image bundles (:data:`BUNDLED`), which
are few and mostly of one kind: see the README on what that means for a model.

:meth:`PhotoSet.batch` draws a batch of square crops with *scale jitter* (each photo is first shown
at a random zoom around the painting scale, so the model meets objects at several sizes), random
horizontal flips, and a crop position drawn at random. Draws depend only on the generator, so a
resumed training run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ImageError, UsageError

#: scikit-image's photos used for training without ``--photos`` (``rocket`` is kept out of training
#: so a model can be judged on a photo it never saw).
BUNDLED = ("astronaut", "chelsea", "coffee", "hubble_deep_field", "immunohistochemistry", "camera", "coins",
           "grass", "gravel", "brick", "moon", "clock")
#: A bundled photo that is never trained on (for judging a model).
HELD_OUT = "rocket"
#: Image files a photo folder may hold (searched recursively; other files are ignored).
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp")


@dataclass(frozen=True)
class Photo:
    name: str
    pixels: np.ndarray  # (H, W, 3) uint8


def bundled_photo(name: str) -> np.ndarray:
    """scikit-image's photo ``name`` as ``(H, W, 3)`` uint8 (grey photos become three equal channels)."""
    from skimage import data

    pixels = np.asarray(getattr(data, name)())
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    return np.ascontiguousarray(pixels[..., :3].astype(np.uint8))


def find_photos(folder: str | Path) -> list[Path]:
    """The image files under ``folder`` (recursive, sorted); a UsageError if there are none."""
    root = Path(folder)
    if not root.is_dir():
        raise UsageError(f"--photos {str(root)!r}: not a folder", field="photos")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())
    if not files:
        raise UsageError(f"--photos {str(root)!r}: no image files ({' '.join(PHOTO_SUFFIXES)}) in it or below it",
                         field="photos")
    return files


def _shrunk(pixels: np.ndarray, long_side: int) -> np.ndarray:
    height, width = pixels.shape[:2]
    if max(height, width) <= long_side:
        return pixels
    import cv2

    scale = long_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)


class PhotoSet:
    """Training photos, kept as ``uint8`` arrays whose long side is at most ``max_side``.

    ``view``: the long side, in pixels, at which photos are shown before cropping (the size the
    model will paint pictures at, e.g. the recipe's ``max_size``); ``jitter``: the zoom is drawn
    log-uniformly from ``[1 / jitter, jitter]`` around it.
    """

    def __init__(self, photos: Sequence[Photo], *, view: int, jitter: float = 1.5, description: str = ""):
        if not photos:
            raise UsageError("no training photos")
        self.photos = list(photos)
        self.view = view
        self.jitter = jitter
        self.description = description
        self._tensors = [torch.from_numpy(p.pixels).permute(2, 0, 1) for p in self.photos]

    @classmethod
    def load(cls, folder: str | Path | None, *, view: int, jitter: float = 1.5) -> PhotoSet:
        """The photos in ``folder`` (recursively), or scikit-image's bundled ones when it is None.

        Unreadable files are skipped with their names kept in :attr:`skipped` (a folder where none
        can be read is refused).
        """
        max_side = math.ceil(view * jitter) + 8
        if folder is None:
            photos = [Photo(f"skimage:{name}", _shrunk(bundled_photo(name), max_side)) for name in BUNDLED]
            found = cls(photos, view=view, jitter=jitter, description=f"{len(photos)} photos bundled with scikit-image")
            found.skipped = []
            return found
        from ..images import flatten, load_image

        photos, skipped = [], []
        for path in find_photos(folder):
            try:
                image = load_image(path)
            except ImageError as exc:
                skipped.append(f"{path}: {exc}")
                continue
            rgb = np.clip(flatten(image) * 255.0 + 0.5, 0, 255).astype(np.uint8)
            photos.append(Photo(str(path), _shrunk(rgb, max_side)))
        if not photos:
            raise UsageError(f"--photos {str(folder)!r}: none of the {len(skipped)} image files could be read "
                             f"({skipped[0]})", field="photos")
        found = cls(photos, view=view, jitter=jitter, description=f"{len(photos)} photos from {folder}")
        found.skipped = skipped
        return found

    skipped: list[str]

    def __len__(self) -> int:
        return len(self.photos)

    def identity(self) -> list[str]:
        """What identifies the set for resuming: the photos' names and sizes."""
        return [f"{p.name}:{p.pixels.shape[1]}x{p.pixels.shape[0]}" for p in self.photos]

    def preview(self, long_side: int) -> np.ndarray:
        """The first photo at ``long_side`` px, ``(H, W, 3)`` float32 in [0, 1] (the fixed preview photo)."""
        pixels = self.photos[0].pixels
        height, width = pixels.shape[:2]
        scale = long_side / max(height, width)
        tensor = self._tensors[0][None].float() / 255.0
        size = (max(8, round(height * scale)), max(8, round(width * scale)))
        out = F.interpolate(tensor, size=size, mode="bilinear", antialias=True, align_corners=False)
        return out[0].permute(1, 2, 0).clamp(0, 1).numpy()

    def crop(self, index: int, crop: int, generator: torch.Generator) -> torch.Tensor:
        """A random ``(3, crop, crop)`` float crop of photo ``index``, zoomed, maybe flipped."""
        photo = self._tensors[index]
        height, width = photo.shape[-2:]
        u = torch.rand(4, generator=generator).tolist()
        zoom = (self.view / max(height, width)) * math.exp((2 * u[0] - 1) * math.log(self.jitter))
        # the side of the source region: at least 8 px, at most the photo's short side
        side = min(max(8.0, crop / zoom), float(min(height, width)))
        side_px = max(1, int(side))
        top = int(u[1] * (height - side_px + 1))
        left = int(u[2] * (width - side_px + 1))
        region = photo[:, top:top + side_px, left:left + side_px][None].float() / 255.0
        if side_px != crop:
            region = F.interpolate(region, size=(crop, crop), mode="bilinear", align_corners=False,
                                   antialias=side_px > crop)
        if u[3] < 0.5:
            region = region.flip(-1)
        return region[0].clamp(0, 1)

    def batch(self, size: int, crop: int, generator: torch.Generator) -> torch.Tensor:
        """``(size, 3, crop, crop)`` crops of photos drawn at random (with replacement)."""
        picks = torch.randint(len(self.photos), (size,), generator=generator).tolist()
        return torch.stack([self.crop(i, crop, generator) for i in picks])
