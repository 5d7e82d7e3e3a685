"""``impasto batch``: many photos (and styles) into a folder, resumable, here or on a Ray cluster."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import UsageError
from ..images import OUTPUT_FORMATS
from .options import floats, progress_options, recipe_from_args, recipe_options

#: Recipe fields a batch has no flag for: it reports per picture, not per step, and keeps no samples.
UNUSED_FIELDS = ("log_every", "save_every")

EXAMPLES_BATCH = """\
examples:
  impasto batch photos/ --style starry_night.jpg -o painted/
  impasto batch 'shoot/**/*.jpg' --style a.jpg b.jpg --each-style -o out/ --max-size 768
  impasto batch --manifest jobs.csv -o out/ --preset fast       # one row per job, columns override
  impasto batch photos/ --model starry.impasto -o out/           # a trained model: one pass per photo
  impasto batch photos/ --style s.jpg -o out/ --workers 2         # two processes on this machine
  impasto batch photos/ --style s.jpg -o out/ --ray auto          # on a Ray cluster (pip install 'impasto[ray]')
"""


def add_parsers(sub: Any) -> None:
    batch = sub.add_parser("batch", help="paint many photos: folders, globs or a manifest; resumable",
                           epilog=EXAMPLES_BATCH, formatter_class=argparse.RawDescriptionHelpFormatter,
                           description="Paint every INPUT (files, folders searched recursively, glob patterns) "
                                       "into OUTDIR as <photo>__<style>.png. The network stays loaded and each "
                                       "style's statistics are computed once per size. A results file in OUTDIR "
                                       "records every job; running the same command again skips the pictures "
                                       "already painted with the same settings and redoes the rest.")
    batch.add_argument("inputs", metavar="INPUT", nargs="*", help="photos: files, folders or glob patterns")
    batch.add_argument("--style", dest="styles", nargs="+", metavar="STYLE", help="one or more style images")
    batch.add_argument("--style-weights", type=floats, metavar="W,..", help="blend of several styles")
    batch.add_argument("--model", metavar="PATH",
                       help="paint every photo with a trained model (impasto train) in one pass instead of "
                            "optimizing; photos keep their size unless --max-size/--size is given")
    batch.add_argument("--each-style", action="store_true",
                       help="paint every photo in every style on its own (instead of one blend)")
    batch.add_argument("--manifest", metavar="FILE",
                       help="a .csv (with a header) or .jsonl file, one job per row: content, styles (';' "
                            "between several), output, style_weights and any recipe option as a column")
    recipe_options(batch, video=False)
    o = batch.add_argument_group("output and progress")
    o.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="folder for the pictures")
    o.add_argument("--format", choices=sorted({ext.lstrip(".") for ext in OUTPUT_FORMATS}), default="png",
                   help="file type of the outputs (default png)")
    o.add_argument("--bit-depth", type=int, choices=(8, 16), default=8, help="16 for PNG/TIFF")
    o.add_argument("--force", action="store_true", help="repaint every job, even those already done")
    progress_options(o)
    w = batch.add_argument_group("where the work runs")
    w.add_argument("--workers", type=int, metavar="N",
                   help="worker processes on this machine (torch threads are shared out between them); "
                        "with --ray, the number of Ray workers (default: one per CPU)")
    w.add_argument("--ray", metavar="auto|ADDRESS",
                   help="run on a Ray cluster: auto joins the running one or starts a local one")
    w.add_argument("--ray-gpus-per-worker", type=float, default=0.0, metavar="G",
                   help="GPUs each Ray worker reserves (e.g. 1, or 0.5 to share one GPU between two)")
    w.add_argument("--ray-threads-per-worker", type=int, metavar="N", help="CPUs (torch threads) per Ray worker")
    batch.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..reporting import BatchReporter
    from ..scale.batch import BatchRunner
    from ..scale.jobs import expand_inputs, plan_jobs, read_manifest

    recipe = recipe_from_args(args)
    extension = f".{args.format}"
    shrink = args.max_size is not None
    if args.model is not None:
        _check_model_options(args)
    if args.manifest:
        if args.inputs:
            raise UsageError("give either INPUT… or --manifest, not both")
        jobs = read_manifest(args.manifest, recipe, extension, model=args.model, shrink=shrink)
    else:
        if not args.inputs:
            raise UsageError("no INPUT: give photos (files, folders or patterns) or --manifest FILE")
        if not args.styles and args.model is None:
            raise UsageError("--style: give one or more style images (or --model PATH)")
        jobs = plan_jobs(expand_inputs(args.inputs), args.styles or (), recipe, each_style=args.each_style,
                         style_blend=args.style_weights, extension=extension, model=args.model, shrink=shrink)
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers {args.workers}: use a whole number from 1")
    reporter = BatchReporter(len(jobs), quiet=args.quiet, json_log=args.json_log)
    executor = _executor(args)
    try:
        summary = BatchRunner(jobs, args.output, executor=executor, bit_depth=args.bit_depth, force=args.force,
                              on_event=reporter).run()
    except KeyboardInterrupt:
        raise KeyboardInterrupt("finished pictures are kept; run the same command again to continue") from None
    finally:
        reporter.close()
        executor.close()
    reporter.summary(summary)
    return 1 if summary.failed else 0


def _check_model_options(args: argparse.Namespace) -> None:
    """``--model``: no styles, no optimization options, and a readable model file (checked once here
    rather than failing every job)."""
    from ..feedforward.model import read_model_info
    from ..feedforward.picture import refused_fields
    from .options import RECIPE_FIELDS, flag

    if args.styles:
        raise UsageError(f"--model paints in the model's style; give no --style ({args.styles[0]!r})")
    given = {name: getattr(args, name) for name in RECIPE_FIELDS if getattr(args, name, None) is not None}
    refused = [flag(n) for n in refused_fields(given)]
    refused += [flag(n) for n in ("style_weights",) if getattr(args, n, None) is not None]
    refused += ["--each-style"] if args.each_style else []
    if refused:
        raise UsageError(f"{', '.join(refused)}: not used with --model (a model paints in one pass; these options "
                         "belong to an optimization)")
    read_model_info(args.model)


def _executor(args: argparse.Namespace) -> Any:
    if args.ray:
        from ..scale.ray_backend import RayExecutor

        return RayExecutor(args.ray, workers=args.workers, gpus_per_worker=args.ray_gpus_per_worker,
                           threads_per_worker=args.ray_threads_per_worker)
    if args.workers and args.workers > 1:
        from ..scale.processes import ProcessExecutor

        return ProcessExecutor(args.workers)
    from ..scale.executor import LocalExecutor

    return LocalExecutor()

