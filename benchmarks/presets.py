"""Today's presets against the previous release's, by final loss and wall time, on several pairs.

    .venv/bin/python benchmarks/presets.py                      # four pairs at 512 px
    .venv/bin/python benchmarks/presets.py --size 1024 --pairs tubingen-starry --presets quality
    .venv/bin/python benchmarks/presets.py --skip-old --candidate 'quality={"steps": 60}'

Each pair (a photo and a painting: the shared paintings, ``../shared/images/tubingen.jpg`` and
photos scikit-image bundles) is painted with every preset as it is now ("new", or with
``--candidate`` settings on top) and as the previous release defined it ("old", ``OLD_PRESETS``
below: the same losses and weights, other schedules), in one process with the network loaded;
each run measures the style afresh (a new statistics cache), so its wall time is what a user's
first run of that style costs, less loading the network. For each run it prints the wall time,
the final picture's loss by the engine's own objective at the output size (content + style + TV at
the preset's weights) and the independent figures of ``quality.py``, then per pair the time ratio
old/new and whether the new loss is at most the old one's. The pictures go to
``benchmarks/results/presets/`` (look at them).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "images"
RESULTS = HERE / "results" / "presets"
sys.path.insert(0, str(HERE))

#: The presets' schedules before issue 15 (losses and weights unchanged since).
OLD_PRESETS = {
    "balanced": dict(steps=22, step_decay=0.25, min_size=256, scale_factor=math.sqrt(2.0)),
    "quality": dict(steps=120, step_decay=0.5, min_size=256, scale_factor=math.sqrt(2.0), equal_cost_above=None),
}
#: photo (a shared file or ``skimage:NAME``) and painting (a shared file) per pair.
PAIRS = {
    "tubingen-starry": ("tubingen.jpg", "starry_night.jpg"),
    "astronaut-scream": ("skimage:astronaut", "the_scream.jpg"),
    "coffee-udnie": ("skimage:coffee", "udnie.jpg"),
    "chelsea-starry": ("skimage:chelsea", "starry_night.jpg"),
}


def load_pair(name: str):
    from impasto.images import LoadedImage, load_image

    photo_name, style_name = PAIRS[name]
    if photo_name.startswith("skimage:"):
        from skimage import data

        rgb = getattr(data, photo_name.split(":", 1)[1])()
        photo = LoadedImage(rgb=np.asarray(rgb, np.float32) / 255, name=photo_name)
    else:
        photo = load_image(SHARED / photo_name, what="photo")
    return photo, load_image(SHARED / style_name, what="style")


def final_loss(stylizer, recipe, photo, style, picture: np.ndarray) -> dict[str, float]:
    """The engine's objective on ``picture`` at its size (the last scale's targets, whole image)."""
    from impasto.device import compute_dtype, select_device
    try:
        from impasto.features import FeatureExtractor
    except ImportError:  # the code before the network's features moved (run.py --before-src)
        from impasto.optimize.features import FeatureExtractor  # type: ignore[no-redef]
    from impasto.images import resize
    from impasto.optimize.guides import ScaleGuides
    from impasto.optimize.inputs import colour_inputs, to_tensor
    from impasto.optimize.objective import Objective
    from impasto.optimize.targets import scale_targets

    device = select_device(recipe.device)
    features = FeatureExtractor(stylizer.network(device, recipe), compute_dtype(recipe.precision, device))
    size = (picture.shape[1], picture.shape[0])
    content_rgb, styles = colour_inputs(recipe, resize(photo, size), [style])
    targets = scale_targets(features, recipe, to_tensor(content_rgb, device), styles, [1.0], ScaleGuides(), size,
                            False, 16 * 2**30)
    with torch.no_grad():
        _, parts = Objective(recipe, features, targets)(to_tensor(picture, device))
    return parts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", default=",".join(PAIRS), help="comma-separated pair names")
    parser.add_argument("--presets", default="quality,balanced")
    parser.add_argument("--size", type=int, default=512, help="output long side (default 512)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--candidate", action="append", default=[], metavar="PRESET=JSON",
                        help='try other settings as "new", e.g. quality=\'{"steps": 40, "step_decay": 0.875}\'')
    parser.add_argument("--skip-old", action="store_true", help="run only the new (candidate) settings")
    parser.add_argument("--baseline", metavar="JSON",
                        help="take the old rows from this file (e.g. baselines/presets_174f149_512.json, measured "
                             "with the previous release's code) instead of running the old schedules here")
    args = parser.parse_args()
    candidates = {text.split("=", 1)[0]: json.loads(text.split("=", 1)[1]) for text in args.candidate}

    import impasto
    from impasto.images import fit, flatten, save_image
    from impasto.optimize.targets import StatisticsCache
    from quality import quality

    if not (SHARED / "starry_night.jpg").exists():
        print(f"needs the shared paintings in {SHARED}")
        return 1
    RESULTS.mkdir(parents=True, exist_ok=True)
    stylizer = impasto.Stylizer()
    rows = []
    if args.baseline:
        rows = [dict(row, version="old") for row in json.loads(Path(args.baseline).read_text())]
        args.skip_old = True
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.size} px")
    for pair in args.pairs.split(","):
        photo, style = load_pair(pair)
        photo = fit(photo, max_size=args.size)
        stylizer.run(photo, style, recipe=impasto.Recipe.from_preset("fast", max_size=args.size, seed=1))  # warm
        for preset in args.presets.split(","):
            for version in ("new",) if args.skip_old else ("old", "new"):
                changes = OLD_PRESETS[preset] if version == "old" else candidates.get(preset, {})
                recipe = impasto.Recipe.from_preset(preset, max_size=args.size, seed=args.seed, **changes)
                stylizer.statistics = StatisticsCache()
                start = time.perf_counter()
                result = stylizer.run(photo, style, recipe=recipe)
                seconds = time.perf_counter() - start
                parts = final_loss(stylizer, recipe, flatten(photo), style, result.image)
                figures = quality(result.image, flatten(style), flatten(photo))
                save_image(result.image, RESULTS / f"{pair}_{preset}_{version}_{args.size}.png")
                row = dict(pair=pair, preset=preset, version=version, seconds=round(seconds, 2),
                           steps=result.steps, **{k: round(v, 4) for k, v in parts.items()},
                           **{f"q_{k}": round(v, 4) for k, v in figures.items()})
                rows.append(row)
                print(f"  {pair:18s} {preset:9s} {version}  {seconds:7.1f} s  {result.steps:4d} steps  "
                      f"loss {parts['total']:.3f} (content {parts['content']:.3f} style {parts['style']:.3f})  "
                      f"quality content {figures['content_fidelity']:.3f} style {figures['style_fidelity']:.3f} "
                      f"score {figures['score']:.3f}", flush=True)
    (RESULTS / f"results_{args.size}.json").write_text(json.dumps(rows, indent=1))
    print("\npair               preset     old s   new s  old/new   old loss  new loss")
    for pair in args.pairs.split(","):
        for preset in args.presets.split(","):
            found = [next((r for r in rows if r["pair"] == pair and r["preset"] == preset and r["version"] == v), None)
                     for v in ("old", "new")]
            old, new = found
            if old is None or new is None:
                continue
            print(f"{pair:18s} {preset:9s} {old['seconds']:7.1f} {new['seconds']:7.1f} "
                  f"{old['seconds'] / new['seconds']:7.2f}x  {old['total']:8.3f}  {new['total']:8.3f}"
                  f"{'' if new['total'] <= old['total'] else '  (higher)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
