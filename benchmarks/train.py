"""Training a fast model on a 2-core CPU: speed, loss curve, quality against the optimizer, flicker.

    .venv/bin/python benchmarks/train.py                       # the README's figures (about 45 minutes)
    .venv/bin/python benchmarks/train.py --minutes 5 --plain-minutes 2 --size 128   # a quick look
    .venv/bin/python benchmarks/train.py --sweep 0,20,100,500  # choose the stability weight

The main run trains the default architecture on The Starry Night (``../shared/images/starry_night.jpg``,
never committed) with scikit-image's bundled photos at ``--size`` px crops (the default curriculum
from half size), for at most ``--minutes``: a few probe steps at each crop size price the
curriculum first and the step count is chosen so the run fits (with a margin for the machine's
other work); a timer stops it at the limit in any case. It prints seconds per step per crop size
and the loss curve, saves the plot to ``docs/train_loss_cpu.png`` and the model to
``benchmarks/results/train/starry.impasto``.

Then, on two photos it never saw (``../shared/images/tubingen.jpg`` and scikit-image's ``rocket``,
which training leaves out), at 512 px:

* the model's pictures (``docs/train_tubingen.png``, ``docs/train_rocket.png``, with the photo and
  the ``balanced`` optimization beside them in ``docs/train_compare.png``);
* the engine loss (content and style terms at the preset's weights, from the optimizer's own
  objective at 512 px) of the model's picture, and of the ``fast`` and ``balanced`` optimizations
  of the same photo, with their times;
* flicker (:func:`impasto.flow.flicker`, the mean warping error between consecutive frames) of a
  synthetic panning clip (``benchmarks/flicker.py``'s) painted frame by frame, by the main model
  (stability loss on) and by a model trained without it for ``--plain-minutes`` (a shorter run,
  the same settings otherwise), against the clip's own floor.

``--sweep W1,W2,..`` trains one short model per stability weight instead (``--sweep-steps`` at
``--sweep-size`` px, identical otherwise) and prints flicker and the engine's loss terms for each:
how the default weight was chosen.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = ROOT.parent / "shared" / "images"
RESULTS = HERE / "results" / "train"
DOCS = ROOT / "docs"
sys.path.insert(0, str(HERE))


def log(text: str) -> None:
    print(text, flush=True)


# -- training ----------------------------------------------------------------------------------------
def price_curriculum(trainer, probe: int = 3) -> dict[int, float]:
    """Seconds per step at each crop size of the curriculum (``probe`` timed steps after one warm-up)."""
    from impasto.feedforward import stability as stab
    from impasto.feedforward.network import TransformNet

    s = trainer.settings
    net = TransformNet(trainer.architecture).to(trainer.device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    features = trainer.features()
    prices = {}
    for crop in s.crops():
        trainer.targets(features, crop)
        times = []
        for i in range(probe + 1):
            t0 = time.perf_counter()
            generator = torch.Generator().manual_seed(10_000 + i)
            photos = trainer.photos.batch(s.batch_size, crop, generator)
            objective = trainer.objective(features, photos, crop)
            painted = trainer.paint(net, photos)
            loss, _ = objective(painted)
            if s.stability_weight > 0:
                half = max(1, s.batch_size // 2)
                loss = loss + s.stability_weight * stab.stability_loss(
                    lambda x: trainer.paint(net, x), photos[:half], painted[:half], (1, 2))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            times.append(time.perf_counter() - t0)
        prices[crop] = float(np.median(times[1:]))
    return prices


def steps_for(settings, prices: dict[int, float], seconds: float) -> int:
    """The most steps whose curriculum fits in ``seconds`` at ``prices``."""
    import dataclasses

    probe = dataclasses.replace(settings, steps=1000)
    shares: dict[int, float] = {}
    for i in range(probe.steps):
        shares[probe.crop_at(i)] = shares.get(probe.crop_at(i), 0) + 1 / probe.steps
    per_step = sum(share * prices[crop] for crop, share in shares.items())
    return max(10, int(seconds / per_step))


def train_model(style, output: Path, minutes: float, *, size: int, stability: float, samples: Path | None,
                steps: int | None = None, margin: float = 0.85, label: str = "model", resume: bool = False) -> dict:
    from impasto.cancel import CancelToken
    from impasto.feedforward.trainer import Trainer, TrainSettings
    from impasto.reporting import duration_text

    settings = TrainSettings(size=size, steps=steps or 1000, stability_weight=stability, checkpoint_every=100,
                             sample_every=100)
    trainer = Trainer(style, settings=settings)
    if steps is None:
        t0 = time.perf_counter()
        prices = price_curriculum(trainer)
        chosen = steps_for(settings, prices, minutes * 60 * margin)
        log(f"[{label}] probe ({time.perf_counter() - t0:.0f} s): s/step by crop "
            + ", ".join(f"{c}px {p:.2f}" for c, p in prices.items()) + f" -> {chosen} steps in {minutes:g} min")
        settings = TrainSettings(size=size, steps=chosen, stability_weight=stability, checkpoint_every=100,
                                 sample_every=100)
        trainer = Trainer(style, settings=settings, stylizer=trainer.stylizer)
    stop = CancelToken()
    started = time.perf_counter()
    limit = minutes * 60

    def progress(p) -> None:
        if p.step % 50 == 0 or p.step == p.total_steps:
            eta = "?" if p.eta is None else duration_text(p.eta)
            log(f"[{label}] step {p.step:5d}/{p.total_steps} {p.crop}px  lr {p.lr:.1e}  "
                + " ".join(f"{k}={v:.4g}" for k, v in p.losses.items() if k != "tv")
                + f"  {p.seconds_per_step:.2f} s/step  ETA {eta}")
        if time.perf_counter() - started > limit:
            stop.cancel()

    if not resume:
        output.unlink(missing_ok=True)
    result = trainer.train(output, callback=progress, samples=samples, cancel=stop, force=not resume)
    if result.resumed_from:
        log(f"[{label}] resumed from step {result.resumed_from}")
    log(f"[{label}] {result.steps} steps in {duration_text(result.elapsed)}"
        + (" (stopped at the time limit)" if result.cancelled else "")
        + f"; {result.elapsed / max(1, result.steps):.2f} s/step on average")
    per_crop: dict[int, list[float]] = {}
    for h in result.history:
        if "seconds" in h:
            per_crop.setdefault(int(h["crop"]), []).append(h["seconds"])
    median_total = sum(float(np.median(v)) * len(v) for v in per_crop.values())
    log(f"[{label}] median s/step by crop: "
        + ", ".join(f"{c}px {np.median(v):.2f} ({len(v)} steps)" for c, v in per_crop.items())
        + f"; the median step times sum to {duration_text(median_total)}")
    return {"steps": result.steps, "planned": settings.steps, "seconds": result.elapsed,
            "history": result.history, "cancelled": result.cancelled, "losses": result.losses}


def plot_losses(history: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.array([h["step"] for h in history])
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=100)
    for key, colour in (("total", "black"), ("style", "tab:red"), ("content", "tab:blue"),
                        ("stability", "tab:green")):
        if key not in history[-1]:
            continue
        values = np.array([h.get(key, np.nan) for h in history], dtype=float)
        if key == "stability":
            values = values * 100
        smooth = np.convolve(values, np.ones(25) / 25, mode="valid") if len(values) > 50 else values
        ax.plot(steps, values, color=colour, alpha=0.15, linewidth=0.7)
        ax.plot(steps[len(steps) - len(smooth):], smooth, color=colour,
                label=key if key != "stability" else "stability ×100", linewidth=1.4)
    crops = [int(h["crop"]) for h in history]
    for i in range(1, len(crops)):
        if crops[i] != crops[i - 1]:
            ax.axvline(steps[i], color="grey", linestyle=":", linewidth=0.8)
            ax.text(steps[i], ax.get_ylim()[1] * 0.95, f" {crops[i]} px", fontsize=8, color="grey", va="top")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (unweighted terms; total weighted)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower left", ncol=4)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


# -- quality against the optimizer ------------------------------------------------------------------------
def engine_loss(stylizer, recipe, photo: np.ndarray, style, picture: np.ndarray) -> dict[str, float]:
    """The optimizer's objective at ``picture``'s size: content and style terms at the preset's weights."""
    from impasto.device import compute_dtype, select_device
    from impasto.features import FeatureExtractor
    from impasto.optimize.guides import ScaleGuides
    from impasto.optimize.inputs import to_tensor
    from impasto.optimize.objective import Objective
    from impasto.optimize.targets import scale_targets

    device = select_device(recipe.device)
    features = FeatureExtractor(stylizer.network(device, recipe), compute_dtype(recipe.precision, device))
    size = (picture.shape[1], picture.shape[0])
    from impasto.images import resize

    photo_t = to_tensor(resize(photo, size), device)
    targets = scale_targets(features, recipe, photo_t, [style], [1.0], ScaleGuides(), size, False, 8 * 2**30)
    with torch.no_grad():
        _, parts = Objective(recipe, features, targets)(to_tensor(picture, device))
    return parts


def compare(model_path: Path, style, photos: dict[str, np.ndarray]) -> list[dict]:
    from impasto.feedforward.model import load_model
    from impasto.images import save_image
    from impasto.optimize import Stylizer
    from impasto.recipe import Recipe

    model = load_model(model_path, device="cpu")
    stylizer = Stylizer()
    rows = []
    for name, photo in photos.items():
        recipes = {p: Recipe.from_preset(p, seed=0) for p in ("fast", "balanced")}
        pictures, seconds = {}, {}
        model.paint(photo, max_size=512)  # warm
        t0 = time.perf_counter()
        pictures["model"] = model.paint(photo, max_size=512)
        seconds["model"] = time.perf_counter() - t0
        for preset, recipe in recipes.items():
            t0 = time.perf_counter()
            pictures[preset] = stylizer.run(photo, style, recipe=recipe).image
            seconds[preset] = time.perf_counter() - t0
        reference = recipes["balanced"]
        size = (pictures["balanced"].shape[1], pictures["balanced"].shape[0])
        from impasto.images import resize

        row = {"photo": name}
        for key, picture in pictures.items():
            picture = resize(np.clip(picture, 0, 1).astype(np.float32), size)
            parts = engine_loss(stylizer, reference, photo, style, picture)
            row[key] = {"content": parts["content"], "style": parts["style"],
                        "total": reference.content_weight * parts["content"] + reference.style_weight * parts["style"],
                        "seconds": seconds[key]}
        rows.append(row)
        shown = pictures["model"]
        save_image(resize(shown, (round(shown.shape[1] * 384 / max(shown.shape[:2])),
                                  round(shown.shape[0] * 384 / max(shown.shape[:2])))), DOCS / f"train_{name}.png")
        strip = np.concatenate([resize(photo, size), resize(pictures["model"], size), pictures["balanced"]], axis=1)
        height = 128
        small = resize(strip, (round(strip.shape[1] * height / strip.shape[0]), height))
        save_image(small, RESULTS / f"compare_{name}.png")
    from impasto.images import load_image

    strips = [load_image(RESULTS / f"compare_{name}.png").rgb for name in photos]
    width = min(s.shape[1] for s in strips)
    save_image(np.concatenate([s[:, :width] for s in strips], axis=0), DOCS / "train_compare.png")
    return rows


def print_compare(rows: list[dict]) -> None:
    log("\nengine loss at 512 px (balanced recipe's objective: content + 1.5 x style), lower is better")
    log(f"{'photo':10s} {'painter':9s} {'content':>8s} {'style':>8s} {'total':>8s} {'seconds':>8s}")
    for row in rows:
        for key in ("model", "fast", "balanced"):
            r = row[key]
            log(f"{row['photo']:10s} {key:9s} {r['content']:8.3f} {r['style']:8.3f} {r['total']:8.3f} "
                f"{r['seconds']:8.2f}")


# -- flicker -------------------------------------------------------------------------------------------------
def clip_flicker(model_path: Path, frames: list[np.ndarray]) -> float:
    from impasto import flow
    from impasto.feedforward.model import load_model

    model = load_model(model_path, device="cpu")
    painted = [model.paint(frame) for frame in frames]
    return flow.flicker(painted, frames)


def sweep(style, weights: list[float], steps: int, size: int) -> None:
    from flicker import synthetic_clip
    from impasto import flow
    from impasto.feedforward.photos import HELD_OUT, bundled_photo

    frames = synthetic_clip(8, 192)
    floor = flow.flicker(frames, frames)
    rocket = bundled_photo(HELD_OUT).astype(np.float32) / 255
    rows = []
    for w in weights:
        path = RESULTS / f"sweep_{w:g}.impasto"
        run = train_model(style, path, 60, size=size, stability=w, samples=None, steps=steps, label=f"w={w:g}")
        from impasto.feedforward.model import load_model
        from impasto.optimize import Stylizer
        from impasto.recipe import Recipe

        picture = load_model(path, device="cpu").paint(rocket, max_size=384)
        parts = engine_loss(Stylizer(), Recipe.from_preset("balanced"), rocket, style, picture)
        rows.append((w, clip_flicker(path, frames), parts["content"], parts["style"], run["seconds"]))
        log(f"w={w:g}: flicker {rows[-1][1]:.5f} (floor {floor:.5f}), rocket content {parts['content']:.3f} "
            f"style {parts['style']:.3f}")
    log(f"\nstability sweep: {steps} steps at {size} px; flicker of an 8-frame synthetic pan at 192 px "
        f"(clip floor {floor:.5f}); engine loss on the held-out rocket at 384 px")
    log(f"{'weight':>7s} {'flicker':>9s} {'vs w=0':>7s} {'content':>8s} {'style':>8s} {'seconds':>8s}")
    base = rows[0][1]
    for w, f, c, s, t in rows:
        log(f"{w:7g} {f:9.5f} {base / f:7.2f} {c:8.3f} {s:8.3f} {t:8.0f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30, help="time limit of the main training (default 30)")
    parser.add_argument("--plain-minutes", type=float, default=10,
                        help="time limit of the training without the stability loss (default 10; 0 = skip)")
    parser.add_argument("--size", type=int, default=256, help="crop size at the end of the curriculum")
    parser.add_argument("--steps", type=int, help="fix the step count (default: what fits in --minutes)")
    parser.add_argument("--limit-minutes", type=float,
                        help="stop the main training after this long (default --minutes; with --steps on a shared "
                             "machine, give it room)")
    parser.add_argument("--plain-steps", type=int, help="fix the step count of the run without stability")
    parser.add_argument("--resume", action="store_true",
                        help="continue the main model from its checkpoint (give the same --steps)")
    parser.add_argument("--stability-weight", type=float, help="default: the trainer's")
    parser.add_argument("--skip-training", action="store_true", help="reuse the models trained before")
    parser.add_argument("--sweep", help="comma-separated stability weights: train one short model each")
    parser.add_argument("--sweep-steps", type=int, default=200)
    parser.add_argument("--sweep-size", type=int, default=128)
    args = parser.parse_args(argv)

    from impasto.feedforward.photos import HELD_OUT, bundled_photo
    from impasto.feedforward.trainer import DEFAULT_STABILITY_WEIGHT
    from impasto.images import load_image

    style_path = SHARED / "starry_night.jpg"
    if not style_path.exists():
        log(f"missing {style_path}")
        return 1
    style = load_image(style_path, what="style image")
    RESULTS.mkdir(parents=True, exist_ok=True)
    log(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if args.sweep:
        sweep(style, [float(w) for w in args.sweep.split(",")], args.sweep_steps, args.sweep_size)
        return 0
    weight = DEFAULT_STABILITY_WEIGHT if args.stability_weight is None else args.stability_weight
    main_path, plain_path = RESULTS / "starry.impasto", RESULTS / "starry_plain.impasto"
    summary: dict = {}
    if not args.skip_training:
        run = train_model(style, main_path, args.limit_minutes or args.minutes, size=args.size, stability=weight,
                          samples=RESULTS / "samples", steps=args.steps, label="main", resume=args.resume)
        summary["main"] = {k: v for k, v in run.items() if k != "history"}
        history = run["history"]
        json.dump(history, open(RESULTS / "history.json", "w"))
        plot_losses(history, DOCS / "train_loss_cpu.png",
                    f"Starry Night, {run['steps']} steps, {run['seconds'] / 60:.1f} min on a 2-core CPU "
                    f"(width 16, 5 blocks, batch 4, bf16)")
        log("\nloss curve (mean of each 50 steps): step crop total content style stability")
        for i in range(0, len(history), 50):
            chunk = history[i:i + 50]
            means = [np.mean([h.get(k, np.nan) for h in chunk]) for k in ("total", "content", "style", "stability")]
            log(f"  {chunk[-1]['step']:5d} {int(chunk[-1]['crop']):4d} " + " ".join(f"{v:8.4f}" for v in means))
        if args.plain_minutes > 0:
            plain = train_model(style, plain_path, args.plain_minutes, size=args.size, stability=0.0, samples=None,
                                steps=args.plain_steps, label="plain")
            summary["plain"] = {k: v for k, v in plain.items() if k != "history"}
    photos = {"rocket": bundled_photo(HELD_OUT).astype(np.float32) / 255}
    if (SHARED / "tubingen.jpg").exists():
        photos = {"tubingen": load_image(SHARED / "tubingen.jpg").rgb, **photos}
    rows = compare(main_path, style, photos)
    print_compare(rows)
    summary["quality"] = rows
    from flicker import synthetic_clip
    from impasto import flow

    frames = synthetic_clip(10, 256)
    floor = flow.flicker(frames, frames)
    flicker = {"clip floor": floor, "with stability": clip_flicker(main_path, frames)}
    if plain_path.exists():
        flicker["without stability"] = clip_flicker(plain_path, frames)
    summary["flicker"] = flicker
    log("\nflicker of a 10-frame synthetic pan at 256 px, painted frame by frame (mean warping error):")
    for key, value in flicker.items():
        log(f"  {key:18s} {value:.5f}")
    if "without stability" in flicker:
        log(f"  ratio without / with: {flicker['without stability'] / flicker['with stability']:.2f}")
    json.dump(summary, open(RESULTS / "summary.json", "w"), indent=1, default=float)
    log(f"\nwrote {DOCS / 'train_loss_cpu.png'}, {DOCS / 'train_compare.png'}, {RESULTS / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
