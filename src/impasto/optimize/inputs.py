"""What the optimization starts from and sees: the prepared inputs (images loaded, fitted and
colour-prepared once), tensors, the starting image, coarse-to-fine upsampling, and the finish that
turns pixels into the output. A still run prepares its inputs with :func:`prepare_inputs`; a video
loads its paintings once with :func:`load_styles` and every frame is prepared the same way."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .. import colour
from ..errors import UsageError
from ..images import ImageSource, LoadedImage, flatten, load_image, resize
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


@dataclass
class PreparedInputs:
    """A run's images, prepared once: the photo as the optimization sees it and the paintings."""

    content: LoadedImage
    photo: np.ndarray            # (H, W, 3) the fitted photo, alpha flattened
    content_rgb: np.ndarray      # the photo as the losses see it (colour mode applied)
    styles: list[LoadedImage]    # the paintings as the losses see them
    alpha: np.ndarray | None     # the fitted photo's transparency, if it had one
    final_size: tuple[int, int]  # (width, height)


def load_styles(styles: ImageSource | LoadedImage | Sequence, max_pixels: int) -> list[LoadedImage]:
    """One style image or several (paths, arrays, images or already loaded), each loaded once."""
    if isinstance(styles, (str, bytes, os.PathLike)) or not isinstance(styles, Sequence):
        styles = [styles]
    if not styles:
        raise UsageError("at least one style image is needed")
    return [s if isinstance(s, LoadedImage) else load_image(
        s, what=f"style image {i + 1}" if len(styles) > 1 else "style image", max_pixels=max_pixels)
        for i, s in enumerate(styles)]


def prepare_inputs(recipe: Recipe, content: ImageSource | LoadedImage,
                   styles: ImageSource | LoadedImage | Sequence) -> PreparedInputs:
    """Load the photo and paintings (unless given loaded), fit the photo to the output geometry
    and apply the recipe's colour mode (:func:`colour_inputs`)."""
    limit = recipe.max_pixels
    content_image = content if isinstance(content, LoadedImage) else load_image(
        content, what="content image", max_pixels=limit)
    style_images = load_styles(styles, limit)
    fitted = recipe.fitting().apply(content_image)
    photo = flatten(fitted)
    content_rgb, style_images = colour_inputs(recipe, photo, style_images)
    return PreparedInputs(content=content_image, photo=photo, content_rgb=content_rgb, styles=style_images,
                          alpha=fitted.alpha, final_size=fitted.size)


def optimized_view(recipe: Recipe, rgb: np.ndarray) -> np.ndarray:
    """``rgb`` ``(H, W, 3)`` as the optimizer sees images under ``recipe``: grey luminance in
    ``luminance`` mode, unchanged otherwise (see :func:`colour_inputs`)."""
    return colour.luminance_image(rgb) if recipe.preserve_color == "luminance" else rgb


def colour_inputs(recipe: Recipe, photo: np.ndarray,
                  styles: list[LoadedImage]) -> tuple[np.ndarray, list[LoadedImage]]:
    """The content and style images the optimization sees under ``recipe.preserve_color``.

    ``luminance``: both as grey luminance, the styles' tones matched to the photo's mean and
    standard deviation. ``histogram``: the styles recoloured to the photo's colour mean and
    covariance. Otherwise unchanged.
    """
    mode = recipe.preserve_color
    if mode == "luminance":
        return optimized_view(recipe, photo), [
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
