"""Server configuration: Ollama's environment variables, overridable by constructor or CLI arguments."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .backends import BACKENDS
from .catalogue import DEFAULT_CATALOGUE, KV_BYTES_PER_ELEMENT, Catalogue, ModelUnavailable
from .durations import DurationError, parse_go_duration
from .store import default_models_dir

AUTO_MAX_LOADED_MODELS = 3  # Ollama's "auto" (0) for one GPU
_BYTES = re.compile(r"(?i)^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb|kib|mib|gib|tib)?\s*$")
_UNIT_BYTES = {
    "b": 1,
    "kb": 1e3,
    "mb": 1e6,
    "gb": 1e9,
    "tb": 1e12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


class ConfigError(ValueError):
    """An invalid setting; the message names the environment variable or argument."""


@dataclass(frozen=True)
class ServerConfig:
    num_parallel: int = 1
    max_loaded_models: int = AUTO_MAX_LOADED_MODELS
    keep_alive: float = 300.0  # seconds; math.inf = forever
    max_queue: int = 512
    kv_cache_type: str = "f16"
    context_length: int = 4096  # default num_ctx (Ollama's tier for < 24 GiB of VRAM)
    models_dir: Path = field(default_factory=default_models_dir)
    delay: float = 0.0  # seconds every generation or embedding request takes (lets tests see concurrency)
    load_delay: float = 0.0  # seconds every model load takes
    vram_bytes: int | None = None  # simulated GPU memory; None = unlimited (no memory evictions)
    backend: str | None = None  # run every model on this backend instead of its catalogue backend
    pulled: tuple[str, ...] = ()  # models to mark as pulled at start-up
    catalogue: Catalogue = field(default_factory=lambda: DEFAULT_CATALOGUE)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ServerConfig:
        """Read OLLAMA_* and AUTORAG_LOCALSERVE_* variables; arguments that are not None win."""
        env = os.environ if env is None else env
        unknown = sorted(set(overrides) - {f.name for f in fields(cls)})
        if unknown:
            raise TypeError(f"unknown server setting(s) {unknown}; known: {[f.name for f in fields(cls)]}")
        values: dict[str, Any] = {"models_dir": Path(overrides.get("models_dir") or default_models_dir(env))}
        for name, (var, parse) in _ENV.items():
            if overrides.get(name) is not None:
                values[name] = _parse(f"argument {name}", parse, overrides[name])
            elif env.get(var, "").strip():
                values[name] = _parse(var, parse, env[var].strip())
        for name in ("backend", "catalogue"):
            if overrides.get(name) is not None:
                values[name] = overrides[name]
        values["pulled"] = tuple(overrides.get("pulled") or ())
        config = cls(**values)
        not_served = [n for n in config.pulled if n not in config.catalogue]
        if not_served:
            raise ConfigError(f"cannot pre-pull {not_served}: not in the catalogue ({', '.join(config.catalogue)})")
        for name in config.pulled:
            try:
                config.catalogue[name]
            except ModelUnavailable as exc:
                raise ConfigError(f"cannot pre-pull {name}: {exc}") from None
        backends = {config.backend} if config.backend else config.catalogue.backends
        if backends - set(BACKENDS):
            raise ConfigError(f"unknown backend(s) {sorted(backends - set(BACKENDS))}; known: {sorted(BACKENDS)}")
        return config


def _parse(source: str, parse, value: Any) -> Any:
    try:
        return parse(value)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{source}: {exc} (got {value!r})") from None


def _count(minimum: int):
    def parse(value: Any) -> int:
        number = int(value)
        if number < minimum:
            raise ValueError(f"must be an integer >= {minimum}")
        return number

    return parse


def _max_loaded(value: Any) -> int:
    return _count(0)(value) or AUTO_MAX_LOADED_MODELS


def _keep_alive(value: Any) -> float:
    """Ollama's env form: a Go duration or a whole number of seconds; negative = forever."""
    try:
        seconds = (
            float(value) if not isinstance(value, str) or re.fullmatch(r"-?\d+", value) else parse_go_duration(value)
        )
    except DurationError as exc:
        raise ValueError(f"{exc}; use e.g. 5m, 1h, 300 or -1") from None
    return float("inf") if seconds < 0 else seconds


def _kv_type(value: Any) -> str:
    if value not in KV_BYTES_PER_ELEMENT:
        raise ValueError(f"must be one of {', '.join(KV_BYTES_PER_ELEMENT)}")
    return value


def _seconds(value: Any) -> float:
    seconds = float(value)
    if seconds < 0:
        raise ValueError("must be >= 0 seconds")
    return seconds


def _bytes(value: Any) -> int:
    if isinstance(value, (int, float)):
        return int(value)
    match = _BYTES.match(value)
    if not match:
        raise ValueError("must be a size like 24GiB, 8GB or a number of bytes")
    return int(float(match.group(1)) * _UNIT_BYTES[(match.group(2) or "b").lower()])


_ENV = {
    "num_parallel": ("OLLAMA_NUM_PARALLEL", _count(1)),
    "max_loaded_models": ("OLLAMA_MAX_LOADED_MODELS", _max_loaded),
    "keep_alive": ("OLLAMA_KEEP_ALIVE", _keep_alive),
    "max_queue": ("OLLAMA_MAX_QUEUE", _count(1)),
    "kv_cache_type": ("OLLAMA_KV_CACHE_TYPE", _kv_type),
    "context_length": ("OLLAMA_CONTEXT_LENGTH", _count(4)),
    "delay": ("AUTORAG_LOCALSERVE_DELAY", _seconds),
    "load_delay": ("AUTORAG_LOCALSERVE_LOAD_DELAY", _seconds),
    "vram_bytes": ("AUTORAG_LOCALSERVE_VRAM", _bytes),
}


def env_for(config_kwargs: Mapping[str, Any]) -> dict[str, str]:
    """Environment variables that give a server process the same settings as ``config_kwargs``."""
    env: dict[str, str] = {}
    for name, value in config_kwargs.items():
        if name in _ENV and value is not None:
            env[_ENV[name][0]] = str(value)
    return env
