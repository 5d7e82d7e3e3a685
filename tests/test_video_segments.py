"""Videos painted in segments: planning at scene cuts, steady joins, audio, resumption, executors, the CLI."""

import subprocess
import sys
import types

import numpy as np
import pytest
from PIL import Image
from test_cli import assert_one_line_error, run_cli

from impasto import flow
from impasto.errors import UsageError
from impasto.images import LoadedImage
from impasto.recipe import Recipe
from impasto.scale.executor import LocalExecutor
from impasto.video import (
    FrameCache,
    Segment,
    VideoStylizer,
    ffmpeg_exe,
    plan_segments,
    probe,
    probe_streams,
    read_frames,
    stylize_video,
)
from impasto.video.io import encode_video
from impasto.video.joins import Pull, carry_back, combine_targets, join_ratio, pull_strengths
from impasto.video.segments import frame_changes, scene_cuts, split_evenly, thumbnail
from impasto.video.temporal import FrameSettings, TemporalChain

SIZE, FPS, SEGMENT = 64, 12, 8
SHOTS = (14, 4)  # frames of each shot: 14 → two segments of 7; the cut; 4 → one segment
PLAN = [Segment(0, 7, "smooth"), Segment(7, 14, "cut"), Segment(14, 18, "end")]


def panning_shot(photo: np.ndarray, count: int, size: int = SIZE) -> list[np.ndarray]:
    """A camera panning across ``photo`` by (2, 1) px a frame: ``count`` frames of ``size`` px, float in [0, 1]."""
    scaled = np.asarray(Image.fromarray(photo).resize((2 * size, 2 * size), Image.Resampling.LANCZOS), np.float32)
    return [scaled[10 + t:10 + t + size, 10 + 2 * t:10 + 2 * t + size] / 255 for t in range(count)]


@pytest.fixture(scope="module")
def clip():
    from skimage import data

    return panning_shot(data.astronaut(), SHOTS[0]) + panning_shot(data.coffee()[:, 100:500], SHOTS[1])


@pytest.fixture(scope="module")
def source_video(tmp_path_factory, clip):
    """The clip as an .mp4 with a sine tone, made with impasto's own encoder (the audio muxed from a .m4a)."""
    folder = tmp_path_factory.mktemp("clip")
    paths = []
    for i, frame in enumerate(clip, 1):
        paths.append(folder / f"{i}.png")
        Image.fromarray((frame * 255 + 0.5).astype(np.uint8)).save(paths[-1])
    tone = folder / "tone.m4a"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", f"sine=frequency=440:duration={len(clip) / FPS}",
                    "-c:a", "aac", str(tone)], check=True)
    video = folder / "clip.mp4"
    assert encode_video(paths, video, FPS, audio_from=tone)
    return video


@pytest.fixture(scope="module")
def style():
    from impasto.texture import brush_strokes

    return brush_strokes((128, 128), seed=0)


def recipe(**changes) -> Recipe:
    return Recipe.from_preset("fast", **{"max_size": SIZE, "device": "cpu", "seed": 0, **changes})


def quick(**changes) -> Recipe:
    """One step per frame: for the tests of bookkeeping, not of painting."""
    return recipe(steps=1, later_steps=1, **changes)


@pytest.fixture(scope="module")
def job():
    return VideoStylizer(recipe())


@pytest.fixture(scope="module")
def painted(tmp_path_factory, source_video, style, job):
    """The clip painted in segments, in this process; the cache is kept for the tests that follow."""
    out = tmp_path_factory.mktemp("painted") / "painted.mp4"
    progress, messages = [], []
    result = stylize_video(source_video, out, style, recipe(), stylizer=job, executor=LocalExecutor(job.stylizer),
                           segment_frames=SEGMENT, cache_dir=out.parent / "cache", on_frame=progress.append,
                           on_message=messages.append)
    return out, result, progress, messages


# ---------------------------------------------------------------------------------------------
# Planning
# ---------------------------------------------------------------------------------------------
def test_the_clip_is_cut_at_its_scene_cut_and_every_n_frames(clip, painted):
    changes = frame_changes(map(thumbnail, clip))
    assert plan_segments(changes, SEGMENT) == PLAN
    assert plan_segments(changes[:13], SEGMENT)[-1] == Segment(7, 14, "end")  # no cut within the first shot
    _, result, _, messages = painted
    assert result.segments == 3 and any("3 segment(s) (1 at scene cuts)" in m for m in messages)


def test_scene_cuts_stand_out_from_the_running_median():
    steady = np.full(30, 0.02)
    assert scene_cuts(steady) == []
    jump = steady.copy()
    jump[9] = 0.3  # frames 9 → 10
    assert scene_cuts(jump) == [10]
    fast_pan = np.full(30, 0.07)
    fast_pan[20] = 0.2  # above the floor but under four times the shot's usual change
    assert scene_cuts(fast_pan) == []
    fast_pan[20] = 0.3
    assert scene_cuts(fast_pan) == [21]
    noise = np.full(30, 0.001)
    noise[5] = 0.05  # fifty times the median, but a flicker of light rather than a new shot
    assert scene_cuts(noise) == []


def test_shots_split_into_equal_pieces_of_at_most_n_frames():
    assert split_evenly(0, 48, 48) == [0]
    assert split_evenly(0, 49, 48) == [0, 24]
    assert split_evenly(10, 110, 48) == [10, 43, 76]
    lengths = [s.length for s in plan_segments(np.zeros(99), 48)]
    assert lengths == [33, 33, 34]
    assert plan_segments(np.zeros(0), 48) == [Segment(0, 1, "end")]


# ---------------------------------------------------------------------------------------------
# The join's math
# ---------------------------------------------------------------------------------------------
def test_pulls_cross_the_gap_to_the_next_key_frame_in_equal_steps():
    strengths = pull_strengths(10, 4, gain=1.0)
    assert strengths[:6] == [0.0] * 6 and strengths[-1] == 1.0
    way, ways = 0.0, []  # how far each frame is from the segment's own painting towards the key frame
    for strength in strengths[6:]:
        way += strength / (1 + strength) * (1 - way)  # a frame that reaches its combined target
        ways.append(way)
    assert np.allclose(ways, [0.2, 0.4, 0.6, 0.8])
    assert pull_strengths(10, 4, gain=2.0)[-1] == 2.0
    with pytest.raises(ValueError):
        pull_strengths(3, 3)  # a segment's first frame is its key frame: never pulled


def test_two_squared_errors_combine_into_one_temporal_term():
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 8, 8, 3))
    w1, w2 = rng.random((2, 8, 8))
    w2[0] = 0.0
    target, weights = combine_targets(a, w1, b, w2)

    def difference(x):
        both = w1[..., None] * (x - a) ** 2 + w2[..., None] * (x - b) ** 2
        return both - weights[..., None] * (x - target) ** 2

    assert np.allclose(difference(rng.random((8, 8, 3))), difference(rng.random((8, 8, 3))), atol=1e-5)
    assert np.allclose(target[0], a[0])


def test_the_key_frame_is_carried_back_one_frame_at_a_time(clip):
    frames = clip[:4]
    painted = np.roll(clip[3], 7, axis=0)  # anything painted on frame 3's grid
    carried = carry_back(painted, frames)
    assert len(carried) == 3
    image, trusted = carried[0]  # frame 0 sees frame 3's content 6 px left and 3 px up
    inner = trusted[8:-8, 8:-8] > 0.5
    assert inner.mean() > 0.7
    expected = np.roll(np.roll(painted, 6, axis=1), 3, axis=0)[8:-8, 8:-8]
    assert np.abs(image[8:-8, 8:-8] - expected)[inner].mean() < 0.03
    assert join_ratio([1.0, 3.0], [3.0, 1.0]) == 1.5 and join_ratio([1.0], []) is None


def test_a_pulled_frame_lands_between_the_frame_before_and_the_key(clip, style, job):
    settings = FrameSettings.build(recipe(), (SIZE, SIZE), [LoadedImage(rgb=style)], None, temporal=True,
                                   flow_method="dis").with_seed(0)
    chain = TemporalChain(job.stylizer, settings)
    start = chain.paint(1, clip[0]).styled
    key = np.clip(start + 0.3, 0, 1)  # a key frame far from this chain's painting
    unpulled = TemporalChain(job.stylizer, settings)
    unpulled.follow(clip[0], start)
    free = unpulled.paint(2, clip[0]).styled
    pulled = chain.paint(2, clip[0], pull=Pull(key, np.ones((SIZE, SIZE), np.float32), 1.0)).styled
    assert np.abs(pulled - key).mean() < 0.75 * np.abs(free - key).mean()
    assert np.abs(pulled - free).mean() > 0.05


# ---------------------------------------------------------------------------------------------
# A clip painted in segments
# ---------------------------------------------------------------------------------------------
def _within_and_joins(frames, clip):
    """Warping errors between consecutive frames, measured afresh from the frames: within segments, at joins."""
    within, joins = [], []
    for segment in PLAN:
        for t in range(segment.start + 1, segment.end):
            within.append(flow.flicker(frames[t - 1:t + 1], clip[t - 1:t + 1]))
        if segment.join == "smooth":
            joins.append(flow.flicker(frames[segment.end - 1:segment.end + 1], clip[segment.end - 1:segment.end + 1]))
    return within, joins


def test_joins_flicker_at_most_one_and_a_half_times_the_frames_within_segments(painted, clip, source_video):
    _, result, _, _ = painted
    assert result.frames == result.computed == len(clip) and result.segments == 3
    assert len(result.join_errors) == 1 and result.join_ratio <= 1.5, (result.join_errors, result.warping_errors)
    frames = [FrameCache(result.cache_dir).load(i) for i in range(1, len(clip) + 1)]
    contents = list(read_frames(probe(source_video)))  # what was painted (the clip, through H.264)
    within, joins = _within_and_joins(frames, contents)  # the same measure, from the files
    assert max(joins) / np.mean(within) == pytest.approx(result.join_ratio, rel=1e-3)


def test_the_video_keeps_its_frames_rate_and_audio(painted, clip):
    out, result, progress, _ = painted
    streams = probe_streams(out)
    assert streams["video"] and streams["audio"] and result.audio
    assert streams["fps"] == pytest.approx(FPS)
    decoded = list(read_frames(probe(out)))
    assert len(decoded) == len(clip) and decoded[0].shape == (SIZE, SIZE, 3)
    assert np.abs(decoded[-1] - FrameCache(result.cache_dir).load(len(clip))).mean() < 0.06
    assert sorted(p.index for p in progress) == list(range(1, len(clip) + 1))
    assert [p.done for p in progress] == list(range(1, len(clip) + 1)) and progress[-1].eta == 0
    assert [p.index for p in progress[:3]] == [1, 8, 15]  # the key frames first


def test_a_rerun_paints_only_what_is_missing(painted, clip, source_video, style, job):
    out, result, _, _ = painted
    cache = FrameCache(result.cache_dir)
    before = cache.load(10)
    cache.frame_path(10).unlink()  # a frame of the second segment is lost
    messages = []
    again = stylize_video(source_video, out, style, recipe(), stylizer=job, executor=LocalExecutor(job.stylizer),
                          segment_frames=SEGMENT, cache_dir=result.cache_dir, overwrite=True,
                          on_message=messages.append)
    assert again.computed == PLAN[1].length - 1 and again.reused == len(clip) - again.computed
    assert any("resuming: 3 key frame(s) and 2 segment(s)" in m for m in messages), messages
    assert np.abs(cache.load(10) - before).max() <= 1 / 255  # the same segment, painted the same way
    assert again.join_ratio == pytest.approx(result.join_ratio, rel=0.05)


class Reversed:
    """An executor that takes every task before it runs any and hands results back last first; the
    task ``fail_at`` = (wave, index) comes back as an exception."""

    def __init__(self, stylizer, fail_at=None):
        self.local, self.fail_at, self.pulled = LocalExecutor(stylizer), fail_at, []

    def map(self, fn, tasks):
        tasks = list(tasks)
        self.pulled.append(len(tasks))
        for index, result in list(self.local.map(fn, tasks))[::-1]:
            failed = (len(self.pulled), index) == self.fail_at
            yield index, RuntimeError(f"worker lost task {index}") if failed else result


def test_results_in_any_order_and_failed_tasks(tmp_path, source_video, style, job):
    out = tmp_path / "out"
    in_order = stylize_video(source_video, out, style, quick(), stylizer=job, executor=LocalExecutor(job.stylizer),
                             segment_frames=SEGMENT)
    reversed_run = Reversed(job.stylizer, fail_at=(2, 0))  # the first segment fails, after the others
    with pytest.raises(RuntimeError, match="worker lost task 0"):
        stylize_video(source_video, tmp_path / "again", style, quick(), stylizer=job, executor=reversed_run,
                      segment_frames=SEGMENT)
    assert reversed_run.pulled == [3, 3]  # three key frames, then three segments
    cache = FrameCache(tmp_path / "again")
    assert {i for i in range(1, 19) if cache.frame_path(i).is_file()} == {1, *range(8, 19)}
    finished = stylize_video(source_video, tmp_path / "again", style, quick(), stylizer=job,
                             executor=Reversed(job.stylizer), segment_frames=SEGMENT)
    assert finished.computed == PLAN[0].length - 1  # only the failed segment
    for i in range(1, 19):
        assert np.array_equal(FrameCache(out).load(i), cache.load(i)), i
    assert finished.warping_errors == pytest.approx(in_order.warping_errors)


def test_cancel_stops_between_tasks_and_a_rerun_continues(tmp_path, source_video, style, job):
    out = tmp_path / "out.mp4"

    def cancel_after_the_first_frame(progress):
        if progress.done == 1:
            job.cancel()

    stopped = stylize_video(source_video, out, style, quick(), stylizer=job, executor=LocalExecutor(job.stylizer),
                            segment_frames=SEGMENT, on_frame=cancel_after_the_first_frame)
    assert stopped.cancelled and stopped.output is None and stopped.frames == 1 and not out.exists()
    messages = []
    finished = stylize_video(source_video, out, style, quick(), stylizer=job, executor=LocalExecutor(job.stylizer),
                             segment_frames=SEGMENT, on_message=messages.append)
    assert finished.output == out and finished.reused == 1 and finished.computed == 17
    assert any("resuming: 1 key frame(s) and 0 segment(s)" in m for m in messages), messages
    assert not FrameCache(f"{out}.frames").folder.exists()  # the whole video is written: the default cache goes


def test_segments_need_an_executor_and_options_are_checked(tmp_path, source_video, style):
    with pytest.raises(UsageError, match="segment_frames: applies to a video painted in segments") as refused:
        stylize_video(source_video, tmp_path / "o.mp4", style, quick(), segment_frames=4)
    assert refused.value.field == "segment_frames"
    with pytest.raises(UsageError, match="segment_frames"):
        stylize_video(source_video, tmp_path / "o.mp4", style, quick(), segment_frames=0, executor=LocalExecutor())
    with pytest.raises(TypeError):
        stylize_video(source_video, tmp_path / "o.mp4", style, quick(), segment_size=4)  # no such option


# ---------------------------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------------------------
def _frames(folder, clip, count):
    folder.mkdir()
    for i, frame in enumerate(clip[:count], 1):
        Image.fromarray((frame * 255 + 0.5).astype(np.uint8)).save(folder / f"{i}.png")
    return folder


QUICK = ["--preset", "fast", "--max-size", "64", "--min-size", "64", "--steps", "1", "--later-steps", "1",
         "--device", "cpu"]


def test_cli_segments_on_this_machine_and_a_rerun_reuses_them(tmp_path, clip, image_files, capsys):
    _, style = image_files
    frames = _frames(tmp_path / "frames", clip, 5)
    command = ["video", frames, "-o", f"{tmp_path / 'out'}/", "--style", style, *QUICK, "--segments",
               "--segment-frames", "3"]
    code, stdout, err = run_cli(command, capsys)
    assert code == 0, err
    assert "2 segment(s)" in stdout and "5 frames, 5 painted" in stdout and "worst join" in stdout
    code, stdout, err = run_cli(command, capsys)
    assert code == 0, err
    assert "5 frames, 0 painted, 5 from the cache" in stdout


def test_cli_ray_builds_its_executor_lazily(tmp_path, clip, image_files, capsys, monkeypatch):
    _, style = image_files
    frames = _frames(tmp_path / "frames", clip, 3)
    made = []

    class FakeRay(LocalExecutor):
        def __init__(self, address, *, workers=None, gpus_per_worker=0.0):
            super().__init__()
            made.append({"address": address, "workers": workers, "gpus": gpus_per_worker, "closed": False})

        def close(self):
            made[-1]["closed"] = True

    backend = types.ModuleType("impasto.scale.ray_backend")
    backend.RayExecutor = FakeRay
    monkeypatch.setitem(sys.modules, "impasto.scale.ray_backend", backend)
    code, stdout, err = run_cli(["video", frames, "-o", f"{tmp_path / 'out'}/", "--style", style, *QUICK,
                                 "--ray", "10.0.0.1:6379", "--workers", "3", "--ray-gpus-per-worker", "0.5"], capsys)
    assert code == 0, err
    assert made == [{"address": "10.0.0.1:6379", "workers": 3, "gpus": 0.5, "closed": True}]
    assert "1 segment(s)" in stdout

    def missing_ray(*args, **kwargs):
        raise UsageError("--ray needs Ray: pip install 'impasto[ray]'")

    backend.RayExecutor = missing_ray
    code, _, err = run_cli(["video", frames, "-o", tmp_path / "o.mp4", "--style", style, "--ray", "auto"], capsys)
    assert_one_line_error(code, err, 2, "pip install 'impasto[ray]'")


def test_cli_segment_options_need_segments(tmp_path, clip, image_files, capsys):
    _, style = image_files
    frames = _frames(tmp_path / "frames", clip, 2)
    base = ["video", frames, "-o", tmp_path / "o.mp4", "--style", style, *QUICK]
    code, _, err = run_cli([*base, "--workers", "2"], capsys)
    assert_one_line_error(code, err, 2, "--workers", "--segments or --ray")
    code, _, err = run_cli([*base, "--segment-frames", "4"], capsys)
    assert_one_line_error(code, err, 2, "--segment-frames", "--segments or --ray")
    code, _, err = run_cli([*base, "--segments", "--ray-gpus-per-worker", "1"], capsys)
    assert_one_line_error(code, err, 2, "--ray-gpus-per-worker")
    assert not (tmp_path / "o.mp4").exists()
