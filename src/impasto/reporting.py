"""Progress reporting for runs: a progress bar, loss lines, JSON lines and sample images.

These are progress callbacks for :meth:`impasto.optimize.engine.Stylizer.run` (per step) and for
:func:`impasto.video.stylize_video` (per frame: :class:`FrameReporter`); the CLI combines them.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .errors import ImageError
from .images import save_image
from .optimize import Progress

if TYPE_CHECKING:
    from tqdm import tqdm

    from .video.progress import FrameProgress


def _losses_text(losses: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in losses.items() if k != "tv" or v)


class SampleSaver:
    """Writes the current image to ``folder/step_00040.png`` every ``every`` steps."""

    def __init__(self, folder: str | Path, every: int):
        self.folder = Path(folder)
        self.every = every
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ImageError(f"samples folder {str(self.folder)!r}: cannot be created "
                             f"({exc.strerror or exc})") from None
        self.written: list[Path] = []

    def __call__(self, progress: Progress) -> None:
        if self.every and progress.step % self.every == 0:
            path = self.folder / f"step_{progress.step:05d}.png"
            save_image(progress.image(), path)
            self.written.append(path)


class LineReporter:
    """What the command-line reporters share: a tqdm bar (``self.bar``), ``close`` and ``message``."""

    def __init__(self, *, quiet: bool = False, json_log: bool = False, stream: TextIO | None = None):
        self.quiet = quiet
        self.json_log = json_log
        self.stream = stream or sys.stdout
        self.bar: tqdm[Any] | None = None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def message(self, text: str, **fields: Any) -> None:
        """A final or informational line (as JSON with ``json_log``)."""
        if self.quiet:
            return
        if self.json_log:
            print(json.dumps({"event": fields.pop("event", "info"), "message": text, **fields}, default=str),
                  file=self.stream, flush=True)
        else:
            print(text, file=self.stream, flush=True)


class ConsoleReporter(LineReporter):
    """A tqdm progress bar (step, losses, ETA) and a loss line every ``log_every`` steps.

    With ``json_log`` it prints one JSON object per logged step instead and no bar; with
    ``quiet`` it prints nothing.
    """

    def __init__(self, *, log_every: int = 20, quiet: bool = False, json_log: bool = False,
                 stream: TextIO | None = None):
        super().__init__(quiet=quiet, json_log=json_log, stream=stream)
        self.log_every = log_every

    def __call__(self, progress: Progress) -> None:
        if self.quiet:
            return
        logged = self.log_every and (progress.step % self.log_every == 0 or progress.step == progress.total_steps)
        if self.json_log:
            if logged:
                record = {"event": "step", "step": progress.step, "total_steps": progress.total_steps,
                          "scale": progress.scale, "scales": progress.scales, "size": list(progress.size),
                          "losses": progress.losses, "elapsed_s": round(progress.elapsed, 3),
                          "eta_s": None if progress.eta is None else round(progress.eta, 1)}
                print(json.dumps(record), file=self.stream, flush=True)
            return
        bar = self._bar(progress.total_steps)
        eta = "" if progress.eta is None else f"ETA {progress.eta:.0f}s "
        bar.set_postfix_str(f"{eta}scale {progress.scale}/{progress.scales} {progress.size[0]}x{progress.size[1]} "
                            + _losses_text(progress.losses), refresh=False)
        bar.update(progress.step - bar.n)
        if logged:
            bar.write(f"step {progress.step:5d}/{progress.total_steps}  {_losses_text(progress.losses)}",
                      file=self.stream)

    def _bar(self, total: int) -> tqdm[Any]:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="step", dynamic_ncols=True, leave=False, file=sys.stderr, disable=None,
                            bar_format="{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}]{postfix}")
        return self.bar


class BatchReporter(LineReporter):
    """One bar over a batch's jobs (done, failed, ETA) and, in one process, the current job's steps.

    With ``json_log`` one JSON line per finished job (and the summary) instead; with ``quiet``
    nothing but the failures' lines.
    """

    def __init__(self, total: int, *, quiet: bool = False, json_log: bool = False, stream: TextIO | None = None):
        super().__init__(quiet=quiet, json_log=json_log, stream=stream)
        self.total = total
        self.failed = 0
        self.steps: tqdm[Any] | None = None

    def __call__(self, event: Any) -> None:
        """Take a :class:`~impasto.scale.batch.JobEvent`."""
        if event.status == "step":
            self._step(event.progress)
            return
        if event.status == "failed":
            self.failed += 1
        if self.json_log and not self.quiet:
            print(json.dumps({"event": "job", "status": event.status, "input": event.job.content,
                              "output": event.job.output, "seconds": round(event.seconds, 3), "error": event.error}),
                  file=self.stream, flush=True)
            return
        if event.status == "failed":
            self._write(f"failed: {event.job.output}: {event.error}", always=True)
        if self.quiet:
            return
        if self.steps is not None:
            self.steps.reset()
        bar = self._jobs_bar()
        bar.set_postfix_str(f"{self.failed} failed" if self.failed else "", refresh=False)
        bar.update(1)

    def _jobs_bar(self) -> tqdm[Any]:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, unit="job", dynamic_ncols=True, file=sys.stderr, disable=None,
                            position=0, bar_format="jobs {n_fmt}/{total_fmt} |{bar}| [{elapsed}<{remaining}]"
                                                   "{postfix}")
        return self.bar

    def _step(self, progress: Progress | None) -> None:
        if self.quiet or self.json_log or progress is None:
            return
        self._jobs_bar()
        if self.steps is None:
            from tqdm import tqdm

            self.steps = tqdm(total=progress.total_steps, unit="step", dynamic_ncols=True, leave=False,
                              file=sys.stderr, disable=None, position=1,
                              bar_format="  this picture {n_fmt}/{total_fmt} |{bar}|")
        self.steps.total = progress.total_steps
        self.steps.update(progress.step - self.steps.n)

    def _write(self, text: str, always: bool = False) -> None:
        if self.quiet and not always:
            return
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.steps is not None:
            self.steps.close()
            self.steps = None
        super().close()

    def summary(self, summary: Any) -> None:
        """The closing line: how many jobs were painted, failed and skipped, and where the results are."""
        text = (f"{summary.done} painted, {summary.failed} failed, {summary.skipped} skipped "
                f"(already done) in {summary.elapsed:.1f} s; results in {summary.results}")
        self.message(text, event="summary", done=summary.done, failed=summary.failed, skipped=summary.skipped,
                     elapsed_s=round(summary.elapsed, 3), results=str(summary.results))



class FrameReporter(LineReporter):
    """Per-frame progress for the command line: a tqdm bar over frames with the ETA, and a
    line per frame (at most one a second for frames that take less), or one JSON object per frame
    with ``json_log``; nothing with ``quiet``."""

    _last_line = -math.inf

    def __call__(self, p: FrameProgress) -> None:
        if self.quiet:
            return
        if self.json_log:
            record = {"event": "frame", "frame": p.index, "done": p.done, "total": p.total, "cached": p.cached,
                      "seconds": round(p.seconds, 3), "elapsed_s": round(p.elapsed, 3),
                      "eta_s": None if p.eta is None else round(p.eta, 1), "steps": p.steps,
                      "losses": p.losses, "warping_error": p.warping_error, "trusted": p.trusted,
                      "path": str(p.path)}
            print(json.dumps(record), file=self.stream, flush=True)
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=p.total, unit="frame", dynamic_ncols=True, leave=False, file=sys.stderr,
                            disable=None,
                            bar_format="{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}]{postfix}")
        eta = "" if p.eta is None else f"ETA {duration_text(p.eta)} "
        rate = f"{1 / p.seconds:.1f} frames/s" if 0 < p.seconds < 1 else f"{p.seconds:.1f} s/frame"
        self.bar.set_postfix_str(f"{eta}{rate}", refresh=False)
        self.bar.update(p.done - self.bar.n)
        # fast frames (a trained model's) would print dozens of lines a second: one a second is enough
        now = time.monotonic()
        last = p.total is not None and p.done >= p.total
        if p.seconds < 1 and not p.cached and not last and now - self._last_line < 1.0:
            return
        self._last_line = now
        total = "?" if p.total is None else p.total
        work = f"{p.seconds:6.3f} s" if p.seconds < 1 else f"{p.seconds:6.1f} s"
        state = "cached" if p.cached else work + (f", {p.steps} steps" if p.steps else "")
        flicker = "" if p.warping_error is None else f"  warping error {p.warping_error:.2e}"
        self.bar.write(f"frame {p.index:4d}/{total}  {state}{flicker}"
                       + ("" if p.eta is None else f"  ETA {duration_text(p.eta)}"), file=self.stream)


def duration_text(seconds: float) -> str:
    """``42s``, ``3m07s`` or ``2h05m``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class TrainReporter(LineReporter):
    """Training progress for the command line: a tqdm bar over steps (crop size, losses, seconds per
    step, ETA) and a loss line every ``log_every`` steps; one JSON object per logged step with
    ``json_log``; nothing with ``quiet``. Takes a :class:`~impasto.feedforward.trainer.TrainProgress`."""

    def __init__(self, *, log_every: int = 20, quiet: bool = False, json_log: bool = False,
                 stream: TextIO | None = None):
        super().__init__(quiet=quiet, json_log=json_log, stream=stream)
        self.log_every = log_every

    def __call__(self, p: Any) -> None:
        if self.quiet:
            return
        logged = self.log_every and (p.step % self.log_every == 0 or p.step == p.total_steps)
        if self.json_log:
            if logged:
                print(json.dumps({"event": "step", "step": p.step, "total_steps": p.total_steps, "crop": p.crop,
                                  "batch_size": p.batch_size, "losses": p.losses, "lr": p.lr,
                                  "seconds_per_step": round(p.seconds_per_step, 4),
                                  "elapsed_s": round(p.elapsed, 3),
                                  "eta_s": None if p.eta is None else round(p.eta, 1)}), file=self.stream, flush=True)
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=p.total_steps, initial=p.resumed_from, unit="step", dynamic_ncols=True, leave=False,
                            file=sys.stderr, disable=None,
                            bar_format="{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}]{postfix}")
        eta = "" if p.eta is None else f"ETA {duration_text(p.eta)} "
        self.bar.set_postfix_str(f"{eta}{p.crop}px {p.seconds_per_step:.2f} s/step " + _losses_text(p.losses),
                                 refresh=False)
        self.bar.update(p.step - self.bar.n)
        if logged:
            left = "" if p.eta is None else f"  ETA {duration_text(p.eta)}"
            self.bar.write(f"step {p.step:6d}/{p.total_steps}  {p.crop}px  lr {p.lr:.2e}  {_losses_text(p.losses)}"
                           f"  {p.seconds_per_step:.2f} s/step{left}", file=self.stream)
