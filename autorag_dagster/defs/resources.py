"""Dagster resources: they carry the typed configs of the core and hand out what is built from them.

Each resource's fields are exactly the fields of one core config (declared there once, with
defaults and validation); ``config`` gives the typed config back, and the core is built from it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster import (
    AssetExecutionContext,
    ConfigurableResource,
    DagsterInstance,
    DagsterRun,
    Failure,
    InitResourceContext,
    MetadataValue,
)

from autorag_dagster.core.diarize import Diarizer, DiarizerConfig, make_diarizer
from autorag_dagster.core.transcribe import Transcriber, WhisperConfig
from autorag_dagster.core.voices import VoicesConfig
from autorag_dagster.gpu import GpuTenancy
from autorag_dagster.ollama import OllamaClient, Readiness, check_models
from autorag_dagster.ollama.config import OllamaConfig
from autorag_dagster.settings import Settings, StorageConfig

READINESS_TIMEOUT_S = 10.0
PER_FILE_JOB = "process_audio"
# The steps that call a model of the server (an asset's step is named as the asset; a check's
# step after its asset and itself); a run that executes none of them needs no model.
LLM_STEPS = frozenset({"topic_tree"})
EMBEDDER_STEPS = frozenset({"embeddings", "embeddings_embeddings_rows_valid"})


def _values(resource: ConfigurableResource, config: type) -> dict[str, Any]:
    return {name: getattr(resource, name) for name in config.model_fields}


def readiness(ollama: OllamaResource, models: list[str] | None = None) -> Readiness:
    """Whether ``models`` (default: every required model) are pulled; the message the readiness
    sensor shows, the folder sensor skips with and a run that needs a missing model fails with."""
    with ollama.get_client(timeout=READINESS_TIMEOUT_S, request_retries=0) as client:
        return check_models(client, ollama.required_models if models is None else models)


def run_steps(instance: DagsterInstance | None, run: DagsterRun) -> set[str] | None:
    """The steps ``run`` will execute (the asset steps are named as their assets), from its
    execution plan; None when the plan is not known."""
    if run.step_keys_to_execute:
        return set(run.step_keys_to_execute)
    if instance is None or not run.execution_plan_snapshot_id:
        return None
    plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
    if plan is None:
        return None
    return set(plan.step_keys_to_execute or (step.key for step in plan.steps))


def models_for_run(ollama: OllamaResource, job_name: str, steps: set[str] | None) -> list[str]:
    """The models a run calls: the LLM when it executes ``topic_tree``, the embedder for
    ``embeddings`` (or its rows check); a per-file job run whose steps are not known needs both."""
    if steps is None:
        return list(ollama.required_models) if job_name == PER_FILE_JOB else []
    needed = ((ollama.llm_model, LLM_STEPS), (ollama.embed_model, EMBEDDER_STEPS))
    return [model for model, calling in needed if steps & calling]


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

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Gate every run, however launched (sensor, UI, backfill): a run that will call a model
        the server has not pulled fails here, before its GPU steps start, with the readiness
        sensor's message, instead of at ``topic_tree`` after Whisper and the diarizer ran."""
        run = context.run
        if run is None:  # a sensor's or a schedule's evaluation, not a run
            return
        models = models_for_run(self, run.job_name, run_steps(context.instance, run))
        if not models:
            return
        found = readiness(self, models)
        if not found.ready:
            raise Failure(description=f"This run needs {', '.join(models)}. {found.message}", allow_retries=False)


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
