"""``impasto video``: a clip or a folder of frames, without flicker."""

from __future__ import annotations

import argparse
from typing import Any

from ..flow import FLOW_METHODS
from ..video.io import VIDEO_EXTENSIONS
from .options import floats, progress_options, recipe_from_args, recipe_options

EXAMPLES_VIDEO = """\
examples:
  impasto video clip.mp4 -o painted.mp4 --style starry_night.jpg --max-size 512
  impasto video frames/ -o painted/ --style scream.jpg --preset fast       # folders of frames
  impasto video clip.mp4 -o painted.mp4 --style s.jpg --temporal-weight 500  # steadier, softer
  impasto video clip.mp4 -o painted.mp4 --style s.jpg --no-temporal        # frames on their own
  impasto video clip.mp4 -o painted.mp4 --style s.jpg --max-frames 24      # a preview of the first 24
  impasto video clip.mp4 -o painted.mp4 --style s.jpg                      # then the rest: reuses those 24
"""



def add_parsers(sub: Any) -> None:
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
    video.add_argument("--style-weights", type=floats, metavar="W,..", help="blend of several styles")
    video.add_argument("--no-temporal", action="store_true", help="paint every frame on its own (flickers)")
    video.add_argument("--fps", type=float, help="frame rate of a folder of frames (default 25)")
    video.add_argument("--flow", choices=FLOW_METHODS, default=FLOW_METHODS[0], help="optical flow method")
    recipe_options(video, video=True)
    _video_output_options(video)
    video.set_defaults(run=run)


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


def run(args: argparse.Namespace) -> int:
    from ..video import FrameReporter, stylize_video

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
