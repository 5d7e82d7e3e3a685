"""``impasto models DIR`` (list trained models) and ``impasto export-onnx MODEL OUT.onnx``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import ImageError, UsageError
from .options import progress_options

EXAMPLES_MODELS = """\
examples:
  impasto models models/                  # every *.impasto file under models/
  impasto models starry.impasto --json    # one JSON line per model, for scripts
"""

EXAMPLES_EXPORT = """\
examples:
  impasto export-onnx starry.impasto starry.onnx
  impasto export-onnx starry.impasto starry.onnx --opset 18 --force

The graph's input "image" and output "painting" are float32 (N, 3, H, W) RGB in [0, 1], any
batch, height and width. Needs the extra: pip install 'impasto[onnx]'.
"""


def add_parsers(sub: Any) -> None:
    models = sub.add_parser("models", help="list the trained models in a folder (style, size trained at, steps)",
                            epilog=EXAMPLES_MODELS, formatter_class=argparse.RawDescriptionHelpFormatter,
                            description="List the model files (*.impasto) in DIR and its subfolders: the style "
                                        "each paints, the crop size and steps it was trained with, its "
                                        "architecture. Files that cannot be read are listed with the reason.")
    models.add_argument("folder", metavar="DIR", help="a folder of models (or one model file)")
    models.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    models.add_argument("--debug", action="store_true", help="show tracebacks")
    models.set_defaults(run=run_models)
    export = sub.add_parser("export-onnx", help="write a trained model as ONNX (onnxruntime, browsers, phones)",
                            epilog=EXAMPLES_EXPORT, formatter_class=argparse.RawDescriptionHelpFormatter,
                            description="Export a model file to an ONNX graph with dynamic batch, height and "
                                        "width, and check that onnxruntime (when installed) paints as PyTorch "
                                        "does.")
    export.add_argument("model", metavar="MODEL", help="a model file (.impasto)")
    export.add_argument("output", metavar="OUT.onnx", help="the ONNX file to write")
    export.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    export.add_argument("--force", action="store_true", help="overwrite an existing output file")
    export.add_argument("--no-check", action="store_true", help="skip comparing onnxruntime's output with PyTorch's")
    progress_options(export)
    export.set_defaults(run=run_export)


def model_files(folder: Path) -> list[Path]:
    """The model files in ``folder`` (recursively, natural order), or ``[folder]`` for a file."""
    from ..feedforward.model import SUFFIX
    from ..images import natural_key

    if folder.is_file():
        return [folder]
    return sorted((p for p in folder.rglob(f"*{SUFFIX}") if p.is_file()), key=natural_key)


def run_models(args: argparse.Namespace) -> int:
    from ..feedforward.model import SUFFIX, ModelError, read_model_info

    folder = Path(args.folder)
    if not folder.exists():
        raise UsageError(f"models folder {str(folder)!r} does not exist")
    files = model_files(folder)
    rows: list[dict[str, Any]] = []
    failed = 0
    for path in files:
        shown = str(path.relative_to(folder)) if path != folder else path.name
        try:
            info = read_model_info(path)
        except ModelError as exc:
            failed += 1
            rows.append({"file": shown, "error": str(exc)})
            continue
        rows.append({"file": shown, "style": info.style_name, "size": info.size, "steps": info.steps,
                     "width": info.architecture.width, "blocks": info.architecture.blocks,
                     "stability_weight": info.stability_weight, "preset": info.recipe.preset,
                     "style_weight": info.recipe.style_weight, "style_sha256": info.style_sha256})
    if args.json:
        for row in rows:
            print(json.dumps(row, sort_keys=True))
    elif not rows:
        print(f"no models (*{SUFFIX}) in {folder}", file=sys.stderr)
    else:
        _table(rows)
    return 1 if failed else 0


def _table(rows: list[dict[str, Any]]) -> None:
    header = ("model", "style", "trained at", "steps", "architecture", "stability")
    table = [header]
    errors = []
    for row in rows:
        if "error" in row:
            errors.append(row["error"])
            continue
        table.append((row["file"], row["style"], f"{row['size']} px", f"{row['steps']:,}",
                      f"width {row['width']}, {row['blocks']} blocks",
                      f"{row['stability_weight']:g}" if row["stability_weight"] else "-"))
    if len(table) > 1:
        widths = [max(len(r[i]) for r in table) for i in range(len(header))]
        for r in table:
            print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    for error in errors:
        print(f"impasto: error: {error}", file=sys.stderr)


def run_export(args: argparse.Namespace) -> int:
    from ..feedforward.export import export_onnx

    out = Path(args.output)
    if out.suffix.lower() != ".onnx":
        raise UsageError(f"output {str(out)!r}: use the .onnx extension")
    if out.exists() and Path(args.model).exists() and out.samefile(args.model):
        raise UsageError(f"output {str(out)!r} is the model file; refusing to overwrite it")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise ImageError(f"output folder {str(folder)!r} does not exist")
    if out.exists() and not args.force:
        raise ImageError(f"output {str(out)!r} already exists; pass --force to overwrite it")
    export_onnx(args.model, out, opset=args.opset)
    check = "" if args.no_check else _check(args.model, out)
    if not args.quiet:
        message = f"wrote {out} (opset {args.opset}; input image, output painting: float32 N×3×H×W in [0, 1]){check}"
        if args.json_log:
            print(json.dumps({"event": "done", "output": str(out), "opset": args.opset, "check": check.strip("; ")}))
        else:
            print(message)
    return 0


def _check(model_path: str, onnx_path: Path) -> str:
    """Paint a small random picture with onnxruntime and with PyTorch; the largest difference."""
    try:
        import onnxruntime  # type: ignore[import-untyped]
    except ImportError:
        return "; onnxruntime is not installed, so the graph was not run"
    import numpy as np
    import torch

    from ..errors import ImpastoError
    from ..feedforward.model import load_model

    model = load_model(model_path, device="cpu", precision="fp32")
    x = torch.rand(1, 3, 75, 101, generator=torch.Generator().manual_seed(0))
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ours = model.paint_tensor(x).numpy()
    theirs = session.run(None, {"image": x.numpy()})[0]
    difference = float(np.abs(ours - theirs).max())
    if not difference < 1e-3:
        raise ImpastoError(f"{onnx_path}: onnxruntime paints differently from PyTorch (largest difference "
                           f"{difference:.3g}); the export is not usable")
    return f"; onnxruntime matches PyTorch within {max(difference, 1e-7):.1g}"
