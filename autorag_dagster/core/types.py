"""The data that flows between assets. Plain pydantic models, JSON-serialisable, no Dagster."""

from __future__ import annotations

from pydantic import BaseModel, Field


class AudioInfo(BaseModel):
    """What `audio` records about one file (the decoded samples live in a .npy beside it)."""

    key: str = Field(description="Partition key: the path relative to the audio root.")
    path: str = Field(description="Absolute path of the source file.")
    sha256: str
    size_bytes: int
    duration_s: float = Field(description="Duration of the decoded 16 kHz mono signal.")
    source_sample_rate: int
    source_channels: int
    codec: str | None = None
    container: str | None = None
    sample_rate: int = 16000
    pcm_path: str = Field(description="float32 16 kHz mono samples saved with numpy (.npy).")


class Word(BaseModel):
    start: float
    end: float
    text: str
    probability: float | None = None


class Segment(BaseModel):
    id: int
    start: float
    end: float
    text: str
    words: list[Word] = Field(default_factory=list)
    avg_logprob: float | None = None
    no_speech_prob: float | None = None


class Transcript(BaseModel):
    key: str
    language: str
    language_probability: float | None = None
    duration_s: float
    model: str
    device: str
    segments: list[Segment]

    @property
    def words(self) -> list[Word]:
        return [w for s in self.segments for w in s.words]

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments).strip()


class SpeakerTurn(BaseModel):
    start: float
    end: float
    speaker: str  # e.g. "SPEAKER_00"


class SpeakerHints(BaseModel):
    """What the user says about one file's speakers (``speakers.yaml``); the diarizer honours them."""

    num_speakers: int | None = Field(None, ge=1, le=32, description="Exactly this many speakers.")
    min_speakers: int | None = Field(None, ge=1, le=32, description="At least this many speakers.")
    max_speakers: int | None = Field(None, ge=1, le=32, description="At most this many speakers.")

    def bounds(self, low: int, high: int) -> tuple[int, int]:
        """The speaker-count bounds with these hints applied over the defaults ``low``..``high``."""
        if self.num_speakers is not None:
            return self.num_speakers, self.num_speakers
        low = self.min_speakers if self.min_speakers is not None else low
        high = self.max_speakers if self.max_speakers is not None else max(high, low)
        return min(low, high), max(low, high)

    def is_empty(self) -> bool:
        return self.num_speakers is None and self.min_speakers is None and self.max_speakers is None


class SpeakerVoice(BaseModel):
    """One local speaker's voice print: the diarizer's own embedding, averaged over its turns."""

    speaker: str  # the local label, e.g. "SPEAKER_00"
    talk_s: float = Field(description="Seconds of speech the embedding is based on.")
    embedding: list[float] = Field(description="L2-normalised speaker embedding.")


class Diarization(BaseModel):
    key: str
    backend: str  # "resemblyzer" | "pyannote"
    duration_s: float
    turns: list[SpeakerTurn]
    voices: list[SpeakerVoice] = Field(default_factory=list, description="One voice print per local speaker.")
    hints: SpeakerHints = Field(default_factory=SpeakerHints, description="The speaker-count hints it honoured.")

    @property
    def speakers(self) -> list[str]:
        return sorted({t.speaker for t in self.turns})

    def talk_time(self) -> dict[str, float]:
        talk: dict[str, float] = {}
        for turn in self.turns:
            talk[turn.speaker] = talk.get(turn.speaker, 0.0) + turn.end - turn.start
        return talk


class SpeakerWord(Word):
    speaker: str


class Utterance(BaseModel):
    speaker: str
    start: float
    end: float
    text: str
    words: list[SpeakerWord] = Field(default_factory=list)


class NameSuggestion(BaseModel):
    """A name the transcript suggests for one of its speakers; never applied by itself."""

    speaker: str = Field(description="The file's own speaker label, e.g. 'SPEAKER_01'.")
    name: str
    time: float = Field(description="Seconds from the start of the file: where the name is said.")
    words: str = Field(description="The words that suggest it, as transcribed.")
    kind: str = Field(description="'introduction' (the speaker says it) or 'addressed' (another speaker says it).")


class SpeakerTranscript(BaseModel):
    key: str
    duration_s: float
    language: str
    utterances: list[Utterance]
    names: dict[str, str] = Field(
        default_factory=dict,
        description="Local label -> the name shown for it (speakers.yaml, else the library-wide voice ID).",
    )
    smoothed_words: int = Field(default=0, description="Words given back to the speaker around them (align.Smoothing).")
    name_suggestions: list[NameSuggestion] = Field(default_factory=list)

    @property
    def speakers(self) -> list[str]:
        return sorted({u.speaker for u in self.utterances})

    def talk_time(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for u in self.utterances:
            out[u.speaker] = out.get(u.speaker, 0.0) + (u.end - u.start)
        return out

    def suggestions_by_speaker(self) -> dict[str, list[NameSuggestion]]:
        """The name suggestions grouped by the file's speaker label, in time order."""
        out: dict[str, list[NameSuggestion]] = {}
        for suggestion in sorted(self.name_suggestions, key=lambda s: s.time):
            out.setdefault(suggestion.speaker, []).append(suggestion)
        return out


class TopicNode(BaseModel):
    id: str = Field(description="Path in the tree, e.g. '2' for the 2nd chapter, '2.1' for its first sub-topic.")
    level: int = Field(ge=1)
    start: float
    end: float
    title: str = ""
    summary: str = ""
    children: list[TopicNode] = Field(default_factory=list)

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()


class TopicTree(BaseModel):
    key: str
    duration_s: float
    title: str = ""
    summary: str = ""
    model: str = ""
    nodes: list[TopicNode] = Field(default_factory=list, description="Level-1 nodes, in time order.")

    def walk(self):
        for node in self.nodes:
            yield from node.walk()

    @property
    def depth(self) -> int:
        return max((n.level for n in self.walk()), default=0)


class EmbeddingsWrite(BaseModel):
    """What ``embeddings`` wrote to LanceDB for one file."""

    file_key: str
    table: str
    embedding_model: str
    dim: int
    rows: int
    inserted: int
    updated: int
    deleted: int
    version: int


class VizPage(BaseModel):
    key: str
    page: str
    index: str
    preview_png: str
