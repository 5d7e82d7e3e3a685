"""Would Winograd convolutions make a step cheaper? VGG19's 3×3 layers timed both ways.

    .venv/bin/python benchmarks/winograd.py                  # 512x384, bf16 where the CPU has it
    .venv/bin/python benchmarks/winograd.py --size 1024x768 --dtype float32

A step at the output size runs at about the CPU's matrix-multiply speed (see README), so fewer
multiplications are the only way left to a cheaper step. Winograd's F(2×2, 3×3) computes each
2×2 block of outputs from a 4×4 block of inputs with 16 products per channel pair instead of 36
(2.25× fewer), at the price of transforming inputs and outputs (memory-bound passes). This script
times, for every convolution of the network up to ``conv5_1`` at the feature sizes an image of
``--size`` gives, oneDNN's direct convolution (``torch.nn.functional.conv2d``, channels-last) and
a Winograd convolution built from torch operations (transforms as strided additions, the 16
products as one batched matrix multiply), forward only, with the relative error of the latter.
The last line is the network's forward time with direct convolutions everywhere and with the
faster of the two per layer: an upper bound on what Winograd could save.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

# F(2x2, 3x3): output = A^T [(G w G^T) * (B^T d B)] A over 4x4 input tiles with stride 2
_BT = torch.tensor([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=torch.float32)
_G = torch.tensor([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=torch.float32)


def transformed_kernel(weight: torch.Tensor) -> torch.Tensor:
    """``(16, C_in, C_out)`` Winograd-domain kernel of a ``(C_out, C_in, 3, 3)`` convolution weight."""
    u = torch.einsum("ik,ockl,jl->ijco", _G, weight.float(), _G)
    return u.reshape(16, weight.shape[1], weight.shape[0]).to(weight.dtype)


def winograd_conv(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """3×3 convolution, padding 1, of ``x`` ``(1, C, H, W)`` channels-last (H, W even) with a
    :func:`transformed_kernel`; returns ``(1, C_out, H, W)`` channels-last, no bias."""
    _, channels, height, width = x.shape
    rows, cols = height // 2, width // 2
    padded = F.pad(x.permute(0, 2, 3, 1)[0], (0, 0, 1, 1, 1, 1))  # (H + 2, W + 2, C)
    r = [padded[k:k + height:2] for k in range(4)]  # row k of every tile
    across = (r[0] - r[2], r[1] + r[2], r[2] - r[1], r[1] - r[3])  # B^T d
    tiles = x.new_empty(16, rows, cols, channels)
    for i, t in enumerate(across):  # (B^T d) B
        c = [t[:, k:k + width:2] for k in range(4)]
        torch.sub(c[0], c[2], out=tiles[4 * i])
        torch.add(c[1], c[2], out=tiles[4 * i + 1])
        torch.sub(c[2], c[1], out=tiles[4 * i + 2])
        torch.sub(c[1], c[3], out=tiles[4 * i + 3])
    products = torch.bmm(tiles.view(16, rows * cols, channels), kernel).view(4, 4, rows, cols, -1)
    top = products[0] + products[1] + products[2]  # A^T m
    bottom = products[1] - products[2] - products[3]
    out = x.new_empty(rows, 2, cols, 2, kernel.shape[-1])
    for a, half in enumerate((top, bottom)):  # (A^T m) A
        torch.add(half[0] + half[1], half[2], out=out[:, a, :, 0])
        torch.sub(half[1] - half[2], half[3], out=out[:, a, :, 1])
    return out.view(1, height, width, -1).permute(0, 3, 1, 2)


def best_ms(run: Callable[[], object], repeats: int = 7) -> float:
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="512x384", help="image WIDTHxHEIGHT (default 512x384)")
    parser.add_argument("--dtype", choices=("auto", "bfloat16", "float32"), default="auto")
    args = parser.parse_args()

    from impasto.device import compute_dtype
    from impasto.vgg import CONV_LAYERS, LAYER_NAMES

    width, height = (int(v) for v in args.size.split("x"))
    dtype = (compute_dtype("auto", torch.device("cpu")) or torch.float32) if args.dtype == "auto" \
        else getattr(torch, args.dtype)
    channels = {name: (c_in, c_out) for name, c_in, c_out in CONV_LAYERS}
    generator = torch.Generator().manual_seed(0)
    print(f"{width}x{height}, {dtype}, {torch.get_num_threads()} threads")
    print(f"{'layer':8s} {'features':>10s} {'direct ms':>10s} {'winograd ms':>12s} {'ratio':>6s} {'rel err':>8s}")
    direct_total = best_total = 0.0
    for name in LAYER_NAMES[: LAYER_NAMES.index("conv5_1") + 1]:
        if name.startswith("pool"):
            width, height = width // 2, height // 2
        if not name.startswith("conv"):
            continue
        c_in, c_out = channels[name]
        x = torch.randn(1, c_in, height, width, generator=generator).to(dtype)
        x = x.contiguous(memory_format=torch.channels_last)
        weight = (torch.randn(c_out, c_in, 3, 3, generator=generator) / (3 * c_in ** 0.5)).to(dtype)
        weight = weight.contiguous(memory_format=torch.channels_last)
        kernel = transformed_kernel(weight)
        reference = F.conv2d(x, weight, padding=1).float()
        error = float((winograd_conv(x, kernel).float() - reference).norm() / reference.norm())
        direct = best_ms(lambda: F.conv2d(x, weight, padding=1))  # noqa: B023 (timed at once)
        winograd = best_ms(lambda: winograd_conv(x, kernel))  # noqa: B023
        direct_total += direct
        best_total += min(direct, winograd)
        print(f"{name:8s} {f'{width}x{height}':>10s} {direct:10.1f} {winograd:12.1f} {direct / winograd:6.2f} "
              f"{error:8.4f}", flush=True)
    print(f"forward: direct {direct_total:.1f} ms, faster of the two per layer {best_total:.1f} ms "
          f"({direct_total / best_total:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
