"""Request ``options`` as Ollama reads them: runner options (a change reloads) and sampling options."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields
from typing import Any

log = logging.getLogger(__name__)

# Ollama's option fields and their Go kinds; a wrongly typed value is an error, an unknown key is ignored.
_RUNNER_KINDS = {"num_ctx": int, "num_batch": int, "num_gpu": int, "main_gpu": int, "use_mmap": bool, "num_thread": int}
_SAMPLING_KINDS = {
    "num_keep": int,
    "seed": int,
    "num_predict": int,
    "top_k": int,
    "top_p": float,
    "min_p": float,
    "typical_p": float,
    "repeat_last_n": int,
    "temperature": float,
    "repeat_penalty": float,
    "presence_penalty": float,
    "frequency_penalty": float,
    "stop": list,
}
_KIND_NAMES = {int: "integer", bool: "boolean", float: "float32", list: "array"}


class OptionError(ValueError):
    """A wrongly typed option; Ollama answers it with a 500 and this text."""


@dataclass(frozen=True)
class RunnerOptions:
    """The options a runner is loaded with; a request that differs in any of them reloads the model."""

    num_ctx: int
    num_batch: int = 512
    num_gpu: int = -1
    main_gpu: int = 0
    use_mmap: bool | None = None
    num_thread: int = 0

    def changes_from(self, loaded: RunnerOptions) -> list[str]:
        """Names of the options whose values differ from ``loaded`` (num_gpu < 0 means "auto": no change)."""
        return [
            f.name
            for f in fields(self)
            if getattr(self, f.name) != getattr(loaded, f.name) and not (f.name == "num_gpu" and self.num_gpu < 0)
        ]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _convert(key: str, value: Any, kind: type) -> Any:
    if kind is int and isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is bool and isinstance(value, bool):
        return value
    if kind is list and isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            raise OptionError(f'option "{key}" must be of an array of strings')
        return value
    raise OptionError(f'option "{key}" must be of type {_KIND_NAMES[kind]}')


def parse_options(raw: dict[str, Any] | None, default_num_ctx: int) -> tuple[RunnerOptions, dict[str, Any]]:
    """Split request options into runner options (with defaults) and sampling options."""
    runner: dict[str, Any] = {"num_ctx": default_num_ctx}
    sampling: dict[str, Any] = {}
    for key, value in (raw or {}).items():
        if value is None:
            continue
        if key in _RUNNER_KINDS:
            runner[key] = _convert(key, value, _RUNNER_KINDS[key])
        elif key in _SAMPLING_KINDS:
            sampling[key] = _convert(key, value, _SAMPLING_KINDS[key])
        else:
            log.warning("invalid option provided: %s", key)
    return RunnerOptions(**runner), sampling
