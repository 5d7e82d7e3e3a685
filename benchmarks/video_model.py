"""A video painted by a trained model: frames per second and flicker for several temporal blends.

    .venv/bin/python benchmarks/video_model.py --model starry.impasto                  # 256 px, 24 frames
    .venv/bin/python benchmarks/video_model.py --model starry.impasto --size 512 --blends 0,0.5

The clip (``--clip``) is one of ``benchmarks/flicker.py``'s: ``synthetic``, a generated texture
panning by (2, 1) px per frame at 64 px (scaled with ``--size``) crossed by a square moving the
other way (translation plus occlusion), or ``pan``, a camera panning and zooming across Tübingen;
it is written as a folder of PNG frames. For each blend *a* it is painted
with :func:`impasto.video.stylize_video_with_model` into a folder of frames (no encoding) and the
table shows: flicker (:func:`impasto.flow.flicker` on the painted frames: the mean warping error
between consecutive frames with the content's flow and consistency mask; the input clip's own is
the floor), frames per second of the frame loop (painting, flow and blend, writing the cached PNG
frame; not the decoding, nor the start-up), and detail (mean |Laplacian| of the grey painted
frames relative to *a* = 0), which falls when blending smears. ``--keep`` writes frame N/3 of each run to ``--out``.
Without ``--model`` a model with random weights is used, which paints noise: train one first
(``impasto train STYLE -o starry.impasto --size 128 --steps 150`` takes about a minute).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from flicker import detail, pan_clip, synthetic_clip  # noqa: E402  (a sibling script)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a .impasto file (default: random weights)")
    parser.add_argument("--clip", choices=("synthetic", "pan"), default="synthetic",
                        help="pan: a camera panning across ../shared/images/tubingen.jpg (benchmarks/flicker.py)")
    parser.add_argument("--size", type=int, default=256, help="long side of the frames (default 256)")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--blends", default="0,0.25,0.5,0.75,0.9", help="comma-separated values of a")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(HERE / "results" / "video_model"))
    parser.add_argument("--keep", action="store_true", help="write each run's last frame under --out")
    args = parser.parse_args(argv)

    import torch
    from PIL import Image

    from impasto import flow
    from impasto.feedforward.model import Model, ModelInfo, load_model
    from impasto.feedforward.network import ARCHITECTURES, TransformNet
    from impasto.recipe import Recipe
    from impasto.video import FrameCache, stylize_video_with_model

    if args.model:
        model = load_model(args.model, device=args.device)
    else:
        torch.manual_seed(0)
        arch = ARCHITECTURES["cpu"]
        info = ModelInfo(architecture=arch, recipe=Recipe(), style_name="random weights", style_sha256="", size=256,
                         steps=0)
        model = Model(TransformNet(arch).eval(), info, device=args.device)
    frames = (pan_clip if args.clip == "pan" else synthetic_clip)(args.frames, args.size)
    if frames is None:
        parser.error("--clip pan needs ../shared/images/tubingen.jpg")
    floor = flow.flicker(frames, frames)
    work = Path(tempfile.mkdtemp(prefix="impasto-video-model-"))
    out_root = Path(args.out)
    try:
        source = work / "input"
        source.mkdir()
        for i, frame in enumerate(frames, 1):
            Image.fromarray((np.clip(frame, 0, 1) * 255 + 0.5).astype(np.uint8)).save(source / f"{i:04d}.png")
        height, width = frames[0].shape[:2]
        print(f"{model!r}; {args.clip} clip {width}x{height} px, {args.frames} frames, "
              f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f}")
        print(f"input's own warping error {floor:.2e}")
        print(f"{'blend':>6}{'flicker':>10}{'vs 0':>7}{'fps':>7}{'detail':>8}")
        base_flicker = base_detail = None
        for a in (float(v) for v in args.blends.split(",")):
            out = work / f"blend_{round(a * 100):03d}"
            result = stylize_video_with_model(source, out, model, Recipe(device=args.device), blend=a, resume=False)
            painted = [FrameCache(out).load(i) for i in range(1, result.frames + 1)]
            measured = flow.flicker(painted, frames)
            sharp = float(np.mean([detail(f) for f in painted[1:]]))
            base_flicker, base_detail = base_flicker or measured, base_detail or sharp
            fps = 1.0 / result.seconds_per_frame if result.seconds_per_frame else float("nan")
            print(f"{a:>6g}{measured:>10.2e}{measured / base_flicker:>7.2f}{fps:>7.1f}{sharp / base_detail:>8.2f}")
            if args.keep:
                out_root.mkdir(parents=True, exist_ok=True)
                middle = painted[len(painted) // 3]  # the synthetic clip's square is still in view
                name = out_root / f"{args.clip}_blend_{round(a * 100):03d}.png"
                Image.fromarray((middle * 255 + 0.5).astype(np.uint8)).save(name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
