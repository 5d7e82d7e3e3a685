"""Does a trained model's picture make a better start for an optimization than the palette?

    .venv/bin/python benchmarks/init_model.py [--model benchmarks/results/train/starry.impasto]

Tübingen × The Starry Night at 512 px (``../shared/images``, never committed), the ``balanced``
recipe's losses. Every run starts from either the palette (the presets' start) or ``model:FILE``
(the photo painted by the trained model), in one process with the network loaded and the style's
statistics measured once beforehand. For each run it prints the wall time and the optimizer's own
objective (content + style at ``balanced``'s weights) on the final 512 px picture, then which runs
reach the loss of ``balanced`` from the palette and how much sooner.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "images"
sys.path.insert(0, str(HERE))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(HERE / "results" / "train" / "starry.impasto"))
    parser.add_argument("--steps", default="10,20,40,80", help="single-scale step counts to try (default 10,20,40,80)")
    args = parser.parse_args()

    import impasto
    from impasto.feedforward import load_model
    from impasto.images import fit, load_image
    from train import engine_loss

    photo_path, style_path = SHARED / "tubingen.jpg", SHARED / "starry_night.jpg"
    if not (photo_path.exists() and style_path.exists() and Path(args.model).exists()):
        print(f"needs {photo_path}, {style_path} and a trained model ({args.model}; benchmarks/train.py makes one)")
        return 1
    photo = fit(load_image(photo_path, what="photo"), max_size=512)
    style = load_image(style_path, what="style")
    balanced = impasto.Recipe.from_preset("balanced", seed=1)
    stylizer = impasto.Stylizer(balanced)
    stylizer.run(photo, style, recipe=balanced.replace(scale_steps=(1,), min_size=None))  # network + statistics
    model_init = f"model:{args.model}"
    load_model(args.model).paint(photo.rgb)  # the model's first load is not counted either

    def measure(label: str, recipe: impasto.Recipe) -> tuple[str, float, float]:
        start = time.perf_counter()
        result = stylizer.run(photo, style, recipe=recipe)
        seconds = time.perf_counter() - start
        parts = engine_loss(stylizer, balanced, photo.rgb, style, result.image)
        total = balanced.content_weight * parts["content"] + balanced.style_weight * parts["style"]
        print(f"  {label:44s} {seconds:7.1f} s   content {parts['content']:.3f}  style {parts['style']:.3f}  "
              f"total {total:.3f}", flush=True)
        return label, seconds, total

    print(f"Tübingen × The Starry Night, {photo.size[0]}x{photo.size[1]}, balanced's losses; model {args.model}")
    rows = [measure("balanced, palette start (today)", balanced),
            measure("balanced, model start", balanced.replace(init=model_init))]
    picture = load_model(args.model).paint(photo.rgb)
    parts = engine_loss(stylizer, balanced, photo.rgb, style, picture)
    print(f"  {'the model alone':44s} {'':9s} content {parts['content']:.3f}  style {parts['style']:.3f}  "
          f"total {balanced.content_weight * parts['content'] + balanced.style_weight * parts['style']:.3f}")
    for steps in (int(s) for s in args.steps.split(",")):
        single = balanced.replace(scale_steps=(steps,), min_size=None)
        rows.append(measure(f"{steps} steps at 512 px only, model start", single.replace(init=model_init)))
        rows.append(measure(f"{steps} steps at 512 px only, palette start", single))
    target_label, target_time, target = rows[0]
    print(f"\nreaching the loss of '{target_label}' ({target:.3f} in {target_time:.1f} s):")
    reached = [(s, label) for label, s, total in rows[1:] if total <= target]
    for seconds, label in sorted(reached):
        print(f"  {label:44s} {seconds:7.1f} s   {target_time / seconds:.2f}x sooner")
    if not reached:
        print("  no other run reached it")
    print(f"best total: {min(r[2] for r in rows):.3f} ({min(rows, key=lambda r: r[2])[0]})")
    return 0 if np.isfinite(target) else 1


if __name__ == "__main__":
    sys.exit(main())
