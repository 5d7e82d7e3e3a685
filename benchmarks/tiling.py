"""Large outputs: wall time and peak memory of tiled runs (``python benchmarks/tiling.py``).

Each size runs in a child process so its peak resident memory (``ru_maxrss``) is its own. The
photo is upscaled to the output size first (impasto only ever shrinks inputs), so the run really
optimizes every pixel of the large output. Prints one line per size and writes the pictures to
``--out`` for looking at seams.

    python benchmarks/tiling.py --sizes 2048 4096 --max-memory 6
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"


def child(size: int, max_memory: float, out: Path, scale_steps: tuple[int, ...], square: bool = False) -> None:
    import numpy as np
    from PIL import Image

    from impasto import tiling
    from impasto.images import LoadedImage
    from impasto.optimize.engine import Stylizer
    from impasto.recipe import Recipe
    from impasto.texture import brush_strokes

    photo_path, style_path = SHARED / "tubingen.jpg", SHARED / "starry_night.jpg"
    if photo_path.exists():
        photo = Image.open(photo_path).convert("RGB")
        style = np.asarray(Image.open(style_path).convert("RGB"), np.float32) / 255
    else:  # no shared images: scikit-image's astronaut and the generated style
        from skimage import data

        photo = Image.fromarray(data.astronaut())
        style = brush_strokes((1024, 1024), seed=0)
    if square:  # centre crop: a size × size output
        side = min(photo.size)
        left, top = (photo.width - side) // 2, (photo.height - side) // 2
        photo = photo.crop((left, top, left + side, top + side))
    factor = size / max(photo.size)
    photo = photo.resize((round(photo.width * factor), round(photo.height * factor)), Image.Resampling.LANCZOS)
    content = LoadedImage(rgb=np.asarray(photo, np.float32) / 255, name=f"photo at {size}")
    from impasto.optimize.schedule import scale_sizes

    scales = len(scale_sizes(content.size, 256, 2.0))
    recipe = Recipe.from_preset("balanced", max_size=size, seed=0, min_size=256, scale_factor=2.0,
                                scale_steps=scale_steps[:scales], max_memory=max_memory, log_every=0)
    whole = tiling.step_bytes(content.size, "relu5_1")
    started = time.perf_counter()
    result = Stylizer(recipe).run(content, LoadedImage(rgb=style, name="style"))
    wall = time.perf_counter() - started
    Image.fromarray((result.image * 255 + 0.5).astype(np.uint8)).save(out / f"tiled_{size}.png")
    print(json.dumps({"size": content.size, "wall_s": round(wall, 1), "steps": result.steps,
                      "tiles": result.metadata["tiles"], "whole_step_estimate_gib": round(whole / 2**30, 1)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--max-memory", type=float, default=6.0, help="GiB the run may plan for (default 6)")
    parser.add_argument("--scale-steps", default="22,6,2,1,1,1",
                        help="steps per scale, 256 px doubling (the first N for an output with N scales)")
    parser.add_argument("--square", action="store_true", help="crop the photo square: SIZE x SIZE outputs")
    parser.add_argument("--out", default="benchmarks/results", type=Path)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    steps = tuple(int(s) for s in args.scale_steps.split(","))
    if args.child:
        child(args.child, args.max_memory, args.out, steps, args.square)
        return
    print(f"{'size':>11}  {'wall':>8}  {'peak RSS':>9}  {'whole step would need':>21}  tiles per scale")
    for size in args.sizes:
        process = subprocess.Popen([sys.executable, __file__, "--child", str(size), "--max-memory",
                                    str(args.max_memory), "--scale-steps", args.scale_steps, "--out", str(args.out),
                                    *(["--square"] if args.square else [])],
                                   stdout=subprocess.PIPE, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        line = process.stdout.read().strip().splitlines()
        if status != 0 or not line:
            print(f"{size:>11}  failed (status {status})")
            continue
        report = json.loads(line[-1])
        width, height = report["size"]
        print(f"{width:>5}x{height:<5}  {report['wall_s']:>7.0f}s  {usage.ru_maxrss / 2**20:>7.2f} GiB"
              f"  {report['whole_step_estimate_gib']:>17.1f} GiB  {report['tiles']}", flush=True)


if __name__ == "__main__":
    main()
