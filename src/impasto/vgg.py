"""The VGG19 convolutional stack, built here, frozen, with layers addressable by name.

Layer names follow the paper: ``conv1_1``, ``relu1_1``, ``conv1_2``, ``relu1_2``, ``pool1``, …,
``relu5_4``, ``pool5``. The network is cut after the deepest layer a run asks for.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.nn import functional as F

from .errors import UsageError
from .weights import CONV_LAYERS, VGGWeights

_BLOCK_SIZES = (2, 2, 4, 4, 4)


def _layer_names() -> tuple[str, ...]:
    names: list[str] = []
    for block, size in enumerate(_BLOCK_SIZES, start=1):
        for i in range(1, size + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return tuple(names)


LAYER_NAMES: tuple[str, ...] = _layer_names()
LAYER_INDEX = {name: i for i, name in enumerate(LAYER_NAMES)}

#: ``torchvision.models.vgg19().features[i]`` ↔ impasto layer name (the notebook used indices).
TORCHVISION_FEATURE_NAMES = dict(enumerate(LAYER_NAMES))


def resolve_layer(name: str) -> str:
    """Accept ``relu4_2`` style names and ``features.21`` / ``21`` torchvision indices."""
    text = str(name).strip()
    if text in LAYER_INDEX:
        return text
    index = text.removeprefix("features.").removeprefix("features[").removesuffix("]")
    if index.isdigit() and int(index) in TORCHVISION_FEATURE_NAMES:
        return TORCHVISION_FEATURE_NAMES[int(index)]
    raise UsageError(
        f"unknown layer name {name!r}; use conv1_1 … conv5_4, relu1_1 … relu5_4 or pool1 … pool5"
    )


def deepest(layers: Iterable[str]) -> str:
    return max(layers, key=LAYER_INDEX.__getitem__)


class ScaledAvgPool(nn.Module):
    """2×2 average pooling times a calibrated ``scale`` (so magnitudes match max pooling)."""

    scale: torch.Tensor  # a buffer

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("scale", torch.ones(()), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) * self.scale.to(x.dtype)


class VGG19Features(nn.Module):
    """Frozen VGG19 feature extractor.

    Args:
        weights: dequantized weights from :func:`impasto.weights.load_weights`.
        last_layer: deepest layer to build; later layers are never computed.
        pooling: ``"max"`` (as trained) or ``"avg"`` (Gatys et al.'s suggestion for smoother
            results). Average pooling gives smaller activations than max pooling; each average
            pool is rescaled so that its mean output matches max pooling's on a calibration image.

    ``forward(image, layers)`` takes an RGB image batch ``(N, 3, H, W)`` with values in [0, 1] and
    returns ``{layer: activation (N, C, H / 2**k, W / 2**k)}`` (raw: multiply by
    ``convention.feature_scale`` for magnitudes that do not depend on the weights' convention).
    """

    # buffers (registered in __init__, moved with the module)
    channel_order: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, weights: VGGWeights, last_layer: str = "relu5_1", pooling: str = "max"):
        super().__init__()
        if pooling not in ("max", "avg"):
            raise UsageError(f"unknown pooling {pooling!r}; use max or avg")
        self.convention = weights.convention
        self.last_layer = resolve_layer(last_layer)
        channels = {name: (c_in, c_out) for name, c_in, c_out in CONV_LAYERS}
        layers = nn.ModuleDict()
        for name in LAYER_NAMES[: LAYER_INDEX[self.last_layer] + 1]:
            if name.startswith("conv"):
                conv = nn.Conv2d(*channels[name], kernel_size=3, padding=1)
                weight, bias = weights.convs[name]
                assert conv.bias is not None  # Conv2d has a bias unless built with bias=False
                with torch.no_grad():
                    conv.weight.copy_(weight)
                    conv.bias.copy_(bias)
                # channels-last: oneDNN and cuDNN run 3x3 convolutions and pooling faster in it
                conv.weight.data = conv.weight.data.contiguous(memory_format=torch.channels_last)
                layers[name] = conv
            elif name.startswith("relu"):
                layers[name] = nn.ReLU(inplace=False)
            else:
                layers[name] = nn.MaxPool2d(2, 2) if pooling == "max" else ScaledAvgPool()
        self.layers = layers
        convention = self.convention
        order = [2, 1, 0] if convention.bgr else [0, 1, 2]
        self.register_buffer("channel_order", torch.tensor(order), persistent=False)
        self.register_buffer("mean", torch.tensor(convention.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(convention.std).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()
        if pooling == "avg":
            self._calibrate_pools()

    @torch.no_grad()
    def _calibrate_pools(self) -> None:
        generator = torch.Generator().manual_seed(0)
        image = F.interpolate(torch.rand(1, 3, 16, 16, generator=generator), size=(128, 128), mode="bilinear")
        x = self.preprocess(image)
        for module in self.layers.values():
            if isinstance(module, ScaledAvgPool):
                module.scale.fill_(F.max_pool2d(x, 2).mean() / F.avg_pool2d(x, 2).mean().clamp_min(1e-8))
            x = module(x)

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1], ``(N, 3, H, W)`` → the network's input convention."""
        x = image.index_select(1, self.channel_order) * self.convention.scale
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def forward(self, image: torch.Tensor, layers: Iterable[str],
                dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
        """``{layer: activation}``; with ``dtype`` the preprocessed input is cast to it, channels-last
        (for a network whose convolutions are in that dtype and layout, see :mod:`impasto.features`)."""
        wanted = {resolve_layer(name) for name in layers}
        if not wanted:
            return {}
        last = deepest(wanted)
        if LAYER_INDEX[last] > LAYER_INDEX[self.last_layer]:
            raise UsageError(f"layer {last} is deeper than the network was built for ({self.last_layer})")
        x = self.preprocess(image)
        if dtype is not None:
            x = x.to(dtype).contiguous(memory_format=torch.channels_last)
        out: dict[str, torch.Tensor] = {}
        for name, module in self.layers.items():
            x = module(x)
            if name in wanted:
                out[name] = x
            if name == last:
                break
        return out


def step_flops(size: tuple[int, int], last_layer: str) -> float:
    """Floating-point operations of one optimization step on an image of ``size`` = (W, H).

    Counts the convolutions up to ``last_layer``: the forward pass (2 FLOPs per multiply-add)
    and the backward pass to the input, which costs the same (the weights are frozen, so no
    weight gradients are computed). Pooling, ReLU and the losses are negligible.
    """
    width, height = size
    channels = {name: (c_in, c_out) for name, c_in, c_out in CONV_LAYERS}
    stride, macs = 1, 0
    for name in LAYER_NAMES[: LAYER_INDEX[resolve_layer(last_layer)] + 1]:
        if name.startswith("conv"):
            c_in, c_out = channels[name]
            macs += c_in * c_out * 9 * (height // stride) * (width // stride)
        elif name.startswith("pool"):
            stride *= 2
    return 4.0 * macs
