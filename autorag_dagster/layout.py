"""Where everything lives under the data directory: the one place that knows the layout.

```
<data>/
  files/<folder for key>/          exports of one audio file (transcript, diarization, topics, outline, preview,
                                   chapters.vtt/.json/.txt/.ffmetadata,
                                   topic_stats.json: how its topic tree was made)
  files/<folder for key>/assets/   the stored value of each asset for that file, as JSON
  viz/index.html, viz/*.html       the HTML pages
  voices/registry.json             the library-wide voice identities (``core.voices.VoiceRegistry``)
  voices/audio-folder.txt          the audio folder the main job last ran on (where its speakers.yaml is)
  notes/<folder for key>.md        the Markdown note of each file (unless AUTORAG_NOTES_DIR points elsewhere)
  lancedb/                         the LanceDB tables (unless AUTORAG_LANCEDB_URI points elsewhere)
  cache/llm/                       LLM answers by content
  dagster/                         Dagster's storage for the main job and `make dev`
  logs/runs.log                    the main job's step logs
  sample/                          the generated sample meeting
  localserve-models/               what the packaged server has pulled
```

Stored asset values are ``{"type": "<module>:<class>", "value": {...}}``; ``read_stored`` turns
one back into its pydantic model. Only the types in ``STORED_TYPES`` (what the assets return)
are written or read: a stored file naming any other type is refused, and no module is imported
because a file names it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError

from autorag_dagster.core import atomic
from autorag_dagster.core.keys import folder_name_for_key
from autorag_dagster.core.types import (
    AudioInfo,
    Diarization,
    EmbeddingsWrite,
    SpeakerTranscript,
    TopicTree,
    Transcript,
    VizPage,
)


def type_name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


STORED_TYPES: dict[str, type[BaseModel]] = {
    type_name(cls): cls
    for cls in (AudioInfo, Transcript, Diarization, SpeakerTranscript, TopicTree, EmbeddingsWrite, VizPage)
}
"""The registry of stored value types, by the name a stored file gives: one per per-file asset."""


class StoredValueError(ValueError):
    """A stored asset value is missing, unreadable or names a type that is not the project's."""


@dataclass(frozen=True)
class DataLayout:
    root: Path
    lancedb_uri: str | None = None
    notes: Path | None = None

    def __init__(self, root: str | Path, lancedb_uri: str | None = None, notes_dir: str | Path | None = None):
        object.__setattr__(self, "root", Path(root))
        object.__setattr__(self, "lancedb_uri", lancedb_uri)
        object.__setattr__(self, "notes", Path(notes_dir) if notes_dir else None)

    # --- per audio file -------------------------------------------------------------------------
    @property
    def files_dir(self) -> Path:
        return self.root / "files"

    def file_dir(self, key: str) -> Path:
        """The folder that holds every artefact of one audio file."""
        return self.files_dir / folder_name_for_key(key)

    def stored_path(self, asset: str, key: str) -> Path:
        """Where the value of ``asset`` for the partition ``key`` is stored."""
        return self.file_dir(key) / "assets" / f"{asset}.json"

    def chapters(self, key: str, name: str = "chapters.ffmetadata") -> Path:
        """One of the chapter files of a file (``chapters.vtt``, ``.json``, ``.txt``, ``.ffmetadata``)."""
        return self.file_dir(key) / name

    def topic_stats(self, key: str) -> Path:
        """How the topic tree of one file was made (``TopicStats``: fallbacks per stage, LLM calls)."""
        return self.file_dir(key) / "topic_stats.json"

    def read_topic_stats(self, key: str) -> dict | None:
        """The stored ``TopicStats`` of a file as a dict, or None when there is none."""
        try:
            return json.loads(self.topic_stats(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def stored_paths(self, asset: str) -> list[Path]:
        """Every stored value of ``asset``, one per file that has one."""
        return sorted(self.files_dir.glob(f"*/assets/{asset}.json"))

    def stored_values(self, asset: str, cls: type[BaseModel] | None = None) -> dict[str, BaseModel]:
        """Every readable stored value of ``asset`` (of type ``cls`` when given), by partition key."""
        values = {}
        for path in self.stored_paths(asset):
            try:
                value = load_stored(path)
            except StoredValueError:
                continue
            key = getattr(value, "key", None) or getattr(value, "file_key", None)
            if key is not None and (cls is None or isinstance(value, cls)):
                values[key] = value
        return values

    def write_stored(self, asset: str, key: str, value: BaseModel) -> Path:
        name = type_name(type(value))
        if name not in STORED_TYPES:
            raise StoredValueError(f"{asset} for {key!r} is a {name}, which is not a stored value type (STORED_TYPES).")
        payload = {"type": name, "value": value.model_dump(mode="json")}
        return atomic.write_json(self.stored_path(asset, key), payload)

    def read_stored(self, asset: str, key: str) -> BaseModel:
        """The stored value of ``asset`` for ``key``; a clear error when there is none."""
        path = self.stored_path(asset, key)
        if not path.exists():
            raise FileNotFoundError(
                f"No stored {asset} for {key!r} at {path}: materialise {asset} for this file first."
            )
        return load_stored(path)

    def key_for(self, file: str | Path, audio_dir: str | Path | None = None) -> str | None:
        """The partition key of an audio file named by its path or by its key; None when unknown.

        A path is matched against the source paths the stored ``audio`` values record (whatever
        folder the file was run from), then against ``audio_dir``; any other text is a key
        when this data directory has stored values for it.
        """
        path = Path(file)
        if path.is_file():
            wanted = path.resolve()
            for stored in self.stored_paths("audio"):
                try:
                    value = load_stored(stored)
                except StoredValueError:
                    continue
                source, key = getattr(value, "path", None), getattr(value, "key", None)
                if source and key and Path(source).resolve() == wanted:
                    return key
            if audio_dir is not None and wanted.is_relative_to(Path(audio_dir).resolve()):
                return wanted.relative_to(Path(audio_dir).resolve()).as_posix()
        text = str(file)
        if any(self.stored_path(asset, text).exists() for asset in ("audio", "topic_tree")):
            return text
        return None

    # --- shared folders ---------------------------------------------------------------------------
    @property
    def viz_dir(self) -> Path:
        return self.root / "viz"

    @property
    def viz_index(self) -> Path:
        return self.viz_dir / "index.html"

    @property
    def notes_dir(self) -> Path:
        """The Markdown notes, one per file: AUTORAG_NOTES_DIR when set, else a folder here."""
        return self.notes or self.root / "notes"

    def note_path(self, key: str) -> Path:
        """The note of one file: a stable name derived from its key (as its exports folder)."""
        return self.notes_dir / f"{folder_name_for_key(key)}.md"

    @property
    def voices_registry(self) -> Path:
        """The library-wide voice identities; IDs stay stable because each run starts from it."""
        return self.root / "voices" / "registry.json"

    def read_voice_registry(self):
        """The stored ``VoiceRegistry``, or None before ``voices`` first ran."""
        from autorag_dagster.core.voices import VoiceRegistry

        try:
            return VoiceRegistry.model_validate_json(self.voices_registry.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise StoredValueError(f"{self.voices_registry} is not a voice registry ({exc}); move it away.") from exc

    @property
    def audio_folder_note(self) -> Path:
        """The audio folder `autorag run` last ran on: `autorag speakers` edits its speakers.yaml."""
        return self.root / "voices" / "audio-folder.txt"

    def write_voice_registry(self, registry: BaseModel) -> Path:
        return atomic.write_text(self.voices_registry, registry.model_dump_json(indent=1))

    @property
    def lancedb(self) -> str:
        """The LanceDB URI: AUTORAG_LANCEDB_URI when set (s3://... works), else a folder here."""
        return self.lancedb_uri or str(self.root / "lancedb")

    @property
    def llm_cache(self) -> Path:
        """Content-addressed LLM answers: an unchanged file is re-materialised with no LLM call."""
        return self.root / "cache" / "llm"

    @property
    def source_hashes(self) -> Path:
        """sha256 of the audio files by size and mtime (``core.hashes.HashIndex``)."""
        return self.root / "cache" / "source-hashes.json"

    @property
    def folder_sensor_state(self) -> Path:
        """The folder sensor's per-file state (``core.folder_state``); its cursor names a snapshot here."""
        return self.root / "sensors" / "audio-folder"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster"

    @property
    def run_log(self) -> Path:
        """Dagster's step logs of the main job's runs (the console shows progress and a summary)."""
        return self.root / "logs" / "runs.log"

    @property
    def sample_dir(self) -> Path:
        return self.root / "sample"

    @property
    def localserve_models(self) -> Path:
        return self.root / "localserve-models"


def load_stored(path: Path) -> BaseModel:
    """A stored value file back as its pydantic model (only the project's own types)."""
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(payload["type"], str):
            raise TypeError(f"its type is {payload['type']!r}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StoredValueError(f"{path} is not a stored asset value ({exc}); re-materialise the asset.") from exc
    cls = STORED_TYPES.get(payload["type"])
    if cls is None:
        raise StoredValueError(
            f"{path} names the type {payload['type']!r}, which is not one of this project's stored value types "
            f"({', '.join(sorted(STORED_TYPES))}); it is refused unread: re-materialise the asset."
        )
    try:
        return cls.model_validate(payload["value"])
    except ValidationError as exc:
        raise StoredValueError(
            f"{path} does not hold a valid {cls.__name__} ({exc}); re-materialise the asset."
        ) from exc
