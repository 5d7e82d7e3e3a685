"""Training a feed-forward style model (Johnson, Alahi & Fei-Fei 2016) with the optimizer's losses.

The model is a :class:`~impasto.feedforward.network.TransformNet`; the loss of each batch is the
optimizer's own :class:`~impasto.optimize.objective.Objective` (the same VGG19, layers, layer
weights, style statistics, distances and content/style/TV weights of the recipe), so a model
trained from a preset paints like that preset; the stability term of :mod:`.stability` is added.

How the steps are spent (a CPU affords about a thousand of them in half an hour):

* **Scale.** A crop of ``c`` px is a piece of a picture painted at the recipe's ``max_size``: each
  photo is shown with its long side at ``max_size`` (times a random zoom, the scale jitter) and a
  ``c``-px square is cut from it; the painting is shown as the optimizer shows it for such a
  picture (long side ``style_size or max_size``, times ``style_scale``). Strokes come out at the
  size the preset paints them at ``max_size``.
* **Style targets, once per crop size.** The style statistics a ``c``-px crop is compared with
  are the average over ``c``-px crops of the painting (statistics are expectations over
  positions, so that is the statistics of "a random crop of the painting"), computed once per
  crop size of the curriculum: the crop's borders (where VGG pads with zeros) weigh the same
  on both sides.
* **Curriculum.** Early steps learn colours and textures, which small crops teach as well as
  large ones at a fraction of the cost; the default spends 40 % of the steps on half-size crops,
  30 % at three quarters and the last 30 % at ``size`` (where the deepest layers see whole
  objects).
* **Learning rate.** Adam, a linear warm-up over the first 5 % of the steps (at most 100), then
  a cosine decay to 5 % of the peak: high rates while the network finds the style, low ones to
  settle the details.

Checkpoints are the model file itself (a model at every checkpoint is usable) with Adam's state,
the step and the settings in its extra tensors and metadata, written atomically. Training the
same style with the same settings into the same file resumes from it; Ctrl-C saves a checkpoint.
Batches depend only on the seed and the step, so a resumed run sees the batches an uninterrupted
one would.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..cancel import CancelToken
from ..device import compute_dtype, configure_backends, select_device
from ..errors import ImpastoError, UsageError
from ..images import ImageSource, LoadedImage, flatten, load_image, resize, save_image, scaled_to_long_side
from ..recipe import Recipe
from . import stability as stab
from .network import TransformNet
from .photos import PhotoSet

#: Default weight of the stability loss (measured: benchmarks/train.py, see the README).
DEFAULT_STABILITY_WEIGHT = 50.0
#: Default curriculum: (share of the steps, crop side as a fraction of ``size``).
DEFAULT_CURRICULUM: tuple[tuple[float, float], ...] = ((0.4, 0.5), (0.3, 0.75), (0.3, 1.0))
#: Metadata key of the training state in a checkpoint.
STATE_KEY = "impasto_training"
#: Prefix of Adam's state among a checkpoint's extra tensors.
ADAM_PREFIX = "adam."
MIN_CROP = 32


@dataclass(frozen=True)
class TrainSettings:
    """How a model is trained (everything but the recipe's losses and the architecture).

    ``size``: crop side at the end of the curriculum, px; ``steps``: optimizer steps;
    ``batch_size``: crops per step; ``lr``: Adam's peak learning rate; ``stability_weight``: the
    stability loss's weight (0: off); ``curriculum``: ``(share of the steps, crop / size)`` phases;
    ``jitter``: photos are zoomed by a factor drawn log-uniformly from [1/jitter, jitter];
    ``seed``: the network's initialization and every batch. The last three fields never change
    the model (they are not compared when resuming).
    """

    size: int = 256
    steps: int = 1500
    batch_size: int = 4
    lr: float = 2e-3
    stability_weight: float = DEFAULT_STABILITY_WEIGHT
    curriculum: tuple[tuple[float, float], ...] = DEFAULT_CURRICULUM
    jitter: float = 1.5
    seed: int = 0
    sample_every: int = 100
    checkpoint_every: int = 100
    log_every: int = 20

    NEUTRAL = ("sample_every", "checkpoint_every", "log_every")

    def __post_init__(self) -> None:
        _whole("size", self.size, MIN_CROP, 4096)
        _whole("steps", self.steps, 1, 10_000_000)
        _whole("batch_size", self.batch_size, 1, 1024)
        _real("lr", self.lr, 0.0, 1.0, strict=True)
        _real("stability weight", self.stability_weight, 0.0, 1e6)
        _real("jitter", self.jitter, 1.0, 4.0)
        if not self.curriculum or any(not (0 < share and 0 < frac <= 1) for share, frac in self.curriculum):
            raise UsageError(f"curriculum: {self.curriculum!r}: each phase needs a share above 0 and a crop "
                             "fraction in (0, 1]")
        for name in self.NEUTRAL:
            _whole(name, getattr(self, name), 0, 10_000_000)

    def crop_at(self, step: int) -> int:
        """The crop side of step ``step`` (0-based): the curriculum phase it falls in, a multiple of 8."""
        total = sum(share for share, _ in self.curriculum)
        end = 0.0
        for share, fraction in self.curriculum:
            end += share / total * self.steps
            if step < round(end):
                return self._side(fraction)
        return self._side(self.curriculum[-1][1])

    def _side(self, fraction: float) -> int:
        return min(self.size, max(MIN_CROP, int(round(self.size * fraction / 8)) * 8))

    def crops(self) -> list[int]:
        """The distinct crop sides of the curriculum, in order."""
        return list(dict.fromkeys(self.crop_at(s) for s in range(self.steps)))

    def learning_rate(self, step: int) -> float:
        """Adam's learning rate at step ``step``: linear warm-up, then cosine decay to 5 % of ``lr``."""
        warmup = max(1, min(100, round(0.05 * self.steps)))
        if step < warmup:
            return self.lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, self.steps - warmup)
        return self.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["curriculum"] = [list(phase) for phase in self.curriculum]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainSettings:
        values = dict(data)
        values["curriculum"] = tuple(tuple(phase) for phase in values.get("curriculum", DEFAULT_CURRICULUM))
        return cls(**values)


def _whole(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UsageError(f"{name.replace('_', ' ')}: {value!r} is out of range: use a whole number from {low:,} "
                         f"to {high:,}")


def _real(name: str, value: Any, low: float, high: float, strict: bool = False) -> None:
    ok = (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
          and (low < value if strict else low <= value) and value <= high)
    if not ok:
        raise UsageError(f"{name}: {value!r} is out of range: use a number {'above' if strict else 'from'} {low:g} "
                         f"to {high:g}")


@dataclass
class TrainProgress:
    """What a progress callback receives after each training step."""

    step: int                   #: steps done (1-based, counting those of earlier runs when resumed)
    total_steps: int
    crop: int                   #: crop side of this step, px
    batch_size: int
    losses: dict[str, float]    #: total, content, style, tv, stability (unweighted terms) of this step
    lr: float
    elapsed: float              #: seconds of training in this process
    seconds_per_step: float     #: recent seconds per step at this crop size
    eta: float | None           #: seconds left (None for the first steps)
    resumed_from: int = 0       #: the step this process started from


TrainCallback = Callable[[TrainProgress], None]


@dataclass
class TrainResult:
    output: Path
    steps: int                  #: steps the model has been trained for
    resumed_from: int
    elapsed: float              #: seconds in this process
    losses: dict[str, float]    #: the mean of the last 20 steps' losses
    history: list[dict[str, float]] = field(default_factory=list)  #: every step's losses, all runs
    cancelled: bool = False
    samples: list[Path] = field(default_factory=list)


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training, after the checkpoint was saved (its message says how to resume)."""


# ---------------------------------------------------------------------------------------------
# The style, as each crop size sees it
# ---------------------------------------------------------------------------------------------
def style_sha256(style: LoadedImage) -> str:
    """The style file's sha256, or that of its pixels for an image given in memory."""
    if style.sha256:
        return style.sha256
    return hashlib.sha256(np.ascontiguousarray(flatten(style), np.float32).tobytes()).hexdigest()


def style_view(recipe: Recipe) -> int:
    """The long side, px, at which the painting is shown: as the optimizer shows it at ``max_size``."""
    return max(16, round((recipe.style_size or recipe.max_size) * recipe.style_scale))


def crop_statistics(features: Any, recipe: Recipe, style: torch.Tensor, crop: int,
                    batch: int = 8) -> dict[str, dict[str, torch.Tensor]]:
    """``{layer: prepared target}``: the mean statistics of ``crop``-px crops of ``style`` ``(1, 3, H, W)``.

    Crops overlap by half (stride ``crop // 2``) and cover the painting; a painting smaller than
    the crop on a side is used whole on that side.
    """
    from .. import losses

    height, width = style.shape[-2:]
    ch, cw = min(crop, height), min(crop, width)
    tops = _starts(height, ch)
    lefts = _starts(width, cw)
    boxes = [(t, left) for t in tops for left in lefts]
    sums: dict[str, dict[str, torch.Tensor]] = {}
    with torch.no_grad():
        for i in range(0, len(boxes), batch):
            pieces = torch.cat([style[..., t:t + ch, left:left + cw] for t, left in boxes[i:i + batch]])
            feats = features(pieces, recipe.style_layers)
            for layer in recipe.style_layers:
                stats = losses.style_statistics(feats[layer], recipe.style_loss)
                summed = {key: value.sum(dim=0, keepdim=True) for key, value in stats.items()}
                if layer in sums:
                    summed = {key: sums[layer][key] + value for key, value in summed.items()}
                sums[layer] = summed
    return {layer: losses.prepare_target({key: value / len(boxes) for key, value in stats.items()},
                                         recipe.style_loss)
            for layer, stats in sums.items()}


def _starts(length: int, crop: int) -> list[int]:
    if length <= crop:
        return [0]
    stride = max(1, crop // 2)
    starts = list(range(0, length - crop + 1, stride))
    if starts[-1] != length - crop:
        starts.append(length - crop)
    return starts


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------
def training_key(recipe: Recipe, settings: TrainSettings, architecture: Any, style_hash: str,
                 photos: Sequence[str]) -> dict[str, Any]:
    """Everything a checkpoint must share with a run to be resumed by it (JSON-able)."""
    from ..recipe import pixel_neutral_fields

    neutral = set(pixel_neutral_fields())
    settings_dict = {k: v for k, v in settings.to_dict().items() if k not in TrainSettings.NEUTRAL}
    return {"style_sha256": style_hash,
            "recipe": {k: v for k, v in recipe.to_dict().items() if k not in neutral},
            "architecture": architecture.to_dict(),
            "settings": settings_dict,
            "photos": hashlib.sha256("\n".join(photos).encode()).hexdigest()}


def key_differences(saved: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """Human-readable differences between two :func:`training_key` dicts (empty: resumable)."""
    names = {"style_sha256": "the style image", "photos": "the training photos"}
    out = []
    for key in sorted(set(saved) | set(wanted)):
        a, b = saved.get(key), wanted.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            for sub in sorted(set(a) | set(b)):
                if a.get(sub) != b.get(sub):
                    out.append(f"{sub} {a.get(sub)!r} → {b.get(sub)!r}")
        else:
            out.append(f"{names.get(key, key)} changed")
    return out


def _adam_tensors(optimizer: torch.optim.Adam, params: Sequence[torch.nn.Parameter]) -> dict[str, torch.Tensor]:
    tensors = {}
    for i, p in enumerate(params):
        state = optimizer.state.get(p)
        if not state:
            continue
        tensors[f"{ADAM_PREFIX}{i}.exp_avg"] = state["exp_avg"].detach().cpu().contiguous()
        tensors[f"{ADAM_PREFIX}{i}.exp_avg_sq"] = state["exp_avg_sq"].detach().cpu().contiguous()
        tensors[f"{ADAM_PREFIX}{i}.step"] = torch.as_tensor(state["step"], dtype=torch.float32).reshape(1).cpu()
    return tensors


def _restore_adam(optimizer: torch.optim.Adam, params: Sequence[torch.nn.Parameter],
                  tensors: dict[str, torch.Tensor]) -> None:
    for i, p in enumerate(params):
        name = f"{ADAM_PREFIX}{i}"
        if f"{name}.exp_avg" not in tensors:
            continue
        optimizer.state[p] = {"step": tensors[f"{name}.step"].reshape(()).clone().float(),
                              "exp_avg": tensors[f"{name}.exp_avg"].to(p.device, p.dtype).clone(),
                              "exp_avg_sq": tensors[f"{name}.exp_avg_sq"].to(p.device, p.dtype).clone()}


# ---------------------------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------------------------
class Trainer:
    """Trains one model: a style, a recipe (its losses), settings, an architecture and photos.

    ``style``: a path, image or :class:`LoadedImage`; ``photos``: a :class:`PhotoSet` (default:
    scikit-image's photos shown at the recipe's ``max_size``); ``architecture``: an
    :class:`~impasto.feedforward.network.Architecture` (default: the CPU one).
    """

    def __init__(self, style: ImageSource | LoadedImage, *, recipe: Recipe | None = None,
                 settings: TrainSettings | None = None, architecture: Any = None, photos: PhotoSet | None = None,
                 stylizer: Any = None):
        from .network import ARCHITECTURES

        self.recipe = recipe or Recipe.from_preset("balanced")
        self.settings = settings or TrainSettings()
        self.architecture = architecture or ARCHITECTURES["cpu"]
        self.style = style if isinstance(style, LoadedImage) else load_image(style, what="style image")
        self.style_hash = style_sha256(self.style)
        self.photos = photos or PhotoSet.load(None, view=self.recipe.max_size, jitter=self.settings.jitter)
        if stylizer is None:
            from ..optimize import Stylizer

            stylizer = Stylizer(self.recipe)
        self.stylizer = stylizer
        self.device = select_device(self.recipe.device)
        self.autocast = compute_dtype(self.recipe.precision, self.device)
        self._targets: dict[int, dict[str, dict[str, torch.Tensor]]] = {}

    # -- pieces ------------------------------------------------------------------------------------
    def key(self) -> dict[str, Any]:
        return training_key(self.recipe, self.settings, self.architecture, self.style_hash, self.photos.identity())

    def features(self) -> Any:
        from ..features import FeatureExtractor

        net = self.stylizer.network(self.device, self.recipe)
        return FeatureExtractor(net, self.autocast, notebook=self.recipe.loss_normalization == "notebook")

    def style_tensor(self) -> torch.Tensor:
        from ..optimize.inputs import to_tensor

        pixels = flatten(self.style)
        pixels = resize(pixels, scaled_to_long_side(self.style.size, style_view(self.recipe)))
        return to_tensor(pixels, self.device)

    def targets(self, features: Any, crop: int) -> dict[str, dict[str, torch.Tensor]]:
        """The style targets of ``crop``-px crops (computed once per crop size)."""
        if crop not in self._targets:
            self._targets[crop] = crop_statistics(features, self.recipe, self.style_tensor(), crop)
        return self._targets[crop]

    def objective(self, features: Any, photos: torch.Tensor, crop: int) -> Any:
        """The optimizer's objective for a batch of ``photos``: their features and the style's targets."""
        from ..optimize.objective import Objective
        from ..optimize.targets import ScaleTargets

        with torch.no_grad():
            content = features(photos, self.recipe.content_layers)
        style = {layer: [(1.0, target)] for layer, target in self.targets(features, crop).items()}
        return Objective(self.recipe, features, ScaleTargets(content=content, style=style, photo=photos))

    def paint(self, net: torch.nn.Module, photos: torch.Tensor) -> torch.Tensor:
        """``net(photos)`` in the run's precision, as fp32."""
        with torch.autocast(self.device.type, dtype=self.autocast or torch.bfloat16, enabled=self.autocast is not None):
            return net(photos).float()

    def model_info(self, steps: int) -> Any:
        from .model import ModelInfo

        s = self.settings
        training = {"photos": self.photos.description, "batch_size": s.batch_size, "lr": s.lr,
                    "curriculum": [s.crop_at(0), s.size], "planned_steps": s.steps}
        name = Path(self.style.path).name if self.style.path else self.style.name
        return ModelInfo(architecture=self.architecture, recipe=self.recipe, style_name=name,
                         style_sha256=self.style_hash, size=s.size, steps=steps,
                         stability_weight=float(s.stability_weight), extra={"training": training})

    # -- checkpoints -------------------------------------------------------------------------------
    def save(self, output: Path, net: TransformNet, optimizer: torch.optim.Adam, step: int,
             history: list[dict[str, float]]) -> None:
        """Write the model with Adam's state and the training state to ``output``, atomically."""
        from .model import save_model

        params = list(net.parameters())
        state = {"step": step, "key": self.key(), "settings": self.settings.to_dict(), "history": history,
                 "photos": self.photos.description}
        save_model(output, net, self.model_info(step), extra_tensors=_adam_tensors(optimizer, params),
                   extra_metadata={STATE_KEY: json.dumps(state)})  # written atomically

    def resume_state(self, output: Path, force: bool) -> tuple[dict[str, Any], dict[str, torch.Tensor]] | None:
        """The training state and tensors of a checkpoint at ``output`` that this run continues.

        None when there is no file (or ``force`` is given: the file is then trained anew). A file
        trained with other settings, or not a checkpoint at all, is refused (UsageError).
        """
        if not output.exists() or force:
            return None
        from .model import ModelError, read_extra

        try:
            tensors, metadata = read_extra(output)
        except ModelError as exc:
            raise UsageError(f"-o {str(output)!r} exists and is not a training checkpoint ({exc}); use --force to "
                             "train a new model over it, or choose another file", field="output") from None
        raw = (metadata or {}).get(STATE_KEY)
        if raw is None:
            raise UsageError(f"-o {str(output)!r} is a model without training state (it cannot be resumed); use "
                             "--force to train a new model over it, or choose another file", field="output")
        state = json.loads(raw)
        differences = key_differences(state.get("key", {}), self.key())
        if differences:
            shown = "; ".join(differences[:4]) + (f"; and {len(differences) - 4} more" if len(differences) > 4 else "")
            raise UsageError(f"-o {str(output)!r} was trained with other settings ({shown}); run the same command "
                             "to resume it, or add --force to train a new model over it", field="output")
        return state, tensors

    # -- the loop ----------------------------------------------------------------------------------
    def train(self, output: str | Path, *, callback: TrainCallback | None = None, samples: str | Path | None = None,
              force: bool = False, cancel: CancelToken | None = None) -> TrainResult:
        """Train into ``output`` (resuming a matching checkpoint there); see the module's docstring.

        ``callback`` gets a :class:`TrainProgress` after every step; a KeyboardInterrupt (Ctrl-C, or
        raised by the callback) saves a checkpoint and is raised again as :class:`TrainingInterrupted`
        saying how to resume; ``cancel`` stops after the current step (checkpoint saved, the result's
        ``cancelled`` set).
        """
        from .model import load_model

        output = Path(output)
        s = self.settings
        cancel = cancel or CancelToken()
        resume = self.resume_state(output, force)
        torch.manual_seed(s.seed)
        net = TransformNet(self.architecture).to(self.device)
        params = list(net.parameters())
        optimizer = torch.optim.Adam(params, lr=s.learning_rate(0))
        start, history = 0, []
        if resume is not None:
            state, tensors = resume
            loaded = load_model(output, device=str(self.device))
            net.load_state_dict(loaded.net.state_dict())
            _restore_adam(optimizer, params, tensors)
            start, history = int(state["step"]), list(state.get("history", []))
        configure_backends(self.device, s.batch_size * s.size * s.size)
        features = self.features()
        for crop in dict.fromkeys(s.crop_at(i) for i in range(start, s.steps)):
            self.targets(features, crop)  # every style target this run needs, before the clock starts
        sample_folder = Path(samples) if samples else None
        written: list[Path] = []
        preview = None
        if sample_folder is not None:
            sample_folder.mkdir(parents=True, exist_ok=True)
            preview_pixels = self.photos.preview(self.recipe.max_size)
            preview = torch.from_numpy(np.ascontiguousarray(preview_pixels)).permute(2, 0, 1)[None].to(self.device)
            save_image(preview_pixels, sample_folder / "photo.png")
        started = time.perf_counter()
        timer = _StepTimer()
        step = start
        cancelled = False
        net.train()
        try:
            while step < s.steps:
                if cancel.cancelled:
                    cancelled = True
                    break
                t0 = time.perf_counter()
                crop = s.crop_at(step)
                lr = s.learning_rate(step)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                generator = torch.Generator().manual_seed(s.seed * 1_000_003 + step)
                photos = self.photos.batch(s.batch_size, crop, generator).to(self.device)
                objective = self.objective(features, photos, crop)
                painted = self.paint(net, photos)
                loss, parts = objective(painted)
                if s.stability_weight > 0:
                    half = max(1, s.batch_size // 2)
                    offset = stab.draw_shift(generator)
                    noise = (torch.randn(photos[:half].shape, generator=generator) * stab.NOISE).to(self.device)
                    stable = stab.stability_loss(lambda x: self.paint(net, x), photos[:half], painted[:half],
                                                 offset, noise)
                    loss = loss + s.stability_weight * stable
                    parts["stability"] = stable.item()
                    parts["total"] = loss.item()
                if not math.isfinite(parts["total"]):
                    raise ImpastoError(f"training diverged at step {step + 1} (loss {parts['total']}); lower the "
                                       f"learning rate (--lr, now {s.lr:g})")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                seconds = time.perf_counter() - t0
                timer.add(crop, seconds)
                history.append({"step": step, "crop": crop, "seconds": round(seconds, 3),
                                **{k: float(f"{v:.5g}") for k, v in parts.items()}})
                if preview is not None and sample_folder is not None and (
                        (s.sample_every and step % s.sample_every == 0) or step == s.steps):
                    with torch.no_grad():
                        picture = self.paint(net, preview)[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy()
                    path = sample_folder / f"step_{step:06d}.png"
                    save_image(picture, path)
                    written.append(path)
                if s.checkpoint_every and step % s.checkpoint_every == 0 and step < s.steps:
                    self.save(output, net, optimizer, step, history)
                if callback is not None:
                    callback(TrainProgress(step=step, total_steps=s.steps, crop=crop, batch_size=s.batch_size,
                                           losses=parts, lr=lr, elapsed=time.perf_counter() - started,
                                           seconds_per_step=timer.recent(crop), eta=timer.eta(s, step),
                                           resumed_from=start))
        except KeyboardInterrupt:
            self.save(output, net, optimizer, step, history)
            raise TrainingInterrupted(f"saved a usable model after step {step}/{s.steps} in {output}; run the same "
                                      "command again to resume from it") from None
        self.save(output, net, optimizer, step, history)
        recent = history[-20:]
        keys = recent[-1].keys() - {"step", "crop", "seconds"} if recent else set()
        means = {k: float(np.mean([h[k] for h in recent if k in h])) for k in sorted(keys)}
        return TrainResult(output=output, steps=step, resumed_from=start, elapsed=time.perf_counter() - started,
                           losses=means, history=history, cancelled=cancelled, samples=written)


class _StepTimer:
    """Seconds per step per crop size (a running mean of the recent steps), and the ETA from them."""

    def __init__(self) -> None:
        self.times: dict[int, list[float]] = {}

    def add(self, crop: int, seconds: float) -> None:
        self.times.setdefault(crop, []).append(seconds)

    def recent(self, crop: int) -> float:
        times = self.times.get(crop, [])[-20:]
        if len(times) > 2:
            times = times[1:]  # the first step at a size pays for its allocations
        return float(np.mean(times)) if times else 0.0

    def eta(self, settings: TrainSettings, step: int) -> float | None:
        """Seconds left: each remaining step priced at the measured rate of its crop size, or the
        current size's rate scaled by the pixels where its size has not run yet."""
        measured = {crop: self.recent(crop) for crop, times in self.times.items() if len(times) >= 3}
        if not measured:
            return None
        ref_crop, ref = max(measured.items(), key=lambda item: item[0])
        left = 0.0
        for s in range(step, settings.steps):
            crop = settings.crop_at(s)
            left += measured.get(crop, ref * (crop / ref_crop) ** 2)
        return left


def train(style: ImageSource | LoadedImage, output: str | Path, *, recipe: Recipe | None = None,
          settings: TrainSettings | None = None, architecture: Any = None, photos: str | Path | PhotoSet | None = None,
          callback: TrainCallback | None = None, samples: str | Path | None = None, force: bool = False,
          cancel: CancelToken | None = None) -> TrainResult:
    """Train a model of ``style`` into ``output`` (see :class:`Trainer`); ``photos``: a folder or a PhotoSet."""
    recipe = recipe or Recipe.from_preset("balanced")
    settings = settings or TrainSettings()
    if not isinstance(photos, PhotoSet):
        photos = PhotoSet.load(photos, view=recipe.max_size, jitter=settings.jitter)
    trainer = Trainer(style, recipe=recipe, settings=settings, architecture=architecture, photos=photos)
    return trainer.train(output, callback=callback, samples=samples, force=force, cancel=cancel)
