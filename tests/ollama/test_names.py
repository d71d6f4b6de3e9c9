"""Model names compare the way Ollama compares them, in the client and in the local server alike."""

from __future__ import annotations

import pytest

from autorag_dagster.localserve.catalogue import InvalidModelName
from autorag_dagster.localserve.catalogue import canonical_name as served_name
from autorag_dagster.ollama import canonical_name


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Gemma4", "gemma4:latest"),
        ("gemma4:latest", "gemma4:latest"),
        (" qwen3:8B ", "qwen3:8b"),
        ("registry.ollama.ai/library/nomic-embed-text", "nomic-embed-text:latest"),
        ("library/all-minilm:l6-v2", "all-minilm:l6-v2"),
        ("myhost:5000/team/model", "myhost:5000/team/model:latest"),
    ],
)
def test_one_canonical_form(given, expected):
    assert canonical_name(given) == expected


def test_the_server_uses_the_same_form_and_refuses_malformed_names():
    assert served_name("REGISTRY.OLLAMA.AI/library/Gemma4") == canonical_name("gemma4") == "gemma4:latest"
    with pytest.raises(InvalidModelName):
        served_name("not a model")
