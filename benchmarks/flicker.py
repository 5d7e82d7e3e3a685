"""Flicker of video stylization: independent frames against temporally consistent ones.

    .venv/bin/python benchmarks/flicker.py                           # synthetic clip, 64 px, fast preset
    .venv/bin/python benchmarks/flicker.py --clip pan --size 128 --preset balanced
    .venv/bin/python benchmarks/flicker.py --clip both --size 256 --frames 8

Each clip is painted twice with the same recipe and the same style: every frame on its own
(``temporal=False``), then with temporal consistency (``temporal=True``: the previous result
warped by the optical flow as the start, and the temporal loss). Flicker is the mean warping
error between consecutive stylized frames (:func:`impasto.flow.flicker`: frame t−1 warped onto
frame t with the *content's* flow, squared difference averaged over the pixels that pass the
forward–backward check). The table also shows the input clip's own warping error (the floor of
the measure), seconds per frame, the mean style and content losses of frames 2…N and their
detail (mean |Laplacian| of the grey image) relative to the independent frames, which falls
when frames smear.

Clips: ``synthetic`` (a generated texture panning by (2, 1) px per frame, crossed by a square
moving the other way) and ``pan`` (a camera panning and slowly zooming across
``../shared/images/tubingen.jpg``; skipped when that photo is absent). The style is
``../shared/images/starry_night.jpg`` when present, else impasto's generated brush strokes.
Outputs go to ``benchmarks/results/flicker/`` (``--keep`` keeps the frames).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "images"


def synthetic_clip(count: int, size: int) -> list[np.ndarray]:
    """A textured scene panning by (2, 1) px per frame (at 64 px; scaled with ``size``) with a
    checkered square crossing it by (−3, 2) px per frame: translation plus occlusion."""
    import cv2

    scale = size / 64
    rng = np.random.default_rng(0)
    side = int(size + 4 * scale * count + 40 * scale)
    coarse = cv2.resize(rng.random((max(side // int(8 * scale), 2),) * 2 + (3,)).astype(np.float32), (side, side),
                        interpolation=cv2.INTER_CUBIC)
    fine = cv2.GaussianBlur(rng.random((side, side, 3)).astype(np.float32), (0, 0), 1.2 * scale)
    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    rings = 0.5 + 0.5 * np.sin(np.hypot(x - side / 2, y - side / 2) / (5.0 * scale))
    scene = np.clip(0.55 * coarse + 0.25 * fine + 0.2 * rings[..., None], 0, 1)
    box = size // 4
    cell = max(1, int(4 * scale))
    yy, xx = np.mgrid[0:box, 0:box]
    square = np.stack([(xx // cell + yy // cell) % 2 * 0.8 + 0.1, np.full((box, box), 0.2), 0.9 - 0.6 * yy / box], 2)
    frames = []
    origin = int(20 * scale)
    for t in range(count):
        dx, dy = round(2 * scale * t), round(scale * t)
        frame = scene[origin + dy:origin + dy + size, origin + dx:origin + dx + size].copy()
        left = size // 2 + size // 6 - box // 2 - round(3 * scale * t)
        top = size // 3 - box // 2 + round(2 * scale * t)
        x0, y0, x1, y1 = max(left, 0), max(top, 0), min(left + box, size), min(top + box, size)
        if x1 > x0 and y1 > y0:
            frame[y0:y1, x0:x1] = square[y0 - top:y1 - top, x0 - left:x1 - left]
        frames.append(frame.astype(np.float32))
    return frames


def pan_clip(count: int, size: int) -> list[np.ndarray] | None:
    """A 4:3 camera panning right (and a little down) across Tübingen while zooming in 0.6 % a frame."""
    import cv2

    from impasto.images import load_image

    path = SHARED / "tubingen.jpg"
    if not path.exists():
        return None
    photo = load_image(path).rgb
    height = int(size * 1.6)
    photo = cv2.resize(photo, (int(height * photo.shape[1] / photo.shape[0]), height), interpolation=cv2.INTER_AREA)
    frames = []
    for t in range(count):
        zoom = 1.006 ** t
        # out[p] = photo[p / zoom + offset]: the view moves 1.5 and 0.5 px per frame at 64 px
        view = np.float32([[1 / zoom, 0, 10 + 1.5 * t * size / 64], [0, 1 / zoom, 10 + 0.5 * t * size / 64]])
        frame = cv2.warpAffine(photo, view, (size, size * 3 // 4), flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REFLECT)
        frames.append(np.clip(frame, 0, 1).astype(np.float32))
    return frames


def style_image() -> np.ndarray:
    from impasto.images import load_image
    from impasto.texture import brush_strokes

    path = SHARED / "starry_night.jpg"
    return load_image(path).rgb if path.exists() else brush_strokes((512, 512), seed=0)


def detail(image: np.ndarray) -> float:
    import cv2

    grey = cv2.cvtColor(np.ascontiguousarray(image, np.float32), cv2.COLOR_RGB2GRAY)
    return float(np.abs(cv2.Laplacian(grey, cv2.CV_32F)).mean())


def paint(job, frames_dir: Path, out_dir: Path, style, recipe, temporal: bool) -> dict:
    from impasto.video import FrameCache, stylize_video

    shutil.rmtree(out_dir, ignore_errors=True)
    records = []
    result = stylize_video(frames_dir, out_dir, style, recipe, temporal=temporal, stylizer=job,
                           on_frame=records.append, resume=False)
    later = [r for r in records if r.index > 1]
    frames = [FrameCache(out_dir).load(i) for i in range(1, result.frames + 1)]
    return {
        "flicker": result.flicker,
        "first_frame_s": records[0].seconds,
        "later_frame_s": float(np.mean([r.seconds for r in later])) if later else None,
        "style": float(np.mean([r.losses["style"] for r in later])) if later else None,
        "content": float(np.mean([r.losses["content"] for r in later])) if later else None,
        "detail": float(np.mean([detail(f) for f in frames[1:]])),
        "detail_last": detail(frames[-1]),
        "frames": frames,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", choices=("synthetic", "pan", "both"), default="synthetic")
    parser.add_argument("--size", type=int, default=64, help="long side of the frames (default 64)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--temporal-weight", type=float, default=None, help="default: the recipe's")
    parser.add_argument("--later-steps", type=int, default=None, help="default: the preset's later_steps")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", default=str(HERE / "results" / "flicker"))
    parser.add_argument("--keep", action="store_true", help="keep the frames under --out")
    args = parser.parse_args(argv)

    import torch
    from PIL import Image

    from impasto import flow
    from impasto.recipe import Recipe
    from impasto.video import VideoStylizer

    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = dict(max_size=args.size, device=args.device, seed=0)
    if args.temporal_weight is not None:
        overrides["temporal_weight"] = args.temporal_weight
    if args.later_steps is not None:
        overrides["later_steps"] = args.later_steps
    recipe = Recipe.from_preset(args.preset, **overrides)
    job = VideoStylizer(recipe)
    style = style_image()
    out_root = Path(args.out)
    clips = {"synthetic": synthetic_clip, "pan": pan_clip}
    names = list(clips) if args.clip == "both" else [args.clip]
    report = {"preset": args.preset, "size": args.size, "frames": args.frames,
              "temporal_weight": recipe.temporal_weight, "later_steps": recipe.frame_steps, "clips": {}}
    print(f"preset {args.preset}, {args.size} px, {args.frames} frames, temporal weight {recipe.temporal_weight:g}, "
          f"device {args.device}, torch threads {torch.get_num_threads()}")
    for name in names:
        frames = clips[name](args.frames, args.size)
        if frames is None:
            print(f"{name}: skipped ({SHARED / 'tubingen.jpg'} is missing)")
            continue
        source = out_root / name / "input"
        shutil.rmtree(source, ignore_errors=True)
        source.mkdir(parents=True)
        for i, frame in enumerate(frames, 1):
            Image.fromarray((np.clip(frame, 0, 1) * 255 + 0.5).astype(np.uint8)).save(source / f"{i:04d}.png")
        floor = flow.flicker(frames, frames)
        started = time.perf_counter()
        independent = paint(job, source, out_root / name / "independent", style, recipe, False)
        temporal = paint(job, source, out_root / name / "temporal", style, recipe, True)
        ratio = independent["flicker"] / temporal["flicker"]
        w, h = frames[0].shape[1], frames[0].shape[0]
        print(f"\n{name} clip ({w}x{h}), input's own warping error {floor:.2e}; {time.perf_counter() - started:.0f} s")
        print(f"{'mode':<13}{'flicker':>10}{'1st s':>8}{'s/frame':>9}{'style':>8}{'content':>9}{'detail':>8}")
        for label, r in (("independent", independent), ("temporal", temporal)):
            print(f"{label:<13}{r['flicker']:>10.2e}{r['first_frame_s']:>8.2f}{r['later_frame_s']:>9.2f}"
                  f"{r['style']:>8.3f}{r['content']:>9.3f}{r['detail'] / independent['detail']:>8.2f}")
        print(f"flicker: independent {independent['flicker']:.3e}, temporal {temporal['flicker']:.3e}, "
              f"ratio {ratio:.1f}x lower ({'meets' if ratio >= 2 else 'MISSES'} the 2x target)")
        report["clips"][name] = {"input_warping_error": floor, "ratio": ratio, **{
            label: {k: v for k, v in r.items() if k != "frames"} for label, r in
            (("independent", independent), ("temporal", temporal))}}
        if not args.keep:
            for sub in ("input", "independent", "temporal"):
                shutil.rmtree(out_root / name / sub, ignore_errors=True)
    out_root.mkdir(parents=True, exist_ok=True)
    (out_root / "flicker.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
