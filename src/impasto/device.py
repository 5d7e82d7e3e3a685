"""Choosing the compute device."""

from __future__ import annotations

import torch

from .errors import ImpastoError, UsageError


def select_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; a named device must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ImpastoError("device cuda: no CUDA GPU is available to this PyTorch build; use --device cpu")
        return torch.device("cuda")
    if name == "mps":
        if not _mps_available():
            raise ImpastoError("device mps: Apple Metal is not available here; use --device cpu")
        return torch.device("mps")
    raise UsageError(f"device {name!r}: use auto, cpu, cuda or mps")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())
