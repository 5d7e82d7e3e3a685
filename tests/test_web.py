"""The web studio's HTTP API, through FastAPI's TestClient (real engine, tiny images)."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest
from PIL import Image
from skimage import data

pytest.importorskip("fastapi", reason="the web extra (fastapi) is not installed")
pytest.importorskip("httpx2", reason="httpx2 (for the TestClient) is not installed")

from fastapi.testclient import TestClient

from impasto.errors import UsageError, WeightsError
from impasto.images import read_metadata
from impasto.optimize.engine import Stylizer
from impasto.web import access_token, create_app, plain_http_warning, startup_lines
from impasto.web.guard import XSRF_HEADER, cookie_name

LOCAL = "http://127.0.0.1:8000"
TINY = {"preset": "fast", "max_size": 64, "steps": 3, "seed": 7}


def open_page(client: TestClient) -> TestClient:
    """Open the page with the token as a browser does; later requests send the XSRF cookie's value
    in the header too, as the page's script does."""
    app = client.app
    assert client.get("/", params={"token": app.state.token}).status_code == 200
    client.headers[XSRF_HEADER] = client.cookies[app.state.policy.xsrf_cookie]
    return client


def png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.asarray(array)).save(out, "PNG")
    return out.getvalue()


def as_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def client():
    app = create_app(max_upload_mb=1, max_pixels=2_000_000, max_output=1024, preview_interval=0.0)
    with TestClient(app, base_url=LOCAL) as c:
        yield open_page(c)


@pytest.fixture(scope="module")
def photo(client, astronaut_small):
    return upload(client, png(as_uint8(astronaut_small)), "content", "photo.png").json()


@pytest.fixture(scope="module")
def painting(client, stripes_style):
    return upload(client, png(as_uint8(stripes_style)), "style", "stripes.png").json()


def upload(client, data: bytes, kind: str = "content", name: str = "image.png", mime: str = "image/png"):
    return client.post(f"/api/uploads?kind={kind}", files={"file": (name, data, mime)})


def wait_for(client, job_id: str, condition, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if condition(job):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never got there; last seen {job}")


def _strings(value) -> list[str]:
    """Every string inside a JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def events(client, job_id: str) -> list[dict]:
    """Every server-sent event of a job, read until the server closes the stream at its end."""
    out = []
    with client.stream("GET", f"/api/jobs/{job_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                out.append(json.loads(line[6:]))
    return out


# -- the page and its facts ------------------------------------------------------------------------
def test_page_static_files_and_info(client):
    page = client.get("/")
    assert page.status_code == 200 and "impasto studio" in page.text
    assert "/static/app.js" in page.text
    assert 'src="http' not in page.text and 'href="http' not in page.text  # nothing from the internet
    for name, kind in (("app.js", "javascript"), ("style.css", "css")):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200 and kind in response.headers["content-type"]
    info = client.get("/api/info").json()
    assert set(info["presets"]) >= {"fast", "balanced", "quality", "reference"}
    assert info["presets"]["fast"]["steps"] >= 1 and info["presets"]["fast"]["description"]
    assert info["limits"] == {"upload_bytes": 1024 * 1024, "pixels": 2_000_000, "styles": 4, "min_size": 64,
                              "max_size": 1024, "max_queue": 8, "style_side": 4096, "style_scale": [0.25, 4.0],
                              "steps": [1, 10_000]}
    assert info["xsrf_cookie"] == client.app.state.policy.xsrf_cookie
    assert "histogram" in info["preserve_color"]
    assert client.get("/nowhere").json() == {"error": "not found"}


# -- uploads ----------------------------------------------------------------------------------------
def test_upload_is_identified_by_decoding_not_by_name_or_type(client, astronaut_small):
    data = png(as_uint8(astronaut_small))
    response = upload(client, data, "style", "notes.txt", "text/plain")  # a PNG, whatever it is called
    assert response.status_code == 201
    item = response.json()
    assert (item["width"], item["height"], item["format"], item["filename"]) == (96, 96, "PNG", "notes.txt")
    assert len(item["id"]) >= 20
    thumb = client.get(item["thumbnail"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.content)).size == (96, 96)
    assert client.get(f"/api/uploads/{item['id']}").json()["id"] == item["id"]
    # A path in the file name is only ever a display name.
    assert upload(client, data, "content", "../../etc/passwd.png").json()["filename"] == "passwd.png"


def _noise_png(side: int) -> bytes:
    return png(np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8))


BAD_UPLOADS = {
    "not an image": (b"hello, I am plain text" * 10, "fake.png", 415, "not an image"),
    "empty": (b"", "empty.png", 400, "empty"),
    "truncated": (None, "cut.png", 415, "truncated or corrupt"),
    "too large": (None, "big.png", 413, "too large"),
    "too many pixels": (None, "huge.png", 413, "too many pixels"),
    "too small": (None, "tiny.png", 422, "too small"),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_bad_uploads_get_a_one_line_message(client, astronaut_small, case):
    data, name, status, words = BAD_UPLOADS[case]
    if case == "truncated":
        data = png(as_uint8(astronaut_small))[:300]
    elif case == "too large":
        data = _noise_png(700)  # about 1.4 MB, the limit here is 1 MB
    elif case == "too many pixels":
        data = png(np.zeros((1500, 1500), np.uint8))  # tiny file, 2.25 megapixels
    elif case == "too small":
        data = png(np.zeros((20, 20, 3), np.uint8))
    response = upload(client, data, "content", name)
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert words in message and "\n" not in message
    assert name in message or case == "too large"  # refused before the file was read


def test_malformed_upload_requests(client, astronaut_small):
    data = png(as_uint8(astronaut_small))
    assert upload(client, data, "sculpture").status_code == 400
    assert "field named 'file'" in client.post("/api/uploads", files={"other": ("a.png", data)}).json()["error"]
    assert client.post("/api/uploads", content=data, headers={"content-type": "image/png"}).status_code == 400
    declared = client.post("/api/uploads", content=b"x", headers={"content-length": str(50 * 1024 * 1024),
                                                                   "content-type": "multipart/form-data; boundary=x"})
    assert declared.status_code == 413
    assert client.get("/api/uploads/nope/thumb.jpg").status_code == 404


# -- jobs -------------------------------------------------------------------------------------------
def test_bad_job_requests(client, photo, painting):
    def start(body):
        return client.post("/api/jobs", json=body)

    ok = {"content": photo["id"], "styles": [painting["id"]], "settings": TINY}
    cases = [
        ({**ok, "content": "missing"}, 404, "upload the image again"),
        ({**ok, "styles": []}, 422, "at least one painting"),
        ({**ok, "styles": [painting["id"]] * 5}, 422, "at most 4"),
        ({**ok, "settings": {**TINY, "preset": "sloppy"}}, 422, "preset"),
        ({**ok, "settings": {**TINY, "style_weight": "lots"}}, 422, "style_weight"),
        ({**ok, "settings": {**TINY, "max_size": 5000}}, 422, "this server's limit"),
        ({**ok, "settings": {**TINY, "preserve_color": "sepia"}}, 422, "preserve_color"),
        ({**ok, "settings": {**TINY, "style_scale": 0}}, 422, "style_scale"),
        ({**ok, "settings": {**TINY, "style_blend": [1, 2]}}, 422, "2 weights for 1"),
        ({**ok, "settings": {**TINY, "weights": "/etc/passwd"}}, 422, "unknown setting"),
        ({**ok, "path": "/tmp"}, 422, "unknown field"),
        ({**ok, "masks": [painting["id"], painting["id"]]}, 422, "one entry"),
    ]
    for body, status, words in cases:
        response = start(body)
        assert response.status_code == status, (body, response.text)
        assert words in response.json()["error"], response.json()
    bad_json = client.post("/api/jobs", content=b"{not json", headers={"content-type": "application/json"})
    assert bad_json.status_code == 400
    assert client.get("/api/jobs/nope").status_code == 404
    assert client.post("/api/jobs/nope/cancel").status_code == 404


def test_job_streams_progress_and_delivers_a_png_with_its_recipe(client, painting, astronaut_small):
    second = upload(client, png(as_uint8(astronaut_small[::-1])), "style", "flipped.png").json()
    # a 256 px photo, not TINY's 64: a job of three small steps can end before the event stream opens, and
    # then only its final state is seen
    large = upload(client, png(data.astronaut()[::2, ::2]), "content", "photo.png").json()
    settings = {**TINY, "max_size": 256, "style_weight": 3.0, "preserve_color": "luminance", "style_scale": 1.5,
                "style_blend": [3, 1]}
    started = client.post("/api/jobs", json={"content": large["id"], "styles": [painting["id"], second["id"]],
                                             "settings": settings})
    assert started.status_code == 201, started.text
    job = started.json()
    assert job["state"] in ("queued", "running") and len(job["id"]) >= 20

    seen = events(client, job["id"])
    assert seen[-1]["state"] == "done", seen[-1]
    steps = [e["step"] for e in seen if e.get("step")]
    assert steps and steps == sorted(steps) and steps[-1] == seen[-1]["total_steps"] == 3
    running = [e for e in seen if e["state"] == "running" and e.get("step")]
    assert running and all(e["scales"] >= 1 and e["size"] and "total" in e["losses"] for e in running)
    assert max(e["preview_version"] for e in running) >= 1

    final = seen[-1]
    result = final["result"]
    assert max(result["width"], result["height"]) == 256 and result["steps"] == 3
    preview = client.get(final["preview"])
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"

    download = client.get(result["image"])
    assert download.status_code == 200 and download.headers["content-type"] == "image/png"
    assert "attachment" in download.headers["content-disposition"]
    picture = Image.open(io.BytesIO(download.content))
    assert picture.size == (result["width"], result["height"])
    metadata = read_metadata(io.BytesIO(download.content))
    recipe = metadata["recipe"]
    assert (recipe["preset"], recipe["max_size"], recipe["seed"], recipe["style_weight"]) == ("fast", 256, 7, 3.0)
    assert (recipe["preserve_color"], recipe["style_scale"]) == ("luminance", 1.5)
    assert metadata["style_blend"] == pytest.approx([0.75, 0.25])
    assert metadata["studio"]["settings"]["style_blend"] == [3, 1]

    assert client.get(result["recipe_url"]).json()["recipe"] == recipe
    # Uploads are named by their file names only (and their bytes' sha256); no path of this machine.
    assert metadata["content"]["path"] == "photo.png" and len(metadata["content"]["sha256"]) == 64
    assert not [text for text in _strings(metadata) if text.startswith("/") or ":\\" in text]
    full = client.get(f"/api/results/{result['id']}").json()
    assert full["settings"]["seed"] == 7 and full["inputs"]["content"]["id"] == large["id"]
    assert [s["id"] for s in full["inputs"]["styles"]] == [painting["id"], second["id"]]
    assert client.get(result["thumbnail"]).headers["content-type"] == "image/jpeg"
    assert result["id"] in [r["id"] for r in client.get("/api/results").json()["results"]]
    assert client.get("/api/results/nope.png").status_code == 404


def test_job_with_masks(client, photo, painting, astronaut_small):
    second = upload(client, png(as_uint8(astronaut_small)), "style", "second.png").json()
    left = np.zeros((40, 40), np.uint8)
    left[:, :20] = 255
    masks = [upload(client, png(m), "mask", f"mask{i}.png").json()["id"] for i, m in enumerate((left, 255 - left))]
    content_mask = upload(client, png(left), "mask", "detail.png").json()["id"]
    body = {"content": photo["id"], "styles": [painting["id"], second["id"]], "masks": masks,
            "content_mask": content_mask, "settings": {**TINY, "steps": 2}}
    job = client.post("/api/jobs", json=body)
    assert job.status_code == 201, job.text
    final = events(client, job.json()["id"])[-1]
    assert final["state"] == "done", final
    metadata = client.get(final["result"]["recipe_url"]).json()
    assert metadata.get("masks") == 2 and metadata.get("content_mask") is True
    assert [s["path"] for s in metadata["styles"]] == ["stripes.png", "second.png"]  # file names only
    assert len(final["result"]["inputs"]["masks"]) == 2
    partial = {**body, "masks": [masks[0], None]}
    assert "every painting a mask" in client.post("/api/jobs", json=partial).json()["error"]


def test_queue_position_and_cancelling_queued_and_running_jobs(client, photo, painting):
    body = {"content": photo["id"], "styles": [painting["id"]], "settings": {**TINY, "steps": 2000}}
    first = client.post("/api/jobs", json=body).json()
    second = client.post("/api/jobs", json=body).json()
    running = wait_for(client, first["id"], lambda j: j["state"] == "running" and (j.get("step") or 0) >= 1)
    waiting = client.get(f"/api/jobs/{second['id']}").json()
    assert (waiting["state"], waiting["position"], waiting["ahead"]) == ("queued", 1, 1)

    removed = client.post(f"/api/jobs/{second['id']}/cancel").json()
    assert removed["state"] == "cancelled" and removed["position"] is None

    asked = time.monotonic()
    client.post(f"/api/jobs/{first['id']}/cancel")
    stopped = wait_for(client, first["id"], lambda j: j["state"] == "cancelled", timeout=20)
    assert stopped["step"] < 2000 and stopped["result"] is None and stopped["error"] is None
    assert time.monotonic() - asked < 15
    assert events(client, first["id"])[-1]["state"] == "cancelled"  # a finished job's stream ends at once
    # The server answered all along, and the worker takes the next job.
    after = client.post("/api/jobs", json={**body, "settings": {**TINY, "steps": 1}}).json()
    assert wait_for(client, after["id"], lambda j: j["state"] in ("done", "failed", "cancelled"))["state"] == "done"
    assert running["total_steps"] >= 2000


def test_failed_job_reports_one_line(astronaut_small):
    class NoWeights(Stylizer):
        def weights(self, recipe=None):
            raise WeightsError("weights file /nowhere/vgg19.pth: does not exist")

    with open_page(TestClient(create_app(stylizer_factory=NoWeights), base_url=LOCAL)) as local:
        photo_id = upload(local, png(as_uint8(astronaut_small)), "content").json()["id"]
        style_id = upload(local, png(as_uint8(astronaut_small)), "style").json()["id"]
        job = local.post("/api/jobs", json={"content": photo_id, "styles": [style_id], "settings": TINY}).json()
        final = events(local, job["id"])[-1]
    assert final["state"] == "failed" and final["result"] is None
    assert final["error"] == "weights file /nowhere/vgg19.pth: does not exist"


# -- access ----------------------------------------------------------------------------------------
def test_token_is_required_on_every_request():
    token = "s3cret-token-for-tests"
    app = create_app(token=token, allowed_hosts=["*"])  # as `impasto serve --host 0.0.0.0` builds it
    plain = TestClient(app, base_url="http://192.0.2.10:8000")
    assert plain.get("/api/info").status_code == 401
    assert "token" in plain.get("/api/info").json()["error"]
    page = plain.get("/")
    assert page.status_code == 401 and "text/html" in page.headers["content-type"]
    assert plain.get("/static/app.js").status_code == 401
    assert plain.get("/api/info", headers={"Authorization": "Bearer wrong-token"}).status_code == 401
    assert plain.get("/api/info", params={"token": "wrong"}).status_code == 401
    assert plain.get("/api/info", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    browser = TestClient(app, base_url="http://192.0.2.10:8000")
    opened = browser.get("/", params={"token": token})
    assert opened.status_code == 200 and cookie_name(token) in opened.headers["set-cookie"]
    token_cookie = next(c for c in opened.headers.get_list("set-cookie") if c.startswith(cookie_name(token)))
    assert "httponly" in token_cookie.lower() and "samesite=strict" in token_cookie.lower()
    assert browser.get("/api/info").status_code == 200  # the cookie carries it now
    assert browser.get("/static/style.css").status_code == 200


def test_a_token_is_required_on_loopback_too_unless_turned_off(caplog):
    app = create_app()
    assert len(app.state.token) >= 20
    assert TestClient(app, base_url=LOCAL).get("/api/info").status_code == 401
    with caplog.at_level("WARNING", logger="impasto.web"):
        open_app = create_app(no_token=True)
    assert "no access token" in caplog.text
    assert open_app.state.token is None
    assert TestClient(open_app, base_url=LOCAL).get("/api/info").status_code == 200
    with pytest.raises(UsageError, match="cannot be used together"):
        create_app(token="s3cret-token-for-tests", no_token=True)


def test_access_token_rule():
    for host in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "192.168.1.5"):
        generated = access_token(host)
        assert generated and len(generated) >= 20 and generated != access_token(host)
    assert access_token("127.0.0.1", no_token=True) is None
    assert access_token("127.0.0.1", "my-own-token") == "my-own-token"
    with pytest.raises(UsageError, match="loopback"):
        access_token("0.0.0.0", no_token=True)
    with pytest.raises(UsageError, match="together"):
        access_token("127.0.0.1", "my-own-token", no_token=True)
    with pytest.raises(ValueError):
        access_token("0.0.0.0", "short")


def test_serving_off_loopback_warns_that_plain_http_exposes_the_token():
    assert plain_http_warning("127.0.0.1") is None and plain_http_warning("localhost") is None
    warning = plain_http_warning("0.0.0.0")
    assert warning and "plain HTTP" in warning and "TLS" in warning
    lines = startup_lines("0.0.0.0", 8765, "s3cret-token-for-tests")
    assert lines[0] == "impasto studio: http://127.0.0.1:8765/?token=s3cret-token-for-tests"
    assert any("plain HTTP" in line for line in lines)
    local = startup_lines("127.0.0.1", 8765, "s3cret-token-for-tests")
    assert local[0].endswith("?token=s3cret-token-for-tests") and not any("plain HTTP" in x for x in local)
