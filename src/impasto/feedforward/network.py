"""The image-transformation network of Johnson, Alahi & Fei-Fei (2016), with instance normalization.

Layout (``w`` = :attr:`Architecture.width`, ``b`` = :attr:`Architecture.blocks`)::

    reflect-pad, conv 9×9 3→w, IN, ReLU                      full resolution
    reflect-pad, conv 3×3 stride 2 w→2w, IN, ReLU            1/2
    reflect-pad, conv 3×3 stride 2 2w→4w, IN, ReLU           1/4
    b residual blocks: (conv 3×3, IN, ReLU, conv 3×3, IN) + skip, at 4w channels
    nearest ×2, conv 3×3 4w→2w, IN, ReLU                     1/2  (resize-then-convolve: no checkerboard)
    nearest ×2, conv 3×3 2w→w, IN, ReLU                      full
    reflect-pad, conv 9×9 w→3, sigmoid                       RGB in [0, 1]

Every normalization is instance normalization with a learned scale and shift (Ulyanov et al. 2017).
Inputs of any height and width are reflect-padded to a multiple of 4 and the output cropped back.

Instance normalization makes every pixel depend on the statistics of the whole picture, so painting
in tiles needs the whole picture's statistics: :class:`TransformNet` can run with *fixed* statistics
(given per normalization layer) and can *record* one layer's statistics over a region of a tile and
stop there (see :mod:`impasto.feedforward.paint`). Plain :meth:`TransformNet.forward` never does either.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: Inputs are padded to a multiple of this (two stride-2 stages).
MULTIPLE = 4
#: The largest width and number of residual blocks a model file may ask for (keeps a hostile file
#: from allocating gigabytes of parameters).
MAX_WIDTH = 256
MAX_BLOCKS = 32
EPS = 1e-5


def is_whole(value: object) -> bool:
    """Whether ``value`` is an int (and not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Architecture:
    """The network's size: ``width`` channels at full resolution (2× at 1/2, 4× in the residual
    trunk at 1/4) and ``blocks`` residual blocks. Johnson et al. used width 32 and 5 blocks."""

    width: int = 16
    blocks: int = 5

    def __post_init__(self) -> None:
        checks: tuple[tuple[str, object, int, int], ...] = (("width", self.width, 1, MAX_WIDTH),
                                                            ("blocks", self.blocks, 0, MAX_BLOCKS))
        for name, value, low, high in checks:
            if not is_whole(value) or not low <= value <= high:  # type: ignore[operator]
                raise ValueError(f"architecture {name} {value!r}: must be a whole number from {low} to {high}")

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Architecture:
        """The architecture :meth:`to_dict` wrote; unknown or missing keys raise ``ValueError``."""
        if not isinstance(data, dict):
            raise ValueError(f"architecture: expected an object, not {type(data).__name__}")
        unknown = sorted(map(str, set(data) - {"width", "blocks"}))
        if unknown:
            raise ValueError(f"architecture: unknown keys {', '.join(map(repr, unknown))}")
        missing = [k for k in ("width", "blocks") if k not in data]
        if missing:
            raise ValueError(f"architecture: {' and '.join(missing)} missing")
        return cls(width=data["width"], blocks=data["blocks"])

    @property
    def receptive_radius(self) -> int:
        """How far (in input pixels) an output pixel sees, an upper bound: the context a tile needs."""
        # conv 9×9 (4) + down 3×3 at stride 1 and 2 (1 + 2) + residual convs at stride 4 (4 each)
        # + up convs at stride 2 and 1 (2 + 1, plus 2 + 1 for the nearest upsampling) + conv 9×9 (4)
        return 4 + 1 + 2 + 8 * self.blocks + 2 + 2 + 1 + 1 + 4

    def parameters(self) -> int:
        """The number of learned values."""
        w = self.width
        convs = [(3, w, 9), (w, 2 * w, 3), (2 * w, 4 * w, 3)] + [(4 * w, 4 * w, 3)] * (2 * self.blocks)
        convs += [(4 * w, 2 * w, 3), (2 * w, w, 3), (w, 3, 9)]
        norms = [w, 2 * w, 4 * w] + [4 * w] * (2 * self.blocks) + [2 * w, w]
        return sum(i * o * k * k + o for i, o, k in convs) + 2 * sum(norms)


#: Named architectures: ``cpu`` (the default, fast on a CPU) and ``gpu`` (Johnson's width).
ARCHITECTURES = {"cpu": Architecture(16, 5), "gpu": Architecture(32, 5)}
DEFAULT_ARCHITECTURE = "cpu"


class _Stop(Exception):
    """Raised by the recording normalization layer: the rest of the network is not needed."""


class StatsPlan:
    """How the normalization layers behave during a tiled pass.

    Layers ``0 … len(fixed) - 1`` normalize with the given whole-picture ``(mean, var)`` (each a
    ``(C,)`` float64 tensor on the CPU); layer ``record`` (if not None) measures its per-channel sum,
    sum of squares and count over ``region`` (``top, bottom, left, right`` in input pixels of the
    tile, multiples of the layer's stride) into :attr:`sums`, then stops the pass. One plan serves
    every tile of a pass (:meth:`at` moves it to the next tile).
    """

    def __init__(self, fixed: list[tuple[torch.Tensor, torch.Tensor]], record: int | None = None,
                 region: tuple[int, int, int, int] | None = None, input_size: tuple[int, int] = (0, 0)):
        self.fixed = fixed
        self.record = record
        self.region = region
        self.input_size = input_size
        self.sums: tuple[torch.Tensor, torch.Tensor, int] | None = None
        self._affine: dict[tuple[int, torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}

    def at(self, region: tuple[int, int, int, int], input_size: tuple[int, int]) -> StatsPlan:
        """The plan for the next tile: its inner ``region`` and its size (height, width)."""
        self.region, self.input_size, self.sums = region, input_size, None
        return self

    def affine(self, norm: InstanceNorm, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer ``norm``'s fixed normalization as ``x * scale + shift``, ``(1, C, 1, 1)`` like ``like``."""
        key = (norm.index, like.device, like.dtype)
        if key not in self._affine:
            mean, var = self.fixed[norm.index]
            scale = norm.weight.detach().double().cpu() / torch.sqrt(var + EPS)
            shift = norm.bias.detach().double().cpu() - mean * scale
            self._affine[key] = (scale.to(like.device, like.dtype).view(1, -1, 1, 1),
                                 shift.to(like.device, like.dtype).view(1, -1, 1, 1))
        return self._affine[key]

    def measure(self, x: torch.Tensor) -> None:
        """Record the statistics of ``x`` (this layer's output before normalization) over the region."""
        assert self.region is not None, "a recording plan has a region"
        stride = self.input_size[0] // x.shape[-2]
        top, bottom, left, right = (v // stride for v in self.region)
        # float64 where the device has it (sums over millions of values), else float32 sums
        accumulate = torch.float32 if x.device.type == "mps" else torch.float64
        part = x[..., top:bottom, left:right].to(accumulate)
        self.sums = (part.sum(dim=(0, 2, 3)).double().cpu(), (part * part).sum(dim=(0, 2, 3)).double().cpu(),
                     part.shape[0] * part.shape[2] * part.shape[3])


class InstanceNorm(nn.Module):
    """Instance normalization with a learned per-channel ``weight`` and ``bias``."""

    def __init__(self, channels: int, index: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.index = index
        self.plan: StatsPlan | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        plan = self.plan
        if plan is None:
            return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=EPS)
        if self.index < len(plan.fixed):
            scale, shift = plan.affine(self, x)
            return x * scale + shift
        if self.index == plan.record:
            plan.measure(x)
            raise _Stop
        raise RuntimeError(f"normalization layer {self.index} reached without its statistics")


def _conv(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(kernel // 2), nn.Conv2d(c_in, c_out, kernel, stride=stride))


class _Residual(nn.Module):
    def __init__(self, channels: int, index: int):
        super().__init__()
        self.conv1 = _conv(channels, channels, 3)
        self.norm1 = InstanceNorm(channels, index)
        self.conv2 = _conv(channels, channels, 3)
        self.norm2 = InstanceNorm(channels, index + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.norm1(self.conv1(x)))
        return x + self.norm2(self.conv2(h))


class _Up(nn.Module):
    """Nearest-neighbour ×2, then a 3×3 convolution (no transposed convolution: no checkerboard)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = _conv(c_in, c_out, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class TransformNet(nn.Module):
    """Photo ``(N, 3, H, W)`` in [0, 1] → painting ``(N, 3, H, W)`` in [0, 1], for any H and W."""

    def __init__(self, arch: Architecture):
        super().__init__()
        self.arch = arch
        w = arch.width
        self.conv_in = _conv(3, w, 9)
        self.norm_in = InstanceNorm(w, 0)
        self.down1 = _conv(w, 2 * w, 3, stride=2)
        self.norm_down1 = InstanceNorm(2 * w, 1)
        self.down2 = _conv(2 * w, 4 * w, 3, stride=2)
        self.norm_down2 = InstanceNorm(4 * w, 2)
        self.blocks = nn.ModuleList(_Residual(4 * w, 3 + 2 * i) for i in range(arch.blocks))
        self.up1 = _Up(4 * w, 2 * w)
        self.norm_up1 = InstanceNorm(2 * w, 3 + 2 * arch.blocks)
        self.up2 = _Up(2 * w, w)
        self.norm_up2 = InstanceNorm(w, 4 + 2 * arch.blocks)
        self.conv_out = _conv(w, 3, 9)

    @property
    def norms(self) -> list[InstanceNorm]:
        """The normalization layers in the order the input meets them."""
        layers = [m for m in self.modules() if isinstance(m, InstanceNorm)]
        return sorted(layers, key=lambda m: m.index)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2], x.shape[-1]
        # always padded (by 0 where the side is a multiple already), so an exported graph pads any size
        pad_h, pad_w = (MULTIPLE - height % MULTIPLE) % MULTIPLE, (MULTIPLE - width % MULTIPLE) % MULTIPLE
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        y = self.body(x)
        return y[..., :height, :width]

    def body(self, x: torch.Tensor) -> torch.Tensor:
        """The network on an input whose sides are multiples of :data:`MULTIPLE`."""
        h = F.relu(self.norm_in(self.conv_in(x)))
        h = F.relu(self.norm_down1(self.down1(h)))
        h = F.relu(self.norm_down2(self.down2(h)))
        for block in self.blocks:
            h = block(h)
        h = F.relu(self.norm_up1(self.up1(h)))
        h = F.relu(self.norm_up2(self.up2(h)))
        return torch.sigmoid(self.conv_out(h))

    # -- tiles --------------------------------------------------------------------------------------
    def run_with(self, plan: StatsPlan, x: torch.Tensor) -> torch.Tensor | None:
        """:meth:`body` under ``plan``: the output, or None when the recording layer stopped the pass."""
        norms = self.norms
        for norm in norms:
            norm.plan = plan
        try:
            return self.body(x)
        except _Stop:
            return None
        finally:
            for norm in norms:
                norm.plan = None
