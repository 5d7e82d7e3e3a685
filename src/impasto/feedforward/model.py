"""Model files: a trained :class:`~impasto.feedforward.network.TransformNet` and what made it.

A model file is a `safetensors <https://huggingface.co/docs/safetensors>`_ file (tensors and a
string-to-string metadata header; no pickle, so loading runs no code):

* tensors ``net.<name>``: the network's parameters (float32); ``train.<name>``: whatever a
  training checkpoint keeps besides (optimizer state), absent from finished models;
* metadata ``format`` = :data:`FORMAT`, ``info`` = :class:`ModelInfo` as JSON (architecture,
  recipe, the style's name and sha256, crop size, steps, stability weight), ``checksum`` = the
  sha256 of every tensor (name, dtype, shape and bytes, in name order), ``impasto`` = the version
  that wrote it, and ``train.<key>`` for a checkpoint's own strings.

Every other file (not safetensors, cut short, corrupt, another program's safetensors, a newer
format, tensors that do not fit the architecture) is refused with a one-line :class:`ModelError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._version import __version__
from ..errors import ImpastoError, UsageError
from ..images import Fitting, ImageSource, LoadedImage, write_atomic
from ..recipe import Recipe
from .network import Architecture, TransformNet

FORMAT_NAME = "impasto-model"
FORMAT_VERSION = 1
#: The ``format`` metadata this version writes (and the newest it reads).
FORMAT = f"{FORMAT_NAME}/{FORMAT_VERSION}"
#: The file extension models are written with and ``impasto models`` looks for.
SUFFIX = ".impasto"
NET_PREFIX = "net."
EXTRA_PREFIX = "train."
#: A safetensors header larger than this is not a model's (a model's is a few kilobytes).
_MAX_HEADER = 100 * 2**20
_DTYPE_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                "BOOL": 1, "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1}


class ModelError(ImpastoError):
    """A model file cannot be read: missing, not a model, cut short, corrupt or from a newer impasto."""


@dataclass
class ModelInfo:
    """What a model file records about how it was made.

    ``recipe`` holds the losses and weights it was trained with, ``style_name`` / ``style_sha256``
    name the painting, ``size`` is the training crop's side in pixels, ``steps`` the training
    steps done, ``stability_weight`` the weight of the shift-and-noise stability loss (0 = none).
    """

    architecture: Architecture
    recipe: Recipe
    style_name: str
    style_sha256: str
    size: int
    steps: int
    stability_weight: float = 0.0
    #: Free-form additions a newer trainer may record (kept when read, written back as they were).
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "architecture": self.architecture.to_dict(), "recipe": self.recipe.to_dict(),
            "style_name": self.style_name, "style_sha256": self.style_sha256, "size": self.size,
            "steps": self.steps, "stability_weight": self.stability_weight,
        }
        if self.extra:
            data["extra"] = self.extra
        return data

    @classmethod
    def from_dict(cls, data: Any) -> ModelInfo:
        """The info :meth:`to_dict` wrote; raises ``ValueError`` naming what is wrong."""
        if not isinstance(data, dict):
            raise ValueError(f"info is {type(data).__name__}, not an object")
        required = ("architecture", "recipe", "style_name", "style_sha256", "size", "steps")
        missing = [k for k in required if k not in data]
        if missing:
            raise ValueError(f"info lacks {', '.join(missing)}")
        unknown = sorted(set(data) - {"architecture", "recipe", "style_name", "style_sha256", "size", "steps",
                                      "stability_weight", "extra"})
        if unknown:
            raise ValueError(f"info has unknown keys {', '.join(unknown)}")
        try:
            recipe = Recipe.from_dict(data["recipe"])
        except UsageError as exc:
            raise ValueError(f"recipe: {exc}") from None
        for name in ("size", "steps"):
            if isinstance(data[name], bool) or not isinstance(data[name], int) or data[name] < 0:
                raise ValueError(f"{name} {data[name]!r} is not a whole number")
        for name in ("style_name", "style_sha256"):
            if not isinstance(data[name], str):
                raise ValueError(f"{name} {data[name]!r} is not text")
        stability = data.get("stability_weight", 0.0)
        if isinstance(stability, bool) or not isinstance(stability, (int, float)):
            raise ValueError(f"stability_weight {stability!r} is not a number")
        extra = data.get("extra", {})
        if not isinstance(extra, dict):
            raise ValueError("extra is not an object")
        return cls(architecture=Architecture.from_dict(data["architecture"]), recipe=recipe,
                   style_name=data["style_name"], style_sha256=data["style_sha256"], size=data["size"],
                   steps=data["steps"], stability_weight=float(stability), extra=dict(extra))

    def to_metadata(self) -> dict[str, str]:
        """The safetensors metadata entries that hold this info."""
        return {"format": FORMAT, "info": json.dumps(self.to_dict(), sort_keys=True)}

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> ModelInfo:
        """The info in a model file's metadata (checked by :func:`read_model_info`); ``ValueError`` if invalid."""
        try:
            data = json.loads(metadata["info"])
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"no readable info ({exc})") from None
        return cls.from_dict(data)

    def describe(self) -> str:
        """One line: style, training size and steps, architecture."""
        stable = f", stability {self.stability_weight:g}" if self.stability_weight else ""
        return (f"{self.style_name}: {self.size} px crops, {self.steps} steps, width {self.architecture.width}, "
                f"{self.architecture.blocks} blocks{stable}")


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------
def checksum(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 of every tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_model(path: str | os.PathLike, net: TransformNet, info: ModelInfo, *,
               extra_tensors: dict[str, torch.Tensor] | None = None,
               extra_metadata: dict[str, str] | None = None) -> None:
    """Write ``net`` and ``info`` to ``path`` atomically (a crash never leaves half a file).

    ``extra_tensors`` and ``extra_metadata`` (a training checkpoint's optimizer state, step
    counters, …) are stored under ``train.`` and given back by :func:`read_extra`.
    """
    from safetensors.torch import save

    if net.arch != info.architecture:
        raise ValueError(f"the network's architecture {net.arch} differs from the info's {info.architecture}")
    tensors = {NET_PREFIX + name: value.detach().to("cpu", torch.float32).contiguous().clone()
               for name, value in net.state_dict().items()}
    for name, value in (extra_tensors or {}).items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"extra tensor {name!r} is a {type(value).__name__}, not a tensor")
        tensors[EXTRA_PREFIX + name] = value.detach().cpu().contiguous().clone()
    metadata = {**info.to_metadata(), "impasto": __version__, "checksum": checksum(tensors)}
    for key, text in (extra_metadata or {}).items():
        if not all(isinstance(v, str) for v in (key, text)):
            raise TypeError(f"extra metadata {key!r}: keys and values must be strings")
        metadata[EXTRA_PREFIX + key] = text
    write_atomic(path, save(tensors, metadata=metadata))


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------
def _label(path: str | os.PathLike) -> str:
    return f"model {str(path)!r}"


def _read_bytes(path: str | os.PathLike, count: int | None = None) -> tuple[bytes, int]:
    """The first ``count`` bytes (all when None) and the file's size; one-line errors."""
    file = Path(path)
    if not file.exists():
        raise ModelError(f"{_label(path)}: file does not exist")
    if file.is_dir():
        raise ModelError(f"{_label(path)}: is a directory, not a model file")
    try:
        with open(file, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            return (handle.read() if count is None else handle.read(count)), size
    except PermissionError:
        raise ModelError(f"{_label(path)}: permission denied (cannot read the file)") from None
    except OSError as exc:
        raise ModelError(f"{_label(path)}: cannot be read ({exc.strerror or exc})") from None


def _header(path: str | os.PathLike, data: bytes | None = None) -> tuple[dict[str, Any], dict[str, str], int]:
    """The safetensors header of the file (tensor entries, metadata) and the header's length in bytes.

    Checks that it is a safetensors file, that it is an impasto model in a format this version
    reads, and that the file holds all the bytes the header promises.
    """
    label = _label(path)
    if data is None:
        head, size = _read_bytes(path, 8)
    else:
        head, size = data[:8], len(data)
    not_safetensors = f"{label}: not an impasto model (not a safetensors file)"
    if len(head) < 8:
        raise ModelError(not_safetensors if size else f"{label}: the file is empty")
    length = int.from_bytes(head, "little")
    if length < 2 or length > _MAX_HEADER:
        raise ModelError(not_safetensors)
    if data is None:
        raw, _ = _read_bytes(path, 8 + length)
        raw = raw[8:]
    else:
        raw = data[8: 8 + length]
    if len(raw) < length:
        if raw[:1] == b"{":
            raise ModelError(f"{label}: the file is cut short ({size:,} bytes; its header alone needs "
                             f"{8 + length:,}): copy it again or retrain")
        raise ModelError(not_safetensors)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelError(not_safetensors) from None
    if not isinstance(header, dict):
        raise ModelError(not_safetensors)
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ModelError(not_safetensors)
    _check_format(label, metadata.get("format"))
    end = 0
    for name, entry in header.items():
        try:
            start, stop = entry["data_offsets"]
            count = int(np.prod(entry["shape"], dtype=np.int64)) * _DTYPE_SIZES[entry["dtype"]]
        except (KeyError, TypeError, ValueError):
            raise ModelError(f"{label}: corrupt (tensor {name!r} has an unreadable entry in the header)") from None
        if not (isinstance(start, int) and isinstance(stop, int) and 0 <= start <= stop and stop - start == count):
            raise ModelError(f"{label}: corrupt (tensor {name!r} has inconsistent offsets in the header)")
        end = max(end, stop)
    if size < 8 + length + end:
        raise ModelError(f"{label}: the file is cut short ({size:,} of {8 + length + end:,} bytes): "
                         "copy it again or retrain")
    return header, metadata, length


def _check_format(label: str, fmt: Any) -> None:
    if not isinstance(fmt, str) or not fmt.startswith(FORMAT_NAME + "/"):
        what = f"format {fmt!r}" if isinstance(fmt, str) else "no impasto-model format in its metadata"
        raise ModelError(f"{label}: a safetensors file but not an impasto model ({what})")
    version = fmt[len(FORMAT_NAME) + 1:]
    if not version.isdigit():
        raise ModelError(f"{label}: unknown model format {fmt!r}")
    if int(version) > FORMAT_VERSION:
        raise ModelError(f"{label}: written by a newer impasto (format {fmt}; this impasto {__version__} reads "
                         f"up to {FORMAT}): upgrade impasto to use it")


def _info(label: str, metadata: dict[str, str]) -> ModelInfo:
    try:
        return ModelInfo.from_metadata(metadata)
    except ValueError as exc:
        raise ModelError(f"{label}: its metadata cannot be read ({exc})") from None


def read_model_info(path: str | os.PathLike) -> ModelInfo:
    """The :class:`ModelInfo` of a model file, from its header alone (the weights are not read)."""
    _, metadata, _ = _header(path)
    return _info(_label(path), metadata)


def _read_all(path: str | os.PathLike, data: bytes | None = None
              ) -> tuple[ModelInfo, dict[str, torch.Tensor], dict[str, str], str]:
    """Info, every tensor, the metadata and the sha256 of the file (or of ``data``, the file's
    bytes read elsewhere), after checking the checksum."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    label = _label(path)
    if data is None:
        data, _ = _read_bytes(path)
    _, metadata, _ = _header(path, data)
    info = _info(label, metadata)
    try:
        tensors = load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{label}: corrupt ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    if metadata.get("checksum") != checksum(tensors):
        raise ModelError(f"{label}: corrupt (its tensors do not match the checksum it was saved with): "
                         "copy it again or retrain")
    return info, tensors, metadata, hashlib.sha256(data).hexdigest()


def read_extra(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The extra tensors and metadata :func:`save_model` stored (prefix removed), for resuming."""
    _, tensors, metadata, _ = _read_all(path)
    n = len(EXTRA_PREFIX)
    return ({k[n:]: v for k, v in tensors.items() if k.startswith(EXTRA_PREFIX)},
            {k[n:]: v for k, v in metadata.items() if k.startswith(EXTRA_PREFIX)})


def _network(label: str, info: ModelInfo, tensors: dict[str, torch.Tensor]) -> TransformNet:
    net = TransformNet(info.architecture)
    expected = net.state_dict()
    stored = {k[len(NET_PREFIX):]: v for k, v in tensors.items() if k.startswith(NET_PREFIX)}
    arch = f"width {info.architecture.width}, {info.architecture.blocks} blocks"
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    if missing or unexpected:
        what = f"lacks {missing[0]!r}" if missing else f"has an unexpected {unexpected[0]!r}"
        count = len(missing) + len(unexpected)
        raise ModelError(f"{label}: its tensors do not match its architecture ({arch}): it {what}"
                         + (f" and {count - 1} more differences" if count > 1 else ""))
    for name, value in expected.items():
        if stored[name].shape != value.shape:
            raise ModelError(f"{label}: its tensors do not match its architecture ({arch}): {name!r} is "
                             f"{tuple(stored[name].shape)}, not {tuple(value.shape)}")
    net.load_state_dict({k: v.float() for k, v in stored.items()})
    return net.eval().requires_grad_(False)


def load_model(path: str | os.PathLike, *, device: str = "auto", precision: str = "auto") -> Model:
    """Read a model file and put its network on ``device`` (``auto``: CUDA, then MPS, then CPU).

    ``precision`` ``auto`` paints in bfloat16 where the device computes it natively (see
    :func:`impasto.device.compute_dtype`), ``fp32`` or ``bf16`` force one.
    """
    info, tensors, _, sha256 = _read_all(path)
    net = _network(_label(path), info, tensors)
    return Model(net, info, sha256=sha256, path=str(path), device=device, precision=precision)


def load_model_bytes(data: bytes, path: str, *, device: str = "auto", precision: str = "auto") -> Model:
    """:func:`load_model` from the file's bytes (read by another machine); ``path`` names it in
    messages and in the pictures it paints."""
    info, tensors, _, sha256 = _read_all(path, data)
    net = _network(_label(path), info, tensors)
    return Model(net, info, sha256=sha256, path=path, device=device, precision=precision)


class Model:
    """A loaded model: ``.info`` (:class:`ModelInfo`), ``.net`` (:class:`TransformNet`), ``.sha256``
    (of the file) and :meth:`paint`.

    One model may paint from several threads (painting takes a lock: tiled passes change the
    network's normalization mode). A model made from a network in training (``Model(net, info)``)
    paints with its current weights.
    """

    def __init__(self, net: TransformNet, info: ModelInfo, *, sha256: str = "", path: str | None = None,
                 device: str = "auto", precision: str = "auto"):
        from ..device import compute_dtype, select_device
        from .paint import Painter

        self.info = info
        self.sha256 = sha256
        self.path = path
        self.device = select_device(device)
        self.dtype = compute_dtype(precision, self.device)
        self.net = net.to(self.device)  # a training network keeps its mode and gradients
        self.painter = Painter(self.net, self.device, self.dtype)
        self.lock = threading.Lock()

    @property
    def precision(self) -> str:
        return "bf16" if self.dtype is not None else "fp32"

    def paint(self, image: ImageSource | LoadedImage, *, max_size: int | None = None, preserve_color: str = "none",
              tile: int | None = None, color_transfer: str = "symmetric", fitting: Fitting | None = None,
              max_memory: float | None = None) -> np.ndarray:
        """Paint ``image`` (a path, PIL image, array or :class:`~impasto.images.LoadedImage`).

        Returns ``(H, W, 3)`` float32 in [0, 1] at the image's size, or shrunk so its long side is
        ``max_size`` (or fitted to ``fitting``: exact size, square, aspect, as the engine fits).
        ``preserve_color``: ``none``; ``luminance`` (the photo's lightness is painted, then put
        under the photo's chroma); ``post-yuv`` / ``post-lab`` (the painting's luma or lightness
        under the photo's chroma); ``histogram`` (the painting recoloured to the photo's colour
        mean and covariance with ``color_transfer``). ``tile``: None paints whole unless the
        picture would not fit in ``max_memory`` GiB (default: 80 % of free memory), then in
        tiles; 0 never tiles; a number paints in tiles of about that many pixels.
        """
        from .paint import paint_image

        return paint_image(self, image, max_size=max_size, preserve_color=preserve_color, tile=tile,
                           color_transfer=color_transfer, fitting=fitting, max_memory=max_memory).image

    def paint_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """The network on a batch ``(N, 3, H, W)`` in [0, 1] (sides of at least 8 px), whole (no
        tiles), on this model's device and precision; returns float32 on ``x``'s device."""
        with self.lock:
            return self.painter.whole(x)

    def metadata(self) -> dict[str, Any]:
        """What a painted picture records of the model that painted it."""
        return {"path": self.path, "sha256": self.sha256, "format": FORMAT, "info": self.info.to_dict()}

    def __repr__(self) -> str:
        return f"Model({self.path or 'in memory'}: {self.info.describe()}; {self.device}, {self.precision})"
