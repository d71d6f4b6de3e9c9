"""Dagster resources: they carry the typed configs of the core and hand out what is built from them.

Each resource's fields are exactly the fields of one core config (declared there once, with
defaults and validation); ``config`` gives the typed config back, and the core is built from it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster import AssetExecutionContext, ConfigurableResource, MetadataValue

from autorag_dagster.core.diarize import Diarizer, DiarizerConfig, make_diarizer
from autorag_dagster.core.transcribe import Transcriber, WhisperConfig
from autorag_dagster.core.voices import VoicesConfig
from autorag_dagster.gpu import GpuTenancy
from autorag_dagster.ollama import OllamaClient
from autorag_dagster.ollama.config import OllamaConfig
from autorag_dagster.settings import Settings, StorageConfig


def _values(resource: ConfigurableResource, config: type) -> dict[str, Any]:
    return {name: getattr(resource, name) for name in config.model_fields}


class OllamaResource(ConfigurableResource, OllamaConfig):
    """Where Ollama answers and the request contract every LLM call follows (``OllamaConfig``),
    plus ``num_ctx_l1`` of the topic stages."""

    num_ctx_l1: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> OllamaResource:
        return cls(**settings.ollama_config.model_dump(), num_ctx_l1=settings.num_ctx_l1)

    @property
    def config(self) -> OllamaConfig:
        return OllamaConfig(**_values(self, OllamaConfig))

    def get_client(self, **overrides: Any) -> OllamaClient:
        """A new client; ``overrides`` replace constructor arguments (e.g. a short ``timeout``)."""
        return OllamaClient.from_config(self.config, **overrides)


class GpuResource(ConfigurableResource):
    """Hands a step its GPU tenancy and records the tenancy's timeline in the step's metadata.

    Within a run the tenancy keeps one tenant on the card at a time; across runs the Dagster
    pool ``gpu`` serialises GPU steps.
    """

    ollama: OllamaResource

    @contextmanager
    def tenancy(self, context: AssetExecutionContext, client: OllamaClient | None = None) -> Iterator[GpuTenancy]:
        """A tenancy for this step (around ``client``, or a new client of the Ollama resource);
        its timeline lands in the step's metadata as ``gpu_timeline`` when the block ends."""
        tenancy = GpuTenancy(client or self.ollama.get_client(), log=context.log.info)
        try:
            yield tenancy
        finally:
            context.add_output_metadata({"gpu_timeline": MetadataValue.md(tenancy.timeline_markdown())})

    @contextmanager
    def tenant(
        self, context: AssetExecutionContext, name: str, client: OllamaClient | None = None
    ) -> Iterator[GpuTenancy]:
        """Hold the card as ``name`` (``whisper``, ``diarizer``, ``embedder``) for the block."""
        with self.tenancy(context, client) as tenancy, tenancy.tenant(name):
            yield tenancy


class StorageResource(ConfigurableResource, StorageConfig):
    """Where audio is read from and every result is written (``StorageConfig``; paths from ``layout``)."""

    def speaker_names(self):
        """What the user's ``speakers.yaml`` says (``core.speakers.SpeakerNames``)."""
        from autorag_dagster.core.speakers import read_speakers

        return read_speakers(self.speakers_file)

    @classmethod
    def from_settings(cls, settings: Settings) -> StorageResource:
        return cls(**settings.storage_config.model_dump())


class VoicesResource(ConfigurableResource, VoicesConfig):
    """How voices are clustered into library-wide identities (``VoicesConfig``)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> VoicesResource:
        return cls(**settings.voices_config.model_dump())

    @property
    def config(self) -> VoicesConfig:
        return VoicesConfig(**_values(self, VoicesConfig))


class SpeechResource(ConfigurableResource, WhisperConfig, DiarizerConfig):
    """Whisper and diarizer configuration (``WhisperConfig`` and ``DiarizerConfig``)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> SpeechResource:
        return cls(**{**settings.whisper_config.model_dump(), **settings.diarizer_config.model_dump()})

    def new_transcriber(self) -> Transcriber:
        return Transcriber.from_config(WhisperConfig(**_values(self, WhisperConfig)))

    def new_diarizer(self) -> Diarizer:
        return make_diarizer(DiarizerConfig(**_values(self, DiarizerConfig)))
