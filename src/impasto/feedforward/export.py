"""ONNX export of a model file, so it runs in other software (onnxruntime, browsers, phones).

The graph takes ``image``: float32 ``(N, 3, H, W)`` RGB in [0, 1], any batch, height and width,
and gives ``painting`` of the same shape in [0, 1]. The model's metadata (format, info JSON, the
source file's sha256) travels in the ONNX file's ``metadata_props``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from pathlib import Path

import torch

from ..errors import ImpastoError, UsageError
from ..images import write_atomic
from .model import FORMAT, load_model
from .network import is_whole

INSTALL_HINT = "pip install 'impasto[onnx]'"
#: Opsets the export supports: 17 (the default, read by every current runtime) and later ones.
MIN_OPSET, MAX_OPSET = 14, 21


def _require(module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise UsageError(f"ONNX export needs the {module} package, which is not installed: "
                         f"{INSTALL_HINT}") from None


class _quiet:
    """Raise a logger's level to ERROR for a while (the dynamo exporter logs optional registrations)."""

    def __init__(self, logger: logging.Logger):
        self.logger = logger
        self.level = logger.level

    def __enter__(self) -> None:
        self.logger.setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        self.logger.setLevel(self.level)


def export_onnx(model_path: str | os.PathLike, onnx_path: str | os.PathLike, *, opset: int = 17) -> None:
    """Write the model at ``model_path`` as an ONNX graph with dynamic batch, height and width.

    Opsets up to 17 use PyTorch's TorchScript-based exporter (the dynamo exporter writes opset 18
    at least); 18 and later the dynamo exporter. The file is written atomically.
    """
    if not is_whole(opset) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise UsageError(f"opset {opset!r}: use {MIN_OPSET} to {MAX_OPSET}", field="opset",
                         detail=f"{opset!r}: use {MIN_OPSET} to {MAX_OPSET}")
    _require("onnx")
    if opset >= 18:
        _require("onnxscript")
    import onnx

    model = load_model(model_path, device="cpu", precision="fp32")
    net = model.net.float().eval()
    example = torch.rand(1, 3, 64, 96)
    try:
        with warnings.catch_warnings(), _quiet(logging.getLogger("torch.onnx")):
            warnings.simplefilter("ignore")  # the exporters' deprecation notes and tracer chatter
            if opset < 18:
                with tempfile.TemporaryDirectory(prefix="impasto-onnx-") as folder:
                    graph = Path(folder) / "model.onnx"
                    torch.onnx.export(net, (example,), str(graph), dynamo=False, opset_version=opset,
                                      input_names=["image"], output_names=["painting"],
                                      dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                                    "painting": {0: "batch", 2: "height", 3: "width"}})
                    proto = onnx.load(str(graph))
            else:
                batch = torch.export.Dim("batch", min=1, max=1024)
                height = torch.export.Dim("height", min=4, max=16384)
                width = torch.export.Dim("width", min=4, max=16384)
                program = torch.onnx.export(net, (example,), dynamo=True, opset_version=opset, verbose=False,
                                            input_names=["image"], output_names=["painting"],
                                            dynamic_shapes={"x": {0: batch, 2: height, 3: width}})
                assert program is not None
                proto = program.model_proto
    except Exception as exc:  # an exporter failure is reported in one line
        raise ImpastoError(f"ONNX export of {str(model_path)!r} failed: {type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    proto.producer_name = "impasto"
    for key, value in (("format", FORMAT), ("info", json.dumps(model.info.to_dict(), sort_keys=True)),
                       ("source_sha256", model.sha256), ("input", "image: float32 (N, 3, H, W) RGB in [0, 1]"),
                       ("output", "painting: float32 (N, 3, H, W) RGB in [0, 1]")):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    out = Path(onnx_path)
    try:
        write_atomic(out, proto.SerializeToString())
    except OSError as exc:
        raise ImpastoError(f"output {str(out)!r}: cannot be written ({exc.strerror or exc})") from None
