"""``impasto stylize`` and ``impasto demo``: one picture."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import DivergedError, UsageError
from ..images import OUTPUT_FORMATS
from ..recipe import Recipe
from .options import field_option, floats, progress_options, recipe_from_args, recipe_options

EXAMPLES_STYLIZE = """\
examples:
  impasto stylize photo.jpg starry_night.jpg -o painted.png
  impasto stylize photo.jpg scream.jpg -o big.png --max-size 1024 --style-weight 3
  impasto stylize photo.jpg a.jpg b.jpg --style-weights 0.7,0.3 -o blend.png
  impasto stylize photo.jpg style.jpg -o mine.png --preserve-color luminance
  impasto stylize photo.jpg style.jpg -o big.png --style-scale 2        # strokes twice as large
  impasto stylize photo.jpg sky.jpg ground.jpg --masks sky.png ground.png -o regions.png
  impasto stylize photo.jpg style.jpg -o face.png --content-mask face.png
  impasto stylize photo.jpg style.jpg -o out.png --style-layers relu1_1,relu3_1,relu5_1 \\
      --style-layer-weights 1,2,4 --pooling avg --init noise
  impasto stylize photo.jpg style.jpg -o ref.png --preset reference --epochs 500 --samples samples/
  impasto stylize photo.jpg style.jpg -o out.png --optimizer lbfgs --steps 200 --seed 1
  impasto stylize photo.jpg --model starry.impasto -o fast.png          # a trained model: one pass
  impasto stylize photo.jpg --model starry.impasto -o fast.png --max-size 1024 --preserve-color post-lab
"""

EXAMPLES_DEMO = """\
examples:
  impasto demo                       # writes impasto-demo.png in this folder
  impasto demo -o out/demo.png --force --steps 50
"""




def add_parsers(sub: Any) -> None:
    stylize = sub.add_parser("stylize", help="paint CONTENT in the style of STYLE", epilog=EXAMPLES_STYLIZE,
                             formatter_class=argparse.RawDescriptionHelpFormatter,
                             description="Paint CONTENT in the style of one or more STYLE images.")
    stylize.add_argument("content", metavar="CONTENT", help="the photo")
    stylize.add_argument("styles", metavar="STYLE", nargs="*", help="one or more style images (none with --model)")
    stylize.add_argument("--model", metavar="PATH",
                         help="paint with a trained model (impasto train) in one pass instead of optimizing; "
                              "the model holds the style. Applies the size and colour options, --device, "
                              "--precision, --tile-size, --max-memory, --keep-alpha; the full size by default")
    stylize.add_argument("--style-weights", type=floats, metavar="W,..", help="blend of several styles, e.g. 0.7,0.3")
    stylize.add_argument("--masks", nargs="+", metavar="MASK",
                         help="one greyscale mask per style (white = this style; black in all = keep the photo)")
    stylize.add_argument("--content-mask", metavar="MASK",
                         help="greyscale: white where the photo's content matters more")
    recipe_options(stylize, video=False)
    _output_options(stylize, None)
    demo = sub.add_parser("demo", help="paint a built-in photo with a generated brush-stroke style",
                          epilog=EXAMPLES_DEMO, formatter_class=argparse.RawDescriptionHelpFormatter,
                          description="Paint scikit-image's astronaut photo with a brush-stroke texture that "
                                      "impasto generates: no files needed, nothing downloaded.")
    recipe_options(demo, video=False)
    _output_options(demo, "impasto-demo.png")
    stylize.set_defaults(run=run)
    demo.set_defaults(run=run)


def _output_options(parser: argparse.ArgumentParser, default_output: str | None) -> None:
    """Where a still image goes, and how its progress is shown."""
    o = parser.add_argument_group("output and progress")
    o.add_argument("-o", "--output", required=default_output is None, default=default_output, metavar="PATH",
                   help="output image: .png .jpg .webp .tif"
                        + (f" (default {default_output})" if default_output else ""))
    o.add_argument("--force", action="store_true", help="overwrite an existing output file")
    o.add_argument("--bit-depth", type=int, choices=(8, 16), default=8, help="16 for PNG/TIFF")
    o.add_argument("--samples", metavar="DIR", help="write intermediate images into DIR")
    field_option(o, "save_every", type=int, metavar="N", help="steps between samples (default 40)")
    field_option(o, "log_every", type=int, metavar="N", help="steps between loss lines (default 20; 0 = none)")
    progress_options(o)


def run(args: argparse.Namespace) -> int:
    from ..images import check_output, save_image
    from ..reporting import ConsoleReporter, SampleSaver

    if getattr(args, "model", None) is not None:
        return run_model(args)
    if args.command == "stylize" and not args.styles:
        raise UsageError("stylize needs at least one STYLE image (or --model PATH)")
    recipe = recipe_from_args(args)
    if args.command == "demo":
        content, styles, inputs = _demo_inputs()
    else:
        content, styles, inputs = args.content, list(args.styles), [args.content, *args.styles]
        inputs += [*(args.masks or []), *([args.content_mask] if args.content_mask else [])]
    _refuse_dropped_alpha(recipe, args.output)
    output = check_output(args.output, force=args.force, bit_depth=args.bit_depth, inputs=tuple(inputs))
    reporter = ConsoleReporter(log_every=recipe.log_every, quiet=args.quiet, json_log=args.json_log)
    callbacks: list[Callable[[Any], None]] = [reporter]
    if args.samples:
        callbacks.append(SampleSaver(args.samples, recipe.save_every))

    def progress(p):
        for callback in callbacks:
            callback(p)

    from ..optimize import Stylizer

    stylizer = Stylizer(recipe)
    try:
        result = stylizer.run(content, styles, recipe=recipe, callback=progress,
                              style_blend=getattr(args, "style_weights", None), masks=getattr(args, "masks", None),
                              content_mask=getattr(args, "content_mask", None))
    except DivergedError as exc:
        reporter.close()
        if exc.last_good is not None and exc.step > 0:
            save_image(exc.last_good, output, bit_depth=args.bit_depth,
                       metadata={"recipe": recipe.to_dict(), "diverged_at_step": exc.step + 1})
            raise DivergedError(f"{exc}; the last good image is in {output}", exc.last_good, exc.step) from None
        raise
    finally:
        reporter.close()
    save_image(result.image, output, alpha=result.alpha, bit_depth=args.bit_depth, metadata=result.metadata)
    height, width = result.image.shape[:2]
    reporter.message(f"wrote {output} ({width}x{height}, {result.steps} steps, {result.elapsed:.1f} s)",
                     event="done", output=str(output), width=width, height=height, steps=result.steps,
                     elapsed_s=round(result.elapsed, 3), losses=result.losses)
    return 0


#: Options of ``impasto stylize`` that only an optimization uses (besides the recipe's).
_OPTIMIZATION_ONLY = ("style_weights", "masks", "content_mask", "samples")


def run_model(args: argparse.Namespace) -> int:
    """``impasto stylize PHOTO --model M -o OUT``: the photo painted by a trained model in one pass."""
    from ..feedforward.model import load_model
    from ..feedforward.picture import paint_picture, refused_fields
    from ..images import check_output, load_image, save_image
    from ..reporting import LineReporter
    from .options import RECIPE_FIELDS, flag

    if args.styles:
        raise UsageError(f"--model paints in the model's style; give no STYLE image ({args.styles[0]!r})")
    given = {name: getattr(args, name) for name in RECIPE_FIELDS if getattr(args, name, None) is not None}
    refused = [flag(n) for n in refused_fields(given)]
    refused += [flag(n) for n in _OPTIMIZATION_ONLY if getattr(args, n, None) is not None]
    if refused:
        raise UsageError(f"{', '.join(refused)}: not used with --model (a model paints in one pass; these options "
                         "belong to an optimization)")
    recipe = Recipe.from_preset("balanced", **given)  # validates every value, naming the flag at fault
    _refuse_dropped_alpha(recipe, args.output)
    output = check_output(args.output, force=args.force, bit_depth=args.bit_depth,
                          inputs=(args.content, args.model))
    reporter = LineReporter(quiet=args.quiet, json_log=args.json_log)
    model = load_model(args.model, device=recipe.device, precision=recipe.precision)
    photo = load_image(args.content, what="content image", max_pixels=recipe.max_pixels)
    picture = paint_picture(model, photo, recipe, shrink="max_size" in given)
    save_image(picture.image, output, alpha=picture.alpha, bit_depth=args.bit_depth, metadata=picture.metadata)
    tiles = f", in tiles of {picture.tile} px" if picture.tile else ""
    reporter.message(f"wrote {output} ({picture.width}x{picture.height}, model {model.info.style_name}{tiles}, "
                     f"{picture.elapsed:.2f} s)", event="done", output=str(output), width=picture.width,
                     height=picture.height, model=model.path, model_sha256=model.sha256, tile=picture.tile,
                     elapsed_s=round(picture.elapsed, 3))
    return 0


def _refuse_dropped_alpha(recipe: Recipe, output: str) -> None:
    """``--keep-alpha`` into a JPEG would lose the transparency without a word: refuse it up front."""
    if recipe.keep_alpha and OUTPUT_FORMATS.get(Path(output).suffix.lower()) == "JPEG":
        raise UsageError(f"--keep-alpha: JPEG has no transparency; write {output!r} as .png, .webp or .tif to keep it")


def _demo_inputs():
    """scikit-image's astronaut photo (public domain, NASA) and a generated brush-stroke texture."""
    from skimage import data

    from ..images import LoadedImage
    from ..texture import brush_strokes

    content = LoadedImage(rgb=data.astronaut().astype("float32") / 255.0, name="astronaut (scikit-image)")
    style = LoadedImage(rgb=brush_strokes((512, 512), seed=0), name="brush strokes (generated)")
    return content, [style], []
