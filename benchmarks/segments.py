"""Flicker at the joins of a video painted in segments, against the frames within segments.

    .venv/bin/python benchmarks/segments.py                        # Tübingen pan, 128 px, 72 frames in 3 segments
    .venv/bin/python benchmarks/segments.py --clip synthetic --size 64 --frames 48 --segment-frames 16
    .venv/bin/python benchmarks/segments.py --preset balanced --workers 2

The clip is painted twice with the same recipe: whole, in order (the reference), and in segments
of at most ``--segment-frames`` frames through an executor (this process, or ``--workers``
processes). Segments are joined by painting every segment's first frame first, as a still, and
pulling each segment's last frames towards the next one's (``impasto.video.joins``). For each run
the table shows the mean warping error between consecutive frames (:func:`impasto.flow.flicker`'s
measure), and for the segmented run the error at each join, the mean within segments, and the
*join ratio*: the worst join over the mean within segments (the target is at most 1.5).
``join_strip.png`` in ``--out`` shows the two frames before each join and the two after it, for
checking by eye that nothing ghosts. Clips as in ``benchmarks/flicker.py``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from flicker import pan_clip, style_image, synthetic_clip

HERE = Path(__file__).resolve().parent


def paint(source: Path, out: Path, style, recipe, job, executor=None, segment_frames=None) -> tuple[object, float]:
    from impasto.video import stylize_video

    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    result = stylize_video(source, out, style, recipe, stylizer=job, resume=False, executor=executor,
                           segment_frames=segment_frames)
    return result, time.perf_counter() - started


def join_strip(folder: Path, joins: list[int], path: Path) -> None:
    """The two frames before and after each join ``j`` (the next segment's first frame, 0-based), one row each."""
    from PIL import Image

    from impasto.video import FrameCache

    cache = FrameCache(folder)
    rows = [np.concatenate([cache.load(j + k) for k in (-1, 0, 1, 2)], 1) for j in joins]
    Image.fromarray((np.concatenate(rows, 0) * 255 + 0.5).astype(np.uint8)).save(path)


def measure(*, clip: str = "pan", size: int = 128, frames: int = 72, segment_frames: int = 24, preset: str = "fast",
            workers: int = 1, device: str = "cpu", out: Path = HERE / "results" / "segments",
            whole: bool = True) -> dict | None:
    """Paint the clip in segments (and, with ``whole``, whole for reference); the figures as a dict
    (also written to ``out/segments.json``), or None when the clip's photo is missing.
    ``benchmarks/batch.py`` calls this for the join ratio."""
    from PIL import Image

    from impasto.recipe import Recipe
    from impasto.scale.executor import LocalExecutor
    from impasto.scale.processes import ProcessExecutor
    from impasto.video import VideoStylizer

    pictures = (pan_clip if clip == "pan" else synthetic_clip)(frames, size)
    if pictures is None:
        return None
    source = out / "input"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    for i, frame in enumerate(pictures, 1):
        Image.fromarray((np.clip(frame, 0, 1) * 255 + 0.5).astype(np.uint8)).save(source / f"{i:04d}.png")
    recipe = Recipe.from_preset(preset, max_size=size, device=device, seed=0)
    job = VideoStylizer(recipe)
    style = style_image()
    report: dict = {"clip": clip, "size": list(pictures[0].shape[1::-1]), "frames": frames, "preset": preset,
                    "segment_frames": segment_frames, "workers": workers}
    if whole:
        result, seconds = paint(source, out / "whole", style, recipe, job)
        report.update(whole_flicker=result.flicker, whole_s=seconds)
    executor = ProcessExecutor(workers) if workers > 1 else LocalExecutor(job.stylizer)
    with executor:
        segmented, seconds = paint(source, out / "segmented", style, recipe, job, executor, segment_frames)
    joins = segmented.join_errors
    within = [e for e in segmented.warping_errors if e not in joins]
    report.update(segments=segmented.segments, join_errors=joins, within_mean=float(np.mean(within)),
                  join_ratio=segmented.join_ratio, segmented_flicker=segmented.flicker, segmented_s=seconds)
    join_strip(out / "segmented", smooth_joins(out / "segmented"), out / "join_strip.png")
    (out / "segments.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", choices=("pan", "synthetic"), default="pan")
    parser.add_argument("--size", type=int, default=128, help="long side of the frames (default 128)")
    parser.add_argument("--frames", type=int, default=72)
    parser.add_argument("--segment-frames", type=int, default=24)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--workers", type=int, default=1, help="worker processes for the segments (default 1: here)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(HERE / "results" / "segments"))
    args = parser.parse_args(argv)
    print(f"{args.clip} clip, {args.size} px, {args.frames} frames, preset {args.preset}, segments of at most "
          f"{args.segment_frames} frames, {args.workers} worker(s)")
    r = measure(clip=args.clip, size=args.size, frames=args.frames, segment_frames=args.segment_frames,
                preset=args.preset, workers=args.workers, device=args.device, out=Path(args.out))
    if r is None:
        print("the pan clip needs ../shared/images/tubingen.jpg; try --clip synthetic")
        return 1
    print(f"{'run':<11}{'flicker':>10}{'seconds':>9}")
    print(f"{'whole':<11}{r['whole_flicker']:>10.2e}{r['whole_s']:>9.1f}")
    print(f"{'segmented':<11}{r['segmented_flicker']:>10.2e}{r['segmented_s']:>9.1f}   {r['segments']} segments")
    print("joins:", ", ".join(f"{e:.2e}" for e in r["join_errors"]), f"| within segments: mean {r['within_mean']:.2e}")
    ratio = r["join_ratio"]
    if ratio is not None:
        print(f"join ratio {ratio:.2f} ({'meets' if ratio <= 1.5 else 'MISSES'} the 1.5 bound); worst join against "
              f"the whole video's mean: {max(r['join_errors']) / r['whole_flicker']:.2f}")
    return 0


def smooth_joins(folder: Path) -> list[int]:
    """The first frames (0-based) of the segments that follow another without a scene cut, from the manifest."""
    manifest = json.loads((folder / "impasto-video.json").read_text())
    return [record["end"] for record in manifest["segments"] if record["join"] == "smooth"]


if __name__ == "__main__":
    sys.exit(main())
