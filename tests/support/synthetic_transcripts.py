"""Synthetic speaker transcripts: speakers taking turns on distinct subjects, no audio needed."""

from __future__ import annotations

import itertools

from autorag_dagster.core.types import SpeakerTranscript, SpeakerWord, Utterance

SUBJECTS = {
    "garden": "tomatoes need deep watering and compost before the seedlings go into the greenhouse beds".split(),
    "budget": "the quarterly budget shows travel costs rising so we cut the printing invoices".split(),
    "harbour": "the ferry from Marlowe harbour leaves at dawn when the tide and the wind allow".split(),
    "robots": "the robot arm calibrates its gripper sensors before sorting parcels on the conveyor".split(),
    "festival": "the summer festival needs tents posters and a band playing music in the park".split(),
    "library": "the library closes in June while builders repair the roof above the reading room".split(),
    "football": "our football team trains on Thursday and the coach wants new boots and goal nets".split(),
    "weather": "heavy rain and storms are forecast so the farmers harvest the wheat early this week".split(),
}

WORD_S = 0.4  # one word every 0.4 s
PAUSE_S = 0.6  # between utterances


def make_transcript(
    plan: list[tuple[str, float, list[str]]],
    *,
    turn_s: float = 20.0,
    with_words: bool = True,
    key: str = "talk.wav",
    tail_s: float = 2.0,
) -> SpeakerTranscript:
    """``plan``: (subject, seconds, speakers taking turns of ``turn_s``) blocks in order."""
    utterances: list[Utterance] = []
    t = 0.5
    for subject, seconds, speakers in plan:
        words = itertools.cycle(SUBJECTS[subject])
        block_end = t + seconds
        for speaker in itertools.cycle(speakers):
            if t >= block_end - 1.0:
                break
            u_end = min(t + turn_s, block_end)
            spoken = [next(words) for _ in range(max(1, int((u_end - t) / WORD_S)))]
            spoken = [w + ("." if i % 9 == 8 else "") for i, w in enumerate(spoken)]
            ws = [
                SpeakerWord(start=t + i * WORD_S, end=t + (i + 1) * WORD_S - 0.05, text=" " + w, speaker=speaker)
                for i, w in enumerate(spoken)
            ]
            utterances.append(
                Utterance(
                    speaker=speaker,
                    start=ws[0].start,
                    end=ws[-1].end,
                    text=" ".join(spoken),
                    words=ws if with_words else [],
                )
            )
            t = ws[-1].end + PAUSE_S
        t = max(t, block_end)
    return SpeakerTranscript(key=key, duration_s=round(t + tail_s, 3), language="en", utterances=utterances)


EIGHT_SUBJECTS = [
    (subject, 75.0, speakers)
    for subject, speakers in zip(
        ["garden", "budget", "harbour", "robots", "festival", "library", "football", "weather"],
        [["A", "B"], ["B", "A"], ["C", "A"], ["A", "C"], ["B", "C"], ["C", "B"], ["A", "B", "C"], ["C", "A", "B"]],
    )
]
"""Ten minutes of eight 75 s subjects: chapters of two subjects each, or eight chapters."""

TEN_MINUTES = [
    ("garden", 150.0, ["SPEAKER_01", "SPEAKER_00"]),
    ("budget", 150.0, ["SPEAKER_00", "SPEAKER_02"]),
    ("harbour", 150.0, ["SPEAKER_02"]),
    ("robots", 150.0, ["SPEAKER_01", "SPEAKER_02", "SPEAKER_00"]),
]


# --- the bundled sample meeting, as a transcript built from its script (no audio) -------------


def sample_meeting(*, key: str = "sample-meeting.wav") -> tuple[SpeakerTranscript, list[float]]:
    """The sample meeting's transcript, each line timed as espeak-ng speaks it, and the start times
    of its subjects (garden, budget, festival), from ``samples.LABELLED_SAMPLE_MEETING``."""
    from autorag_dagster import samples

    truth = samples.estimate_truth(samples.LABELLED_SAMPLE_MEETING)
    return samples.speaker_transcript(truth, key=key), truth.starts
