"""A video painted by a trained model: one pass per frame, the temporal blend, refused options, the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_cli import assert_one_line_error, run_cli
from test_video import FPS, SIZE, synthetic_clip, write_frames, write_video

from impasto import flow
from impasto.cancel import CancelToken
from impasto.errors import UsageError
from impasto.feedforward.model import Model, ModelInfo, load_model, save_model
from impasto.feedforward.network import Architecture, TransformNet
from impasto.recipe import Recipe
from impasto.video import FrameCache, ModelVideoOptions, probe, read_frames, stylize_video_with_model
from impasto.video.modelvideo import blend_frame

TINY = Architecture(width=4, blocks=1)


def tiny_net(seed: int = 0) -> TransformNet:
    """Random weights and random normalization scales and shifts: a painting that is not the photo."""
    torch.manual_seed(seed)
    net = TransformNet(TINY)
    for norm in net.norms:
        norm.weight.data.uniform_(0.5, 1.5)
        norm.bias.data.uniform_(-0.5, 0.5)
    return net.eval()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.impasto"
    info = ModelInfo(architecture=TINY, recipe=Recipe.from_preset("fast"), style_name="stripes.png",
                     style_sha256="ab" * 32, size=64, steps=40)
    save_model(path, tiny_net(), info)
    return path


@pytest.fixture(scope="module")
def model(model_file) -> Model:
    return load_model(model_file, device="cpu")


@pytest.fixture(scope="module")
def clip():
    return synthetic_clip()


@pytest.fixture(scope="module")
def source_video(tmp_path_factory, clip):
    return write_video(tmp_path_factory.mktemp("src") / "clip.mp4", clip)


@pytest.fixture(scope="module")
def source_frames(tmp_path_factory, clip):
    return write_frames(tmp_path_factory.mktemp("frames") / "in", clip)


def painted_frames(folder, count: int) -> list[np.ndarray]:
    return [FrameCache(folder).load(i) for i in range(1, count + 1)]


def test_every_frame_is_painted_with_the_sources_frame_count_size_rate_and_audio(tmp_path, source_video, model):
    out = tmp_path / "painted.mp4"
    progress = []
    result = stylize_video_with_model(source_video, out, model, Recipe(device="cpu"), on_frame=progress.append)
    assert result.output == out and not result.cancelled and not result.partial
    assert (result.frames, result.computed, result.reused, result.size, result.audio) == (16, 16, 0, (SIZE, SIZE), True)
    assert result.flicker is None  # no blend: no flow computed
    info = probe(out)
    assert (info.frames, info.fps, info.audio) == (16, FPS, True)
    assert next(read_frames(info)).shape == (SIZE, SIZE, 3)
    assert [p.index for p in progress] == list(range(1, 17)) and all(p.steps == 1 for p in progress)
    assert progress[-1].eta == 0 and all(p.eta is not None for p in progress)
    assert not result.cache_dir.exists()  # a whole video's cache goes once the video is written


def test_each_frame_is_the_models_painting_of_it(tmp_path, source_video, model):
    result = stylize_video_with_model(source_video, tmp_path / "out", model, max_frames=3)
    for index, frame in enumerate(read_frames(probe(source_video)), start=1):
        if index > 3:
            break
        expected = model.paint(frame)
        assert np.abs(FrameCache(result.cache_dir).load(index) - expected).max() <= 0.5 / 255 + 1e-6


def test_blend_lowers_flicker(tmp_path, source_frames, clip, model):
    plain = stylize_video_with_model(source_frames, tmp_path / "plain", model, fps=FPS)
    assert plain.flicker is None and plain.warping_errors == []
    blended = stylize_video_with_model(source_frames, tmp_path / "blended", model, fps=FPS, blend=0.5)
    assert len(blended.warping_errors) == 15 and blended.flicker is not None
    measured = {name: flow.flicker(painted_frames(tmp_path / name, 16), clip) for name in ("plain", "blended")}
    assert measured["blended"] < 0.6 * measured["plain"], measured
    assert blended.flicker == pytest.approx(measured["blended"], rel=0.2)  # the run measures what flicker() does
    first = painted_frames(tmp_path / "plain", 1)[0]
    assert np.array_equal(first, painted_frames(tmp_path / "blended", 1)[0])  # nothing to blend with yet


def test_blend_takes_the_fresh_painting_where_the_flow_is_not_trusted():
    painted, previous = np.full((8, 8, 3), 0.2, np.float32), np.full((8, 8, 3), 0.8, np.float32)
    mask = np.zeros((8, 8), np.float32)
    mask[:, 4:] = 1
    out = blend_frame(painted, previous, np.zeros((8, 8, 2), np.float32), mask, 0.5)
    assert np.allclose(out[:, :4], 0.2) and np.allclose(out[:, 4:], 0.5)


def test_a_preview_then_the_rest_paints_what_one_run_paints(tmp_path, source_frames, model):
    whole = stylize_video_with_model(source_frames, tmp_path / "whole", model, fps=FPS, blend=0.5)
    preview = stylize_video_with_model(source_frames, tmp_path / "two", model, fps=FPS, blend=0.5, max_frames=5)
    assert preview.partial and preview.frames == 5
    messages = []
    rest = stylize_video_with_model(source_frames, tmp_path / "two", model, fps=FPS, blend=0.5,
                                    on_message=messages.append)
    assert (rest.frames, rest.computed, rest.reused) == (16, 11, 5)
    assert any("resuming: 5" in m for m in messages)
    assert all(np.array_equal(a, b) for a, b in
               zip(painted_frames(tmp_path / "whole", 16), painted_frames(tmp_path / "two", 16), strict=True))
    assert whole.frames == 16
    other = stylize_video_with_model(source_frames, tmp_path / "two", model, fps=FPS, blend=0.25,
                                     on_message=messages.append, overwrite=True)
    assert other.computed == 16  # other settings: the cached frames are not reused
    assert any("other settings" in m for m in messages)


def test_cancel_keeps_the_finished_frames(tmp_path, source_video, model):
    token = CancelToken()

    def stop_after_three(progress):
        if progress.index == 3:
            token.cancel()

    out = tmp_path / "painted.mp4"
    result = stylize_video_with_model(source_video, out, model, cancel=token, on_frame=stop_after_three)
    assert result.cancelled and result.output is None and result.frames == 3 and not out.exists()
    assert FrameCache(result.cache_dir).completed() == 3


def test_size_and_colour_options(tmp_path, source_frames, model):
    recipe = Recipe(device="cpu", max_size=32, preserve_color="luminance")
    small = stylize_video_with_model(source_frames, tmp_path / "small", model, recipe, fps=FPS, shrink=True,
                                     max_frames=2)
    assert small.size == (32, 32)
    kept = stylize_video_with_model(source_frames, tmp_path / "kept", model, recipe, fps=FPS, max_frames=2)
    assert kept.size == (SIZE, SIZE)  # a model paints at the frames' own size unless asked to shrink


@pytest.mark.parametrize("changes, fragment", [
    ({"blend": 1.5}, "blend: 1.5 must be a number from 0"),
    ({"blend": float("nan")}, "blend"),
    ({"flow_method": "magic"}, "unknown 'magic'"),
    ({"max_frames": 0}, "max_frames"),
])
def test_the_api_refuses_bad_options(tmp_path, source_video, model, changes, fragment):
    with pytest.raises(UsageError, match=fragment.replace("(", r"\(")):
        stylize_video_with_model(source_video, tmp_path / "out.mp4", model, options=ModelVideoOptions(**changes))
    assert not (tmp_path / "out.mp4").exists()


def test_cli_paints_a_video_with_a_model(tmp_path, source_video, model_file, capsys):
    out = tmp_path / "painted.mp4"
    code, stdout, err = run_cli(["video", source_video, "-o", out, "--model", model_file, "--blend", "0.5",
                                 "--max-size", "48", "--device", "cpu", "--json-log"], capsys)
    assert code == 0, err
    info = probe(out)
    assert (info.frames, info.fps, info.audio) == (16, FPS, True)
    assert next(read_frames(info)).shape == (48, 48, 3)
    assert '"event": "done"' in stdout and '"flicker"' in stdout and '"event": "frame"' in stdout
    code, _, err = run_cli(["video", source_video, "-o", out, "--model", model_file], capsys)
    assert_one_line_error(code, err, 2, "already exists")


@pytest.mark.parametrize("extra, fragments", [
    (["--model", "{model}", "--style", "s.jpg"], ["give no --style", "'s.jpg'"]),
    (["--model", "{model}", "--steps", "3", "--style-weight", "2", "--segments"],
     ["--style-weight", "--steps", "--segments", "not used with --model"]),
    (["--model", "{model}", "--temporal-weight", "5", "--no-temporal"], ["--temporal-weight", "--no-temporal"]),
    (["--model", "{model}", "--blend", "2"], ["--blend: 2.0 must be a number from 0"]),
    (["--style", "s.jpg", "--blend", "0.5"], ["--blend: applies to --model only"]),
    ([], ["needs --style STYLE (or --model PATH)"]),
])
def test_cli_refuses_what_does_not_apply_in_one_line(tmp_path, source_video, model_file, capsys, extra, fragments):
    args = ["video", source_video, "-o", tmp_path / "out.mp4", *[a.format(model=model_file) for a in extra]]
    code, _, err = run_cli(args, capsys)
    assert_one_line_error(code, err, 2, *fragments)
    assert not (tmp_path / "out.mp4").exists()
