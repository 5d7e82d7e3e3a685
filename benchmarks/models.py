"""Painting with trained models: frames per second, and one pass against the ``balanced`` optimization.

    .venv/bin/python benchmarks/models.py                          # both architectures, then the comparison
    .venv/bin/python benchmarks/models.py --arch cpu --no-compare  # the default architecture's fps only
    .venv/bin/python benchmarks/models.py --arch cpu --no-fps      # only the comparison with ``balanced``
    .venv/bin/python benchmarks/models.py --model starry.impasto   # a trained model instead of random weights

**fps**: frames per second at 512×288 (``--size``) for each architecture (``cpu``: the default,
``gpu``: Johnson's width 32) in every precision and layout the painter could use: PyTorch fp32
in channels-first and channels-last layout, bf16 (the network converted to bfloat16; autocast
too), bf16 channels-last, and onnxruntime (the exported graph, fp32, this process's threads). The
row marked ``*`` is what :class:`impasto.feedforward.model.Model` uses on this machine. After
two warm-up frames per row, ``--rounds`` rounds time ``--frames`` frames of every row in turn;
each figure is the row's best round.

**vs balanced**: one 512 px photo (Tübingen from ``../shared/images``, else scikit-image's
astronaut) painted by ``impasto.Stylizer().run`` with the ``balanced`` preset (The Starry Night,
else the generated brush strokes) and by ``Model.paint`` with ``max_size=512``, in one process,
each after a warm-up run (the VGG network and its weights loaded; the style's statistics are not
kept between timed runs, as for a new painting), the medians; and the ratio of their wall times.

Without ``--model`` the networks have random weights: the speed of a pass does not depend on the
weights, so this measures what a trained model of the same architecture costs (the pictures are
meaningless). On a shared machine, run it alone: the load average at the start is printed.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "images"


def timed(rows: list, frames: int, rounds: int) -> dict[str, float]:
    """Frames per second of each ``(name, fn)``: two warm-up calls each, then ``rounds`` rounds that
    time ``frames`` calls of every row in turn; the best round of each row (interleaving gives every
    row the same chance of a quiet moment on a shared machine)."""
    for _, fn in rows:
        fn()
        fn()
    best = {name: float("inf") for name, _ in rows}
    for _ in range(rounds):
        for name, fn in rows:
            start = time.perf_counter()
            for _ in range(frames):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / frames)
    return {name: 1.0 / seconds for name, seconds in best.items()}


def torch_variants(net, x: torch.Tensor):
    """(name, callable) for each precision and layout, on the CPU, inference mode."""
    def plain(model, dtype=None, channels_last=False, autocast=False):
        model = copy.deepcopy(model)
        inp = x
        if dtype is not None and not autocast:
            model, inp = model.to(dtype), inp.to(dtype)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
            inp = inp.contiguous(memory_format=torch.channels_last)

        def run():
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                return model(inp).float()
        return run

    yield "torch fp32", plain(net)
    yield "torch fp32 channels-last", plain(net, channels_last=True)
    yield "torch bf16", plain(net, torch.bfloat16)
    yield "torch bf16 channels-last", plain(net, torch.bfloat16, channels_last=True)
    yield "torch bf16 autocast", plain(net, torch.bfloat16, autocast=True)


def onnx_runner(model_path: Path, x: torch.Tensor):
    try:
        import onnxruntime
    except ImportError:
        return None
    from impasto.feedforward.export import export_onnx

    folder = tempfile.mkdtemp(prefix="impasto-bench-")
    out = Path(folder) / "model.onnx"
    export_onnx(model_path, out)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(str(out), options, providers=["CPUExecutionProvider"])
    feed = {"image": x.numpy()}
    return lambda: session.run(None, feed)


def model_file(arch_name: str, given: str | None, folder: Path) -> Path:
    if given:
        return Path(given)
    from impasto.feedforward import ARCHITECTURES, ModelInfo, TransformNet, save_model
    from impasto.recipe import Recipe

    torch.manual_seed(0)
    arch = ARCHITECTURES[arch_name]
    path = folder / f"untrained-{arch_name}.impasto"
    save_model(path, TransformNet(arch), ModelInfo(arch, Recipe.from_preset("balanced"), "untrained (random weights)",
                                                   "0" * 64, 256, 0))
    return path


def fps_table(args: argparse.Namespace, folder: Path) -> None:
    from impasto.feedforward import load_model

    width, height = args.size
    x = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    frame = x[0].permute(1, 2, 0).numpy()
    for arch_name in args.arch:
        path = model_file(arch_name, args.model, folder)
        model = load_model(path, device="cpu")
        arch = model.info.architecture
        painter = model.painter
        chosen = ("torch " + ("bf16" if model.dtype is not None else "fp32")
                  + (" channels-last" if painter.channels_last else ""))
        print(f"\n{arch_name}: width {arch.width}, {arch.blocks} blocks, {arch.parameters():,} parameters "
              f"({'trained: ' + str(path) if args.model else 'random weights'}), {width}x{height}")
        rows = list(torch_variants(model.net, x))
        runner = onnx_runner(path, x)
        if runner is not None:
            rows.append(("onnxruntime fp32", runner))
        rows.append(("Model.paint (array in, array out)", lambda m=model, f=frame: m.paint(f, tile=0)))
        for name, fps in timed(rows, args.frames, args.rounds).items():
            mark = "*" if name == chosen else " "
            print(f"  {mark} {name:36s} {fps:7.2f} fps  {1000 / fps:7.1f} ms/frame", flush=True)


def compare(args: argparse.Namespace, folder: Path) -> None:
    import impasto
    from impasto.feedforward import load_model
    from impasto.images import fit, load_image
    from impasto.optimize.targets import StatisticsCache

    photo_path, style_path = SHARED / "tubingen.jpg", SHARED / "starry_night.jpg"
    if photo_path.exists() and style_path.exists():
        photo = load_image(photo_path, what="photo")
        style = load_image(style_path, what="style")
        names = "Tübingen × The Starry Night"
    else:
        from skimage import data

        from impasto.images import LoadedImage
        from impasto.texture import brush_strokes

        photo = LoadedImage(rgb=data.astronaut().astype(np.float32) / 255, name="astronaut")
        style = LoadedImage(rgb=brush_strokes((512, 512), seed=0), name="brush strokes")
        names = "astronaut × generated brush strokes"
    photo = fit(photo, max_size=512)
    recipe = impasto.Recipe.from_preset("balanced", seed=1)
    print(f"\none 512 px photo ({names}, {photo.size[0]}x{photo.size[1]}), this process already loaded:")
    stylizer = impasto.Stylizer(recipe)
    stylizer.run(photo, style, recipe=recipe.replace(scale_steps=(1,), min_size=None))  # load the network
    times = []
    for _ in range(args.balanced_runs):
        stylizer.statistics = StatisticsCache()  # the network stays loaded; the style is measured afresh
        start = time.perf_counter()
        stylizer.run(photo, style, recipe=recipe)
        times.append(time.perf_counter() - start)
    balanced = statistics.median(times)
    model = load_model(model_file(args.arch[0], args.model, folder), device="cpu")
    model.paint(photo)
    paints = []
    for _ in range(10):
        start = time.perf_counter()
        model.paint(photo)
        paints.append(time.perf_counter() - start)
    painted = statistics.median(paints)
    print(f"  balanced optimization (Stylizer.run)  {balanced:8.2f} s   (median of {len(times)})")
    print(f"  model {args.arch[0]} ({model.precision}, Model.paint) {painted * 1000:8.1f} ms  (median of 10)")
    print(f"  the model is {balanced / painted:,.0f}x faster")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="cpu,gpu", type=lambda s: s.split(","), help="architectures (cpu,gpu)")
    parser.add_argument("--model", help="a trained model file to time instead of random weights (one --arch)")
    parser.add_argument("--size", default=(512, 288), type=lambda s: tuple(int(v) for v in s.split("x")),
                        help="frame size WxH (default 512x288)")
    parser.add_argument("--frames", type=int, default=4, help="frames per row and round (default 4)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds over the rows (default 5)")
    parser.add_argument("--no-compare", action="store_true", help="skip the comparison with the balanced preset")
    parser.add_argument("--no-fps", action="store_true", help="skip the frames-per-second table")
    parser.add_argument("--balanced-runs", type=int, default=2, help="timed balanced runs (default 2)")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent / "src"))
    from impasto.device import cpu_has_native_bf16

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, native bf16: {cpu_has_native_bf16()}, "
          f"load average at start {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="impasto-models-bench-") as folder:
        if not args.no_fps:
            fps_table(args, Path(folder))
        if not args.no_compare:
            compare(args, Path(folder))
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
