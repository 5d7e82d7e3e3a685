"""Delivering a video job: the cached frames, in order, encoded with the source's audio (or left
as the folder of frames that the output is), and the cache kept where a later run will want it."""

from __future__ import annotations

from .checks import Target
from .io import VideoInfo, encode_video
from .progress import MessageCallback


def deliver(target: Target, info: VideoInfo, frames: int, *, partial: bool, note: MessageCallback) -> bool:
    """Write the output from cached frames ``1 … frames``; returns whether audio was written.

    A ``partial`` run (stopped by ``max_frames`` before the source's end) writes a preview and keeps
    its frames (and, for a video, the preview's sha256, so the full run may replace it without
    ``overwrite``). A whole video's cache goes unless ``target.keep_cache``.
    """
    cache = target.cache
    audio = False
    if target.kind == "video":
        if target.preview is not None:
            note(f"replacing the preview {target.path} that an earlier --max-frames run wrote")
        paths = [cache.frame_path(i) for i in range(1, frames + 1)]
        audio = encode_video(paths, target.path, info.fps, audio_from=info.path if info.audio else None)
        if info.audio and not audio:
            note("the source's audio could not be kept")
    if partial:
        preview = cache.preview_of(target.path) if target.kind == "video" else None
        cache.record(frames_done=frames, complete=False, preview=preview)
        note(f"the first {frames} frame(s) stay in {cache.folder}: run again without --max-frames to paint the rest")
        return audio
    cache.record(frames_done=frames, complete=True, preview=None)
    if not target.keep_cache:
        cache.remove()
    return audio
