"""The engine: runs a :class:`~impasto.recipe.Recipe` on a content image and style images.

It knows nothing of command lines or HTTP: callers pass images and receive a :class:`Result`,
watching progress through a callback and stopping a run with :meth:`Stylizer.cancel`.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .. import colour, losses, masks as masking
from . import tiling
from .._version import __version__
from ..device import compute_dtype, configure_backends, select_device
from ..errors import DivergedError, ImpastoError, UsageError
from ..images import ImageSource, LoadedImage, fit, flatten, load_image, resize, scaled_to_long_side
from .objective import Objective, tiled_statistics
from ..recipe import Recipe
from .optimizers import IterateAverage, make_optimizer
from .schedule import Scale, plan
from ..vgg import VGG19Features, deepest
from ..weights import VGGWeights, load_weights


@dataclass
class Progress:
    """What a progress callback receives after every optimization step."""

    step: int
    total_steps: int
    scale: int
    scales: int
    scale_step: int
    scale_steps: int
    size: tuple[int, int]
    losses: dict[str, float]
    elapsed: float
    eta: float | None
    _image: Callable[[], np.ndarray] = field(repr=False, default=lambda: np.zeros((1, 1, 3)))

    def image(self) -> np.ndarray:
        """The current image, (H, W, 3) float32 in [0, 1] (computed on request only)."""
        return self._image()


@dataclass
class Result:
    """The outcome of a run: ``image`` (H, W, 3) float32 in [0, 1], ``alpha`` (H, W) or None."""

    image: np.ndarray
    alpha: np.ndarray | None
    recipe: Recipe
    losses: dict[str, float]
    history: list[dict[str, float]]
    steps: int
    elapsed: float
    cancelled: bool
    metadata: dict[str, Any]

    def to_pil(self):
        """The result as a ``PIL.Image`` (RGB, or RGBA when the content's alpha was kept)."""
        from PIL import Image

        planes = self.image if self.alpha is None else np.concatenate([self.image, self.alpha[..., None]], axis=2)
        return Image.fromarray((np.clip(planes, 0, 1) * 255 + 0.5).astype(np.uint8))


ProgressCallback = Callable[[Progress], None]


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


#: Starting images that follow the photo, so a coarse scale's result gets the photo's detail back.
DETAIL_INITS = ("content", "palette")


class Stylizer:
    """Runs recipes. One instance can run many jobs one after the other; the network is cached."""

    def __init__(self, recipe: Recipe | None = None, *, weights: VGGWeights | None = None):
        self.recipe = recipe or Recipe()
        self._weights = weights
        self._cancel = threading.Event()
        self._networks: dict[tuple, VGG19Features] = {}
        self._autocast: torch.dtype | None = None

    # -- control ---------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Ask the running job to stop after the current step; it returns its latest image."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    # -- setup -----------------------------------------------------------------------------------
    def weights(self) -> VGGWeights:
        if self._weights is None or (self.recipe.weights and self._weights.path != str(self.recipe.weights)):
            self._weights = load_weights(self.recipe.weights)
        return self._weights

    def network(self, device: torch.device) -> VGG19Features:
        recipe = self.recipe
        last = deepest(recipe.all_layers())
        key = (recipe.weights, recipe.pooling, last, str(device))
        if key not in self._networks:
            self._networks[key] = VGG19Features(self.weights(), last, recipe.pooling).to(device)
        return self._networks[key]

    # -- the job ---------------------------------------------------------------------------------
    def run(self, content: ImageSource | LoadedImage, styles: ImageSource | LoadedImage | Sequence,
            *, callback: ProgressCallback | None = None, style_blend: Sequence[float] | None = None,
            masks: Sequence[ImageSource | LoadedImage] | None = None,
            content_mask: ImageSource | LoadedImage | None = None, init_image: np.ndarray | None = None,
            temporal: tuple[np.ndarray, np.ndarray] | None = None) -> Result:
        """Paint ``content`` in the style of ``styles`` (one or several images).

        Args:
            content: the photo (path, ``PIL.Image``, array or :class:`LoadedImage`).
            styles: one style image or a sequence of them.
            callback: called with a :class:`Progress` after every step.
            style_blend: weights of several styles (default: equal). Without masks the styles'
                feature statistics are averaged with these weights; with masks they scale each
                style's loss in its region.
            masks: one greyscale image per style: white = this style, and where every mask is
                black the photo is kept. Statistics are then matched per region.
            content_mask: greyscale; the content weight is multiplied by
                ``recipe.content_mask_weights`` (black, white), interpolated between.
            init_image: ``(H, W, 3)`` float array in [0, 1] to start from instead of ``recipe.init``
                (resized to the output), e.g. the previous video frame's result, warped.
            temporal: ``(previous, weights)``: ``(H, W, 3)`` and ``(H, W)`` arrays at the output size;
                adds ``recipe.temporal_weight · mean(weights · (x − previous)²)`` (pixel units) to the
                loss, which keeps video frames consistent where ``weights`` is 1 (Ruder et al. 2016).

        Raises :class:`~impasto.errors.DivergedError` if the loss stops being finite.
        """
        started = time.perf_counter()
        self._cancel.clear()
        recipe = self.recipe
        if recipe.seed is None:
            recipe = self.recipe = recipe.replace(seed=secrets.randbelow(2**31))
        device = select_device(recipe.device)
        self._autocast = compute_dtype(recipe.precision, device)
        content_image, style_images = self._load_inputs(content, styles)
        blend = _blend_weights(style_blend, len(style_images))
        masking.check_masks(masks, len(style_images))
        fitting = dict(max_size=recipe.max_size, size=recipe.size, square=recipe.square, aspect=recipe.aspect)
        content_fit = fit(content_image, **fitting)
        photo = flatten(content_fit)
        content_rgb, style_images = _colour_inputs(recipe, photo, style_images)
        guides = _Guides.load(recipe, masks, content_mask, content_image.size, fitting)
        final_size = content_fit.size
        configure_backends(device, final_size[0] * final_size[1])
        schedule = plan(final_size, steps=recipe.steps, min_size=recipe.min_size,
                        factor=recipe.scale_factor, step_decay=recipe.step_decay,
                        scale_steps=recipe.scale_steps)
        net = self.network(device)
        tiles = self._tile_plan(recipe, schedule, device)
        torch.manual_seed(recipe.seed)
        generator = torch.Generator().manual_seed(recipe.seed)

        if init_image is not None:
            start = resize(np.clip(np.asarray(init_image, np.float32), 0, 1), final_size)
            image = to_tensor(resize(start, schedule[0].size), torch.device("cpu"))
        else:
            image = self._initial_image(recipe, content_rgb, style_images, blend, guides, schedule[0].size,
                                        generator)
        if temporal is not None:
            guides.temporal = (resize(np.asarray(temporal[0], np.float32), final_size),
                               resize(np.asarray(temporal[1], np.float32), final_size))
        run = _RunState(schedule, started)
        finish = _Finish(recipe.preserve_color, photo)
        previous_content = None
        for index, scale in enumerate(schedule):
            content_t = to_tensor(resize(content_rgb, scale.size), device)
            image = image.to(device)
            if image.shape[-2:] != content_t.shape[-2:]:
                image = upsample(image, content_t, previous_content if recipe.init in DETAIL_INITS else None)
            previous_content = content_t
            if scale.steps == 0:
                continue
            targets = self._targets(net, recipe, content_t, style_images, blend, guides, scale, final_size,
                                    tiles[index], device)
            image = self._optimize(net, recipe, image, targets, scale, index, run, callback, finish, tiles[index])
            if self.cancelled:
                break
        if image.shape[-2:] != (final_size[1], final_size[0]):  # cancelled at a coarse scale
            full = to_tensor(content_rgb, device)
            coarse = F.interpolate(full, size=image.shape[-2:], mode="area") if recipe.init in DETAIL_INITS else None
            image = upsample(image, full, coarse)

        output = finish(to_array(image))
        alpha = None
        if recipe.keep_alpha and content_fit.alpha is not None:
            alpha = resize(content_fit.alpha, (output.shape[1], output.shape[0]))
        elapsed = time.perf_counter() - started
        weights = self.weights()
        metadata = {
            "impasto": __version__,
            "torch": torch.__version__,
            "device": str(device),
            "precision": "bf16" if self._autocast is not None else "fp32",
            "recipe": recipe.to_dict(),
            "style_blend": blend,
            "content": content_image.name,
            "styles": [s.name for s in style_images],
            "masks": len(masks) if masks is not None else 0,
            "tiles": [list(t) if t else None for t in tiles],
            "content_mask": content_mask is not None,
            "weights": {"layout": weights.layout, "sha256": weights.sha256, "path": weights.path},
            "steps": run.step,
            "elapsed_s": round(elapsed, 3),
            "cancelled": self.cancelled,
            "losses": run.last_losses,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        return Result(image=output, alpha=alpha, recipe=recipe, losses=run.last_losses,
                      history=run.history, steps=run.step, elapsed=elapsed,
                      cancelled=self.cancelled, metadata=metadata)

    # -- pieces ----------------------------------------------------------------------------------
    def _load_inputs(self, content, styles) -> tuple[LoadedImage, list[LoadedImage]]:
        limit = self.recipe.max_pixels
        content_image = content if isinstance(content, LoadedImage) else load_image(
            content, what="content image", max_pixels=limit)
        if isinstance(styles, (str, bytes)) or not isinstance(styles, Sequence):
            styles = [styles]
        if not styles:
            raise UsageError("at least one style image is needed")
        style_images = [s if isinstance(s, LoadedImage) else load_image(
            s, what=f"style image {i + 1}" if len(styles) > 1 else "style image", max_pixels=limit)
            for i, s in enumerate(styles)]
        return content_image, style_images

    def _initial_image(self, recipe: Recipe, content_rgb: np.ndarray, style_images, blend, guides: _Guides,
                       size: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
        if recipe.init == "content":
            start = content_rgb
        elif recipe.init == "palette":  # the photo in the styles' colours: the optimizer starts closer
            palettes = [colour.colour_statistics(flatten(s)) for s in style_images]
            if guides.regions is None:
                start = colour.match_colour(content_rgb, *colour.blend_statistics(palettes, blend),
                                            method=recipe.color_transfer)
            else:  # each region in its own style's colours, the kept photo as it is
                start = content_rgb * guides.keep[..., None]
                for region, (mean, cov) in zip(guides.regions, palettes):
                    start = start + region[..., None] * colour.match_colour(content_rgb, mean, cov,
                                                                            method=recipe.color_transfer)
        elif recipe.init == "noise":
            return torch.rand((1, 3, size[1], size[0]), generator=generator)
        else:
            start = flatten(load_image(recipe.init, what="init image", max_pixels=recipe.max_pixels))
            start = resize(start, (content_rgb.shape[1], content_rgb.shape[0]))
        return to_tensor(resize(start, size), torch.device("cpu"))

    def _features(self, net, image: torch.Tensor, layers) -> dict[str, torch.Tensor]:
        """Network activations in fp32 (the network itself may run under bf16 autocast)."""
        if image.device.type == "cuda":
            image = image.contiguous(memory_format=torch.channels_last)
        with torch.autocast(image.device.type, dtype=self._autocast or torch.bfloat16,
                            enabled=self._autocast is not None):
            feats = net(image, layers)
        if self.recipe.loss_normalization == "notebook":  # absolute losses: undo the Caffe input scale
            scale = net.convention.feature_scale
            return {k: v.float() * scale for k, v in feats.items()}
        return {k: v.float() for k, v in feats.items()}

    def _tile_plan(self, recipe: Recipe, schedule: list[Scale], device: torch.device) -> list[tuple[int, int] | None]:
        """(tile, margin) for each scale that must run in tiles, ``None`` for those that run whole.

        ``recipe.tile_size``: ``None`` tiles only where a whole step would not fit in memory
        (``recipe.max_memory`` GiB, or what the device has free); a number tiles every scale
        larger than it; 0 never tiles, and then a run that will not fit is refused before it starts.
        """
        last = deepest(recipe.all_layers())
        budget = self._memory_budget(recipe, device)
        plan_: list[tuple[int, int] | None] = []
        for scale in schedule:
            if recipe.tile_size == 0 or scale.steps == 0:
                plan_.append(None)
                continue
            if recipe.tile_size:
                tile = recipe.tile_size if max(scale.size) > recipe.tile_size else None
            else:
                tile = tiling.choose_tile(scale.size, last, budget)
            plan_.append(None if tile is None else (tile, tiling.margin_for(tile)))
        if recipe.tile_size == 0:
            biggest = max((s for s in schedule if s.steps), key=lambda s: s.size[0] * s.size[1])
            needed = tiling.step_bytes(biggest.size, last)
            if needed > budget:
                raise ImpastoError(
                    f"a {biggest.size[0]}x{biggest.size[1]} step needs about {tiling.gib(needed)} but only "
                    f"{tiling.gib(budget)} is available; let impasto tile it (drop --tile-size 0), or lower "
                    f"--max-size")
        return plan_

    @staticmethod
    def _memory_budget(recipe: Recipe, device: torch.device) -> float:
        if recipe.max_memory is not None:
            return recipe.max_memory * 2.0**30
        return 0.8 * tiling.available_bytes(device)

    def _style_statistics(self, net, recipe: Recipe, style_t: torch.Tensor, device: torch.device):
        """``{layer: stats}`` of a style image, tile by tile when it is too large to run whole."""
        features = lambda image, layers: self._features(net, image, layers)  # noqa: E731
        tile = None
        if recipe.tile_size != 0:
            size = (style_t.shape[-1], style_t.shape[-2])
            budget = self._memory_budget(recipe, device) * 2.5  # no gradients: activations are not kept
            tile = recipe.tile_size if recipe.tile_size and max(size) > recipe.tile_size else \
                tiling.choose_tile(size, deepest(recipe.style_layers), budget)
        if tile is None:
            feats = features(style_t, recipe.style_layers)
            return {layer: losses.style_statistics(feats[layer], recipe.style_loss) for layer in recipe.style_layers}
        stats = tiled_statistics(features, style_t, recipe.style_layers, recipe.style_loss, tile,
                                 tiling.margin_for(tile))
        return {layer: per_region[0] for layer, per_region in stats.items()}

    def _targets(self, net, recipe: Recipe, content_t, style_images, blend, guides: _Guides, scale: Scale,
                 final_size: tuple[int, int], tiles: tuple[int, int] | None, device: torch.device) -> dict[str, Any]:
        """Content features, style statistics and mask weights for one scale, computed once.

        Without masks the styles' statistics are blended into one target per layer; with masks
        each style keeps its own target, matched in its region. Tiled scales get their content
        features tile by tile, so only the photo is kept.
        """
        kind = recipe.style_loss
        with torch.no_grad():
            content_feats = None if tiles else self._features(net, content_t, recipe.content_layers)
            per_style = []
            ratio = max(scale.size) / max(final_size)
            for style in style_images:
                # style_scale > 1 shows the painting larger, so its strokes cover more of the output
                long_side = round((recipe.style_size or max(final_size)) * recipe.style_scale * ratio)
                style_t = to_tensor(resize(flatten(style), scaled_to_long_side(style.size, max(long_side, 16))),
                                    content_t.device)
                per_style.append(self._style_statistics(net, recipe, style_t, device))
            targets: dict[str, Any] = {"content": content_feats}
            if guides.regions is None:
                targets["style"] = {layer: [(1.0, losses.prepare_target(
                    losses.blend_statistics([stats[layer] for stats in per_style], blend), kind))]
                    for layer in recipe.style_layers}
            else:
                strengths = [w * len(blend) for w in blend]
                targets["style"] = {layer: [(strength, losses.prepare_target(stats[layer], kind))
                                            for strength, stats in zip(strengths, per_style)]
                                    for layer in recipe.style_layers}
            targets.update(guides.at_scale(scale.size, content_t.device))
            targets["photo"] = content_t
        return targets

    def _optimize(self, net, recipe: Recipe, image: torch.Tensor, targets, scale: Scale, index: int,
                  run: _RunState, callback: ProgressCallback | None, finish: _Finish,
                  tiles: tuple[int, int] | None = None) -> torch.Tensor:
        """Optimize ``image`` at one scale; returns the iterate average (or the last iterate).

        Optimizer state starts afresh at every scale: its moments and curvature history belong to
        the previous scale's pixel grid. Where masks keep the photo, the image is the photo blended
        with the optimized pixels by ``targets["keep"]``, so those pixels never move. With
        ``tiles`` = (tile, margin) each step sweeps a shifted grid of tiles.
        """
        objective = Objective(recipe, lambda image, layers: self._features(net, image, layers), targets)
        compose = objective.compose

        def current() -> np.ndarray:
            return finish(to_array(compose(average.value)))

        x = image.detach().clone().requires_grad_(True)
        optimizer = make_optimizer(recipe.optimizer, x, lr=recipe.lr, betas=recipe.adam_betas,
                                   history=recipe.lbfgs_history, line_search=recipe.lbfgs_line_search)
        average = IterateAverage(recipe.ema if recipe.optimizer == "adam" else 0.0)
        average.update(x)
        record: dict[str, float] = {}
        if tiles is not None:
            objective.prepare_tiles(x, *tiles)
        sweeps = iter(range(1 << 62))

        def closure():
            optimizer.zero_grad(set_to_none=True)
            if tiles is None:
                total, parts = objective(x)
                if not math.isfinite(parts["total"]):
                    raise _NonFinite(parts)
                total.backward()
            else:
                try:
                    parts = objective.tiled_step(x, next(sweeps))
                except FloatingPointError as bad:
                    raise _NonFinite(bad.args[0]) from None
                total = torch.tensor(parts["total"])
            record.clear()
            record.update(parts)
            return total

        for scale_step in range(1, scale.steps + 1):
            try:
                if recipe.optimizer == "adam":
                    closure()
                    optimizer.step()
                else:
                    optimizer.step(closure)
            except _NonFinite as bad:
                raise DivergedError(
                    f"the loss became {_describe(bad.parts['total'])} at step {run.step + 1}; stopped"
                    f"{_kept(run.step)}; try a lower learning rate (--lr {recipe.lr / 10:g})",
                    last_good=current(), step=run.step) from None
            with torch.no_grad():
                x.clamp_(0, 1)
                if not torch.isfinite(x).all():
                    raise DivergedError(
                        f"the image became NaN at step {run.step + 1}; stopped{_kept(run.step)}; "
                        f"try a lower learning rate (--lr {recipe.lr / 10:g})",
                        last_good=current(), step=run.step)
                average.update(x)
            run.advance(dict(record), scale)
            if callback is not None:
                callback(Progress(step=run.step, total_steps=run.total_steps, scale=index + 1,
                                  scales=len(run.schedule), scale_step=scale_step, scale_steps=scale.steps,
                                  size=scale.size, losses=dict(record), elapsed=run.elapsed(), eta=run.eta(),
                                  _image=current))
            if self.cancelled:
                break
        return compose(average.value.detach())


def _colour_inputs(recipe: Recipe, photo: np.ndarray, styles: list[LoadedImage]):
    """The content and style images the optimization sees under ``recipe.preserve_color``.

    ``luminance``: both as grey luminance, the styles' tones matched to the photo's mean and
    standard deviation. ``histogram``: the styles recoloured to the photo's colour mean and
    covariance. Otherwise unchanged.
    """
    mode = recipe.preserve_color
    if mode == "luminance":
        return colour.luminance_image(photo), [
            LoadedImage(rgb=colour.luminance_image(flatten(s), like=photo), name=s.name) for s in styles]
    if mode == "histogram":
        mean, cov = colour.colour_statistics(photo)
        return photo, [LoadedImage(rgb=colour.match_colour(flatten(s), mean, cov, method=recipe.color_transfer),
                                   name=s.name) for s in styles]
    return photo, styles


class _Finish:
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


class _Guides:
    """A run's masks at the output size, and their tensors at each scale."""

    def __init__(self, regions: np.ndarray | None, keep: np.ndarray | None,
                 content_mask: tuple[np.ndarray, tuple[float, float]] | None):
        self.regions, self.keep, self.content_mask = regions, keep, content_mask
        self.temporal: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def load(cls, recipe: Recipe, masks, content_mask, photo_size: tuple[int, int], fitting: dict) -> _Guides:
        regions = keep = weight_map = None
        if masks is not None:
            raw = [masking.load_mask(m, photo_size, what=f"mask {i + 1}", max_pixels=recipe.max_pixels,
                                     fitting=fitting) for i, m in enumerate(masks)]
            regions, keep = masking.style_regions(raw)
            if not regions.any():
                raise UsageError("masks: every mask is black, so no style would be applied anywhere")
        if content_mask is not None:
            mask = masking.load_mask(content_mask, photo_size, what="content mask", max_pixels=recipe.max_pixels,
                                     fitting=fitting)
            weight_map = mask, recipe.content_mask_weights
        return cls(regions, keep, weight_map)

    def at_scale(self, size: tuple[int, int], device: torch.device) -> dict[str, Any]:
        """Mask tensors ``(1, K, H, W)`` resized to ``size`` = (width, height), for the loss."""
        out: dict[str, Any] = {}
        if self.regions is not None:
            planes = np.stack([resize(r, size) for r in self.regions])
            out["regions"] = torch.from_numpy(planes).unsqueeze(0).to(device)
            shares = self.regions.reshape(len(self.regions), -1).mean(axis=1)
            out["region_shares"] = [float(s / shares.sum()) for s in shares]
            if self.keep.max() > 0:
                out["keep"] = torch.from_numpy(resize(self.keep, size))[None, None].to(device)
        if self.content_mask is not None:
            mask, (black, white) = self.content_mask
            weights = black + (white - black) * resize(mask, size)
            out["content_mask"] = torch.from_numpy(weights.astype(np.float32))[None, None].to(device)
        if self.temporal is not None:
            previous, weights = self.temporal
            out["temporal"] = (to_tensor(resize(previous, size), device),
                               torch.from_numpy(resize(weights, size))[None, None].to(device))
        return out


class _NonFinite(Exception):
    def __init__(self, parts: dict[str, float]):
        super().__init__("non-finite loss")
        self.parts = parts


def _kept(step: int) -> str:
    return f" and kept the image of step {step}" if step > 0 else " before any good step"


def _describe(value: float) -> str:
    return "NaN" if math.isnan(value) else "infinite"


class _RunState:
    """Step counting, loss history and a pixel-weighted ETA across the scales of a run."""

    def __init__(self, schedule: list[Scale], started: float):
        self.schedule = schedule
        self.started = started
        self.total_steps = sum(s.steps for s in schedule)
        self.total_work = sum(s.steps * s.size[0] * s.size[1] for s in schedule)
        self.step = 0
        self.work = 0
        self.history: list[dict[str, float]] = []
        self.last_losses: dict[str, float] = {}
        self.first_step_at: float | None = None

    def advance(self, parts: dict[str, float], scale: Scale) -> None:
        now = time.perf_counter()
        if self.first_step_at is None:
            self.first_step_at = now
            self.first_work = scale.size[0] * scale.size[1]
        self.step += 1
        self.work += scale.size[0] * scale.size[1]
        self.last_losses = parts
        self.history.append({"step": self.step, **parts})

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def eta(self) -> float | None:
        if self.first_step_at is None or self.work <= self.first_work:
            return None
        rate = (time.perf_counter() - self.first_step_at) / (self.work - self.first_work)
        return rate * (self.total_work - self.work)


def _blend_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    if weights is None:
        return [1.0 / count] * count
    weights = [float(w) for w in weights]
    if len(weights) != count:
        raise UsageError(f"style weights: {len(weights)} values for {count} style images")
    if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise UsageError(f"style weights: {weights} must be non-negative with a positive sum")
    total = sum(weights)
    return [w / total for w in weights]
