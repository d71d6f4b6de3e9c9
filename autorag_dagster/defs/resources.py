"""Dagster resources: the Ollama client and the GPU tenancy, configured from the settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field

from autorag_dagster.core.diarize import Diarizer, make_diarizer
from autorag_dagster.core.transcribe import Transcriber
from autorag_dagster.ollama import GpuTenancy, OllamaClient
from autorag_dagster.settings import Settings


class OllamaResource(ConfigurableResource):
    """Where Ollama answers and the request contract every LLM call follows.

    The fields are the AUTORAG_* settings of the same name.
    """

    ollama_base_url: str = "http://localhost:11434"
    llm_model: str = "gemma4:latest"
    embed_model: str = "nomic-embed-text"
    num_ctx: int = 8192
    num_ctx_l1: int | None = Field(None, description="Larger context for the level-1 stage; costs one reload.")
    keep_alive: str = Field("5m", description="A duration such as '5m', or seconds such as '300' or '-1'.")
    max_concurrency: int = 8
    request_timeout: float = 600.0
    request_retries: int = 3
    validation_retries: int = 2
    llm_temperature: float = 0.0
    llm_max_output_tokens: int = 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> OllamaResource:
        values = {name: getattr(settings, name) for name in cls.model_fields}
        return cls(**{**values, "keep_alive": str(settings.keep_alive)})

    @property
    def required_models(self) -> list[str]:
        return [self.llm_model, self.embed_model]

    def get_client(self, **overrides: Any) -> OllamaClient:
        """A new client; ``overrides`` replace constructor arguments (e.g. a short ``timeout``)."""
        return OllamaClient.from_settings(self, **overrides)


class GpuResource(ConfigurableResource):
    """Hands a step its GPU tenancy; the Dagster pool ``gpu`` serialises GPU steps across runs."""

    def tenancy(self, client: OllamaClient, log: Callable[[str], Any] | None = None) -> GpuTenancy:
        return GpuTenancy(client, log=log)


class StorageResource(ConfigurableResource):
    """Where audio is read from and every result is written."""

    audio_dir: str = "audio"
    data_dir: str = "data"
    lancedb_uri: str | None = Field(None, description="LanceDB URI; default <data_dir>/lancedb (s3://... works).")

    @classmethod
    def from_settings(cls, settings: Settings) -> StorageResource:
        return cls(audio_dir=str(settings.audio_dir), data_dir=str(settings.data_dir), lancedb_uri=settings.lancedb_uri)

    @property
    def lancedb_location(self) -> str:
        return self.lancedb_uri or str(Path(self.data_dir) / "lancedb")

    @property
    def cache_dir(self) -> Path:
        """Content-addressed LLM answers: an unchanged file is re-materialised with zero LLM calls."""
        return Path(self.data_dir) / "cache" / "llm"

    @property
    def viz_dir(self) -> Path:
        return Path(self.data_dir) / "viz"


class SpeechResource(ConfigurableResource):
    """Whisper and diarizer configuration (the fields are the AUTORAG_* settings of the same name)."""

    whisper_model: str = "tiny.en"
    whisper_device: str = "auto"
    whisper_compute_type: str = "default"
    whisper_batch_size: int = 0
    whisper_language: str | None = None
    diarizer: str = "resemblyzer"
    pyannote_pipeline: str = "pyannote/speaker-diarization-community-1"
    min_speakers: int = 1
    max_speakers: int = 6
    cpu_threads: int = 1

    @classmethod
    def from_settings(cls, settings: Settings) -> SpeechResource:
        return cls(**{name: getattr(settings, name) for name in cls.model_fields})

    def new_transcriber(self) -> Transcriber:
        return Transcriber.from_settings(self)

    def new_diarizer(self) -> Diarizer:
        return make_diarizer(self)
