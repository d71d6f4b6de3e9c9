"""The thin Dagster layer: assets call the core, resources hold the clients."""

from __future__ import annotations

import warnings

from dagster import (
    BetaWarning,
    Definitions,
    LoggerDefinition,
    PreviewWarning,
    load_asset_checks_from_modules,
    load_assets_from_modules,
    multiprocess_executor,
)

from autorag_dagster.settings import Settings, get_settings


def build_definitions(
    settings: Settings | None = None, loggers: dict[str, LoggerDefinition] | None = None
) -> Definitions:
    """Everything the code location serves, configured from ``settings`` (default: the environment).

    ``loggers`` adds Dagster loggers to every job (the main job's log file and progress line)."""
    # Single-run backfills and partitioned asset checks are deliberate choices (one model load per
    # run; checks per file); Dagster flags them as beta/preview where they are defined (in the modules
    # _build_definitions imports) and built. Those two warnings are silenced here, not process-wide.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=BetaWarning)
        warnings.filterwarnings("ignore", category=PreviewWarning)
        return _build_definitions(settings, loggers)


def gpu_serial_executor():
    """Dagster's multiprocess executor (the default for runs the daemon launches), with at most one
    GPU step of a run at a time. A run holds one GPU; the pool `gpu` limits GPU steps across runs,
    but its limit is the number of GPUs (1 on one box, one per GPU node on Kubernetes), so within a
    run the executor keeps Whisper, the diarizer, the LLM and the embedder from overlapping.
    (``execute_in_process``, the embedded runner's way, runs steps one by one anyway.)"""
    from autorag_dagster.defs.assets.common import GPU_TAG

    return multiprocess_executor.configured(
        {"tag_concurrency_limits": [{"key": GPU_TAG, "value": "true", "limit": 1}]}, name="gpu_serial_multiprocess"
    )


def _build_definitions(settings: Settings | None, loggers: dict[str, LoggerDefinition] | None) -> Definitions:
    from autorag_dagster.defs import checks, jobs, library, schedules, sensors
    from autorag_dagster.defs.assets import search, speech, topics, viz, voices
    from autorag_dagster.defs.io import PartitionedModelIOManager
    from autorag_dagster.defs.resources import (
        GpuResource,
        OllamaResource,
        SpeechResource,
        StorageResource,
        VoicesResource,
    )

    settings = settings or get_settings()
    ollama = OllamaResource.from_settings(settings)
    return Definitions(
        loggers=loggers,
        executor=gpu_serial_executor(),
        assets=load_assets_from_modules([speech, topics, search, viz, voices]),
        asset_checks=load_asset_checks_from_modules([checks]),
        jobs=[jobs.process_audio, library.tidy_library],
        sensors=[sensors.ollama_models_ready, sensors.audio_folder_sensor, sensors.speaker_names_sensor],
        schedules=[schedules.nightly_backfill_schedule(settings.backfill_cron)],
        resources={
            "model_io": PartitionedModelIOManager(data_dir=str(settings.data_dir)),
            "storage": StorageResource.from_settings(settings),
            "speech": SpeechResource.from_settings(settings),
            "voice_clustering": VoicesResource.from_settings(settings),
            "ollama": ollama,
            "gpu": GpuResource(ollama=ollama),
        },
    )
