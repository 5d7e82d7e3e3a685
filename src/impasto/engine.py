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

from . import colour, losses
from ._version import __version__
from .device import compute_dtype, configure_backends, select_device
from .errors import DivergedError, UsageError
from .images import ImageSource, LoadedImage, fit, flatten, load_image, resize, scaled_to_long_side
from .recipe import Recipe
from .optimize import IterateAverage, make_optimizer
from .schedule import Scale, plan
from .vgg import VGG19Features, deepest
from .weights import VGGWeights, load_weights


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
            *, callback: ProgressCallback | None = None, style_blend: Sequence[float] | None = None) -> Result:
        """Paint ``content`` in the style of ``styles`` (one or several images).

        ``style_blend`` weighs several styles (default: equal); their feature statistics are
        averaged with these weights. Raises :class:`~impasto.errors.DivergedError` if the loss
        stops being finite.
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
        content_fit = fit(content_image, max_size=recipe.max_size, size=recipe.size,
                          square=recipe.square, aspect=recipe.aspect)
        content_rgb = flatten(content_fit)
        final_size = content_fit.size
        configure_backends(device, final_size[0] * final_size[1])
        schedule = plan(final_size, steps=recipe.steps, min_size=recipe.min_size,
                        factor=recipe.scale_factor, step_decay=recipe.step_decay,
                        scale_steps=recipe.scale_steps)
        net = self.network(device)
        torch.manual_seed(recipe.seed)
        generator = torch.Generator().manual_seed(recipe.seed)

        image = self._initial_image(recipe, content_rgb, style_images, blend, schedule[0].size, generator)
        run = _RunState(schedule, started)
        previous_content = None
        for index, scale in enumerate(schedule):
            content_t = to_tensor(resize(content_rgb, scale.size), device)
            image = image.to(device)
            if image.shape[-2:] != content_t.shape[-2:]:
                image = upsample(image, content_t, previous_content if recipe.init in DETAIL_INITS else None)
            previous_content = content_t
            if scale.steps == 0:
                continue
            targets = self._targets(net, recipe, content_t, style_images, blend, scale, final_size)
            image = self._optimize(net, recipe, image, targets, scale, index, run, callback)
            if self.cancelled:
                break
        if image.shape[-2:] != (final_size[1], final_size[0]):  # cancelled at a coarse scale
            full = to_tensor(content_rgb, device)
            coarse = F.interpolate(full, size=image.shape[-2:], mode="area") if recipe.init in DETAIL_INITS else None
            image = upsample(image, full, coarse)

        output = to_array(image)
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

    def _initial_image(self, recipe: Recipe, content_rgb: np.ndarray, style_images, blend,
                       size: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
        if recipe.init == "content":
            start = content_rgb
        elif recipe.init == "palette":  # the photo in the styles' colours: the optimizer starts closer
            mean, cov = colour.blend_statistics([colour.colour_statistics(flatten(s)) for s in style_images], blend)
            start = colour.match_colour(content_rgb, mean, cov)
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

    def _targets(self, net, recipe: Recipe, content_t, style_images, blend, scale: Scale,
                 final_size: tuple[int, int]) -> dict[str, dict]:
        """Content features and blended style statistics for one scale, computed once."""
        with torch.no_grad():
            content_feats = self._features(net, content_t, recipe.content_layers)
            per_style = []
            ratio = max(scale.size) / max(final_size)
            for style in style_images:
                long_side = round((recipe.style_size or max(final_size)) * ratio)
                style_t = to_tensor(resize(flatten(style), scaled_to_long_side(style.size, max(long_side, 16))),
                                    content_t.device)
                feats = self._features(net, style_t, recipe.style_layers)
                per_style.append({layer: losses.style_statistics(feats[layer], recipe.style_loss)
                                  for layer in recipe.style_layers})
            style_targets = {layer: losses.prepare_target(
                losses.blend_statistics([stats[layer] for stats in per_style], blend), recipe.style_loss)
                for layer in recipe.style_layers}
        return {"content": content_feats, "style": style_targets}

    def _loss(self, net, recipe: Recipe, image: torch.Tensor, targets) -> tuple[torch.Tensor, dict[str, float]]:
        feats = self._features(net, image, recipe.all_layers())
        notebook = recipe.loss_normalization == "notebook"
        content_weights = recipe.content_layer_weights or (1.0,) * len(recipe.content_layers)
        style_weights = recipe.style_layer_weights or (1.0,) * len(recipe.style_layers)
        content = image.new_zeros(())
        for layer, w in zip(recipe.content_layers, content_weights):
            target = targets["content"][layer]
            content = content + w * (losses.mse(feats[layer], target) if notebook
                                     else losses.relative_mse(feats[layer], target))
        style = image.new_zeros(())
        for layer, w in zip(recipe.style_layers, style_weights):
            stats = losses.style_statistics(feats[layer], recipe.style_loss)
            distance = losses.style_distance(stats, targets["style"][layer], recipe.style_loss, relative=not notebook)
            if notebook:  # the notebook's mean((G−A)²)/(c·h·w) with Grams summed, not averaged, over positions
                _, c, h, w_ = feats[layer].shape
                distance = distance * (h * w_) / c
            style = style + w * distance
        total = recipe.content_weight * content + recipe.style_weight * style
        tv = losses.total_variation(image) if recipe.tv_weight > 0 else image.new_zeros(())
        total = total + recipe.tv_weight * tv
        return total, {"total": total.item(), "content": content.item(), "style": style.item(), "tv": tv.item()}

    def _optimize(self, net, recipe: Recipe, image: torch.Tensor, targets, scale: Scale, index: int,
                  run: _RunState, callback: ProgressCallback | None) -> torch.Tensor:
        """Optimize ``image`` at one scale; returns the iterate average (or the last iterate).

        Optimizer state starts afresh at every scale: its moments and curvature history belong to
        the previous scale's pixel grid.
        """
        x = image.detach().clone().requires_grad_(True)
        optimizer = make_optimizer(recipe.optimizer, x, lr=recipe.lr, betas=recipe.adam_betas,
                                   history=recipe.lbfgs_history, line_search=recipe.lbfgs_line_search)
        average = IterateAverage(recipe.ema if recipe.optimizer == "adam" else 0.0)
        average.update(x)
        record: dict[str, float] = {}

        def closure():
            optimizer.zero_grad(set_to_none=True)
            total, parts = self._loss(net, recipe, x, targets)
            if not math.isfinite(parts["total"]):
                raise _NonFinite(parts)
            total.backward()
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
                    last_good=to_array(average.value), step=run.step) from None
            with torch.no_grad():
                x.clamp_(0, 1)
                if not torch.isfinite(x).all():
                    raise DivergedError(
                        f"the image became NaN at step {run.step + 1}; stopped{_kept(run.step)}; "
                        f"try a lower learning rate (--lr {recipe.lr / 10:g})",
                        last_good=to_array(average.value), step=run.step)
                average.update(x)
            run.advance(dict(record), scale)
            if callback is not None:
                callback(Progress(step=run.step, total_steps=run.total_steps, scale=index + 1,
                                  scales=len(run.schedule), scale_step=scale_step, scale_steps=scale.steps,
                                  size=scale.size, losses=dict(record), elapsed=run.elapsed(), eta=run.eta(),
                                  _image=lambda: to_array(average.value)))
            if self.cancelled:
                break
        return average.value.detach()


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
