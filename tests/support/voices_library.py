"""A small library of recordings where some voices come back: the truth for cross-file identity.

Four files on four subjects, five voices (three espeak-ng, two flite); alice, bob, erin and
ravi each speak in two files, carol in one. Every speaker talks for well over the few seconds
a voice needs to count (``VoicesConfig.voice_min_talk_s``).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from autorag_dagster.core.types import Diarization
from autorag_dagster.samples import Conversation, synthesize

LIBRARY_SCRIPTS: dict[str, list[tuple[str, str]]] = {
    "garden.wav": [
        ("alice", "Good morning. Today we look at the community garden by the river."),
        ("bob", "We planted forty apple trees last week, and most of them are growing well."),
        ("alice", "How much water do the young trees need during the dry summer weeks?"),
        ("bob", "Each tree needs two buckets of water twice a week until the autumn rain comes."),
        ("alice", "Then we should find more volunteers for the Saturday morning shift."),
    ],
    "budget.wav": [
        ("erin", "Welcome to the finance meeting. We need to review the budget for next year."),
        ("alice", "We spent eight thousand dollars of the twelve thousand that we planned."),
        ("erin", "The biggest cost was the new heating system in the town hall building."),
        ("alice", "I suggest we keep one thousand dollars as a reserve for urgent repairs."),
        ("erin", "Agreed. The rest can pay for new chairs and a projector for the meeting room."),
    ],
    "cooking.wav": [
        ("bob", "Welcome back to the kitchen show. Tonight we cook a simple vegetable soup."),
        ("ravi", "First we chop two onions, three carrots and a few potatoes into small pieces."),
        ("erin", "Should we fry the onions in butter or in olive oil before adding the water?"),
        ("ravi", "Olive oil works well. Fry them slowly until they turn soft and golden."),
        ("bob", "Then add the vegetables, cover them with water, and let the soup simmer for twenty minutes."),
    ],
    "travel.wav": [
        ("carol", "This week on the travel hour we take the night train across the mountains."),
        ("ravi", "The train leaves the capital at nine in the evening and arrives at dawn."),
        ("carol", "Is it comfortable to sleep in the small cabins with four beds?"),
        ("ravi", "The beds are narrow but clean, and the view of the valley at sunrise is beautiful."),
        ("carol", "Remember to book early, because the summer trains are full weeks ahead."),
    ],
}


def write_library(folder: Path, cache: Path | None = None) -> dict[str, Conversation]:
    """The library's recordings under ``folder`` (each generated once into ``cache`` when given)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, script in LIBRARY_SCRIPTS.items():
        if cache is not None:
            made = cache / name
            conversation = _cached(made, script)
            shutil.copy(made, folder / name)
            out[name] = Conversation(**{**conversation.__dict__, "path": folder / name})
        else:
            out[name] = synthesize(script, folder / name)
    return out


_MADE: dict[Path, Conversation] = {}


def _cached(path: Path, script) -> Conversation:
    if path not in _MADE:
        _MADE[path] = synthesize(script, path)
    return _MADE[path]


def true_voices(diarizations: Mapping[str, Diarization], conversations: Mapping[str, Conversation]) -> dict:
    """(file, local label) -> the voice that speaks most of that label's turns."""
    truth = {}
    for key, diarization in diarizations.items():
        overlap: dict[str, dict[str, float]] = {}
        for turn in diarization.turns:
            for start, end, voice in conversations[key].turns:
                common = min(end, turn.end) - max(start, turn.start)
                if common > 0:
                    shared = overlap.setdefault(turn.speaker, {})
                    shared[voice] = shared.get(voice, 0.0) + common
        for label, shared in overlap.items():
            truth[(key, label)] = max(shared, key=shared.get)
    return truth
