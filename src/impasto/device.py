"""Choosing the compute device."""

from __future__ import annotations

import functools

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


PRECISIONS = ("auto", "fp32", "bf16")


#: Above this many output pixels glibc keeps its defaults: a heap that keeps every freed block
#: of a tiled multi-megapixel run fragments, and peak memory matters more there than the
#: page faults saved.
LARGE_BUFFER_PIXELS = 1536 * 1152


def configure_backends(device: torch.device, pixels: int = 0) -> None:
    """Speed settings for the device of a run.

    CUDA: TF32 matmuls/convolutions, and cuDNN autotuning for outputs of ``pixels`` ≥ 1 megapixel
    (below that, tuning every scale's shapes costs more than it saves). CPU: see
    :func:`keep_large_buffers` (only up to :data:`LARGE_BUFFER_PIXELS`).
    """
    if device.type == "cpu" and pixels <= LARGE_BUFFER_PIXELS:
        keep_large_buffers()
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = pixels >= 1024 * 1024


def compute_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The dtype the network runs in for ``precision`` on ``device`` (None: plain fp32).

    ``auto`` picks bfloat16 where it is supported and fast (CUDA GPUs with bf16, CPUs with native
    bf16 instructions: see :func:`cpu_has_native_bf16`) and fp32 elsewhere. Losses
    and the image itself always stay in fp32.
    """
    if precision == "fp32" or device.type == "mps":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision != "auto":
        raise UsageError(f"precision {precision!r}: use auto, fp32 or bf16")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if cpu_has_native_bf16() else None


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 in hardware (AVX512-BF16 or AMX-BF16) and oneDNN uses it.

    There bf16 convolutions run about 1.6x faster than fp32; elsewhere (AVX2, plain AVX-512)
    oneDNN emulates bf16 and it is slower. The choice depends on the CPU alone, never on a
    timing, so every process on a machine (a batch's workers, a rerun) paints the same pixels.
    """
    try:
        capabilities = torch.cpu.get_capabilities()
        if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return False
    except (AttributeError, RuntimeError):
        return False
    return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))


@functools.lru_cache(maxsize=1)
def keep_large_buffers() -> bool:
    """Ask glibc to keep freed large blocks instead of returning them to the system.

    Activations of a 512 px image are tens of megabytes each. glibc serves blocks above its mmap
    threshold (at most 32 MB) with fresh mappings and unmaps them on free, so every optimization
    step would fault hundreds of megabytes of new pages in again: about a fifth of a step's time
    on a 2-core CPU. Raising the mmap and trim thresholds to 1 GiB keeps those pages in the heap.
    The process's memory is then handed back to the system later than it would be. Returns
    whether the setting was applied (only with glibc; elsewhere nothing happens).
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        mmap_threshold, trim_threshold = -3, -1  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD in malloc.h
        return bool(libc.mallopt(mmap_threshold, 1 << 30)) and bool(libc.mallopt(trim_threshold, 1 << 30))
    except (OSError, AttributeError):
        return False
