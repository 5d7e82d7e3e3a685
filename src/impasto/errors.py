"""Errors that impasto reports to users.

Every error carries a one-line message that names the file or value at fault. The CLI maps
:class:`UsageError` to exit status 2 and every other :class:`ImpastoError` to exit status 1.
"""

from __future__ import annotations

from typing import Any


class ImpastoError(Exception):
    """Base class of the errors impasto reports to users (runtime problems, exit status 1)."""

    exit_code = 1


class UsageError(ImpastoError, ValueError):
    """A parameter or argument is invalid (exit status 2).

    When the fault lies in one recipe field, ``field`` names it (``"max_size"``) and ``detail``
    says what is wrong without the name (``"0 must be at least 32"``), so that each interface
    can name the value as its users typed it (:meth:`named`): the CLI its flag, the web page its
    setting, the Python API its keyword argument.
    """

    exit_code = 2

    def __init__(self, message: str, *, field: str | None = None, detail: str | None = None):
        super().__init__(message)
        self.field = field
        self.detail = detail

    def named(self, label: str) -> UsageError:
        """The same error, naming the value ``label`` (``"--max-size"``) instead of its field."""
        if self.detail is None:
            return self
        return UsageError(f"{label}: {self.detail}", field=self.field, detail=self.detail)


def field_error(field: str, detail: str) -> UsageError:
    """A :class:`UsageError` about recipe field ``field``: ``"field: detail"``."""
    return UsageError(f"{field}: {detail}", field=field, detail=detail)


class ImageError(ImpastoError):
    """An input image cannot be read, or an output image cannot be written."""


class WeightsError(ImpastoError):
    """The VGG19 weight file is missing, corrupt, of an unknown layout or has the wrong hash."""


class OutOfMemoryError(ImpastoError):
    """A run needed more memory than the device had; the message says what to lower."""


class DivergedError(ImpastoError):
    """The loss became NaN or infinite; ``last_good`` holds the image of the last finite step."""

    def __init__(self, message: str, last_good: Any = None, step: int = 0):
        super().__init__(message)
        self.last_good = last_good
        self.step = step


#: Fragments of the messages PyTorch's allocators raise (as plain RuntimeError on the CPU).
_ALLOCATION_FAILURES = ("can't allocate memory", "alloc_cpu", "out of memory", "not enough memory",
                        "failed to allocate")


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is an allocation failure: Python's, CUDA's or the CPU allocator's.

    PyTorch raises ``torch.OutOfMemoryError`` on CUDA but a plain ``RuntimeError`` ("[enforce
    fail at alloc_cpu.cpp:...] DefaultCPUAllocator: can't allocate memory") on the CPU, so the
    CPU case can only be told by its message.
    """
    if isinstance(error, (MemoryError, OutOfMemoryError)):
        return True
    if type(error).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError, without importing torch
        return True
    if isinstance(error, RuntimeError):
        text = str(error).lower()
        return any(fragment in text for fragment in _ALLOCATION_FAILURES)
    return False
