"""Video: painting clips and folders of frames with temporal consistency.

:mod:`.stylizer` runs the frame loop, :mod:`.io` reads and writes video with ffmpeg and
:mod:`.framecache` keeps finished frames so an interrupted run continues.
"""

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
from .stylizer import (
    FrameProgress,
    FrameReporter,
    Interrupted,
    VideoResult,
    VideoStylizer,
    later_frame_recipe,
    stylize_video,
)

__all__ = [
    "DEFAULT_FPS", "FRAME_EXTENSIONS", "VIDEO_EXTENSIONS", "FrameCache", "FrameProgress", "FrameReporter",
    "Interrupted", "VideoInfo", "VideoResult", "VideoStylizer", "_fps_fraction", "ffmpeg_exe", "frame_files",
    "later_frame_recipe", "probe", "probe_streams", "read_frames", "stylize_video",
]
