"""Speaker diarization: who spoke when, behind one interface with two backends.

- `resemblyzer` (default, offline, CPU): Resemblyzer voice embeddings over VAD speech
  regions, clustered with spectral clustering.
- `pyannote`: a pyannote.audio pipeline (hub name or local directory), on the GPU when there
  is one.
"""

from __future__ import annotations

from autorag_dagster.core.diarize.base import Diarizer, DiarizerError
from autorag_dagster.core.diarize.pyannote_backend import PyannoteDiarizer
from autorag_dagster.core.diarize.resemblyzer_backend import ResemblyzerDiarizer


def make_diarizer(settings) -> Diarizer:
    """The backend `settings.diarizer` names, configured from the settings."""
    if settings.diarizer == "pyannote":
        return PyannoteDiarizer(
            pipeline=settings.pyannote_pipeline,
            min_speakers=settings.min_speakers,
            max_speakers=settings.max_speakers,
            cpu_threads=settings.cpu_threads,
        )
    return ResemblyzerDiarizer(
        min_speakers=settings.min_speakers,
        max_speakers=settings.max_speakers,
        cpu_threads=settings.cpu_threads,
    )


__all__ = ["Diarizer", "DiarizerError", "PyannoteDiarizer", "ResemblyzerDiarizer", "make_diarizer"]
