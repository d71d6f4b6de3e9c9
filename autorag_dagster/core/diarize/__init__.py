"""Speaker diarization: who spoke when, behind one interface with two backends.

- `resemblyzer` (default, offline, CPU): Resemblyzer voice embeddings over VAD speech
  regions, clustered with spectral clustering.
- `pyannote`: a pyannote.audio pipeline (hub name or local directory), on the GPU when there
  is one.
"""

from __future__ import annotations

from autorag_dagster.core.diarize.base import Diarizer, DiarizerConfig, DiarizerError
from autorag_dagster.core.diarize.pyannote_backend import PyannoteDiarizer
from autorag_dagster.core.diarize.resemblyzer_backend import ResemblyzerDiarizer


def make_diarizer(config: DiarizerConfig) -> Diarizer:
    """The backend ``config.diarizer`` names, configured from ``config``."""
    bounds = dict(min_speakers=config.min_speakers, max_speakers=config.max_speakers, cpu_threads=config.cpu_threads)
    if config.diarizer == "pyannote":
        return PyannoteDiarizer(pipeline=config.pyannote_pipeline, **bounds)
    return ResemblyzerDiarizer(**bounds)


__all__ = ["Diarizer", "DiarizerConfig", "DiarizerError", "PyannoteDiarizer", "ResemblyzerDiarizer", "make_diarizer"]
