"""impasto batch: inputs, manifests, one network for many photos, resuming, failures recorded."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from impasto import cli
from impasto.errors import UsageError
from impasto.optimize import Stylizer
from impasto.recipe import Recipe
from impasto.scale.batch import BatchRunner
from impasto.scale.executor import LocalExecutor
from impasto.scale.jobs import expand_inputs, plan_jobs, read_manifest
from impasto.scale.ledger import RESULTS_NAME

QUICK = ["--preset", "fast", "--max-size", "48", "--min-size", "48", "--steps", "2", "--seed", "5",
         "--device", "cpu"]
RECIPE = Recipe.from_preset("fast", max_size=48, min_size=None, steps=2, seed=5, device="cpu")


@pytest.fixture
def photos(tmp_path, astronaut_small, stripes_style):
    """Six 64x64 photos (one of them corrupt) in nested folders, a style, and a stray text file."""
    folder = tmp_path / "photos"
    (folder / "more").mkdir(parents=True)
    rgb = (astronaut_small[:64, :64] * 255).astype(np.uint8)
    names = ["2.png", "10.png", "1.jpg", "more/3.png", "more/20.png"]
    for shift, name in enumerate(names):
        Image.fromarray(np.roll(rgb, 7 * shift, axis=1)).save(folder / name)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "notes.txt").write_text("not an image")
    style = tmp_path / "style.png"
    Image.fromarray((stripes_style * 255).astype(np.uint8)).save(style)
    return folder, style


def _results(folder):
    return [json.loads(line) for line in (folder / RESULTS_NAME).read_text().splitlines()]


def _pictures(folder):
    return sorted(p.name for p in folder.iterdir() if p.suffix == ".png")


def test_inputs_from_folders_globs_and_files_in_natural_order(photos):
    folder, style = photos
    found = expand_inputs([str(folder)])
    assert [p.split("photos/")[1] for p in found] == ["1.jpg", "2.png", "10.png", "broken.png", "more/3.png",
                                                     "more/20.png"]  # no notes.txt
    assert expand_inputs([str(folder / "more" / "*.png"), str(folder / "1.jpg"), str(folder / "more/3.png")]) == [
        str(folder / "more/3.png"), str(folder / "more/20.png"), str(folder / "1.jpg")]
    with pytest.raises(UsageError, match="no such file"):
        expand_inputs([str(folder / "missing.jpg")])
    with pytest.raises(UsageError, match="matches no image"):
        expand_inputs([str(folder / "*.gif")])


def test_output_names_say_photo_and_style(tmp_path):
    jobs = plan_jobs(["a/x.jpg", "b/x.jpg", "c/y.png"], ["s/starry.jpg", "s/scream.png"], RECIPE, each_style=True)
    assert [j.output for j in jobs] == ["a_x__starry.png", "a_x__scream.png", "b_x__starry.png", "b_x__scream.png",
                                        "y__starry.png", "y__scream.png"]
    blended = plan_jobs(["c/y.png"], ["s/starry.jpg", "s/scream.png"], RECIPE, style_blend=(0.7, 0.3),
                        extension=".jpg")
    assert blended[0].output == "y__starry+scream.jpg" and blended[0].style_blend == (0.7, 0.3)


def test_manifest_rows_override_the_command_line(tmp_path):
    (tmp_path / "jobs.csv").write_text("content,styles,output,max_size,style_weight,preserve_color\n"
                                       "p/a.jpg,s1.jpg;s2.jpg,first.png,64,,\n"
                                       "p/b.jpg,s1.jpg,,,3.5,luminance\n")
    first, second = read_manifest(tmp_path / "jobs.csv", RECIPE)
    assert first.content == str(tmp_path / "p/a.jpg") and first.styles == (str(tmp_path / "s1.jpg"),
                                                                            str(tmp_path / "s2.jpg"))
    assert first.output == "first.png" and first.recipe.max_size == 64
    assert first.recipe.style_weight == RECIPE.style_weight
    assert second.output == "b__s1.png" and second.recipe.style_weight == 3.5
    assert second.recipe.preserve_color == "luminance" and second.recipe.max_size == 48
    (tmp_path / "jobs.jsonl").write_text(json.dumps({"content": "a.jpg", "styles": ["s.jpg"], "max-size": 40,
                                                     "style_layers": ["relu1_1", "relu2_1"]}) + "\n")
    (row,) = read_manifest(tmp_path / "jobs.jsonl", RECIPE)
    assert row.recipe.max_size == 40 and row.recipe.style_layers == ("relu1_1", "relu2_1")
    (tmp_path / "bad.csv").write_text("content,styles,colour\na.jpg,s.jpg,red\n")
    with pytest.raises(UsageError, match="line 2: unknown column.*colour"):
        read_manifest(tmp_path / "bad.csv", RECIPE)
    (tmp_path / "range.csv").write_text("content,styles,max_size\na.jpg,s.jpg,5\n")
    with pytest.raises(UsageError, match="line 2: max_size"):
        read_manifest(tmp_path / "range.csv", RECIPE)


def test_a_corrupt_photo_is_recorded_and_the_batch_goes_on(photos, tmp_path, capsys):
    folder, style = photos
    out = tmp_path / "out"
    code = cli.main(["batch", str(folder), "--style", str(style), "-o", str(out), *QUICK])
    captured = capsys.readouterr()
    assert code == 1  # a job failed
    assert "5 painted, 1 failed, 0 skipped" in captured.out
    assert "broken.png" in captured.err and "Traceback" not in captured.err
    assert _pictures(out) == ["10__style.png", "1__style.png", "20__style.png", "2__style.png", "3__style.png"]
    failed = [r for r in _results(out) if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["input"].endswith("broken.png")
    assert "broken.png" in failed[0]["error"] and "\n" not in failed[0]["error"]
    assert all(r["recipe_hash"] for r in _results(out) if r["status"] == "done")


def test_style_statistics_are_computed_once_for_the_whole_batch(photos, tmp_path):
    folder, style = photos
    jobs = plan_jobs(expand_inputs([str(folder / "more"), str(folder / "2.png")]), [str(style)], RECIPE)
    stylizer = Stylizer()
    summary = BatchRunner(jobs, tmp_path / "out", executor=LocalExecutor(stylizer)).run()
    assert summary.done == 3
    assert stylizer.statistics.computed == 1 and stylizer.statistics.reused == 2  # one style, one scale, one size


def test_resume_redoes_only_what_is_missing_or_changed(photos, tmp_path):
    folder, style = photos
    jobs = plan_jobs(expand_inputs([str(folder / "more"), str(folder / "2.png"), str(folder / "10.png")]),
                     [str(style)], RECIPE)
    out = tmp_path / "out"
    finished = []

    def interrupt_after_two(event):
        if event.status == "done":
            finished.append(event.job.output)
            if len(finished) == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        BatchRunner(jobs, out, on_event=interrupt_after_two).run()
    assert _pictures(out) == sorted(finished)
    again = BatchRunner(jobs, out).run()
    assert (again.skipped, again.done, again.failed) == (2, 2, 0)
    stronger = [job.__class__(job.content, job.styles, job.output, job.recipe.replace(style_weight=50.0))
                for job in jobs[:1]]
    changed = BatchRunner(stronger, out).run()
    assert changed.done == 1 and changed.skipped == 0  # another recipe: painted again


def test_ctrl_c_in_a_job_leaves_no_partial_file(photos, tmp_path):
    folder, style = photos
    jobs = plan_jobs([str(folder / "2.png"), str(folder / "10.png")], [str(style)], RECIPE)
    out = tmp_path / "out"

    def interrupt_second_job(event):
        if event.status == "step" and event.job.output.startswith("10__") and event.progress.step == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        BatchRunner(jobs, out, on_event=interrupt_second_job).run()
    assert sorted(p.name for p in out.iterdir()) == ["2__style.png", "2__style.png.json", RESULTS_NAME]


def test_cli_each_style_manifest_and_summary(photos, tmp_path, capsys, stripes_style):
    folder, style = photos
    other = tmp_path / "other.png"
    Image.fromarray((stripes_style[::-1] * 255).astype(np.uint8)).save(other)
    out = tmp_path / "out"
    code = cli.main(["batch", str(folder / "2.png"), str(folder / "1.jpg"), "--style", str(style), str(other),
                     "--each-style", "-o", str(out), *QUICK])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert _pictures(out) == ["1__other.png", "1__style.png", "2__other.png", "2__style.png"]
    assert "4 painted, 0 failed, 0 skipped" in captured.out
    code = cli.main(["batch", str(folder / "2.png"), str(folder / "1.jpg"), "--style", str(style), str(other),
                     "--each-style", "-o", str(out), *QUICK, "--json-log"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0 and [line["status"] for line in lines[:-1]] == ["skipped"] * 4
    assert lines[-1]["event"] == "summary" and lines[-1]["skipped"] == 4
    manifest = tmp_path / "jobs.csv"
    manifest.write_text(f"content,styles,output,max_size\n{folder / '2.png'},{style},big.png,64\n")
    assert cli.main(["batch", "--manifest", str(manifest), "-o", str(out), *QUICK]) == 0
    assert Image.open(out / "big.png").size == (64, 64)
    code = cli.main(["batch", "-o", str(out), *QUICK])
    assert code == 2 and "no INPUT" in capsys.readouterr().err


def test_worker_processes_paint_the_same_pictures(photos, tmp_path):
    folder, style = photos
    from impasto.scale.processes import ProcessExecutor

    jobs = plan_jobs([str(folder / "2.png"), str(folder / "10.png")], [str(style)], RECIPE)
    local = BatchRunner(jobs, tmp_path / "local").run()
    with ProcessExecutor(2, threads=1) as executor:
        pooled = BatchRunner(jobs, tmp_path / "pooled", executor=executor).run()
        assert executor._workers is not None  # kept for a later map, until closed
    assert executor._workers is None
    assert local.done == pooled.done == 2
    for job in jobs:
        a = np.asarray(Image.open(tmp_path / "local" / job.output), np.int16)
        b = np.asarray(Image.open(tmp_path / "pooled" / job.output), np.int16)
        assert np.abs(a - b).max() <= 2  # other thread counts may round differently, nothing more


def test_a_batch_output_reruns_to_the_same_pixels(photos, tmp_path, capsys):
    folder, style = photos
    out = tmp_path / "out"
    assert cli.main(["batch", str(folder / "2.png"), "--style", str(style), "-o", str(out), *QUICK]) == 0
    again = tmp_path / "again.png"
    assert cli.main(["rerun", str(out / "2__style.png"), "-o", str(again), "--quiet"]) == 0, capsys.readouterr().err
    assert np.array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(out / "2__style.png")))
