"""The web studio's trained models (``impasto serve --models DIR``), through FastAPI's TestClient.

Every model here is a tiny network with random weights (no training): what is tested is the
listing, the checks on what a client names and sends, and the job that paints with a model.
The studio's Stylizer refuses to load VGG19 weights and blocks until cancelled, so a model job
that finishes proves it needed no network, and an optimization job holds the queue on demand.
"""

from __future__ import annotations

import hashlib
import io
import time

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi", reason="the web extra (fastapi) is not installed")
pytest.importorskip("httpx2", reason="httpx2 (for the TestClient) is not installed")

from fastapi.testclient import TestClient
from test_web import _strings as strings
from test_web import events, open_page, png, upload, wait_for

from impasto import cli
from impasto.errors import ImpastoError, UsageError, WeightsError
from impasto.feedforward import Architecture, ModelInfo, TransformNet, save_model
from impasto.feedforward.picture import MODEL_FIELDS
from impasto.images import read_metadata
from impasto.optimize.engine import Stylizer
from impasto.recipe import Recipe
from impasto.web import create_app
from impasto.web import jobs as web_jobs
from impasto.web.settings import MODEL_SETTINGS

LOCAL = "http://127.0.0.1:8000"
TINY = Architecture(width=4, blocks=1)


def save_tiny_model(path, style_name: str, *, size: int = 64, steps: int = 40, seed: int = 0) -> None:
    torch.manual_seed(seed)
    info = ModelInfo(architecture=TINY, recipe=Recipe.from_preset("fast"), style_name=style_name,
                     style_sha256="ab" * 32, size=size, steps=steps)
    save_model(path, TransformNet(TINY).eval(), info)


class NoNetwork(Stylizer):
    """A Stylizer without VGG19 weights whose runs wait until they are cancelled."""

    def weights(self, recipe=None):
        raise WeightsError("no VGG19 weights in this test")

    def run(self, content, styles, *, cancel=None, **kwargs):
        deadline = time.monotonic() + 30
        while not (cancel is not None and cancel.cancelled) and time.monotonic() < deadline:
            time.sleep(0.02)
        raise ImpastoError("stopped")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """Two models, a file wearing a model's name, and a file that is not one at all."""
    folder = tmp_path_factory.mktemp("models")
    save_tiny_model(folder / "starry.impasto", "starry_night.jpg", size=256, steps=1200)
    save_tiny_model(folder / "scream.impasto", "the_scream.jpg", size=192, steps=800, seed=1)
    (folder / "junk.impasto").write_text("not a model\n")
    (folder / "notes.txt").write_text("a file that is not listed\n")
    return folder


@pytest.fixture(scope="module")
def client(models_dir):
    app = create_app(models=models_dir, max_upload_mb=1, max_pixels=2_000_000, max_output=1024,
                     stylizer_factory=NoNetwork, preview_interval=0.0)
    with TestClient(app, base_url=LOCAL) as c:
        yield open_page(c)


@pytest.fixture(scope="module")
def photo(client, astronaut_small):
    image = (astronaut_small[:, :80] * 255).astype(np.uint8)  # 80 wide, 96 high: not square
    return upload(client, png(image), "content", "photo.png").json()


def start(client, body):
    return client.post("/api/jobs", json=body)


# -- the list ----------------------------------------------------------------------------------------
def test_models_are_listed_with_style_size_and_steps(client, models_dir):
    assert client.get("/api/info").json()["models"] is True
    listing = client.get("/api/models")
    assert listing.status_code == 200 and listing.headers["content-type"] == "application/json"
    body = listing.json()
    assert body["enabled"] is True
    models = {m["name"]: m for m in body["models"]}
    assert list(models) == ["junk.impasto", "scream.impasto", "starry.impasto"]  # notes.txt is no model
    starry = models["starry.impasto"]
    assert (starry["usable"], starry["style"], starry["size"], starry["steps"]) == (True, "starry_night.jpg", 256, 1200)
    assert starry["architecture"] == {"width": 4, "blocks": 1}
    assert (models["scream.impasto"]["style"], models["scream.impasto"]["steps"]) == ("the_scream.jpg", 800)
    junk = models["junk.impasto"]
    assert junk["usable"] is False and "not an impasto model" in junk["error"] and "\n" not in junk["error"]
    assert "junk.impasto" in junk["error"]
    # Named by file name only: nothing of the server's folder reaches the client.
    assert str(models_dir) not in listing.text


def test_the_list_is_read_when_asked(tmp_path):
    folder = tmp_path / "shelf"
    folder.mkdir()
    app = create_app(models=folder, no_token=True)
    local = TestClient(app, base_url=LOCAL)
    assert local.get("/api/models").json() == {"enabled": True, "models": []}
    save_tiny_model(folder / "new.impasto", "new.jpg")
    assert [m["name"] for m in local.get("/api/models").json()["models"]] == ["new.impasto"]
    save_tiny_model(folder / "new.impasto", "replaced.jpg", steps=99)  # the same name, a new file
    assert local.get("/api/models").json()["models"][0]["style"] == "replaced.jpg"
    (folder / "new.impasto").unlink()
    assert local.get("/api/models").json()["models"] == []


def test_the_list_needs_the_token(models_dir):
    app = create_app(models=models_dir)
    plain = TestClient(app, base_url=LOCAL)
    assert plain.get("/api/models").status_code == 401
    assert plain.get("/api/models", headers={"Authorization": f"Bearer {app.state.token}"}).status_code == 200


# -- painting ----------------------------------------------------------------------------------------
def test_painting_with_a_model(client, photo, models_dir):
    started = start(client, {"content": photo["id"], "model": "starry.impasto",
                             "settings": {"max_size": 512, "preserve_color": "none"}})
    assert started.status_code == 201, started.text
    seen = events(client, started.json()["id"])
    assert seen[-1]["state"] == "done", seen[-1]
    assert {e["state"] for e in seen} <= {"queued", "running", "done"}
    assert (seen[-1]["step"], seen[-1]["total_steps"]) == (1, 1)
    result = seen[-1]["result"]
    assert (result["width"], result["height"]) == (80, 96)  # the photo's size: it is smaller than max_size
    assert result["model"] == "starry.impasto" and result["steps"] == 1
    assert result["inputs"]["styles"] == [] and result["inputs"]["model"]["style"] == "starry_night.jpg"

    download = client.get(result["image"])
    assert download.status_code == 200 and download.headers["content-type"] == "image/png"
    assert 'filename="impasto-model-starry-' in download.headers["content-disposition"]
    assert Image.open(io.BytesIO(download.content)).size == (80, 96)
    metadata = read_metadata(io.BytesIO(download.content))
    assert metadata["model"]["sha256"] == hashlib.sha256((models_dir / "starry.impasto").read_bytes()).hexdigest()
    assert metadata["model"]["path"] == "starry.impasto"
    assert metadata["model"]["info"]["style_name"] == "starry_night.jpg"
    assert metadata["painting"]["max_size"] == 512 and metadata["painting"]["preserve_color"] == "none"
    assert metadata["content"]["path"] == "photo.png" and len(metadata["content"]["sha256"]) == 64
    assert metadata["studio"]["settings"] == {"model": "starry.impasto", "max_size": 512, "preserve_color": "none",
                                              "color_transfer": "symmetric"}
    assert "recipe" not in metadata  # a model's picture, not an optimization's
    assert not [text for text in strings(metadata) if str(models_dir) in text or text.startswith("/")]
    assert client.get(result["recipe_url"]).json() == metadata
    assert result["id"] in [r["id"] for r in client.get("/api/results").json()["results"]]


def test_model_options_apply_and_the_model_is_loaded_once(client, photo, models_dir, monkeypatch):
    loads = []
    real = web_jobs.load_model

    def counting(path, **kwargs):
        loads.append(path)
        return real(path, **kwargs)

    monkeypatch.setattr(web_jobs, "load_model", counting)

    def paint(settings) -> dict:
        job = start(client, {"content": photo["id"], "model": "scream.impasto", "settings": settings})
        assert job.status_code == 201, job.text
        final = events(client, job.json()["id"])[-1]
        assert final["state"] == "done", final
        return final["result"]

    small = paint({"max_size": 64, "preserve_color": "histogram", "color_transfer": "pca"})
    assert max(small["width"], small["height"]) == 64
    painting = client.get(small["recipe_url"]).json()["painting"]
    assert (painting["preserve_color"], painting["color_transfer"], painting["max_size"]) == ("histogram", "pca", 64)
    plain = paint({"max_size": 64})
    assert plain["settings"]["preserve_color"] == "none"
    assert len(loads) == 1  # kept in memory between jobs
    save_tiny_model(models_dir / "scream.impasto", "the_scream.jpg", size=192, steps=800, seed=2)  # a new version
    paint({"max_size": 64})
    assert len(loads) == 2


def test_model_jobs_share_the_queue_and_can_be_cancelled(client, photo, astronaut_small):
    style = upload(client, png((astronaut_small * 255).astype(np.uint8)), "style", "style.png").json()
    blocking = start(client, {"content": photo["id"], "styles": [style["id"]], "settings": {"preset": "fast"}}).json()
    wait_for(client, blocking["id"], lambda j: j["state"] == "running")
    queued = start(client, {"content": photo["id"], "model": "starry.impasto", "settings": {"max_size": 64}})
    assert queued.status_code == 201, queued.text
    waiting = client.get(f"/api/jobs/{queued.json()['id']}").json()
    assert (waiting["state"], waiting["position"], waiting["ahead"]) == ("queued", 1, 1)
    assert client.post(f"/api/jobs/{waiting['id']}/cancel").json()["state"] == "cancelled"
    client.post(f"/api/jobs/{blocking['id']}/cancel")
    assert wait_for(client, blocking["id"], lambda j: j["state"] not in ("queued", "running"))["state"] == "cancelled"
    after = start(client, {"content": photo["id"], "model": "starry.impasto", "settings": {"max_size": 64}}).json()
    assert wait_for(client, after["id"], lambda j: j["state"] not in ("queued", "running"))["state"] == "done"


def test_a_model_whose_weights_are_corrupt_fails_in_one_line(tmp_path, astronaut_small):
    folder = tmp_path / "shelf"
    folder.mkdir()
    save_tiny_model(folder / "flipped.impasto", "flipped.jpg")
    data = bytearray((folder / "flipped.impasto").read_bytes())
    data[-1] ^= 0xFF  # the header is intact, so the list cannot tell; loading the weights can
    (folder / "flipped.impasto").write_bytes(bytes(data))
    with TestClient(create_app(models=folder, stylizer_factory=NoNetwork), base_url=LOCAL) as raw:
        local = open_page(raw)
        assert local.get("/api/models").json()["models"][0]["usable"] is True
        content = upload(local, png((astronaut_small * 255).astype(np.uint8))).json()
        job = start(local, {"content": content["id"], "model": "flipped.impasto", "settings": {}}).json()
        final = events(local, job["id"])[-1]
    assert final["state"] == "failed" and final["result"] is None
    assert final["error"].startswith("model 'flipped.impasto': corrupt") and str(folder) not in final["error"]


# -- what is refused ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name, status, words", [
    ("../starry.impasto", 422, "not a model name"),
    ("sub/../starry.impasto", 422, "not a model name"),
    ("..\\starry.impasto", 422, "not a model name"),
    ("/etc/passwd", 422, "not a model name"),
    ("notes.txt", 422, "not a model name"),
    ("..", 422, "not a model name"),
    ("", 422, "expected the name"),
    (7, 422, "expected the name"),
    ("unknown.impasto", 404, "no such model"),
    ("junk.impasto", 422, "not an impasto model"),
])
def test_a_model_is_named_only_as_the_server_listed_it(client, photo, name, status, words):
    response = start(client, {"content": photo["id"], "model": name, "settings": {}})
    assert response.status_code == status, response.text
    assert words in response.json()["error"]


def test_an_absolute_path_to_a_real_model_is_refused(client, photo, models_dir):
    response = start(client, {"content": photo["id"], "model": str(models_dir / "starry.impasto"), "settings": {}})
    assert response.status_code == 422 and "not a model name" in response.json()["error"]


@pytest.mark.parametrize("extra, words", [
    ({"settings": {"style_weight": 2}}, "Style strength (style_weight): not used with a model"),
    ({"settings": {"preset": "fast", "steps": 5}}, "Preset (preset), Steps (steps): not used with a model"),
    ({"settings": {"seed": 3}}, "Seed (seed): not used with a model"),
    ({"settings": {"style_scale": 2}}, "Style scale (style_scale)"),
    ({"settings": {"tile_size": 256}}, "unknown setting"),
    ({"settings": {"max_size": 5000}}, "this server's limit"),
    ({"settings": {"max_size": 10}}, "Output size (max_size)"),
    ({"settings": {"preserve_color": "sepia"}}, "Colours (preserve_color)"),
    ({"settings": {"color_transfer": "magic"}}, "Colour transfer (color_transfer)"),
    ({"settings": "big"}, "settings: expected a JSON object"),
    ({"styles": ["whatever"]}, "styles: a model paints in the style it was trained on"),
    ({"masks": ["whatever"]}, "masks: a model paints"),
])
def test_settings_that_do_not_apply_to_a_model_are_refused(client, photo, extra, words):
    response = start(client, {"content": photo["id"], "model": "starry.impasto", "settings": {}, **extra})
    assert response.status_code == 422, response.text
    assert words in response.json()["error"]


def test_empty_optimization_settings_are_ignored(client, photo):
    settings = {"preset": None, "seed": None, "style_blend": None, "max_size": 64}
    response = start(client, {"content": photo["id"], "model": "starry.impasto", "styles": [], "settings": settings})
    assert response.status_code == 201, response.text
    assert response.json()["settings"] == {"model": "starry.impasto", "max_size": 64, "preserve_color": "none",
                                           "color_transfer": "symmetric"}
    assert wait_for(client, response.json()["id"], lambda j: j["state"] not in ("queued", "running"))["state"] == "done"


def test_model_settings_are_model_fields():
    assert set(MODEL_SETTINGS) <= set(MODEL_FIELDS)


# -- without --models -------------------------------------------------------------------------------
def test_without_a_models_folder_no_model_is_offered(astronaut_small):
    with TestClient(create_app(stylizer_factory=NoNetwork), base_url=LOCAL) as raw:
        local = open_page(raw)
        assert local.get("/api/info").json()["models"] is False
        assert local.get("/api/models").json() == {"enabled": False, "models": []}
        content = upload(local, png((astronaut_small * 255).astype(np.uint8))).json()
        response = start(local, {"content": content["id"], "model": "starry.impasto", "settings": {}})
    assert response.status_code == 422 and "offers no models" in response.json()["error"]


def test_a_models_folder_that_is_not_one_is_refused(tmp_path, capsys):
    with pytest.raises(UsageError, match="does not exist"):
        create_app(models=tmp_path / "nowhere")
    (tmp_path / "file.impasto").write_text("x")
    with pytest.raises(UsageError, match="is not a folder"):
        create_app(models=tmp_path / "file.impasto")
    code = cli.main(["serve", "--port", "0", "--models", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err
    assert code == 2 and "--models" in err and "does not exist" in err and len(err.strip().splitlines()) == 1


def test_a_studio_model_picture_reruns_to_the_same_pixels(client, models_dir, astronaut_small, tmp_path, capsys):
    # larger than twice the output: the studio shrinks the upload first, and the rerun must decode it so too
    big = np.asarray(Image.fromarray((astronaut_small * 255).astype(np.uint8)).resize((300, 280)))
    folder = tmp_path / "downloads"
    folder.mkdir()
    Image.fromarray(big).save(folder / "big photo.png")
    content = upload(client, (folder / "big photo.png").read_bytes(), "content", "big photo.png").json()
    started = start(client, {"content": content["id"], "model": "starry.impasto", "settings": {"max_size": 64}})
    assert started.status_code == 201, started.text
    done = events(client, started.json()["id"])[-1]
    assert done["state"] == "done", done
    painted = folder / "impasto-model-starry-abc.png"
    painted.write_bytes(client.get(done["result"]["image"]).content)
    (folder / "starry.impasto").write_bytes((models_dir / "starry.impasto").read_bytes())  # found by name beside it
    assert cli.main(["rerun", str(painted), "-o", str(folder / "again.png"), "--quiet"]) == 0, capsys.readouterr().err
    assert np.array_equal(np.asarray(Image.open(folder / "again.png")), np.asarray(Image.open(painted)))
    assert "studio" in read_metadata(folder / "again.png")
