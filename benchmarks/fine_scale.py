"""What the output-size scale's steps reach: optimizers, starts and parametrisations compared.

    .venv/bin/python benchmarks/fine_scale.py                                  # coffee × Udnie, 56 + 30 steps
    .venv/bin/python benchmarks/fine_scale.py --pair tubingen-starry --fine-steps 26 --variants adam,adam:0.7:0.9
    .venv/bin/python benchmarks/fine_scale.py --variants adam,nadam,adamax,amsgrad,carried,rotated,blend:0.75
    .venv/bin/python benchmarks/fine_scale.py --pair tubingen-starry --variants adam,lbfgs:1.5,via:448:30 --trace 5

`quality`'s loss is made at the output size (see README, "Loss against wall time"), so this script
runs one coarse scale (``--coarse-steps`` at 256 px, the preset's Adam) once, and from its result
each variant's ``--fine-steps`` at the output size; it prints the engine's objective on each
variant's picture at the output size (lower is better) and the time of its steps. The losses,
weights, targets and iterate averaging are `quality`'s; only what a variant names differs:

* ``adam[:BETA1:BETA2[:LR]]``: Adam with other moments' decay or learning rate;
* ``nadam``, ``adamax``, ``amsgrad``: other first-order optimizers of torch at the same settings;
* ``carried``: Adam's moments from the coarse scale, upsampled and rescaled to the first
  gradient at the output size, instead of fresh ones;
* ``rotated``: the pixels in the image's colour PCA basis (Adam then normalizes per principal
  colour axis instead of per R, G, B);
* ``blend:A``: the output-size scale starts from ``A`` × the upsampled coarse result plus
  ``1 − A`` × the palette start;
* ``toward:G``: it starts from the photo plus ``G`` × what the coarse scale painted over it
  (``G`` < 1: closer to the photo, lower content loss, less style);
* ``lbfgs[:LR[:HISTORY]]``: L-BFGS without line search (one network evaluation per step, so the
  same cost as Adam's), the last iterate instead of the average;
* ``content:W:A:B``: the content weight × ``W`` for steps ``A`` to ``B − 1`` (a continuation
  that pushes along the slow content descent, then lets the style settle again);
* ``via:SIZE:STEPS``: ``STEPS`` Adam steps at the long side ``SIZE`` between the coarse scale and
  the output size (whose steps are then ``--fine-steps`` minus ``STEPS``; time counts both).

``--trace K`` also prints the objective of the iterate every ``K`` steps at the output size (read
off the steps themselves, so free): how soon variants forget where they started.

Pairs are presets.py's (needs the shared paintings).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pair", default="coffee-udnie")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--coarse-steps", type=int, default=56)
    parser.add_argument("--fine-steps", type=int, default=30)
    parser.add_argument("--variants", default="adam,adam:0.7:0.9,nadam,adamax,amsgrad,carried,rotated,blend:0.75")
    parser.add_argument("--trace", type=int, default=0, help="print the iterate's loss every K output-size steps")
    args = parser.parse_args()

    import impasto
    from impasto.device import compute_dtype, configure_backends, select_device
    from impasto.features import FeatureExtractor
    from impasto.images import fit, flatten, resize, scaled_to_long_side
    from impasto.optimize.guides import ScaleGuides
    from impasto.optimize.inputs import initial_image, to_tensor, upsample
    from impasto.optimize.objective import Objective
    from impasto.optimize.optimizers import IterateAverage
    from impasto.optimize.targets import scale_targets
    from presets import SHARED, load_pair

    if not (SHARED / "starry_night.jpg").exists():
        print(f"needs the shared paintings in {SHARED}")
        return 1
    recipe = impasto.Recipe.from_preset("quality", max_size=args.size, seed=1)
    device = select_device(recipe.device)
    features = FeatureExtractor(impasto.Stylizer().network(device, recipe), compute_dtype(recipe.precision, device))
    photo, style = load_pair(args.pair)
    photo = flatten(fit(photo, max_size=args.size))
    final = (photo.shape[1], photo.shape[0])
    configure_backends(device, final[0] * final[1])
    coarse_size = scaled_to_long_side(final, min(256, max(final)))
    targets: dict[tuple[int, int], object] = {}

    def targets_at(size: tuple[int, int]):
        if size not in targets:
            targets[size] = scale_targets(features, recipe, to_tensor(resize(photo, size), device), [style], [1.0],
                                          ScaleGuides(), final, False, 16 * 2**30)
        return targets[size]

    targets_at(coarse_size), targets_at(final)
    palette = initial_image(recipe, photo, [style], [1.0], None, None, final, torch.Generator().manual_seed(1))

    def optimize(image: torch.Tensor, size: tuple[int, int], steps: int, kind: str = "adam",
                 betas: tuple[float, float] = recipe.adam_betas, lr: float = recipe.lr,
                 moments: dict | None = None, basis: torch.Tensor | None = None, history: int = 20,
                 trace: list | None = None, content_phase: tuple[float, int, int] | None = None):
        objective = Objective(recipe, features, targets_at(size))
        phase = None if content_phase is None else Objective(
            recipe.replace(content_weight=content_phase[0] * recipe.content_weight), features, targets_at(size))
        rotation = torch.eye(3) if basis is None else basis
        mean = image.mean(dim=(2, 3), keepdim=True)

        def pixels(u: torch.Tensor) -> torch.Tensor:
            return torch.einsum("ij,bjhw->bihw", rotation, u) + mean

        def coordinates(x: torch.Tensor) -> torch.Tensor:
            return torch.einsum("ji,bjhw->bihw", rotation, x - mean)  # the basis is orthonormal

        u = coordinates(image).detach().requires_grad_(True)
        if kind == "lbfgs":
            return lbfgs(objective, image, steps, lr, history, trace)
        make = {"adam": torch.optim.Adam, "nadam": torch.optim.NAdam, "adamax": torch.optim.Adamax}
        optimizer = (torch.optim.Adam([u], lr=lr, betas=betas, amsgrad=True) if kind == "amsgrad"
                     else make[kind]([u], lr=lr, betas=betas))
        average = IterateAverage(recipe.ema)
        average.update(image)
        started = time.perf_counter()
        for step in range(steps):
            optimizer.zero_grad(set_to_none=True)
            weighted = phase if phase is not None and content_phase[1] <= step < content_phase[2] else objective
            total, parts = weighted(pixels(u))
            if trace is not None:
                trace.append(parts["total"])
            total.backward()
            if step == 0 and moments is not None:
                assert u.grad is not None
                first = F.interpolate(moments["exp_avg"], size=u.shape[-2:], mode="bilinear")
                second = F.interpolate(moments["exp_avg_sq"], size=u.shape[-2:], mode="bilinear")
                ratio = u.grad.pow(2).mean() / second.mean()
                optimizer.state[u].update(step=torch.tensor(float(min(int(moments["step"]), 20))),
                                          exp_avg=first * ratio.sqrt(), exp_avg_sq=second * ratio)
            optimizer.step()
            with torch.no_grad():
                x = pixels(u).clamp_(0, 1)
                u.copy_(coordinates(x))
            average.update(x)
        state = {k: v.clone() if torch.is_tensor(v) else v for k, v in optimizer.state[u].items()}
        return average.value.detach(), time.perf_counter() - started, state

    def lbfgs(objective: Objective, image: torch.Tensor, steps: int, lr: float, history: int,
              trace: list | None):
        x = image.detach().clone().requires_grad_(True)
        optimizer = torch.optim.LBFGS([x], lr=lr, max_iter=steps, max_eval=steps, history_size=history,
                                      tolerance_grad=0, tolerance_change=0)

        def closure() -> torch.Tensor:
            optimizer.zero_grad(set_to_none=True)
            total, parts = objective(x.clamp(0, 1))
            if trace is not None:
                trace.append(parts["total"])
            total.backward()
            return total

        started = time.perf_counter()
        optimizer.step(closure)  # type: ignore[arg-type]
        return x.detach().clamp(0, 1), time.perf_counter() - started, {}

    def loss(image: torch.Tensor) -> dict[str, float]:
        with torch.no_grad():
            return Objective(recipe, features, targets_at(final))(image)[1]

    def carry(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        content = targets_at(size).photo
        return upsample(image, content, F.interpolate(content, size=image.shape[-2:], mode="area"))

    start = F.interpolate(palette, size=coarse_size[::-1], mode="area")
    coarse, coarse_seconds, moments = optimize(start, coarse_size, args.coarse_steps)
    up = carry(coarse, final)
    print(f"{args.pair}, {final[0]}x{final[1]}: {args.coarse_steps} steps at {coarse_size[0]}x{coarse_size[1]} "
          f"({coarse_seconds:.1f} s), then {args.fine_steps} at the output size")
    for variant in args.variants.split(","):
        name, *values = variant.split(":")
        options: dict = {}
        begin, steps, detour_seconds = up, args.fine_steps, 0.0
        if name == "adam" and values:
            options["betas"] = (float(values[0]), float(values[1]))
            if len(values) > 2:
                options["lr"] = float(values[2])
        elif name in ("nadam", "adamax", "amsgrad"):
            options["kind"] = name
        elif name == "carried":
            options["moments"] = moments
        elif name == "rotated":
            flat = up[0].reshape(3, -1)
            options["basis"] = torch.linalg.eigh(torch.cov(flat))[1]
        elif name == "blend":
            begin = float(values[0]) * up + (1 - float(values[0])) * palette
        elif name == "toward":
            begin = float(values[0]) * up + (1 - float(values[0])) * targets_at(final).photo
        elif name == "lbfgs":
            options.update(kind="lbfgs", lr=float(values[0]) if values else 1.0,
                           history=int(values[1]) if len(values) > 1 else 20)
        elif name == "content":
            options["content_phase"] = (float(values[0]), int(values[1]), int(values[2]))
        elif name == "via":
            side, via_steps = int(values[0]), int(values[1])
            size = scaled_to_long_side(final, min(side, max(final)))
            detour, detour_seconds, _ = optimize(carry(coarse, size), size, via_steps)
            begin, steps = carry(detour, final), args.fine_steps - via_steps
        elif name != "adam":
            raise SystemExit(f"unknown variant {variant!r}")
        trace: list[float] = []
        picture, seconds, _ = optimize(begin, final, steps, trace=trace, **options)
        parts = loss(picture)
        print(f"  {variant:16s} loss {parts['total']:.4f} (content {parts['content']:.3f}, style "
              f"{parts['style']:.3f})  {seconds + detour_seconds:5.1f} s", flush=True)
        if args.trace:
            print("    iterate: " + " ".join(f"{i + 1}:{v:.3f}" for i, v in enumerate(trace)
                                             if (i + 1) % args.trace == 0), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
