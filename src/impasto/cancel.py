"""Cancelling a run from another thread."""

from __future__ import annotations

import threading


class CancelToken:
    """A flag a caller sets to stop a run after its current step.

    One token belongs to one run (or one video, or one batch): make a new one for each. A token
    cancelled before its run starts stops that run before its first step.
    """

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the run to stop after the current step; it returns its latest image."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def __repr__(self) -> str:
        return f"CancelToken(cancelled={self.cancelled})"
