"""What the optimization starts from and sees: tensors, the colour-prepared inputs, the
starting image, coarse-to-fine upsampling, and the finish that turns pixels into the output."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .. import colour
from ..images import LoadedImage, flatten, load_image, resize
from ..recipe import Recipe

#: Starting images that follow the photo, so a coarse scale's result gets the photo's detail back.
DETAIL_INITS = ("content", "palette")
#: ``init`` prefix of a trained model's picture as the start: ``model:starry.impasto``.
MODEL_INIT = "model:"


def to_tensor(rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    """(H, W, 3) array → (1, 3, H, W) float32 tensor on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).unsqueeze(0).to(device)


def to_array(image: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) tensor → (H, W, 3) float32 array in [0, 1]."""
    return image.detach()[0].clamp(0, 1).permute(1, 2, 0).float().cpu().numpy()


def upsample(image: torch.Tensor, content: torch.Tensor, coarse_content: torch.Tensor | None) -> torch.Tensor:
    """Carry a coarse scale's result ``(1, 3, h, w)`` to the next scale's size ``(1, 3, H, W)``.

    Bicubic upsampling alone blurs: the photo's fine detail, which the coarse scale could not
    hold, would have to be rebuilt by the optimizer at the costliest scale. With
    ``coarse_content`` (the content at the coarse size) the detail band the coarse scale lacked,
    ``content − up(coarse_content)``, is added back, so the fine scale starts sharp.
    """
    size = content.shape[-2:]
    up = F.interpolate(image, size=size, mode="bicubic", align_corners=False)
    if coarse_content is not None:
        up = up + content - F.interpolate(coarse_content, size=size, mode="bicubic", align_corners=False)
    return up.clamp(0, 1)


def colour_inputs(recipe: Recipe, photo: np.ndarray,
                  styles: list[LoadedImage]) -> tuple[np.ndarray, list[LoadedImage]]:
    """The content and style images the optimization sees under ``recipe.preserve_color``.

    ``luminance``: both as grey luminance, the styles' tones matched to the photo's mean and
    standard deviation. ``histogram``: the styles recoloured to the photo's colour mean and
    covariance. Otherwise unchanged.
    """
    mode = recipe.preserve_color
    if mode == "luminance":
        return colour.luminance_image(photo), [
            replace(s, rgb=colour.luminance_image(flatten(s), like=photo), alpha=None) for s in styles]
    if mode == "histogram":
        mean, cov = colour.colour_statistics(photo)
        return photo, [replace(s, rgb=colour.match_colour(flatten(s), mean, cov, method=recipe.color_transfer),
                               alpha=None) for s in styles]
    return photo, styles


def initial_image(recipe: Recipe, content_rgb: np.ndarray, styles: Sequence[LoadedImage], blend: Sequence[float],
                  regions: np.ndarray | None, keep: np.ndarray | None, size: tuple[int, int],
                  generator: torch.Generator) -> torch.Tensor:
    """The first scale's starting image ``(1, 3, H, W)`` on the CPU, ``size`` = (W, H).

    ``content``: the photo; ``palette``: the photo in the styles' colours (each masked region in
    its own style's, the kept photo as it is), so the optimizer starts closer; ``noise``;
    ``model:PATH``: the picture a trained model paints (a few steps then refine it); or an image
    file.
    """
    if recipe.init == "noise":
        return torch.rand((1, 3, size[1], size[0]), generator=generator)
    if recipe.init == "content":
        start = content_rgb
    elif recipe.init == "palette":
        palettes = [colour.colour_statistics(flatten(s)) for s in styles]
        if regions is None or keep is None:
            start = colour.match_colour(content_rgb, *colour.blend_statistics(palettes, list(blend)),
                                        method=recipe.color_transfer)
        else:
            start = content_rgb * keep[..., None]
            for region, (mean, cov) in zip(regions, palettes, strict=True):
                start = start + region[..., None] * colour.match_colour(content_rgb, mean, cov,
                                                                        method=recipe.color_transfer)
    elif recipe.init.startswith(MODEL_INIT):
        start = model_picture(recipe.init[len(MODEL_INIT):], content_rgb)
    else:
        start = flatten(load_image(recipe.init, what="init image", max_pixels=recipe.max_pixels))
        start = resize(start, (content_rgb.shape[1], content_rgb.shape[0]))
    return to_tensor(resize(start, size), torch.device("cpu"))


def model_picture(path: str, content_rgb: np.ndarray) -> np.ndarray:
    """``content_rgb`` ``(H, W, 3)`` painted in one pass by the trained model at ``path`` (same size)."""
    from ..feedforward.model import load_model

    resolved = Path(path).expanduser()
    key = (str(resolved.resolve()), resolved.stat().st_mtime_ns) if resolved.exists() else (str(resolved), 0)
    model = _models.get(key)
    if model is None:
        model = load_model(resolved)
        _models.clear()  # one model kept: a run or a video starts from one
        _models[key] = model
    return np.asarray(model.paint(content_rgb), np.float32)


_models: dict[tuple[str, int], Any] = {}


class Finish:
    """Turns optimized pixels into the output: puts the photo's chroma back where the mode says."""

    SPACES = {"luminance": "yiq", "post-yuv": "yuv", "post-lab": "lab"}

    def __init__(self, mode: str, photo: np.ndarray):
        self.space = self.SPACES.get(mode)
        self.photo = photo

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        if self.space is None:
            return rgb
        photo = resize(self.photo, (rgb.shape[1], rgb.shape[0]))
        return colour.with_chroma_of(rgb, photo, self.space)
