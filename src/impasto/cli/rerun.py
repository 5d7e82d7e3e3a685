"""``impasto rerun``: paint again the recipe an output records (the logic is :mod:`impasto.reruns`)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .options import RECIPE_FIELDS, field_option, floats, progress_options, recipe_options
from .still import _refuse_dropped_alpha

EXAMPLES = """\
examples:
  impasto rerun painted.png                         # writes painted-rerun.png: the same picture
  impasto rerun painted.png -o bigger.png --max-size 1024 --steps 60
  impasto rerun painted.png --content moved/photo.jpg --style moved/a.jpg moved/b.jpg
  impasto rerun painted.jpg.json -o again.jpg       # a JPEG's recipe is in its sidecar JSON
  impasto rerun impasto-balanced-x1y2z3.png         # a studio download: uploads found by name beside it

Inputs are looked for at their recorded paths, then relative to the painted file's folder, then
by file name next to it. A file whose sha256 differs from the record is used with a warning.
"""


def add_parsers(sub: Any) -> None:
    parser = sub.add_parser("rerun", help="paint again the recipe a picture records (same seed: same picture)",
                            epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
                            description="Re-run the recipe recorded in a picture impasto painted (or in its "
                                        "JSON sidecar), with its seed, inputs, style blend and masks; every option "
                                        "given overrides the recorded value.")
    parser.add_argument("painted", metavar="PAINTED", help="a picture impasto wrote, or its .json")
    i = parser.add_argument_group("inputs (default: the recorded files)")
    i.add_argument("--content", metavar="PATH", help="the photo, where it is now")
    i.add_argument("--style", nargs="+", metavar="PATH", help="the style images, one per recorded style, in order")
    i.add_argument("--style-weights", type=floats, metavar="W,..", help="a new blend of the styles, e.g. 0.7,0.3")
    i.add_argument("--masks", nargs="+", metavar="MASK", help="the style masks, one per recorded mask, in order")
    i.add_argument("--content-mask", metavar="MASK", help="the content mask")
    i.add_argument("--model", metavar="PATH", help="the trained model, where it is now (a model's picture)")
    recipe_options(parser, video=False)
    o = parser.add_argument_group("output and progress")
    o.add_argument("-o", "--output", metavar="PATH",
                   help="output image: .png .jpg .webp .tif (default PAINTED-rerun beside it, in its format)")
    o.add_argument("--force", action="store_true", help="overwrite an existing output file")
    o.add_argument("--bit-depth", type=int, choices=(8, 16), help="16 for PNG/TIFF (default: the painted picture's)")
    o.add_argument("--samples", metavar="DIR", help="write intermediate images into DIR")
    field_option(o, "save_every", type=int, metavar="N", help="steps between samples (default: as recorded)")
    field_option(o, "log_every", type=int, metavar="N", help="steps between loss lines (default: as recorded)")
    progress_options(o)
    parser.set_defaults(run=run)


def typed_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The recipe options the user typed (every other option is None): only these change the record."""
    return {name: getattr(args, name) for name in RECIPE_FIELDS if getattr(args, name, None) is not None}


def run(args: argparse.Namespace) -> int:
    from ..images import check_output, save_image
    from ..optimize import Stylizer
    from ..reporting import ConsoleReporter, SampleSaver
    from ..reruns import plan_rerun, read_recording

    recording = read_recording(args.painted)
    if "recipe" not in recording.metadata:
        return _run_model(recording, args)
    if args.model is not None:
        raise UsageError(f"--model: {args.painted!r} was painted by an optimization, not by a model")
    plan = plan_rerun(args.painted, content=args.content, styles=args.style, masks=args.masks,
                      content_mask=args.content_mask, style_weights=args.style_weights,
                      overrides=typed_overrides(args))
    recipe = plan.recipe
    output_path = args.output or str(plan.recording.default_output())
    _refuse_dropped_alpha(recipe, output_path)
    bit_depth = args.bit_depth if args.bit_depth is not None else _bit_depth_for(plan.recording, output_path)
    output = check_output(output_path, force=args.force, bit_depth=bit_depth, inputs=plan.input_paths)
    stylizer = Stylizer(recipe)
    for warning in [*plan.warnings, plan.weights_warning(stylizer)]:
        if warning:
            _warn(warning, args)
    reporter = ConsoleReporter(log_every=recipe.log_every, quiet=args.quiet, json_log=args.json_log)
    callbacks: list[Callable[[Any], None]] = [reporter]
    if args.samples:
        callbacks.append(SampleSaver(args.samples, recipe.save_every))

    def progress(p: Any) -> None:
        for callback in callbacks:
            callback(p)

    try:
        result = plan.run(stylizer, callback=progress)
    finally:
        reporter.close()
    save_image(result.image, output, alpha=result.alpha, bit_depth=bit_depth, metadata=result.metadata)
    height, width = result.image.shape[:2]
    reporter.message(f"wrote {output} ({width}x{height}, {result.steps} steps, {result.elapsed:.1f} s; "
                     f"seed {result.recipe.seed})", event="done", output=str(output), width=width, height=height,
                     steps=result.steps, elapsed_s=round(result.elapsed, 3), seed=result.recipe.seed,
                     losses=result.losses)
    return 0


def _run_model(recording: Any, args: argparse.Namespace) -> int:
    """A model's picture painted again by the model (found as inputs are, or ``--model``)."""
    from ..images import check_output, save_image
    from ..model_reruns import plan_model_rerun
    from ..reporting import LineReporter

    given = [flag for flag, value in (("--style", args.style), ("--style-weights", args.style_weights),
                                      ("--masks", args.masks), ("--content-mask", args.content_mask),
                                      ("--samples", args.samples)) if value is not None]
    if given:
        raise UsageError(f"{', '.join(given)}: {args.painted!r} was painted by a trained model, which holds the "
                         "style; these options belong to an optimization")
    plan = plan_model_rerun(recording, content=args.content, model=args.model, overrides=typed_overrides(args))
    output_path = args.output or str(recording.default_output())
    _refuse_dropped_alpha(plan.recipe, output_path)
    bit_depth = args.bit_depth if args.bit_depth is not None else _bit_depth_for(recording, output_path)
    output = check_output(output_path, force=args.force, bit_depth=bit_depth, inputs=plan.input_paths)
    for warning in plan.warnings:
        _warn(warning, args)
    reporter = LineReporter(quiet=args.quiet, json_log=args.json_log)
    picture = plan.run()
    save_image(picture.image, output, alpha=picture.alpha, bit_depth=bit_depth, metadata=picture.metadata)
    reporter.message(f"wrote {output} ({picture.width}x{picture.height}, model {plan.model.path.name}, "
                     f"{picture.elapsed:.2f} s)", event="done", output=str(output), width=picture.width,
                     height=picture.height, elapsed_s=round(picture.elapsed, 3))
    return 0


def _bit_depth_for(recording: Any, output_path: str) -> int:
    """The painted picture's bit depth, where the output's format can hold it."""
    from ..images import OUTPUT_FORMATS, SIXTEEN_BIT_FORMATS

    if OUTPUT_FORMATS.get(Path(output_path).suffix.lower()) not in SIXTEEN_BIT_FORMATS:
        return 8
    return int(recording.bit_depth())


def _warn(message: str, args: argparse.Namespace) -> None:
    """One warning line: on stderr, or as a JSON line with ``--json-log``; nothing with ``--quiet``."""
    if args.quiet:
        return
    if args.json_log:
        print(json.dumps({"event": "warning", "message": message}), flush=True)
    else:
        print(f"impasto: warning: {message}", file=sys.stderr, flush=True)
