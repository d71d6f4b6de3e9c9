"""The model names the tests ask servers and clients for (both pulled by default).

They are the pipeline's GPU-host defaults; the test fixtures serve them from the deterministic
backend on purpose (``stand_in_names``), never as the real models.
"""

LLM = "gemma4:latest"
EMBED = "nomic-embed-text"
DETERMINISTIC_LLM = "deterministic-llm:latest"
DETERMINISTIC_EMBED = "deterministic-embed:latest"
