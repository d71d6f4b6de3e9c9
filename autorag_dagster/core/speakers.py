"""Speaker names: the user's ``speakers.yaml`` and the one rule that turns a label into a name.

``<audio folder>/speakers.yaml`` is edited by hand or with ``autorag speakers name``::

    VOICE_0003: Ana                 # a library-wide identity (see core.voices)
    VOICE_0001: Ben
    "interview.mp3":                # one file: names of its local speakers, and diarizer hints
      SPEAKER_01: Dr. Lee
      num_speakers: 2               # or min_speakers / max_speakers

``display_name`` resolves (file, local label) to what every export, page, prompt and search
row shows: the file's own name for that label > the name of its identity > the identity ID
(``VOICE_0003``) > the local label (``SPEAKER_01``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, ValidationError

from autorag_dagster.core.atomic import write_text
from autorag_dagster.core.types import Diarization, SpeakerHints, SpeakerTranscript
from autorag_dagster.core.voices import VoiceRegistry

SPEAKERS_FILE = "speakers.yaml"
IDENTITY = re.compile(r"VOICE_\d{4,}")
HINT_KEYS = ("num_speakers", "min_speakers", "max_speakers")
HEADER = (
    "# Speaker names for this audio folder (autorag speakers list / autorag speakers name).\n"
    "#   VOICE_0003: Ana                    a name for a library-wide voice\n"
    '#   "interview.mp3": {SPEAKER_01: Dr. Lee, num_speakers: 2}   one file: names and diarizer hints\n'
)


class SpeakersFileError(ValueError):
    """``speakers.yaml`` cannot be read; the message names the file and the entry."""


class FileEntry(BaseModel):
    names: dict[str, str] = Field(default_factory=dict, description="local label (or identity ID) -> name")
    hints: SpeakerHints = Field(default_factory=SpeakerHints)


class SpeakerNames(BaseModel):
    """What ``speakers.yaml`` says."""

    identities: dict[str, str] = Field(default_factory=dict, description="identity ID -> name")
    files: dict[str, FileEntry] = Field(default_factory=dict)

    def hints_for(self, file: str) -> SpeakerHints:
        entry = self.files.get(file)
        return entry.hints if entry else SpeakerHints()


def digest(path: Path) -> str:
    """sha256 of the names file ('absent' when there is none): its Dagster data version."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except FileNotFoundError:
        return "absent"


def parse_speakers(data: object, source: str = SPEAKERS_FILE) -> SpeakerNames:
    if data is None:
        return SpeakerNames()
    if not isinstance(data, dict):
        raise SpeakersFileError(
            f"{source}: expected a mapping of VOICE_xxxx names and files, got {type(data).__name__}"
        )
    names = SpeakerNames()
    for key, value in data.items():
        key = str(key)
        if IDENTITY.fullmatch(key):
            if not isinstance(value, str | int | float) or not str(value).strip():
                raise SpeakersFileError(f"{source}: {key} needs a name (a string), got {value!r}")
            names.identities[key] = str(value).strip()
        elif isinstance(value, dict):
            hints = {k: value[k] for k in HINT_KEYS if k in value}
            try:
                entry_hints = SpeakerHints(**hints)
            except ValidationError as exc:
                problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
                raise SpeakersFileError(f"{source}: the hints of {key!r} are invalid ({problems})") from None
            labels = {}
            for label, name in value.items():
                if label in HINT_KEYS:
                    continue
                if not isinstance(name, str | int | float) or not str(name).strip():
                    raise SpeakersFileError(f"{source}: {key!r}: {label} needs a name (a string), got {name!r}")
                labels[str(label)] = str(name).strip()
            names.files[key] = FileEntry(names=labels, hints=entry_hints)
        else:
            raise SpeakersFileError(
                f"{source}: {key!r} is neither an identity (VOICE_0001: Name) nor a file with a mapping "
                f"of speaker names and hints"
            )
    return names


def read_speakers(path: Path) -> SpeakerNames:
    """The names file at ``path`` (none: no names)."""
    path = Path(path)
    if not path.exists():
        return SpeakerNames()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SpeakersFileError(f"{path} is not valid YAML: {exc}") from None
    return parse_speakers(data, str(path))


def set_identity_name(path: Path, identity: str, name: str | None) -> None:
    """Name (or with ``None``, un-name) ``identity`` in the names file, keeping every other entry."""
    if not IDENTITY.fullmatch(identity):
        raise SpeakersFileError(f"{identity!r} is not an identity ID such as VOICE_0003")
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
    data = data or {}
    parse_speakers(data, str(path))  # refuse to rewrite a file that does not parse
    if name is None or not name.strip():
        data.pop(identity, None)
    else:
        data[identity] = name.strip()
    ids = sorted(k for k in data if IDENTITY.fullmatch(str(k)))
    ordered = {k: data[k] for k in ids} | {k: v for k, v in data.items() if k not in ids}
    write_text(path, HEADER + yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True))


def display_name(file: str, label: str, registry: VoiceRegistry | None, names: SpeakerNames) -> str:
    """What a person sees for ``label`` of ``file``: the file's own name for it > its identity's
    name > its identity ID > the label itself."""
    entry = names.files.get(file)
    identity = registry.identity_of(file, label) if registry else None
    if entry:
        if label in entry.names:
            return entry.names[label]
        if identity and identity in entry.names:
            return entry.names[identity]
    if identity:
        return names.identities.get(identity, identity)
    return label


def display_names(
    file: str, labels: Iterable[str], registry: VoiceRegistry | None, names: SpeakerNames
) -> dict[str, str]:
    return {label: display_name(file, label, registry, names) for label in labels}


def user_names(file: str, labels: Iterable[str], registry: VoiceRegistry | None, names: SpeakerNames) -> dict[str, str]:
    """Only the names a person gave (no IDs, no labels): what the topic prompts are told."""
    out = {}
    for label in labels:
        shown = display_name(file, label, registry, names)
        if shown != label and not IDENTITY.fullmatch(shown):
            out[label] = shown
    return out


def with_names(transcript: SpeakerTranscript, names: Mapping[str, str]) -> SpeakerTranscript:
    """``transcript`` with every local label replaced by its display name."""
    if not names:
        return transcript
    data = transcript.model_dump()
    for utterance in data["utterances"]:
        utterance["speaker"] = names.get(utterance["speaker"], utterance["speaker"])
        for word in utterance["words"]:
            word["speaker"] = names.get(word["speaker"], word["speaker"])
    data["names"] = {}
    return SpeakerTranscript.model_validate(data)


@dataclass
class RenamePlan:
    """Files whose shown names or diarizer hints no longer match what was materialised."""

    names: dict[str, dict[str, str]] = field(default_factory=dict)  # file -> the names it should show
    hints: dict[str, dict] = field(default_factory=dict)  # file -> the hints its diarization should honour

    @property
    def files(self) -> list[str]:
        return sorted(set(self.names) | set(self.hints))


def plan_renames(
    speaker_transcripts: Mapping[str, SpeakerTranscript],
    diarizations: Mapping[str, Diarization],
    registry: VoiceRegistry | None,
    names: SpeakerNames,
) -> RenamePlan:
    """What a change of ``speakers.yaml`` or of the identities asks to re-materialise: a file whose
    speaker transcript shows other names than it now would (its named assets), and a file whose
    diarization honoured other hints than the file now gives (its diarization and after)."""
    plan = RenamePlan()
    for key, stored in speaker_transcripts.items():
        labels = sorted(set(stored.names) | set(stored.speakers))
        wanted = display_names(key, labels, registry, names)
        if wanted != {label: stored.names.get(label, label) for label in labels}:
            plan.names[key] = wanted
    for key, stored in diarizations.items():
        wanted_hints = names.hints_for(key)
        if wanted_hints != stored.hints:
            plan.hints[key] = wanted_hints.model_dump(exclude_none=True)
    return plan


def pending_renames(layout, speakers_file: Path) -> RenamePlan:
    """``plan_renames`` over what is stored under ``layout`` (a ``DataLayout``)."""
    return plan_renames(
        layout.stored_values("speaker_transcript", SpeakerTranscript),
        layout.stored_values("diarization", Diarization),
        layout.read_voice_registry(),
        read_speakers(speakers_file),
    )


@dataclass(frozen=True)
class SpeakerRow:
    """One identity as ``autorag speakers list`` shows it."""

    identity: str
    name: str  # "" when the user gave none
    talk_s: float
    files: list[tuple[str, str, str]]  # (file, local label, what that file shows for it)
    suggestions: list[tuple[str, str, float, str]] = field(default_factory=list)  # (name, file, time, words)


def speaker_rows(
    registry: VoiceRegistry | None,
    names: SpeakerNames,
    transcripts: Mapping[str, SpeakerTranscript] | None = None,
) -> list[SpeakerRow]:
    """Every identity with its name, talk time and files (each with what the file shows), and the
    names its files' words suggest for it (from ``transcripts``' ``name_suggestions``, with the
    evidence; never applied)."""
    if registry is None:
        return []
    transcripts = transcripts or {}
    rows = []
    for identity in registry.identities:
        suggestions = [
            (s.name, m.file, s.time, s.words)
            for m in identity.members
            for s in getattr(transcripts.get(m.file), "name_suggestions", [])
            if s.speaker == m.speaker
        ]
        rows.append(
            SpeakerRow(
                identity=identity.id,
                name=names.identities.get(identity.id, ""),
                talk_s=identity.talk_s,
                files=[(m.file, m.speaker, display_name(m.file, m.speaker, registry, names)) for m in identity.members],
                suggestions=suggestions,
            )
        )
    return rows
