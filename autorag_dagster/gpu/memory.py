"""Which device a model runs on, and giving its memory back: the one home for both."""

from __future__ import annotations

import gc
import sys

from pydantic import BaseModel, Field


class ComputeConfig(BaseModel):
    """CPU threads of the in-process models (torch, CTranslate2): more than the free cores stalls them."""

    cpu_threads: int = Field(1, ge=1, le=256, description="Threads for torch / CTranslate2 on CPU.")


def torch_cuda_available() -> bool:
    """True when torch sees a CUDA device (torch is imported only when asked)."""
    import torch

    return torch.cuda.is_available()


def ctranslate2_cuda_available() -> bool:
    """True when CTranslate2 (faster-whisper's engine) sees a CUDA device."""
    import ctranslate2

    try:
        return ctranslate2.get_cuda_device_count() > 0
    except RuntimeError:
        return False


def pick_device(requested: str = "auto", *, cuda_available=torch_cuda_available) -> str:
    """``cuda`` or ``cpu``: ``auto`` takes the GPU when ``cuda_available()`` says there is one."""
    if requested == "auto":
        return "cuda" if cuda_available() else "cpu"
    return requested


def release_memory() -> None:
    """Collect garbage and empty torch's CUDA cache, if torch is in use in this process at all."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def configure_torch(threads: int) -> None:
    """Few threads and flushed denormals: on a small CPU this is the difference between
    seconds and minutes for the LSTM-based models."""
    import torch

    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
