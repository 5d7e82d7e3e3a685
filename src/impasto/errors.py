"""Errors that impasto reports to users.

Every error carries a one-line message that names the file or value at fault. The CLI maps
:class:`UsageError` to exit status 2 and every other :class:`ImpastoError` to exit status 1.
"""

from __future__ import annotations


class ImpastoError(Exception):
    """Base class of the errors impasto reports to users (runtime problems, exit status 1)."""

    exit_code = 1


class UsageError(ImpastoError, ValueError):
    """A parameter or argument is invalid (exit status 2)."""

    exit_code = 2


class ImageError(ImpastoError):
    """An input image cannot be read, or an output image cannot be written."""


class WeightsError(ImpastoError):
    """The VGG19 weight file is missing, corrupt, of an unknown layout or has the wrong hash."""


class DivergedError(ImpastoError):
    """The loss became NaN or infinite; ``last_good`` holds the image of the last finite step."""

    def __init__(self, message: str, last_good=None, step: int = 0):
        super().__init__(message)
        self.last_good = last_good
        self.step = step
