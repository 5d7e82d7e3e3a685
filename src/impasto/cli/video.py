"""``impasto video``: a clip or a folder of frames, without flicker."""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from typing import Any

from ..errors import UsageError
from ..flow import FLOW_METHODS
from ..video.io import VIDEO_EXTENSIONS
from ..video.segments import SEGMENT_FRAMES
from .options import floats, progress_options, recipe_from_args, recipe_options

EXAMPLES_VIDEO = """\
examples:
  impasto video clip.mp4 -o painted.mp4 --style starry_night.jpg --max-size 512
  impasto video frames/ -o painted/ --style scream.jpg --preset fast       # folders of frames
  impasto video clip.mp4 -o painted.mp4 --style s.jpg --temporal-weight 500  # steadier, softer
  impasto video clip.mp4 -o painted.mp4 --style s.jpg --no-temporal        # frames on their own
  impasto video clip.mp4 -o painted.mp4 --style s.jpg --max-frames 24      # a preview of the first 24
  impasto video clip.mp4 -o painted.mp4 --style s.jpg                      # then the rest: reuses those 24
  impasto video clip.mp4 -o painted.mp4 --style s.jpg --segments --workers 2   # segments in 2 processes
  impasto video clip.mp4 -o painted.mp4 --style s.jpg --ray auto --ray-gpus-per-worker 1  # on a Ray cluster
  impasto video clip.mp4 -o painted.mp4 --model starry.impasto             # a trained model: one pass a frame
  impasto video clip.mp4 -o painted.mp4 --model starry.impasto --blend 0.5 --max-size 512   # steadier strokes
"""


def add_parsers(sub: Any) -> None:
    video = sub.add_parser("video", help="paint a video (or a folder of frames) without flicker",
                           epilog=EXAMPLES_VIDEO, formatter_class=argparse.RawDescriptionHelpFormatter,
                           description="Paint every frame of IN in the style of --style, each frame starting "
                                       "from the previous one carried along the optical flow (Ruder et al. "
                                       "2016), or with a trained model (--model), one pass a frame. Frame rate "
                                       "and audio are kept. Finished frames are cached until the video is "
                                       "written, so after Ctrl-C or --max-frames the same command continues "
                                       "where it stopped.")
    video.add_argument("source", metavar="IN", help="a video file or a folder of frames")
    video.add_argument("--style", dest="styles", nargs="+", metavar="STYLE",
                       help="one or more style images (none with --model)")
    video.add_argument("--model", metavar="PATH",
                       help="paint every frame with a trained model (impasto train) in one pass instead of "
                            "optimizing; the model holds the style. Applies the size and colour options, --device, "
                            "--precision, --tile-size, --max-memory; the frames' own size by default")
    video.add_argument("--blend", type=float, metavar="A",
                       help="with --model: each frame takes A (0-1) of the previous painted frame carried along the "
                            "optical flow where the flow is trusted (default 0: off; 0.5 cuts flicker 3-5x and "
                            "softens the finest texture)")
    video.add_argument("--style-weights", type=floats, metavar="W,..", help="blend of several styles")
    video.add_argument("--no-temporal", action="store_true", help="paint every frame on its own (flickers)")
    video.add_argument("--fps", type=float, help="frame rate of a folder of frames (default 25)")
    video.add_argument("--flow", choices=FLOW_METHODS, default=FLOW_METHODS[0], help="optical flow method")
    recipe_options(video, video=True)
    _segment_options(video)
    _video_output_options(video)
    video.set_defaults(run=run)


def _segment_options(parser: argparse.ArgumentParser) -> None:
    """Painting in segments, in parallel: on this machine or on a Ray cluster."""
    g = parser.add_argument_group(
        "segments (parallel)",
        "cut the video at scene cuts and every --segment-frames frames, paint the segments in parallel with "
        "the temporal method inside each, and join them without a visible seam")
    g.add_argument("--segments", action="store_true",
                   help="paint in segments on this machine (in this process, or in --workers processes)")
    g.add_argument("--ray", metavar="auto|ADDRESS",
                   help="paint the segments on a Ray cluster (auto: the one this machine knows of, else a "
                        "local one); needs pip install 'impasto[ray]'")
    g.add_argument("--workers", type=int, metavar="N",
                   help="worker processes with --segments (default 1: this process), Ray actors with --ray "
                        "(default: as the cluster's CPUs allow)")
    g.add_argument("--ray-gpus-per-worker", type=float, metavar="G", help="GPUs each Ray worker reserves (e.g. 1)")
    g.add_argument("--segment-frames", type=int, metavar="N",
                   help=f"most frames per segment (default {SEGMENT_FRAMES}; with --segments or --ray)")


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
    progress_options(o)


def executor(args: argparse.Namespace) -> Any:
    """Where segments run, built only when asked for (Ray is imported only with ``--ray``): a Ray
    executor, worker processes, this process, or None for a whole video painted in order."""
    segmented = args.ray is not None or args.segments
    if args.workers is not None and not segmented:
        raise UsageError("--workers: applies to a video painted in segments; add --segments or --ray")
    if args.ray_gpus_per_worker is not None and args.ray is None:
        raise UsageError("--ray-gpus-per-worker: applies to --ray only")
    if args.ray is not None:
        from ..scale.ray_backend import RayExecutor  # raises UsageError with the install hint without Ray

        return RayExecutor(args.ray, workers=args.workers, gpus_per_worker=args.ray_gpus_per_worker or 0.0)
    if args.segments and (args.workers or 1) > 1:
        from ..scale.processes import ProcessExecutor

        return ProcessExecutor(args.workers)
    if args.segments:
        from ..scale.executor import LocalExecutor

        return LocalExecutor()
    return None


def run(args: argparse.Namespace) -> int:
    from ..reporting import FrameReporter
    from ..video import stylize_video

    if args.model is not None:
        return run_model(args)
    if not args.styles:
        raise UsageError("video needs --style STYLE (or --model PATH)")
    if args.blend is not None:
        raise UsageError("--blend: applies to --model only (an optimization keeps frames steady with its temporal "
                         "loss: --temporal-weight)")
    recipe = recipe_from_args(args)
    where = executor(args)
    reporter = FrameReporter(quiet=args.quiet, json_log=args.json_log)
    try:
        with where if where is not None else nullcontext():
            result = stylize_video(args.source, args.output, list(args.styles), recipe,
                                   style_blend=args.style_weights, temporal=not args.no_temporal,
                                   cache_dir=args.cache, resume=not args.no_resume, overwrite=args.force,
                                   max_frames=args.max_frames, fps=args.fps, flow_method=args.flow, executor=where,
                                   segment_frames=args.segment_frames, on_frame=reporter, on_message=reporter.message)
    finally:
        reporter.close()
    flicker = f", flicker {result.flicker:.2e}" if result.flicker is not None else ""
    joins = f", worst join {result.join_ratio:.2f}x the flicker within segments" if result.join_ratio else ""
    reporter.message(f"wrote {result.output} ({result.frames} frames, {result.computed} painted, "
                     f"{result.reused} from the cache, {result.elapsed:.1f} s{flicker}{joins})",
                     event="done", output=str(result.output), frames=result.frames, computed=result.computed,
                     reused=result.reused, elapsed_s=round(result.elapsed, 3), flicker=result.flicker,
                     segments=result.segments, join_ratio=result.join_ratio)
    return 0


#: Options of ``impasto video`` that only an optimization uses (besides the recipe's), by destination.
_OPTIMIZATION_ONLY = {"style_weights": "--style-weights", "no_temporal": "--no-temporal", "segments": "--segments",
                      "ray": "--ray", "workers": "--workers", "ray_gpus_per_worker": "--ray-gpus-per-worker",
                      "segment_frames": "--segment-frames"}


def run_model(args: argparse.Namespace) -> int:
    """``impasto video IN --model M -o OUT``: every frame painted by a trained model in one pass."""
    from ..feedforward.model import load_model
    from ..feedforward.picture import refused_fields
    from ..recipe import Recipe
    from ..reporting import FrameReporter
    from ..video import stylize_video_with_model
    from .options import RECIPE_FIELDS, flag

    if args.styles:
        raise UsageError(f"--model paints in the model's style; give no --style ({args.styles[0]!r})")
    given = {name: getattr(args, name) for name in RECIPE_FIELDS if getattr(args, name, None) is not None}
    refused = [flag(n) for n in refused_fields(given)]
    refused += [option for dest, option in _OPTIMIZATION_ONLY.items() if getattr(args, dest, None) not in (None, False)]
    if refused:
        raise UsageError(f"{', '.join(refused)}: not used with --model (a model paints in one pass; these options "
                         "belong to an optimization)")
    recipe = Recipe.from_preset("balanced", **given)  # validates every value, naming the flag at fault
    reporter = FrameReporter(quiet=args.quiet, json_log=args.json_log)
    try:
        model = load_model(args.model, device=recipe.device, precision=recipe.precision)
        result = stylize_video_with_model(args.source, args.output, model, recipe, blend=args.blend or 0.0,
                                          shrink="max_size" in given, flow_method=args.flow, cache_dir=args.cache,
                                          resume=not args.no_resume, overwrite=args.force, max_frames=args.max_frames,
                                          fps=args.fps, on_frame=reporter, on_message=reporter.message)
    finally:
        reporter.close()
    speed = f", {result.computed / result.elapsed:.1f} frames/s" if result.computed and result.elapsed > 0 else ""
    flicker = f", flicker {result.flicker:.2e}" if result.flicker is not None else ""
    reporter.message(f"wrote {result.output} ({result.frames} frames, {result.computed} painted, "
                     f"{result.reused} from the cache, model {model.info.style_name}, {result.elapsed:.1f} s"
                     f"{speed}{flicker})",
                     event="done", output=str(result.output), frames=result.frames, computed=result.computed,
                     reused=result.reused, elapsed_s=round(result.elapsed, 3), flicker=result.flicker,
                     model=model.path, model_sha256=model.sha256, blend=args.blend or 0.0)
    return 0
