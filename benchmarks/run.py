"""impasto's benchmark: speed, roofline and independent quality, against pastiche==1.6.0.

    .venv/bin/python benchmarks/run.py                         # sizes 256,512,1024; fast, balanced, quality
    .venv/bin/python benchmarks/run.py --sizes 512 --presets balanced --no-pastiche
    .venv/bin/python benchmarks/run.py --sizes 512 --presets balanced,quality,quality@before --before-src /tmp/base/src
    .venv/bin/python benchmarks/run.py --device cuda --sizes 512,1024,2048 --presets balanced --no-pastiche

Every run happens in a fresh child process, so wall time includes loading the model and peak RSS
is the run's own. Quality figures come from ``quality.py`` (no VGG, no torch). Results: a table on
stdout, ``results/results.json`` and ``results/quality_vs_time.png``. See README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "images"


def default_images() -> tuple[str, str]:
    if (SHARED / "tubingen.jpg").exists() and (SHARED / "starry_night.jpg").exists():
        return str(SHARED / "tubingen.jpg"), str(SHARED / "starry_night.jpg")
    return "astronaut", "strokes"


def load_rgb(name: str, size: int | None = None) -> np.ndarray:
    """A path, or ``astronaut`` / ``strokes`` (scikit-image's photo, impasto's generated texture)."""
    from impasto.images import fit, load_image

    if name == "astronaut":
        from skimage import data

        rgb = data.astronaut().astype(np.float32) / 255
    elif name == "strokes":
        from impasto.texture import brush_strokes

        rgb = brush_strokes((768, 768), seed=0)
    else:
        rgb = load_image(name).rgb
    if size is None:
        return rgb
    from impasto.images import LoadedImage

    return fit(LoadedImage(rgb=rgb), max_size=size).rgb


def matmul_gflops(device: str, dtype_name: str, n: int = 2048) -> float:
    """This machine's dense matmul speed in the run's precision (the roofline's ceiling)."""
    import torch

    dtype = torch.bfloat16 if dtype_name == "bf16" else torch.float32
    a = torch.rand(n, n, device=device).to(dtype)
    b = torch.rand(n, n, device=device).to(dtype)
    for _ in range(2):
        a @ b
    if device == "cuda":
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best / 1e9


# ---------------------------------------------------------------------------------------------
# One impasto run (in a child process)
# ---------------------------------------------------------------------------------------------
def child_impasto(preset: str, size: int, content: str, style: str, device: str, out: Path) -> dict:
    import torch

    from impasto.images import resize, save_image
    from impasto.optimize.engine import Stylizer
    from impasto.recipe import Recipe
    from impasto.vgg import deepest, step_flops
    from quality import quality

    content_rgb, style_rgb = load_rgb(content), load_rgb(style)
    snapshots: list[tuple[float, np.ndarray]] = []
    from impasto.images import scaled_to_long_side

    exact = scaled_to_long_side((content_rgb.shape[1], content_rgb.shape[0]), size)  # upscales small photos too
    name, _, version = preset.partition("@")
    before = {}
    if version == "before":  # the previous release's schedule (run with its code: see --before-src)
        from presets import OLD_PRESETS

        before = OLD_PRESETS.get(name, {})
    recipe = Recipe.from_preset(name, max_size=size, size=exact, seed=0, device=device, **before)
    started = time.perf_counter()

    def on_step(progress):
        if device == "cuda":
            torch.cuda.synchronize()
        now = time.perf_counter()
        if progress.scale_step == progress.scale_steps or progress.step % 10 == 0:
            snapshots.append((now - started, progress.image()))

    stylizer = Stylizer(recipe)
    result = stylizer.run(content_rgb, style_rgb, callback=on_step)
    wall = time.perf_counter() - started
    final_size = (result.image.shape[1], result.image.shape[0])
    per_step = steady_step_seconds(stylizer, recipe, content_rgb, style_rgb, final_size, device)
    flops = step_flops(final_size, deepest(recipe.all_layers()))
    precision = result.metadata["precision"]
    ceiling = matmul_gflops(device, precision)
    save_image(result.image, out / f"impasto_{preset}_{size}.png", metadata=result.metadata)
    style_at_size = resize(style_rgb, final_size) if style_rgb.shape[:2] != result.image.shape[:2] else style_rgb
    reference = resize(content_rgb, final_size)
    curve = [(t, quality(resize(img, final_size), style_at_size, reference)["score"]) for t, img in snapshots]
    losses = loss_curve(stylizer, content_rgb, style_rgb, [(t, resize(img, final_size)) for t, img in snapshots])
    return {
        "tool": "impasto", "preset": preset, "size": size, "device": device, "precision": precision,
        "wall_s": wall, "steps": result.steps, "final_size": final_size, "s_per_step": per_step,
        "gflops": flops / per_step / 1e9, "matmul_gflops": ceiling,
        "roofline": flops / per_step / 1e9 / ceiling,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "quality": quality(result.image, style_at_size, reference), "curve": curve, "loss_curve": losses,
    }


def steady_step_seconds(stylizer, recipe, content_rgb, style_rgb, size, device, steps: int = 5) -> float:
    """Median time of one optimization step at ``size`` once warmed up (not part of the wall time).

    A preset may run only a step or two at the output size, and the first step at a new size
    pays one-off set-up costs, so the per-step speed is measured on its own: the same recipe,
    one scale, ``steps`` steps, the first one discarded.
    """
    import torch

    from impasto.optimize.engine import Stylizer

    times, last = [], [0.0]

    def on_step(progress):
        if device == "cuda":
            torch.cuda.synchronize()
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now

    probe = Stylizer(recipe.replace(min_size=None, steps=steps, size=size))
    last[0] = time.perf_counter()
    probe.run(content_rgb, style_rgb, callback=on_step)
    return float(np.median(times[1:]))


# ---------------------------------------------------------------------------------------------
# pastiche, its own command, default settings but --size and --device cpu
# ---------------------------------------------------------------------------------------------
def run_pastiche(size: int, steps: int, content: str, style: str, out: Path) -> dict:
    from impasto.images import resize, save_image
    from quality import quality

    workdir = Path(tempfile.mkdtemp(prefix="pastiche-"))
    paths = {}
    for role, name in (("content", content), ("style", style)):
        if Path(name).exists():
            paths[role] = name
        else:  # pastiche needs files: write the built-in images once
            paths[role] = str(workdir / f"{role}.png")
            save_image(load_rgb(name), paths[role])
    exe = Path(sys.executable).with_name("pastiche")
    output = out / f"pastiche_{steps}_{size}.png"
    command = [str(exe), "--size", str(size), "--device", "cpu", "--num-steps", str(steps),
               "--workspace", str(workdir / "ws"), "--workspace-step", "10", "--no-verbose",
               "-c", paths["content"], "-s", paths["style"], "-o", str(output)]
    started = time.time()
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.time() - started
    if status != 0:
        raise SystemExit(f"pastiche failed with status {status}")
    from impasto.images import load_image

    final = load_image(output).rgb
    final_size = (final.shape[1], final.shape[0])
    content_rgb = resize(load_rgb(content), final_size)
    style_rgb = resize(load_rgb(style), final_size)
    curve, pictures = [], []
    for snapshot in sorted((workdir / "ws").glob("*.png"), key=lambda p: p.stat().st_mtime):
        image = resize(load_image(snapshot).rgb, final_size)
        score = quality(image, style_rgb, content_rgb)["score"]
        curve.append((snapshot.stat().st_mtime - started, score))
        pictures.append((snapshot.stat().st_mtime - started, image))
    pictures.append((wall, final))
    from impasto.optimize.engine import Stylizer

    losses = loss_curve(Stylizer(), load_rgb(content), load_rgb(style), pictures)
    return {"tool": "pastiche", "preset": f"{steps} L-BFGS steps", "size": size, "device": "cpu",
            "precision": "fp32", "wall_s": wall, "steps": steps, "final_size": final_size,
            "s_per_step": wall / steps, "peak_rss_mb": usage.ru_maxrss / 1024,
            "quality": quality(final, style_rgb, content_rgb), "curve": curve, "loss_curve": losses}


def loss_curve(stylizer, content_rgb: np.ndarray, style_rgb: np.ndarray,
               pictures: list[tuple[float, np.ndarray]]) -> list[tuple[float, float]]:
    """(time, loss) for each (time, picture at the output size): impasto's own objective at the
    output size with the presets' losses and weights (all presets share them), after the run."""
    from impasto.images import LoadedImage, resize
    from impasto.recipe import Recipe
    from presets import final_loss

    if not pictures:
        return []
    recipe = Recipe.from_preset("quality")
    size = (pictures[-1][1].shape[1], pictures[-1][1].shape[0])
    photo, style = resize(content_rgb, size), LoadedImage(rgb=style_rgb, name="style")
    return [(t, final_loss(stylizer, recipe, photo, style, image)["total"]) for t, image in pictures]


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------
def time_to_reach(curve: list[tuple[float, float]], score: float) -> float | None:
    for t, s in curve:
        if s >= score:
            return t
    return None


def score_at(curve: list[tuple[float, float]], t: float) -> float | None:
    """The best score a run had shown by time ``t`` (None if it had shown nothing yet)."""
    seen = [s for u, s in curve if u <= t]
    return max(seen) if seen else None


def report(results: list[dict], out: Path) -> None:
    header = (f"{'size':>5} {'tool/preset':<22} {'wall s':>7} {'s/step':>7} {'steps':>5} {'RSS MB':>7} "
              f"{'GFLOP/s':>8} {'matmul':>7} {'roofline':>8} {'content':>7} {'style':>6} {'score':>6} "
              f"{'vs pastiche':>12} {'pastiche@t':>10}")
    for size in sorted({r["size"] for r in results}):
        rows = [r for r in results if r["size"] == size]
        peer = next((r for r in rows if r["tool"] == "pastiche"), None)
        print(f"\n== {size} px long side ({rows[0]['final_size'][0]}x{rows[0]['final_size'][1]}) ==")
        print(header)
        for r in rows:
            q = r["quality"]
            speedup, at_t = "", ""
            if peer is not None and r is not peer:
                reached = time_to_reach(r["curve"], peer["quality"]["score"])
                speedup = f"{peer['wall_s'] / reached:.1f}x" if reached else "not reached"
                peer_then = score_at(peer["curve"], r["wall_s"])
                at_t = "—" if peer_then is None else f"{peer_then:.3f}"
            gflops = f"{r['gflops']:.0f}" if "gflops" in r else "—"
            ceiling = f"{r['matmul_gflops']:.0f}" if "matmul_gflops" in r else "—"
            roof = f"{r['roofline']:.0%}" if "roofline" in r else "—"
            name = r["preset"] if r["tool"] == "impasto" else f"pastiche {r['preset']}"
            print(f"{size:>5} {name:<22} {r['wall_s']:>7.1f} {r['s_per_step']:>7.3f} {r['steps']:>5} "
                  f"{r['peak_rss_mb']:>7.0f} {gflops:>8} {ceiling:>7} {roof:>8} {q['content_fidelity']:>7.3f} "
                  f"{q['style_fidelity']:>6.3f} {q['score']:>6.3f} {speedup:>12} {at_t:>10}")
    plot(results, out / "quality_vs_time.png")
    report_losses(results, out)


def loss_at_end(r: dict) -> float:
    return r["loss_curve"][-1][1] if r.get("loss_curve") else math.inf


def report_losses(results: list[dict], out: Path) -> None:
    """Each run's final loss and when it first reached the ``quality`` preset's final loss; the plot."""
    for size in sorted({r["size"] for r in results}):
        rows = [r for r in results if r["size"] == size and r.get("loss_curve")]
        target = next((r for name in ("quality@before", "quality") for r in rows
                       if r["tool"] == "impasto" and r["preset"] == name), None)
        if target is None:
            continue
        goal = loss_at_end(target)
        print(f"\n{size} px: impasto's objective on the picture at the output size (lower is better); time to "
              f"reach {target['preset']}'s final loss {goal:.3f}")
        for r in rows:
            reached = next((t for t, value in r["loss_curve"] if value <= goal), None)
            name = r["preset"] if r["tool"] == "impasto" else f"pastiche {r['preset']}"
            when = "not reached" if reached is None else f"{reached:7.1f} s"
            print(f"  {name:<22} final loss {loss_at_end(r):7.3f} at {r['wall_s']:7.1f} s   reached at {when}")
    plot_losses(results, out / "convergence.png")


def plot_losses(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({r["size"] for r in results if r.get("loss_curve")})
    if not sizes:
        return
    figure, axes = plt.subplots(1, len(sizes), figsize=(5.5 * len(sizes), 4.2), squeeze=False)
    for axis, size in zip(axes[0], sizes, strict=True):
        for r in (r for r in results if r["size"] == size and r.get("loss_curve")):
            times, values = zip(*r["loss_curve"], strict=True)
            label = f"impasto {r['preset']}" if r["tool"] == "impasto" else f"pastiche ({r['preset']})"
            axis.plot(times, values, marker="o" if r["tool"] == "impasto" else ".", markersize=3, label=label)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("wall time (s, model loading included)")
        axis.set_ylabel("loss at the output size (impasto's objective)")
        axis.set_title(f"{size} px, {results[0]['device']}")
        axis.grid(alpha=0.3, which="both")
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"plot: {path}")


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({r["size"] for r in results})
    figure, axes = plt.subplots(1, len(sizes), figsize=(5.5 * len(sizes), 4.2), squeeze=False)
    for axis, size in zip(axes[0], sizes, strict=True):
        for r in (r for r in results if r["size"] == size):
            times, scores = zip(*r["curve"], strict=True) if r["curve"] else ((), ())
            label = f"impasto {r['preset']}" if r["tool"] == "impasto" else f"pastiche ({r['preset']})"
            axis.plot(times, scores, marker="o" if r["tool"] == "impasto" else ".", markersize=3, label=label)
        axis.set_xscale("log")
        axis.set_xlabel("wall time (s, model loading included)")
        axis.set_ylabel("quality score (independent, higher is better)")
        axis.set_title(f"{size} px, {results[0]['device']}")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"\nplot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    content, style = default_images()
    parser.add_argument("--sizes", default="256,512,1024")
    parser.add_argument("--presets", default="fast,balanced,quality")
    parser.add_argument("--content", default=content)
    parser.add_argument("--style", default=style)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--pastiche-steps", type=int, default=200)
    parser.add_argument("--pastiche-sizes", default="512", help="sizes at which pastiche runs")
    parser.add_argument("--no-pastiche", action="store_true")
    parser.add_argument("--reuse-pastiche", metavar="RESULTS_JSON",
                        help="take pastiche's runs from an earlier results.json instead of running it again")
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--before-src", metavar="DIR",
                        help="the previous release's src folder (e.g. a git worktree's); presets named NAME@before "
                             "run with that code and presets.py's OLD_PRESETS schedules")
    parser.add_argument("--child", nargs=2, metavar=("PRESET", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(HERE))
    if args.child:
        record = child_impasto(args.child[0], int(args.child[1]), args.content, args.style, args.device, out)
        print("RESULT " + json.dumps(record))
        return
    print(f"content {args.content}, style {args.style}, device {args.device}")
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        for preset in args.presets.split(","):
            env = dict(os.environ)
            if preset.endswith("@before"):
                if not args.before_src:
                    raise SystemExit(f"{preset}: give the previous release's source folder with --before-src")
                env["PYTHONPATH"] = str(Path(args.before_src).resolve())
            done = subprocess.run([sys.executable, __file__, "--child", preset, str(size), "--content", args.content,
                                   "--style", args.style, "--device", args.device, "--out", str(out)],
                                  capture_output=True, text=True, env=env)
            line = next((text for text in done.stdout.splitlines() if text.startswith("RESULT ")), None)
            if line is None:
                raise SystemExit(f"impasto {preset} at {size} failed:\n{done.stderr[-2000:]}")
            results.append(json.loads(line[7:]))
            r = results[-1]
            print(f"  impasto {preset:<9} {size:>5} px: {r['wall_s']:.1f} s, score {r['quality']['score']:.3f}",
                  flush=True)
        if args.reuse_pastiche:
            earlier = json.loads(Path(args.reuse_pastiche).read_text())
            results += [r for r in earlier if r["tool"] == "pastiche" and r["size"] == size]
        elif not args.no_pastiche and str(size) in args.pastiche_sizes.split(","):
            results.append(run_pastiche(size, args.pastiche_steps, args.content, args.style, out))
            print(f"  pastiche {args.pastiche_steps} steps {size:>5} px: {results[-1]['wall_s']:.1f} s, "
                  f"score {results[-1]['quality']['score']:.3f}", flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    report(results, out)


if __name__ == "__main__":
    main()
