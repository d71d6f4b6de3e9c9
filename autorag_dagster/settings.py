"""Every knob of the project, read from ``AUTORAG_*`` environment variables and an optional ``.env``.

``load_settings()`` is the one entry point: an invalid value fails at start-up with a
message that names the environment variable, never a pydantic traceback.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "AUTORAG_"

# Ollama accepts a number (seconds, negative = forever) or a Go duration string.
_GO_DURATION = re.compile(r"^-?(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$|^0$")


def normalise_keep_alive(value: str | int | float) -> str | int | float:
    """Validate a keep_alive the way Ollama does; a unit-less string such as "3600" is rejected."""
    if isinstance(value, bool):
        raise ValueError("keep_alive must be a number of seconds or a duration like '5m'")
    if isinstance(value, (int, float)):
        return value
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text) and text != "0":
        raise ValueError(
            f"{text!r} has no unit: write e.g. '{text}s' or '5m' (Ollama rejects unit-less strings)"
        )
    if not _GO_DURATION.match(text):
        raise ValueError(f"{text!r} is not a duration: use e.g. '5m', '1h', '30s', '0' or -1")
    return text


class SettingsError(ValueError):
    """A configuration value is invalid; the message names the environment variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        # An empty variable means "the default" (docker-compose.yml passes every knob as ${VAR:-}).
        env_ignore_empty=True,
        validate_default=True,
    )

    # --- Ollama and the LLM stages ------------------------------------------------
    ollama_base_url: str = Field("http://localhost:11434", description="Where Ollama answers.")
    llm_model: str = Field("gemma4:latest", description="The topic-tree LLM.")
    embed_model: str = Field("nomic-embed-text", description="The embedding model.")
    num_ctx: int = Field(8192, ge=256, le=1_048_576, description="Per-slot context for every LLM call.")
    num_ctx_l1: int | None = Field(
        None, ge=256, le=1_048_576,
        description="Optional larger context for the level-1 stage only (costs exactly one reload).",
    )
    keep_alive: str | int = Field("5m", description="keep_alive sent with every LLM request.")
    max_concurrency: int = Field(8, ge=1, le=256, description="LLM requests in flight in batched stages.")
    request_timeout: float = Field(600.0, gt=0, description="Seconds before one Ollama request times out.")
    request_retries: int = Field(3, ge=0, le=20, description="Retries for busy (503), timeouts and dropped connections.")
    validation_retries: int = Field(2, ge=0, le=10, description="Re-asks when an LLM answer fails its schema.")
    llm_temperature: float = Field(0.0, ge=0.0, le=2.0)
    llm_max_output_tokens: int = Field(
        1024, ge=16, le=65536, description="num_predict of every LLM answer: a rambling model stops here."
    )

    # --- folders and storage ------------------------------------------------------------
    audio_dir: Path = Field(Path("audio"), description="Root folder of audio files (one partition per file).")
    data_dir: Path = Field(Path("data"), description="Where exports, caches, LanceDB and HTML land.")
    lancedb_uri: str | None = Field(None, description="LanceDB URI; default <data_dir>/lancedb. s3://... works.")
    backfill_cron: str = Field("0 2 * * *", description="When the nightly backfill of the audio folder runs (cron).")

    # --- speech ----------------------------------------------------------------------------
    whisper_model: str = Field(
        "tiny.en",
        description="faster-whisper model name or local path; 'tiny.en' uses the packaged model.",
    )
    whisper_device: Literal["auto", "cpu", "cuda"] = "auto"
    whisper_compute_type: str = "default"
    whisper_batch_size: int = Field(0, ge=0, description="0 = sequential; >0 uses batched inference.")
    whisper_language: str | None = Field(None, description="Force a language; default detects it.")
    diarizer: Literal["resemblyzer", "pyannote"] = "resemblyzer"
    pyannote_pipeline: str = "pyannote/speaker-diarization-community-1"
    min_speakers: int = Field(1, ge=1, le=32)
    max_speakers: int = Field(6, ge=1, le=32)
    cpu_threads: int = Field(1, ge=1, le=256, description="Threads for torch / CTranslate2 on CPU.")

    @field_validator("keep_alive", mode="before")
    @classmethod
    def _keep_alive(cls, value):
        if isinstance(value, str) and re.fullmatch(r"-\d+", value.strip()):
            return int(value)
        return normalise_keep_alive(value)

    @field_validator("ollama_base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL, e.g. http://localhost:11434")
        return value

    @field_validator("max_speakers")
    @classmethod
    def _speaker_bounds(cls, value: int, info) -> int:
        low = info.data.get("min_speakers", 1)
        if value < low:
            raise ValueError(f"must be >= AUTORAG_MIN_SPEAKERS ({low})")
        return value

    @property
    def lancedb_location(self) -> str:
        return self.lancedb_uri or str(self.data_dir / "lancedb")

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"


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
