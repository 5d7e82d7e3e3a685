"""The Ray backend on a local cluster started here (127.0.0.1, no dashboard, two CPUs)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from impasto import cli
from impasto.recipe import Recipe
from impasto.scale.batch import BatchRunner
from impasto.scale.jobs import plan_jobs
from impasto.scale.ledger import RESULTS_NAME

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'impasto[ray]')")

RECIPE = Recipe.from_preset("fast", max_size=48, min_size=None, steps=2, seed=11, device="cpu")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One local Ray cluster for this module; its workers import this folder's helpers."""
    marker = tmp_path_factory.mktemp("ray") / "died"
    tests = str(Path(__file__).parent)
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "IMPASTO_TEST_DIE_MARKER")}
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [tests, saved["PYTHONPATH"]]))
    os.environ["IMPASTO_TEST_DIE_MARKER"] = str(marker)
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
             configure_logging=False)
    yield marker
    ray.shutdown()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def inputs(tmp_path, astronaut_small, stripes_style):
    photos = []
    for i in range(3):
        path = tmp_path / f"p{i}.png"
        Image.fromarray((np.roll(astronaut_small[:64, :64], 9 * i, axis=0) * 255).astype(np.uint8)).save(path)
        photos.append(str(path))
    style = tmp_path / "style.png"
    Image.fromarray((stripes_style * 255).astype(np.uint8)).save(style)
    return photos, str(style)


def _pixels(path):
    return np.asarray(Image.open(path), np.int16)


def test_a_ray_batch_paints_what_a_local_batch_paints(cluster, inputs, tmp_path, capsys):
    photos, style = inputs
    jobs = plan_jobs(photos, [style], RECIPE)
    BatchRunner(jobs, tmp_path / "local").run()
    code = cli.main(["batch", *photos, "--style", style, "-o", str(tmp_path / "ray"), "--ray", "auto",
                     "--workers", "2", "--preset", "fast", "--max-size", "48", "--min-size", "48", "--steps", "2",
                     "--seed", "11", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    for job in jobs:
        difference = np.abs(_pixels(tmp_path / "local" / job.output) - _pixels(tmp_path / "ray" / job.output))
        assert difference.max() <= 2  # one torch thread per worker may round differently, nothing more
    assert ray.is_initialized()  # a cluster it joined is left running


def test_a_worker_that_dies_has_its_job_retried_and_every_output_appears_once(cluster, inputs, tmp_path):
    from ray_faults import die_once_then_paint

    from impasto.scale.ray_backend import RayExecutor

    photos, style = inputs
    jobs = plan_jobs(photos, [style], RECIPE)
    with RayExecutor("auto", workers=2, threads_per_worker=1) as executor:
        summary = BatchRunner(jobs, tmp_path / "out", executor=executor, fn=die_once_then_paint).run()
    assert cluster.exists()  # a worker did die
    assert (summary.done, summary.failed) == (3, 0)
    lines = [json.loads(line) for line in (tmp_path / "out" / RESULTS_NAME).read_text().splitlines()]
    assert sorted(line["output"] for line in lines) == sorted(job.output for job in jobs)  # once each
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == sorted(job.output for job in jobs)


def test_without_ray_the_flag_says_how_to_install_it(inputs, tmp_path, capsys, monkeypatch):
    photos, style = inputs
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    code = cli.main(["batch", photos[0], "--style", style, "-o", str(tmp_path / "o"), "--ray", "auto"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "pip install 'impasto[ray]'" in err


def test_ctrl_c_cancels_the_clusters_work_and_removes_this_runs_workers(cluster, inputs, tmp_path):
    import time

    from impasto.scale.ray_backend import RayExecutor

    photos, style = inputs
    jobs = plan_jobs(photos, [style], RECIPE.replace(steps=30))
    executor = RayExecutor("auto", workers=2, threads_per_worker=1)
    pids = []

    def interrupt_at_the_first_picture(event):
        pids.extend(executor.worker_pids())
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        try:
            BatchRunner(jobs, tmp_path / "out", executor=executor, on_event=interrupt_at_the_first_picture).run()
        finally:
            executor.close()
    assert len(pids) == 2 and ray.is_initialized()  # the cluster it joined keeps running
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in pids)
    assert all(p.suffix in (".png", ".json", ".jsonl") for p in (tmp_path / "out").iterdir())  # nothing partial


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_video_in_segments_on_ray_matches_the_local_segments(cluster, tmp_path):
    from skimage import data

    from impasto.scale.executor import LocalExecutor
    from impasto.scale.ray_backend import RayExecutor
    from impasto.texture import brush_strokes
    from impasto.video import stylize_video

    frames = tmp_path / "frames"
    frames.mkdir()
    photo = np.asarray(Image.fromarray(data.astronaut()).resize((128, 128)), np.uint8)
    for t in range(8):
        Image.fromarray(photo[8 + t:8 + t + 48, 8 + 2 * t:8 + 2 * t + 48]).save(frames / f"{t + 1}.png")
    style = brush_strokes((96, 96), seed=0)
    recipe = Recipe.from_preset("fast", max_size=48, min_size=None, steps=2, later_steps=1, seed=0, device="cpu")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each Ray worker: the same arithmetic, so the same pixels
    try:
        local = stylize_video(frames, tmp_path / "local", style, recipe, executor=LocalExecutor(), segment_frames=4)
    finally:
        torch.set_num_threads(threads)
    with RayExecutor("auto", workers=2, threads_per_worker=1) as executor:
        remote = stylize_video(frames, tmp_path / "ray", style, recipe, executor=executor, segment_frames=4)
    assert local.frames == remote.frames == 8 and remote.segments == 2
    for name in sorted(p.name for p in (tmp_path / "local").glob("*.png")):
        assert np.abs(_pixels(tmp_path / "local" / name) - _pixels(tmp_path / "ray" / name)).max() <= 1
