"""A task function for the Ray tests that kills its worker once: imported by the Ray workers."""

from __future__ import annotations

import os
from pathlib import Path

from impasto.scale.paint import paint


def die_once_then_paint(stylizer, task):
    """The first call anywhere (marked by a file named in IMPASTO_TEST_DIE_MARKER) kills its process."""
    marker = Path(os.environ["IMPASTO_TEST_DIE_MARKER"])
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os._exit(1)  # a worker dying mid-job, as the OOM killer would leave it
    return paint(stylizer, task)
