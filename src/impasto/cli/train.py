"""``impasto train``: train a fast feed-forward model of one style."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..losses import STYLE_LOSSES
from ..recipe import DEVICES, PRESETS
from .options import DEFAULT_PRESET, POOLINGS, field_option, floats, progress_options, recipe_from_args

EXAMPLES_TRAIN = """\
examples:
  impasto train starry_night.jpg -o starry.impasto                    # scikit-image's photos, about 30 min on 2 cores
  impasto train starry_night.jpg -o starry.impasto --photos ~/Pictures --steps 4000 --samples samples/
  impasto train scream.jpg -o scream.impasto --arch gpu --batch-size 8 --steps 20000 --device cuda
  impasto train starry_night.jpg -o starry.impasto --style-weight 3 --stability-weight 0   # bolder; no video
  impasto stylize photo.jpg --model starry.impasto -o painted.png      # then paint in a fraction of a second

Run the same command again to resume an interrupted training (Ctrl-C saves a checkpoint).
"""

#: Recipe fields that decide a model's losses and scale, and so have a flag here (the others belong
#: to optimizing one picture: the optimizer, its schedule, the starting image, output geometry).
TRAIN_FIELDS = ("preset", "content_weight", "style_weight", "tv_weight", "content_layers", "style_layers",
                "content_layer_weights", "style_layer_weights", "style_loss", "pooling", "weights", "device",
                "precision", "style_scale", "style_size", "max_size")


def _names(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def add_parsers(sub: Any) -> None:
    from ..feedforward.network import ARCHITECTURES, DEFAULT_ARCHITECTURE
    from ..feedforward.trainer import DEFAULT_STABILITY_WEIGHT, TrainSettings

    defaults = TrainSettings()
    p = sub.add_parser("train", help="train a fast model of one style (paints a photo in a fraction of a second)",
                       epilog=EXAMPLES_TRAIN, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train an image-transformation network (Johnson et al. 2016, instance "
                                   "normalization) to paint like STYLE, with the same losses as the optimizer. "
                                   "Without --photos it trains on the photos scikit-image bundles; a few hundred "
                                   "of your own photos make a better model.")
    p.add_argument("style", metavar="STYLE", help="the painting")
    t = p.add_argument_group("training")
    t.add_argument("-o", "--output", required=True, metavar="MODEL",
                   help="the model file (.impasto); an existing checkpoint trained the same way is resumed")
    t.add_argument("--photos", metavar="DIR", help="train on the image files in DIR and below (default: the photos "
                                                   "bundled with scikit-image)")
    t.add_argument("--size", dest="train_size", type=int, default=defaults.size, metavar="PX",
                   help=f"crop side at the end of the curriculum (default {defaults.size}; training starts at "
                        "half of it)")
    t.add_argument("--steps", dest="train_steps", type=int, default=defaults.steps, metavar="N",
                   help=f"training steps (default {defaults.steps}: about 27 minutes on a 2-core CPU with bf16)")
    t.add_argument("--batch-size", type=int, default=defaults.batch_size, metavar="B",
                   help=f"crops per step (default {defaults.batch_size})")
    t.add_argument("--lr", dest="train_lr", type=float, default=defaults.lr, metavar="RATE",
                   help=f"Adam's peak learning rate (default {defaults.lr:g}; warm-up, then cosine decay)")
    t.add_argument("--arch", choices=sorted(ARCHITECTURES), default=DEFAULT_ARCHITECTURE,
                   help="; ".join(f"{name}: width {a.width}, {a.blocks} residual blocks"
                                  for name, a in ARCHITECTURES.items()) + f" (default {DEFAULT_ARCHITECTURE})")
    t.add_argument("--width", type=int, metavar="W", help="channels at full resolution (overrides --arch's)")
    t.add_argument("--blocks", type=int, metavar="B", help="residual blocks (overrides --arch's)")
    t.add_argument("--stability-weight", type=float, default=DEFAULT_STABILITY_WEIGHT, metavar="W",
                   help=f"steadier video: weight of the shift-and-noise stability loss (default "
                        f"{DEFAULT_STABILITY_WEIGHT:g}; 0 = off)")
    t.add_argument("--seed", dest="train_seed", type=int, default=0, metavar="N",
                   help="initialization and batches (default 0)")
    t.add_argument("--force", action="store_true", help="train anew over an existing model file")
    r = p.add_argument_group("losses and scale (as for stylize; every option overrides the preset)")
    field_option(r, "preset", choices=sorted(PRESETS),
                 help=f"the losses to train with (default: {DEFAULT_PRESET}; the model paints like it)")
    field_option(r, "content_weight", type=float, metavar="W", help="weight of the content loss")
    field_option(r, "style_weight", type=float, metavar="W", help="weight of the style loss (higher: more painterly)")
    field_option(r, "tv_weight", type=float, metavar="W", help="total-variation weight (0 = off)")
    field_option(r, "content_layers", type=_names, metavar="L,..", help="e.g. relu4_2")
    field_option(r, "style_layers", type=_names, metavar="L,..", help="e.g. relu1_1,relu2_1,relu3_1,relu4_1,relu5_1")
    field_option(r, "content_layer_weights", type=floats, metavar="W,..", help="one weight per content layer")
    field_option(r, "style_layer_weights", type=floats, metavar="W,..", help="one weight per style layer")
    field_option(r, "style_loss", choices=STYLE_LOSSES, help="Gram matrices, Gaussian fits (W2) or channel mean/std")
    field_option(r, "pooling", choices=POOLINGS, help="VGG pooling")
    field_option(r, "max_size", type=int, metavar="PX",
                 help="the picture size the model is trained to paint at: photos are shown with this long side "
                      "(jittered) before cropping (default: the preset's, 512)")
    field_option(r, "style_scale", type=float, metavar="F", help="brush-stroke size: the painting is shown at F "
                                                                 "times --max-size (default 1)")
    field_option(r, "style_size", type=int, metavar="PX", help="long side the painting is shown at")
    field_option(r, "weights", metavar="PATH", help="a VGG19 weight file")
    field_option(r, "device", choices=DEVICES, help="default auto: CUDA, then MPS, then CPU")
    field_option(r, "precision", choices=("auto", "fp32", "bf16"), help="auto: bf16 where it is faster")
    o = p.add_argument_group("progress")
    o.add_argument("--samples", metavar="DIR", help="write the preview photo painted by the model into DIR")
    o.add_argument("--sample-every", type=int, default=defaults.sample_every, metavar="N",
                   help=f"steps between previews (default {defaults.sample_every})")
    o.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every, metavar="N",
                   help=f"steps between checkpoints into the model file (default {defaults.checkpoint_every})")
    o.add_argument("--log-every", type=int, default=defaults.log_every, metavar="N",
                   help=f"steps between loss lines (default {defaults.log_every}; 0 = none)")
    progress_options(o)
    p.set_defaults(run=run)


def settings_from_args(args: argparse.Namespace) -> Any:
    from ..feedforward.trainer import TrainSettings

    return TrainSettings(size=args.train_size, steps=args.train_steps, batch_size=args.batch_size, lr=args.train_lr,
                         stability_weight=args.stability_weight, seed=args.train_seed,
                         sample_every=args.sample_every, checkpoint_every=args.checkpoint_every,
                         log_every=args.log_every)


def architecture_from_args(args: argparse.Namespace) -> Any:
    from ..feedforward.network import ARCHITECTURES, Architecture

    base = ARCHITECTURES[args.arch]
    try:
        return Architecture(width=base.width if args.width is None else args.width,
                            blocks=base.blocks if args.blocks is None else args.blocks)
    except ValueError as exc:
        raise UsageError(f"--width/--blocks: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from ..feedforward.photos import PhotoSet
    from ..feedforward.trainer import Trainer
    from ..reporting import TrainReporter, duration_text

    recipe = recipe_from_args(args)
    settings = settings_from_args(args)
    architecture = architecture_from_args(args)
    output = Path(args.output)
    if output.suffix.lower() != ".impasto":
        raise UsageError(f"-o {args.output!r}: a model file ends in .impasto")
    if output.resolve() == Path(args.style).resolve():
        raise UsageError(f"-o {args.output!r} is the style image")
    if not output.parent.is_dir():
        raise UsageError(f"-o {args.output!r}: folder {str(output.parent)!r} does not exist")
    reporter = TrainReporter(log_every=settings.log_every, quiet=args.quiet, json_log=args.json_log)
    photos = PhotoSet.load(args.photos, view=recipe.max_size, jitter=settings.jitter)
    for line in photos.skipped[:5]:
        reporter.message(f"skipped {line}", event="skipped")
    trainer = Trainer(args.style, recipe=recipe, settings=settings, architecture=architecture, photos=photos)
    resuming = trainer.resume_state(output, args.force)
    start = 0 if resuming is None else int(resuming[0]["step"])
    if start >= settings.steps:
        reporter.message(f"{output} is already trained ({start} steps); nothing to do", event="done",
                         output=str(output), steps=start, elapsed_s=0.0)
        return 0
    reporter.message(f"training {output} on {photos.description}: {settings.steps} steps of {settings.batch_size} "
                     f"crops up to {settings.size} px, width {architecture.width}, {architecture.blocks} blocks, "
                     f"{trainer.device.type}" + (f"; resuming from step {start}" if start else ""), event="start",
                     steps=settings.steps, resumed_from=start)
    try:
        result = trainer.train(output, callback=reporter, samples=args.samples, force=args.force)
    finally:
        reporter.close()
    losses = " ".join(f"{k}={v:.4g}" for k, v in result.losses.items() if k != "tv" or v)
    reporter.message(f"wrote {output} ({result.steps} steps, {duration_text(result.elapsed)} in this run; {losses})",
                     event="done", output=str(output), steps=result.steps, elapsed_s=round(result.elapsed, 3),
                     losses=result.losses)
    return 0
