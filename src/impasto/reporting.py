"""Progress reporting for runs: a progress bar, loss lines, JSON lines and sample images.

These are progress callbacks for :meth:`impasto.optimize.engine.Stylizer.run`; the CLI combines them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .errors import ImageError
from .images import save_image
from .optimize import Progress

if TYPE_CHECKING:
    from tqdm import tqdm


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

