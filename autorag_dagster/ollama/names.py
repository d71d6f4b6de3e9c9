"""Model names as Ollama compares them: the one place that canonicalises them."""

from __future__ import annotations

_DEFAULT_PREFIXES = ("registry.ollama.ai/", "library/")


def canonical_name(model: str) -> str:
    """``"Gemma4"`` -> ``"gemma4:latest"``: Ollama matches names case-insensitively, the default
    registry and namespace may be spelled out or not, the default tag is ``latest``, and a
    registry's port (``host:5000/model``) is not a tag."""
    text = model.strip().lower()
    for prefix in _DEFAULT_PREFIXES:
        text = text.removeprefix(prefix)
    return text if ":" in text.rsplit("/", 1)[-1] else f"{text}:latest"
