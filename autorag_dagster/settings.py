"""Every knob of the project, read from ``AUTORAG_*`` environment variables and an optional ``.env``.

Each knob is declared once, with its default and validation, in the typed config of its
concern: ``OllamaConfig`` (the server, the models, the request contract), ``WhisperConfig``,
``DiarizerConfig``, ``VoicesConfig``, ``StorageConfig`` (below), ``AskConfig`` (``autorag ask``) and
``num_ctx_l1`` of ``TopicConfig``.
``Settings`` reads them all from the environment under their field names and hands each
concern its config (``settings.ollama_config``, ``settings.whisper_config``, ...); the Dagster resources
carry those configs and the core takes them typed.

``load_settings()`` is the one entry point: an invalid value fails at start-up with a message
that names the environment variable, never a pydantic traceback.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from autorag_dagster.core.ask_config import AskConfig
from autorag_dagster.core.diarize.base import DiarizerConfig
from autorag_dagster.core.speakers import SPEAKERS_FILE
from autorag_dagster.core.topics.stages import TopicConfig
from autorag_dagster.core.transcribe import WhisperConfig
from autorag_dagster.core.voices import VoicesConfig
from autorag_dagster.layout import DataLayout
from autorag_dagster.ollama.config import OllamaConfig

ENV_PREFIX = "AUTORAG_"

C = TypeVar("C", bound=BaseModel)


class StorageConfig(BaseModel):
    """Where audio is read from and every result is written (the layout below is ``DataLayout``)."""

    audio_dir: str = Field("audio", description="Root folder of audio files (one partition per file).")
    data_dir: str = Field("data", description="Where exports, caches, LanceDB and HTML land.")
    lancedb_uri: str | None = Field(None, description="LanceDB URI; default <data_dir>/lancedb. s3://... works.")
    backfill_cron: str = Field("0 2 * * *", description="When the nightly backfill of the audio folder runs (cron).")
    notes_dir: str | None = Field(
        None, description="Where the Markdown note of each recording is written; default <data_dir>/notes."
    )
    keep_deleted: bool = Field(
        False,
        description=(
            "Keep the results of files deleted from the audio folder (an archive): their rows, exports, "
            "page and partition stay. Otherwise the folder sensor has them removed by the tidy_library job."
        ),
    )

    @field_validator("audio_dir", "data_dir", "notes_dir", mode="before")
    @classmethod
    def _folder(cls, value):
        return str(value) if isinstance(value, Path) else value

    @property
    def layout(self) -> DataLayout:
        return DataLayout(self.data_dir, self.lancedb_uri, self.notes_dir)

    @property
    def speakers_file(self) -> Path:
        """The user's speaker names and diarizer hints: ``<audio folder>/speakers.yaml``."""
        return Path(self.audio_dir) / SPEAKERS_FILE


class SettingsError(ValueError):
    """A configuration value is invalid; the message names the environment variable."""


class Settings(BaseSettings, OllamaConfig, WhisperConfig, DiarizerConfig, VoicesConfig, StorageConfig, AskConfig):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        # An empty variable means "the default" (docker-compose.yml passes every knob as ${VAR:-}).
        env_ignore_empty=True,
        validate_default=True,
    )

    num_ctx_l1: int | None = TopicConfig.model_fields["num_ctx_l1"]

    def part(self, config: type[C]) -> C:
        """The values of ``config``'s fields as that config."""
        return config.model_validate(self.model_dump(include=set(config.model_fields)))

    @property
    def ollama_config(self) -> OllamaConfig:
        return self.part(OllamaConfig)

    @property
    def whisper_config(self) -> WhisperConfig:
        return self.part(WhisperConfig)

    @property
    def diarizer_config(self) -> DiarizerConfig:
        return self.part(DiarizerConfig)

    @property
    def voices_config(self) -> VoicesConfig:
        return self.part(VoicesConfig)

    @property
    def storage_config(self) -> StorageConfig:
        return self.part(StorageConfig)

    @property
    def ask_config(self) -> AskConfig:
        return self.part(AskConfig)

    @property
    def topic_config(self) -> TopicConfig:
        return TopicConfig(num_ctx_l1=self.num_ctx_l1)


def _env_name(loc: tuple) -> str:
    return ENV_PREFIX + str(loc[0]).upper() if loc else ENV_PREFIX + "?"


def load_settings(**overrides) -> Settings:
    """Build the settings, turning a validation failure into a message naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            given = err.get("input")
            shown = f" (got {given!r})" if given is not None and not isinstance(given, dict) else ""
            lines.append(f"{_env_name(err.get('loc', ()))}: {err['msg']}{shown}")
        raise SettingsError("Invalid configuration:\n  " + "\n  ".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
