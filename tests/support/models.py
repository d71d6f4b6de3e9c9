"""The model names the tests ask servers and clients for (both pulled by default)."""

LLM = "gemma4:latest"
EMBED = "nomic-embed-text"
