"""Synthetic conversations with known speakers, words and turn times (espeak-ng).

Each line of a script is spoken by one voice; the clips are trimmed of their leading and
trailing silence and joined with short pauses, so the reference turns are exact.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from autorag_dagster.samples import SAMPLE_RATE, VOICES, Conversation, speak, synthesize, write_wav

__all__ = [
    "SAMPLE_RATE",
    "INTRODUCTION",
    "THREE_SPEAKERS",
    "TWO_SPEAKERS",
    "VOICES",
    "Conversation",
    "convert",
    "speak",
    "synthesize",
    "write_wav",
]

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

# TWO_SPEAKERS, but Alice introduces herself by name (no other name is said).
INTRODUCTION: list[tuple[str, str]] = [
    ("alice", "Hello, I'm Anna. Thank you for joining the planning meeting today."),
    *TWO_SPEAKERS[1:],
]


def convert(src: Path, dst: Path, *ffmpeg_args: str) -> Path:
    """Re-encode `src` with ffmpeg (format chosen from `dst`'s extension unless given)."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(src), *ffmpeg_args, str(dst)],
        check=True,
    )
    return dst
