"""The Ollama client contract, its configuration, errors and model readiness (no Dagster imports)."""

from autorag_dagster.ollama.client import (
    ClientStats,
    OllamaClient,
    RunningModel,
    Structured,
)
from autorag_dagster.ollama.errors import (
    LLMOutputError,
    ModelNotFoundError,
    ModelPullError,
    ModelStillLoadedError,
    OllamaBusyError,
    OllamaError,
    OllamaRequestError,
    OllamaTimeoutError,
    OllamaUnreachableError,
    PromptTooLongError,
    PromptTruncatedError,
)
from autorag_dagster.ollama.names import canonical_name
from autorag_dagster.ollama.progress import PullProgress
from autorag_dagster.ollama.readiness import Readiness, check_models
from autorag_dagster.ollama.tokens import TokenEstimator

__all__ = [
    "ClientStats",
    "LLMOutputError",
    "ModelNotFoundError",
    "ModelPullError",
    "ModelStillLoadedError",
    "OllamaBusyError",
    "OllamaClient",
    "OllamaError",
    "OllamaRequestError",
    "OllamaTimeoutError",
    "OllamaUnreachableError",
    "PromptTooLongError",
    "PromptTruncatedError",
    "PullProgress",
    "Readiness",
    "RunningModel",
    "Structured",
    "TokenEstimator",
    "canonical_name",
    "check_models",
]
