"""Throughput of many photos: separate commands, one batch, and a batch on a local Ray cluster.

    .venv/bin/python benchmarks/batch.py                   # 16 photos at 256 px, balanced preset
    .venv/bin/python benchmarks/batch.py --photos 8 --size 128 --preset fast

(a) one ``impasto stylize`` command per photo (each process loads torch, the weights and the
style anew), (b) one ``impasto batch`` over all of them (one process: the network and the
style's statistics stay loaded), (c) ``impasto batch --ray auto`` on a local Ray cluster with
two one-thread workers (the same cores as (b)). Prints images per minute for each, the ratios
the issue asks for ((b) ≥ 1.5× (a); (c) within 10 % of (b)), whether the three agree, and the
join ratio of a video painted in segments (``segments.py``, 48 frames in segments of 16).

The photos are 16 different crops of ``../shared/images/tubingen.jpg`` (and the other shared
pictures), the style ``starry_night.jpg``; run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "images"
IMPASTO = Path(sys.executable).parent / "impasto"


def make_photos(folder: Path, count: int, size: int) -> list[Path]:
    """``count`` different crops (4:3, long side ``size``) of the shared photos."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = [Image.open(SHARED / name).convert("RGB") for name in ("tubingen.jpg", "udnie.jpg", "the_scream.jpg")]
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        image = sources[i % len(sources)]
        width = int(image.width * rng.uniform(0.45, 0.7))
        height = width * 3 // 4
        left = int(rng.integers(0, image.width - width))
        top = int(rng.integers(0, max(1, image.height - height)))
        crop = image.crop((left, top, left + width, top + height)).resize((size, size * 3 // 4), Image.LANCZOS)
        path = folder / f"photo_{i + 1:02d}.jpg"
        crop.save(path, quality=92)
        paths.append(path)
    return paths


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--preset", default="balanced")
    parser.add_argument("--out", default=str(HERE / "results" / "batch"))
    parser.add_argument("--no-joins", dest="joins", action="store_false",
                        help="skip the video segment join ratio (benchmarks/segments.py)")
    args = parser.parse_args()
    if not (SHARED / "tubingen.jpg").exists():
        print(f"needs the shared photos in {SHARED}", file=sys.stderr)
        return 2
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    photos = make_photos(out / "photos", args.photos, args.size)
    (out / "a").mkdir()
    style = str(SHARED / "starry_night.jpg")
    options = ["--preset", args.preset, "--max-size", str(args.size), "--seed", "1", "--quiet"]

    separate = 0.0
    for photo in photos:
        separate += timed([str(IMPASTO), "stylize", str(photo), style, "-o", str(out / "a" / f"{photo.stem}.png"),
                           *options])
    batch = timed([str(IMPASTO), "batch", str(out / "photos"), "--style", style, "-o", str(out / "b"), *options])
    ray = timed([str(IMPASTO), "batch", str(out / "photos"), "--style", style, "-o", str(out / "c"), *options,
                 "--ray", "auto", "--workers", "2", "--ray-threads-per-worker", "1"])

    rates = {name: 60 * len(photos) / seconds for name, seconds in
             (("a", separate), ("b", batch), ("c", ray))}
    print(f"{len(photos)} photos at {args.size} px, preset {args.preset}, "
          f"{subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores")
    print(f"(a) {len(photos)} separate stylize commands: {separate:7.1f} s  {rates['a']:6.2f} images/min")
    print(f"(b) one impasto batch:                 {batch:7.1f} s  {rates['b']:6.2f} images/min"
          f"  ({rates['b'] / rates['a']:.2f}x (a); target >= 1.5x)")
    print(f"(c) batch --ray, 2 one-thread workers: {ray:7.1f} s  {rates['c']:6.2f} images/min"
          f"  ({rates['c'] / rates['b']:.2f}x (b); target within 10 %)")
    differences = []
    for photo in photos:
        name = f"{photo.stem}__starry_night.png"
        a = np.asarray(Image.open(out / "a" / f"{photo.stem}.png"), np.int16)
        for folder in ("b", "c"):
            differences.append(int(np.abs(a - np.asarray(Image.open(out / folder / name), np.int16)).max()))
    print(f"largest pixel difference between (a), (b) and (c): {max(differences)}")
    if args.joins:
        sys.path.insert(0, str(HERE))
        from segments import measure  # benchmarks/segments.py

        report = measure(frames=48, segment_frames=16, whole=False, out=out / "segments")
        if report is not None:
            print(f"video segment joins ({report['frames']} frames of {report['size'][0]}x{report['size'][1]}, "
                  f"segments of {report['segment_frames']}): join ratio {report['join_ratio']:.2f} (target <= 1.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
