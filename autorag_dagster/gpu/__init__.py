"""The GPU: who holds the card (Whisper, the diarizer, the embedder, the LLM) and giving memory back."""

from autorag_dagster.gpu.memory import pick_device, release_memory
from autorag_dagster.gpu.tenancy import IN_PROCESS_TENANTS, TENANTS, GpuTenancy, TenancyError

__all__ = ["IN_PROCESS_TENANTS", "TENANTS", "GpuTenancy", "TenancyError", "pick_device", "release_memory"]
