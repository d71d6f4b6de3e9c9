"""How the project talks to Ollama: declared once, with defaults and validation.

The field names are the ``AUTORAG_*`` settings of the same name; ``Settings`` is built from
this class (and the other configs), the Dagster resource carries it, the client takes it.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, field_validator

# Ollama accepts a number (seconds, negative = forever) or a Go duration string.
_GO_DURATION = re.compile(r"^-?(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$|^0$")


def normalise_keep_alive(value: str | int | float) -> str:
    """A keep_alive as the Go duration string Ollama parses: 300 -> "300s", -1 -> "-1s", "5m" stays.

    A unit-less string such as "3600" is rejected, as Ollama rejects it; "-1" and "0" are
    accepted because they can only mean forever and now.
    """
    if isinstance(value, bool):
        raise ValueError("keep_alive must be a number of seconds or a duration like '5m'")
    if isinstance(value, (int, float)):
        return "0" if value == 0 else f"{value:g}s"
    text = str(value).strip()
    if re.fullmatch(r"-\d+", text):
        return f"{text}s"
    if re.fullmatch(r"\d+", text) and text != "0":
        raise ValueError(f"{text!r} has no unit: write e.g. '{text}s' or '5m' (Ollama rejects unit-less strings)")
    if not _GO_DURATION.match(text):
        raise ValueError(f"{text!r} is not a duration: use e.g. '5m', '1h', '30s', '0' or -1")
    return text


class OllamaConfig(BaseModel):
    """The Ollama server, the two models, and the request contract of every LLM call."""

    ollama_base_url: str = Field("http://localhost:11434", description="Where Ollama answers.")
    llm_model: str = Field("gemma4:latest", description="The topic-tree LLM.")
    embed_model: str = Field("nomic-embed-text", description="The embedding model.")
    num_ctx: int = Field(8192, ge=256, le=1_048_576, description="Per-slot context for every LLM call.")
    keep_alive: str = Field("5m", description="keep_alive sent with every LLM request ('5m', '1h', -1, 0).")
    max_concurrency: int = Field(8, ge=1, le=256, description="LLM requests in flight in batched stages.")
    request_timeout: float = Field(600.0, gt=0, description="Seconds before one Ollama request times out.")
    request_retries: int = Field(
        3, ge=0, le=20, description="Retries for busy (503), timeouts and dropped connections."
    )
    validation_retries: int = Field(2, ge=0, le=10, description="Re-asks when an LLM answer fails its schema.")
    llm_temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature of every LLM answer.")
    llm_max_output_tokens: int = Field(
        1024, ge=16, le=65536, description="num_predict of every LLM answer: a rambling model stops here."
    )

    @field_validator("keep_alive", mode="before")
    @classmethod
    def _keep_alive(cls, value):
        return normalise_keep_alive(value)

    @field_validator("ollama_base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL, e.g. http://localhost:11434")
        return value

    @property
    def required_models(self) -> list[str]:
        return [self.llm_model, self.embed_model]
