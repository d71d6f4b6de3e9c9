"""Synthetic conversations with known speakers, words and turn times (espeak-ng).

Used for the bundled sample of the main job and by the tests.

Each line of a script is spoken by one voice; the clips are trimmed of their leading and
trailing silence and joined with short pauses, so the reference turns are exact.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 22050  # espeak-ng's native rate; decoding to 16 kHz is part of what is tested


@dataclass(frozen=True)
class Voice:
    name: str  # espeak-ng voice and variant, e.g. "en+f3"
    pitch: int  # 0-99
    speed: int = 150  # words per minute


VOICES = {
    "alice": Voice("en+f3", pitch=80, speed=155),
    "bob": Voice("en-us", pitch=35, speed=150),
    "carol": Voice("en+boris", pitch=30, speed=145),
}

@dataclass(frozen=True)
class Conversation:
    path: Path
    text: str  # the reference transcript
    turns: list[tuple[float, float, str]]  # (start, end, speaker), seconds
    duration_s: float

    @property
    def speakers(self) -> set[str]:
        return {speaker for _, _, speaker in self.turns}


def speak(text: str, voice: Voice) -> np.ndarray:
    """One utterance as int16 samples at SAMPLE_RATE, with leading/trailing silence trimmed."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "line.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice.name, "-p", str(voice.pitch), "-s", str(voice.speed),
             "-w", str(out), text],
            check=True, capture_output=True,
        )
        with wave.open(str(out)) as w:
            assert w.getframerate() == SAMPLE_RATE and w.getnchannels() == 1
            samples = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    loud = np.flatnonzero(np.abs(samples) > 300)
    return samples[loud[0] : loud[-1] + 1]


def write_wav(path: Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(samples.astype(np.int16).tobytes())


def synthesize(script: list[tuple[str, str]], path: Path, pause_s: float = 0.7,
               lead_s: float = 0.5) -> Conversation:
    """Speak `script` (speaker, text) lines into one mono wav at `path`."""
    pause = np.zeros(int(pause_s * SAMPLE_RATE), dtype=np.int16)
    pieces = [np.zeros(int(lead_s * SAMPLE_RATE), dtype=np.int16)]
    turns = []
    cursor = len(pieces[0])
    for speaker, text in script:
        clip = speak(text, VOICES[speaker])
        turns.append((cursor / SAMPLE_RATE, (cursor + len(clip)) / SAMPLE_RATE, speaker))
        pieces += [clip, pause]
        cursor += len(clip) + len(pause)
    samples = np.concatenate(pieces)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(path, samples)
    return Conversation(
        path=path,
        text=" ".join(text for _, text in script),
        turns=turns,
        duration_s=len(samples) / SAMPLE_RATE,
    )


# A two-minute meeting with three clearly separate subjects, for the main job's sample.
SAMPLE_MEETING: list[tuple[str, str]] = [
    ("alice", "Good morning everyone. Today we have three things to cover: the community garden, the budget, and the summer festival."),
    ("bob", "Thanks. Let me start with the garden. We planted forty apple trees near the river last week."),
    ("alice", "That is great progress. How are the young trees doing after the heavy rain?"),
    ("bob", "Most of them are fine. Two trees lost branches, and we added wooden stakes to support the rest."),
    ("alice", "Do we have enough volunteers to water the garden during the dry weeks in July?"),
    ("bob", "We have six volunteers so far. I would like two more people for the Saturday morning shift."),
    ("alice", "Good. Now the budget. We spent eight thousand dollars of the twelve thousand we planned for this year."),
    ("bob", "The largest cost was the new irrigation pipes. The tools and seeds cost much less than expected."),
    ("alice", "So we have four thousand dollars left. I suggest we keep one thousand as a reserve for repairs."),
    ("bob", "I agree. The rest could pay for benches and a small shed for the tools."),
    ("alice", "Finally, the summer festival. It will take place on the second Sunday of August in the park."),
    ("bob", "The bakery offered free bread, and the music school will send a small band to play in the afternoon."),
    ("alice", "Wonderful. We still need someone to organise games for the children and to print the posters."),
    ("bob", "I can print the posters this week. My neighbour runs a print shop and gave us a good price."),
    ("alice", "Perfect. What about the weather? Last year the rain almost stopped the whole event."),
    ("bob", "This year we rented two large tents, so people can stay dry if it rains in the afternoon."),
    ("alice", "Good thinking. And parking? The park has only a small parking lot near the north gate."),
    ("bob", "The school next door will open its parking lot, and we will ask people to come by bicycle."),
    ("alice", "Thank you. Let us meet again next Tuesday to check the festival plan. Have a good day."),
]


def require_espeak() -> None:
    if shutil.which("espeak-ng") is None:
        raise RuntimeError(
            "espeak-ng is needed to generate the sample conversation: install it (apt-get install espeak-ng, "
            "or run ./scripts/setup.sh), or give the main job a folder of your own audio."
        )


def write_sample(folder: Path) -> Conversation:
    """The sample meeting as ``<folder>/sample-meeting.wav`` (generated once, then reused)."""
    require_espeak()
    return synthesize(SAMPLE_MEETING, Path(folder) / "sample-meeting.wav")

