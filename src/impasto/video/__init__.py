"""Video: painting clips and folders of frames with temporal consistency.

:mod:`.stylizer` is the job (:func:`stylize_video`, :class:`VideoStylizer`, :class:`VideoOptions`);
:mod:`.temporal` the temporal method a frame at a time, which :mod:`.loop` runs over a whole
video and :mod:`.segmented` over segments (planned by :mod:`.segments`, joined by
:mod:`.joins`) through an executor; :mod:`.checks` checks a run's options and output,
:mod:`.framecache` keeps finished frames (and the settings' key) so an interrupted run continues,
:mod:`.delivery` encodes them, :mod:`.io` reads and writes video with ffmpeg, and
:mod:`.progress` holds what a run reports. :mod:`.modelvideo` paints a video with a trained model
instead (:func:`stylize_video_with_model`: one pass per frame, an optional blend along the flow).
"""

from ..reporting import FrameReporter
from .framecache import FrameCache
from .io import (
    DEFAULT_FPS,
    FRAME_EXTENSIONS,
    VIDEO_EXTENSIONS,
    VideoInfo,
    _fps_fraction,
    ffmpeg_exe,
    frame_files,
    probe,
    probe_streams,
    read_frames,
)
from .modelvideo import ModelVideoOptions, stylize_video_with_model
from .progress import FrameProgress, Interrupted
from .segmented import SegmentExecutor
from .segments import SEGMENT_FRAMES, Segment, plan_segments
from .stylizer import VideoOptions, VideoResult, VideoStylizer, stylize_video
from .temporal import later_frame_recipe

__all__ = [
    "DEFAULT_FPS", "FRAME_EXTENSIONS", "SEGMENT_FRAMES", "VIDEO_EXTENSIONS", "FrameCache", "FrameProgress",
    "FrameReporter", "Interrupted", "ModelVideoOptions", "Segment", "SegmentExecutor", "VideoInfo", "VideoOptions",
    "VideoResult", "VideoStylizer", "_fps_fraction", "ffmpeg_exe", "frame_files", "later_frame_recipe",
    "plan_segments", "probe", "probe_streams", "read_frames", "stylize_video", "stylize_video_with_model",
]
