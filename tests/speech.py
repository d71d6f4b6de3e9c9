"""Synthetic conversations with known speakers, words and turn times (espeak-ng).

Each line of a script is spoken by one voice; the clips are trimmed of their leading and
trailing silence and joined with short pauses, so the reference turns are exact.
"""

from __future__ import annotations

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

TWO_SPEAKERS: list[tuple[str, str]] = [
    ("alice", "Good morning. Thank you for joining the planning meeting today."),
    ("bob", "Happy to be here. I have a short update about the new garden project."),
    ("alice", "Great. Please tell us how many trees were planted last week."),
    ("bob", "We planted forty trees near the river and the school."),
    ("alice", "That is wonderful news. What do you need from the team next?"),
    ("bob", "We need more water and two people to help on Saturday morning."),
]

THREE_SPEAKERS: list[tuple[str, str]] = [
    ("alice", "Welcome back to the show. Today we talk about cooking at home."),
    ("bob", "Thanks for having me. I cook dinner for my family every night."),
    ("carol", "I prefer to bake bread on the weekend with my children."),
    ("alice", "What is the easiest meal for a busy evening?"),
    ("bob", "Pasta with fresh tomatoes takes about fifteen minutes."),
    ("carol", "Soup is also simple and it keeps well for a few days."),
    ("alice", "Thank you both for sharing your ideas with us."),
]


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


def convert(src: Path, dst: Path, *ffmpeg_args: str) -> Path:
    """Re-encode `src` with ffmpeg (format chosen from `dst`'s extension unless given)."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(src), *ffmpeg_args, str(dst)],
        check=True,
    )
    return dst
