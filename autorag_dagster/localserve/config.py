"""Server configuration: Ollama's environment variables, overridable by constructor or CLI arguments."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any

from .backends import BACKENDS
from .catalogue import (
    DETERMINISTIC_MODELS,
    KV_BYTES_PER_ELEMENT,
    PACKAGED_CATALOGUE,
    STAND_INS,
    Catalogue,
    ModelUnavailable,
)
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
    """Settings of one server.

    ``catalogue`` is what the server really runs (default: the packaged models). ``deterministic``
    adds the deterministic test backend's models, named ``deterministic-*``; ``stand_in_names``
    (which needs ``deterministic``) adds the same backend under real models' names, so tests can
    run code configured for gemma4 and nomic-embed-text. Without it, a catalogue that would let
    the deterministic backend answer under any other name is refused.

    ``unload_delay``: an unload (keep_alive 0, expiry, eviction) answers at once; the runner
    stops and leaves /api/ps ``unload_delay`` seconds later, as Ollama's asynchronous unload
    does. 0 (the default) unloads before the answer, so /api/ps never lists a model that was
    just unloaded.
    """

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
    unload_delay: float = 0.0  # seconds an unload takes after its answer (see below)
    pulled: tuple[str, ...] = ()  # models to mark as pulled at start-up
    catalogue: Catalogue = field(default_factory=lambda: PACKAGED_CATALOGUE)
    deterministic: bool = False  # also offer the deterministic test models (deterministic-llm, -embed, -tiny)
    stand_in_names: bool = False  # tests only: the deterministic backend also answers as gemma4 / nomic-embed-text
    test_routes: bool = False  # serve /_autorag/events and /_autorag/script (tests)
    never_unload: tuple[str, ...] = ()  # tests only: models that ignore keep_alive 0 (a stuck runner)
    prompt_cache: bool = True  # llama.cpp slots keep their evaluated prefix, as Ollama's do (False: every
    # request evaluates its whole prompt, so an answer depends on the request alone: tests comparing answers)
    flash_attention: bool | None = None  # OLLAMA_FLASH_ATTENTION; unset: the backend's default (llama.cpp: on)

    @cached_property
    def offered(self) -> Catalogue:
        """Every model this server can pull and serve: the catalogue plus the test models asked for."""
        extra = (*(DETERMINISTIC_MODELS if self.deterministic else ()), *(STAND_INS if self.stand_in_names else ()))
        return self.catalogue.with_specs(*extra) if extra else self.catalogue

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
        if overrides.get("catalogue") is not None:
            values["catalogue"] = overrides["catalogue"]
        for name in ("deterministic", "stand_in_names", "test_routes"):
            if overrides.get(name) is not None:
                values[name] = bool(overrides[name])
        values["pulled"] = tuple(overrides.get("pulled") or ())
        values["never_unload"] = tuple(overrides.get("never_unload") or ())
        config = cls(**values)
        if config.stand_in_names and not config.deterministic:
            raise ConfigError("stand_in_names needs deterministic: the stand-ins are the deterministic test backend")
        offered = config.offered
        if (stand_ins := offered.stand_ins()) and not config.stand_in_names:
            raise ConfigError(
                f"the deterministic test backend would answer as {', '.join(stand_ins)}: refused, it is not that"
                " model. Its own models are named deterministic-*; tests that need real names set stand_in_names."
            )
        for setting, names in (("pre-pull", config.pulled), ("keep loaded", config.never_unload)):
            if not_served := [n for n in names if n not in offered]:
                raise ConfigError(f"cannot {setting} {not_served}: {_not_offered(config)}")
        for name in config.pulled:
            try:
                offered[name]
            except ModelUnavailable as exc:
                raise ConfigError(f"cannot pre-pull {name}: {exc}") from None
        if offered.backends - set(BACKENDS):
            unknown = sorted(offered.backends - set(BACKENDS))
            raise ConfigError(f"unknown backend(s) {unknown}; known: {sorted(BACKENDS)}")
        return config


def _not_offered(config: ServerConfig) -> str:
    offered = ", ".join(config.offered)
    real = ", ".join(s.name for s in STAND_INS)
    if config.deterministic:
        return (
            f"this server offers {offered} ({real} run on a real Ollama; tests that need the names set stand_in_names)"
        )
    return (
        f"this server offers only the models it really runs ({offered}); {real} run on a real Ollama;"
        " the deterministic test models (deterministic-llm, deterministic-embed) need the deterministic option"
        " (`autorag ollama-serve --deterministic`)"
    )


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


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


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
    "unload_delay": ("AUTORAG_LOCALSERVE_UNLOAD_DELAY", _seconds),
    "prompt_cache": ("AUTORAG_LOCALSERVE_PROMPT_CACHE", _flag),
    "flash_attention": ("OLLAMA_FLASH_ATTENTION", _flag),
}


def env_for(config_kwargs: Mapping[str, Any]) -> dict[str, str]:
    """Environment variables that give a server process the same settings as ``config_kwargs``."""
    env: dict[str, str] = {}
    for name, value in config_kwargs.items():
        if name in _ENV and value is not None:
            env[_ENV[name][0]] = str(value)
    return env
