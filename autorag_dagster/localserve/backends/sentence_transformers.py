"""Embedding models on sentence-transformers: L2-normalised vectors, real token counts, Ollama's truncation.

An input longer than the context (``num_ctx``, at most the model's ``max_seq_length``; special
tokens included) is cut to it silently, or refused with ``truncate: false``. torch runs on one
thread with denormals flushed (much faster on this kind of CPU); torch and sentence-transformers
are imported when the first such model loads, not when the catalogue reads the model's files.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from safetensors import safe_open

from ..catalogue import ModelSpec, PackagedModel, parameter_size
from ..memory import Memory, RssGrowth, runner_memory
from .base import Completion, CompletionRequest, Embeddings, InputTooLong, LoadSpec

POOLING_TYPES = {"pooling_mode_mean_tokens": 1, "pooling_mode_cls_token": 2, "pooling_mode_lasttoken": 3}
"""sentence-transformers pooling flags -> llama.cpp's pooling_type, as Ollama's model_info reports it."""


def describe(entry: PackagedModel, path: Path) -> ModelSpec:
    """The spec of a sentence-transformers model folder whose weights are ``path`` (safetensors)."""
    folder = path.parent
    config = _read_json(folder / "config.json")
    pooling = _read_json(folder / "1_Pooling" / "config.json")
    with safe_open(path, framework="numpy") as weights:
        tensors = [weights.get_slice(name) for name in weights.keys()]  # noqa: SIM118 (not a dict)
        parameters = sum(math.prod(tensor.get_shape()) for tensor in tensors)
        dtype = Counter(tensor.get_dtype() for tensor in tensors).most_common(1)[0][0]
    arch, heads = config["model_type"], config["num_attention_heads"]
    head_dim = config["hidden_size"] // heads
    info = {
        "general.architecture": arch,
        "general.parameter_count": parameters,
        f"{arch}.block_count": config["num_hidden_layers"],
        f"{arch}.context_length": _read_json(folder / "sentence_bert_config.json")["max_seq_length"],
        f"{arch}.embedding_length": config["hidden_size"],
        f"{arch}.feed_forward_length": config["intermediate_size"],
        f"{arch}.attention.head_count": heads,
        f"{arch}.attention.head_count_kv": heads,
        f"{arch}.attention.key_length": head_dim,
        f"{arch}.attention.value_length": head_dim,
        f"{arch}.attention.layer_norm_epsilon": config["layer_norm_eps"],
        f"{arch}.attention.causal": False,
        f"{arch}.pooling_type": next((v for k, v in POOLING_TYPES.items() if pooling.get(k)), 0),
        f"{arch}.vocab_size": config["vocab_size"],
    }
    return ModelSpec(
        name=entry.name,
        family=arch,
        parameter_size=parameter_size(parameters),
        quantization_level=dtype,
        size=path.stat().st_size,
        model_info=info,
        capabilities=("embedding",),
        backend=entry.backend,
        format="safetensors",
        license="Apache License 2.0",
        weights=path,
    )


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


class SentenceTransformersBackend:
    def load(self, spec: LoadSpec) -> SentenceTransformersRunner:
        return SentenceTransformersRunner(spec)


class SentenceTransformersRunner:
    on_gpu = False

    def __init__(self, spec: LoadSpec):
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(1)
        torch.set_flush_denormal(True)
        self.name = spec.model.name
        self._growth = RssGrowth()
        with self._growth.measure():
            self._model = SentenceTransformer(str(spec.model.weights.parent), device="cpu", local_files_only=True)
        tensors = [*self._model.parameters(), *self._model.buffers()]
        self._tensor_bytes = sum(t.numel() * t.element_size() for t in tensors)
        self._limit = min(spec.num_ctx, self._model.max_seq_length)
        self._model.max_seq_length = self._limit

    def embed(self, texts: Sequence[str], truncate: bool) -> Embeddings:
        lengths = [len(ids) for ids in self._model.tokenizer(list(texts), verbose=False)["input_ids"]]
        if not truncate and max(lengths, default=0) > self._limit:
            raise InputTooLong(InputTooLong.message)
        vectors = self._model.encode(list(texts), batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
        return Embeddings(vectors.tolist(), sum(min(n, self._limit) for n in lengths))

    def memory(self) -> Memory:
        """The process's RSS growth while the model loaded; torch's parameter and buffer bytes beside it."""
        return runner_memory(self._growth, self._tensor_bytes, "weights_bytes_reported")

    def complete(self, request: CompletionRequest) -> Completion:
        raise NotImplementedError(f'"{self.name}" does not support chat')

    def close(self) -> None:
        del self._model
