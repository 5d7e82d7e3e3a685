"""Trained-model files and painting with them: save/load, refused files, any size, tiles, ONNX, CLI.

Every model here is a tiny network with random weights (no training): what is tested is the file
format and the painting machinery, not what a trained model paints.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import impasto
from impasto import cli
from impasto.colour import colour_statistics
from impasto.errors import UsageError
from impasto.feedforward import (
    ARCHITECTURES,
    FORMAT,
    Architecture,
    ModelError,
    ModelInfo,
    TransformNet,
    load_model,
    read_extra,
    read_model_info,
    save_model,
)
from impasto.feedforward.network import StatsPlan
from impasto.feedforward.paint import paint_image
from impasto.images import read_metadata
from impasto.recipe import Recipe

TINY = Architecture(width=4, blocks=1)


def random_net(arch: Architecture = TINY, seed: int = 0) -> TransformNet:
    """A network with random weights and random normalization scales and shifts (not the identity),
    so that the normalization statistics matter for what it paints."""
    torch.manual_seed(seed)
    net = TransformNet(arch)
    for norm in net.norms:
        norm.weight.data.uniform_(0.5, 1.5)
        norm.bias.data.uniform_(-0.5, 0.5)
    return net.eval()


def model_info(arch: Architecture = TINY, **changes) -> ModelInfo:
    values = dict(architecture=arch, recipe=Recipe.from_preset("fast"), style_name="stripes.png",
                  style_sha256="ab" * 32, size=64, steps=40, stability_weight=0.0)
    values.update(changes)
    return ModelInfo(**values)


@pytest.fixture
def model_file(tmp_path) -> Path:
    path = tmp_path / "tiny.impasto"
    save_model(path, random_net(), model_info())
    return path


def photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth colourful picture with some texture: float32 (H, W, 3) in [0, 1]."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    noise = np.random.default_rng(seed).random((height, width, 3), dtype=np.float32)
    base = np.stack([0.5 + 0.4 * np.sin(x / 9), 0.5 + 0.4 * np.cos(y / 7), 0.5 + 0.3 * np.sin((x + y) / 13)], axis=2)
    return np.clip(0.8 * base + 0.2 * noise, 0, 1).astype(np.float32)


def run_cli(args, capsys):
    code = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(code, err, expected_code, *fragments):
    assert code == expected_code, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# ---------------------------------------------------------------------------------------------
# The file
# ---------------------------------------------------------------------------------------------
def test_save_load_paints_identically_and_keeps_info_and_extras(tmp_path):
    net = random_net()
    info = model_info(stability_weight=20.0)
    path = tmp_path / "m.impasto"
    extra = {"adam.exp_avg.0": torch.randn(4, 3, 9, 9), "step": torch.tensor(40, dtype=torch.int64)}
    save_model(path, net, info, extra_tensors=extra, extra_metadata={"lr": "0.001", "photos": "bundled"})
    x = torch.rand(2, 3, 45, 38)
    with torch.no_grad():
        expected = net(x)
    model = load_model(path, device="cpu", precision="fp32")
    assert torch.equal(model.paint_tensor(x), expected)
    assert model.info == info == read_model_info(path)
    assert model.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    tensors, metadata = read_extra(path)
    assert set(tensors) == set(extra) and all(torch.equal(tensors[k], v) for k, v in extra.items())
    assert metadata == {"lr": "0.001", "photos": "bundled"}
    # the same picture through Model.paint (an array in, an array out)
    picture = photo(45, 38)
    painted = model.paint(picture, tile=0)
    with torch.no_grad():
        direct = net(torch.from_numpy(picture.transpose(2, 0, 1))[None])[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(painted, direct, atol=1e-6)


def test_a_model_follows_the_weights_of_a_network_in_training():
    from impasto.feedforward import Model

    net = random_net()
    net.train()
    model = Model(net, model_info(), device="cpu", precision="bf16")
    x = torch.rand(1, 3, 40, 40)
    before = model.paint_tensor(x)
    with torch.no_grad():
        net.conv_out[1].bias.add_(1.0)  # an optimizer step changes the weights in place
    after = model.paint_tensor(x)
    assert (after - before).mean() > 0.05  # a brighter picture: the new weights were used
    assert net.training and all(p.requires_grad for p in net.parameters())  # the network is left as it was


def test_model_file_is_safetensors_with_readable_metadata(model_file):
    from safetensors import safe_open

    with safe_open(str(model_file), framework="pt") as handle:
        metadata = handle.metadata()
        keys = list(handle.keys())
    assert metadata["format"] == FORMAT
    assert json.loads(metadata["info"])["architecture"] == {"width": 4, "blocks": 1}
    assert all(k.startswith("net.") for k in keys) and "net.conv_in.1.weight" in keys


def _rewrite(source: Path, target: Path, *, metadata_changes=None, tensor_changes=None) -> Path:
    """A copy of a model file with metadata entries or tensors replaced (the checksum kept as it was)."""
    from safetensors.torch import load, save

    header_length = int.from_bytes(source.read_bytes()[:8], "little")
    metadata = json.loads(source.read_bytes()[8: 8 + header_length])["__metadata__"]
    tensors = load(source.read_bytes())
    metadata.update(metadata_changes or {})
    tensors.update(tensor_changes or {})
    target.write_bytes(save(tensors, metadata=metadata))
    return target


def _future(path: Path, tmp_path: Path) -> Path:
    return _rewrite(path, tmp_path / "future.impasto", metadata_changes={"format": "impasto-model/2"})


def _other_safetensors(path: Path, tmp_path: Path) -> Path:
    from safetensors.torch import save_file

    target = tmp_path / "other.safetensors"
    save_file({"weight": torch.ones(3, 3)}, str(target), metadata={"format": "pt"})
    return target


def _flipped(path: Path, tmp_path: Path) -> Path:
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x40  # one bit of one weight
    target = tmp_path / "flipped.impasto"
    target.write_bytes(bytes(data))
    return target


def _wrong_architecture(path: Path, tmp_path: Path) -> Path:
    info = model_info(Architecture(width=8, blocks=1)).to_dict()
    return _rewrite(path, tmp_path / "wrong.impasto", metadata_changes={"info": json.dumps(info)})


def _missing_tensor(path: Path, tmp_path: Path) -> Path:
    from safetensors.torch import load, save

    from impasto.feedforward.model import checksum

    tensors = load(path.read_bytes())
    del tensors["net.conv_out.1.bias"]
    metadata = {**model_info().to_metadata(), "checksum": checksum(tensors)}
    target = tmp_path / "missing.impasto"
    target.write_bytes(save(tensors, metadata=metadata))
    return target


REFUSED = {
    "random bytes": (lambda path, tmp: _write(tmp / "random.impasto", np.random.default_rng(0).bytes(5000)),
                     "not a safetensors file"),
    "empty": (lambda path, tmp: _write(tmp / "empty.impasto", b""), "empty"),
    "a PNG": (lambda path, tmp: _write(tmp / "photo.impasto", _png_bytes()), "not a safetensors file"),
    "cut in the header": (lambda path, tmp: _write(tmp / "cut1.impasto", path.read_bytes()[:200]), "cut short"),
    "cut in the weights": (lambda path, tmp: _write(tmp / "cut2.impasto", path.read_bytes()[:-1000]), "cut short"),
    "another safetensors file": (_other_safetensors, "not an impasto model"),
    "a future format": (_future, "newer impasto"),
    "a flipped bit": (_flipped, "corrupt"),
    "tensors of another architecture": (_wrong_architecture, "do not match its architecture (width 8"),
    "a missing tensor": (_missing_tensor, "lacks 'conv_out.1.bias'"),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _png_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), "red").save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("case", list(REFUSED))
def test_refuses_what_is_not_a_usable_model_in_one_line(case, model_file, tmp_path, capsys):
    make, fragment = REFUSED[case]
    bad = make(model_file, tmp_path)
    with pytest.raises(ModelError) as caught:
        load_model(bad, device="cpu")
    message = str(caught.value)
    assert "\n" not in message and fragment in message and str(bad) in message, message
    # the command line says the same in one line, exit status 1, and writes nothing
    photo_file = tmp_path / "p.png"
    Image.fromarray((photo(40, 40) * 255).astype(np.uint8)).save(photo_file)
    code, _, err = run_cli(["stylize", photo_file, "--model", bad, "-o", tmp_path / "out.png"], capsys)
    one_line_error(code, err, 1, fragment)
    assert not (tmp_path / "out.png").exists()


def test_reading_info_needs_only_the_header(model_file, tmp_path):
    # the header alone says what the model is; a file cut in its weights is refused by both
    assert read_model_info(model_file).style_name == "stripes.png"
    cut = _write(tmp_path / "cut.impasto", model_file.read_bytes()[:-10])
    with pytest.raises(ModelError, match="cut short"):
        read_model_info(cut)
    with pytest.raises(ModelError, match="does not exist"):
        read_model_info(tmp_path / "nothing.impasto")


def test_architecture_round_trip_and_limits():
    assert ARCHITECTURES["cpu"] == Architecture() and ARCHITECTURES["gpu"].width == 32
    assert Architecture.from_dict(Architecture(24, 3).to_dict()) == Architecture(24, 3)
    for bad in ({"width": 0, "blocks": 5}, {"width": 16, "blocks": 5, "depth": 2}, {"width": 1e9, "blocks": 5},
                {"width": 16}, {"width": True, "blocks": 5}):
        with pytest.raises(ValueError):
            Architecture.from_dict(bad)
    assert TransformNet(Architecture(16, 5)).arch.parameters() == sum(
        p.numel() for p in TransformNet(Architecture(16, 5)).parameters())


def test_save_refuses_a_network_of_another_architecture(tmp_path):
    with pytest.raises(ValueError, match="architecture"):
        save_model(tmp_path / "m.impasto", random_net(TINY), model_info(Architecture(8, 1)))
    assert not (tmp_path / "m.impasto").exists()


# ---------------------------------------------------------------------------------------------
# Painting
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(37, 53), (32, 32), (61, 34), (96, 70)])
def test_any_size_paints_and_keeps_its_size(size, model_file):
    model = load_model(model_file, device="cpu")
    picture = photo(*size)
    painted = model.paint(picture)
    assert painted.shape == (*size, 3) and painted.dtype == np.float32
    assert 0.0 <= painted.min() and painted.max() <= 1.0
    assert model.paint(Image.fromarray((picture * 255).astype(np.uint8))).shape == (*size, 3)
    # shrunk to max_size like the engine's fitting: long side 40, aspect kept
    height, width = size
    if max(size) > 40:
        shrunk = model.paint(picture, max_size=40)
        assert max(shrunk.shape[:2]) == 40 and abs(shrunk.shape[1] / shrunk.shape[0] - width / height) < 0.05


def _whole_statistics(net: TransformNet, x: torch.Tensor) -> list:
    """Each normalization layer's statistics over the whole of ``x``, recorded as tiles record them."""
    statistics: list = []
    height, width = x.shape[-2:]
    for index in range(len(net.norms)):
        plan = StatsPlan(statistics, record=index).at((0, height, 0, width), (height, width))
        net.run_with(plan, x)
        total, squares, count = plan.sums
        statistics = [*statistics, (total / count, squares / count - (total / count) ** 2)]
    return statistics


def test_receptive_field_is_within_the_tile_margin():
    # with the normalization statistics held fixed, a change of one input pixel reaches no output pixel
    # farther than the radius the tiles' margins are built from
    for arch in (Architecture(4, 1), Architecture(4, 3)):
        net = random_net(arch)
        x = torch.rand(1, 3, 192, 192)
        y = x.clone()
        y[..., 96, 96] += 0.5
        with torch.no_grad():
            plan = StatsPlan(_whole_statistics(net, x))
            changed = (net.run_with(plan, y) - net.run_with(plan, x)).abs().amax(dim=1)[0] > 0
        rows, cols = np.nonzero(changed.numpy())
        reach = max(np.abs(rows - 96).max(), np.abs(cols - 96).max())
        assert reach <= arch.receptive_radius, (arch, reach)
        assert reach >= arch.receptive_radius - 8, (arch, reach)  # and the bound is not loose


def _edge_energy(image: np.ndarray, positions: list[int], axis: int) -> float:
    """Mean squared difference between neighbouring pixels across the lines at ``positions``."""
    diff = np.diff(image, axis=axis) ** 2
    lines = [diff[p - 1] if axis == 0 else diff[:, p - 1] for p in positions]
    return float(np.mean(lines))


def test_tiles_paint_the_whole_picture_without_seams(tmp_path):
    net = random_net(TINY, seed=3)
    path = tmp_path / "m.impasto"
    save_model(path, net, model_info())
    model = load_model(path, device="cpu", precision="fp32")
    picture = photo(96, 128, seed=1)
    whole = paint_image(model, picture, tile=0)
    tiled = paint_image(model, picture, tile=48)
    assert whole.tile is None and tiled.tile == 48
    # equal everywhere (the tiles share the whole picture's normalization statistics), seams included
    assert np.abs(tiled.image - whole.image).max() < 2e-4
    # no seam: the gradient across the tile edges (rows 48, columns 48 and 96) is that of the whole painting
    for axis, length in ((0, 96), (1, 128)):
        edges = list(range(48, length, 48))
        assert _edge_energy(tiled.image, edges, axis) <= 1.02 * _edge_energy(whole.image, edges, axis) + 1e-9
    # the test can fail: tiles painted on their own (each its own statistics) differ clearly
    naive = np.zeros_like(whole.image)
    with torch.no_grad():
        for top in range(0, 96, 32):
            for left in range(0, 128, 32):
                part = torch.from_numpy(picture[top:top + 32, left:left + 32].transpose(2, 0, 1).copy())[None]
                naive[top:top + 32, left:left + 32] = net(part)[0].permute(1, 2, 0).numpy()
    assert np.abs(naive - whole.image).max() > 0.05


def test_tiles_are_chosen_when_the_picture_would_not_fit(model_file):
    model = load_model(model_file, device="cpu", precision="fp32")
    picture = photo(160, 200, seed=2)
    tiny_budget = paint_image(model, picture, max_memory=0.5 / 1024)  # 0.5 MiB
    assert tiny_budget.tile is not None
    whole = paint_image(model, picture)
    assert whole.tile is None
    assert np.abs(tiny_budget.image - whole.image).max() < 2e-4


def test_preserve_color_modes(model_file):
    from skimage import color as skcolor

    model = load_model(model_file, device="cpu", precision="fp32")
    picture = photo(48, 64, seed=4)
    plain = model.paint(picture)
    for mode, space in (("luminance", skcolor.rgb2yiq), ("post-yuv", skcolor.rgb2yuv)):
        kept = model.paint(picture, preserve_color=mode)
        # the photo's chroma where the result is in gamut (elsewhere it is clipped), the painting's luma
        inside = (kept > 0.002).all(axis=2) & (kept < 0.998).all(axis=2)
        assert inside.mean() > 0.5
        np.testing.assert_allclose(space(kept)[inside][:, 1:], space(picture)[inside][:, 1:], atol=2e-3)
    kept = model.paint(picture, preserve_color="post-yuv")
    inside = (kept > 0.002).all(axis=2) & (kept < 0.998).all(axis=2)
    np.testing.assert_allclose(skcolor.rgb2yuv(kept)[inside][:, 0], skcolor.rgb2yuv(plain)[inside][:, 0], atol=2e-3)
    lab = model.paint(picture, preserve_color="post-lab")
    assert np.abs(skcolor.rgb2lab(lab)[..., 1:] - skcolor.rgb2lab(picture)[..., 1:]).mean() < 2.0
    recoloured = model.paint(picture, preserve_color="histogram")
    mean, cov = colour_statistics(recoloured)
    photo_mean, photo_cov = colour_statistics(picture)
    np.testing.assert_allclose(mean, photo_mean, atol=0.02)
    np.testing.assert_allclose(cov, photo_cov, atol=0.01)
    assert np.abs(colour_statistics(plain)[0] - photo_mean).max() > 0.05  # the painting's own colours differ
    with pytest.raises(UsageError, match="preserve_color"):
        model.paint(picture, preserve_color="sepia")
    with pytest.raises(UsageError, match="tile"):
        model.paint(picture, tile=7)


def test_python_api_load_model(model_file):
    model = impasto.load_model(model_file, device="cpu")
    assert model.info.style_name == "stripes.png"
    assert model.paint(photo(40, 50)).shape == (40, 50, 3)
    with pytest.raises(impasto.ModelError, match="does not exist"):
        impasto.load_model(model_file.with_name("missing.impasto"))


# ---------------------------------------------------------------------------------------------
# ONNX
# ---------------------------------------------------------------------------------------------
def test_onnx_export_paints_as_torch_does(model_file, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    import onnx

    from impasto.feedforward.export import export_onnx

    out = tmp_path / "m.onnx"
    export_onnx(model_file, out)
    proto = onnx.load(str(out))
    assert proto.opset_import[0].version == 17
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["format"] == FORMAT and props["source_sha256"] == hashlib.sha256(model_file.read_bytes()).hexdigest()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    model = load_model(model_file, device="cpu", precision="fp32")
    for shape in ((1, 3, 37, 53), (2, 3, 64, 48)):  # dynamic batch, height and width
        x = torch.rand(shape)
        theirs = session.run(None, {"image": x.numpy()})[0]
        assert theirs.shape == shape
        assert np.abs(theirs - model.paint_tensor(x).numpy()).max() < 1e-4


def test_onnx_export_without_onnx_names_the_extra(model_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    code, _, err = run_cli(["export-onnx", model_file, tmp_path / "m.onnx"], capsys)
    one_line_error(code, err, 2, "pip install 'impasto[onnx]'")
    assert not (tmp_path / "m.onnx").exists()


def test_cli_export_onnx(model_file, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "m.onnx"
    code, stdout, err = run_cli(["export-onnx", model_file, out], capsys)
    assert code == 0, err
    assert "wrote" in stdout and "onnxruntime matches" in stdout
    code, _, err = run_cli(["export-onnx", model_file, out], capsys)
    one_line_error(code, err, 1, "already exists", "--force")


# ---------------------------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------------------------
def test_cli_models_lists_style_size_and_steps(tmp_path, capsys):
    folder = tmp_path / "models"
    (folder / "more").mkdir(parents=True)
    save_model(folder / "starry.impasto", random_net(), model_info(style_name="starry_night.jpg", size=256,
                                                                   steps=1300))
    save_model(folder / "more" / "scream.impasto", random_net(Architecture(8, 2)),
               model_info(Architecture(8, 2), style_name="the_scream.jpg", size=192, steps=800,
                          stability_weight=100.0))
    (folder / "notes.txt").write_text("not a model")
    code, stdout, err = run_cli(["models", folder], capsys)
    assert code == 0, err
    lines = stdout.splitlines()
    assert len(lines) == 3 and lines[0].split()[:3] == ["model", "style", "trained"]
    starry = next(line for line in lines if "starry_night.jpg" in line)
    assert "256 px" in starry and "1,300" in starry and "width 4, 1 blocks" in starry
    scream = next(line for line in lines if "the_scream.jpg" in line)
    assert "more/scream.impasto" in scream and "192 px" in scream and "800" in scream and "100" in scream
    code, stdout, _ = run_cli(["models", folder, "--json"], capsys)
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert {r["style"] for r in rows} == {"starry_night.jpg", "the_scream.jpg"}
    # a broken file is listed with its reason, the others still are; the exit status says so
    _write(folder / "broken.impasto", b"\x00" * 100)
    code, stdout, err = run_cli(["models", folder], capsys)
    one_line_error(code, err, 1, "broken.impasto", "not a safetensors file")
    assert "starry_night.jpg" in stdout and "the_scream.jpg" in stdout
    code, _, err = run_cli(["models", tmp_path / "nowhere"], capsys)
    one_line_error(code, err, 2, "does not exist")


@pytest.fixture
def photo_file(tmp_path) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray((photo(75, 101, seed=5) * 255).astype(np.uint8)).save(path)
    return path


def test_cli_stylize_with_a_model(model_file, photo_file, tmp_path, capsys):
    out = tmp_path / "out.png"
    code, stdout, err = run_cli(["stylize", photo_file, "--model", model_file, "-o", out,
                                 "--preserve-color", "post-lab", "--device", "cpu"], capsys)
    assert code == 0, err
    assert "wrote" in stdout
    assert Image.open(out).size == (101, 75)  # the photo's own size by default
    meta = read_metadata(out)
    assert meta["model"]["sha256"] == hashlib.sha256(model_file.read_bytes()).hexdigest()
    assert meta["model"]["info"]["style_name"] == "stripes.png"
    assert meta["painting"]["preserve_color"] == "post-lab"
    assert json.loads(Path(f"{out}.json").read_text()) == meta
    # the same painting as the Python API's
    model = load_model(model_file, device="cpu")
    expected = model.paint(photo_file, preserve_color="post-lab")
    written = np.asarray(Image.open(out), dtype=np.float32) / 255
    assert np.abs(written - expected).max() <= 1 / 255 + 1e-6
    # sizes apply as to an optimization
    code, _, err = run_cli(["stylize", photo_file, "--model", model_file, "-o", tmp_path / "small.jpg",
                            "--max-size", "48", "--preserve-color", "histogram", "--quiet"], capsys)
    assert code == 0, err
    assert Image.open(tmp_path / "small.jpg").size == (48, 36)
    code, _, err = run_cli(["stylize", photo_file, "--model", model_file, "-o", tmp_path / "exact.png",
                            "--size", "64x40", "--tile-size", "32", "--quiet"], capsys)
    assert code == 0, err
    assert Image.open(tmp_path / "exact.png").size == (64, 40) and read_metadata(tmp_path / "exact.png")[
        "painting"]["tile"] == 32


@pytest.mark.parametrize(("extra", "code", "fragment"), [
    (["style.png"], 2, "give no STYLE"),
    (["--steps", "5"], 2, "--steps: not used with --model"),
    (["--style-weights", "1"], 2, "--style-weights: not used with --model"),
    (["--max-size", "10"], 2, "--max-size"),
])
def test_cli_model_refuses_what_does_not_apply(extra, code, fragment, model_file, photo_file, tmp_path, capsys):
    (tmp_path / "style.png").write_bytes(photo_file.read_bytes())
    args = ["stylize", photo_file, "--model", model_file, "-o", tmp_path / "out.png"]
    if extra[0] == "style.png":
        args.insert(2, tmp_path / "style.png")
    else:
        args += extra
    exit_code, _, err = run_cli(args, capsys)
    one_line_error(exit_code, err, code, fragment)
    assert not (tmp_path / "out.png").exists()


def test_cli_stylize_still_needs_a_style_without_a_model(photo_file, tmp_path, capsys):
    code, _, err = run_cli(["stylize", photo_file, "-o", tmp_path / "out.png"], capsys)
    one_line_error(code, err, 2, "STYLE")
