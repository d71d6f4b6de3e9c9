"""Synthetic conversations with known speakers, words, turn times and subjects (espeak-ng).

Used for the bundled sample of the main job, by the tests and by the topic benchmark; `tiny_library`
makes folders of many short files for the library benchmark.

Each line of a script is spoken by one voice; the clips are trimmed of their leading and
trailing silence and joined with short pauses, so the reference turns are exact.

A line may carry a third item, its subject: ``(speaker, text, subject)``. The conversation then
knows its subject spans exactly (``Conversation.subjects``): a span starts at the start of its
first line (the first span at 0.0) and ends where the next subject starts (the last one at the
end of the recording), so the spans tile the recording. ``SUBJECT_KEYWORDS`` lists, per subject,
words that a title naming the subject would contain.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SAMPLE_RATE = 22050  # espeak-ng's native rate; decoding to 16 kHz is part of what is tested


@dataclass(frozen=True)
class Voice:
    name: str  # espeak-ng voice and variant, e.g. "en+f3"; or a flite voice, e.g. "slt"
    pitch: int  # 0-99 (espeak-ng only)
    speed: int = 150  # words per minute (flite speaks at its own pace, about 150)
    engine: str = "espeak-ng"  # or "flite"


VOICES = {
    "alice": Voice("en+f3", pitch=80, speed=155),
    "bob": Voice("en-us", pitch=35, speed=150),
    "carol": Voice("en+boris", pitch=30, speed=145),
}

# Voices the labelled scripts use besides VOICES (kept apart so that code cycling over VOICES,
# such as scripts/bench.py, keeps its three-voice corpus).
GUEST_VOICES = {
    "dave": Voice("en-gb-scotland", pitch=60, speed=160),
}
# flite's diphone voices (Debian package `flite`): another synthesiser, so voice identity is not
# only a matter of espeak-ng's pitch and variant.
FLITE_VOICES = {
    "erin": Voice("slt", pitch=50, speed=170, engine="flite"),
    "ravi": Voice("rms", pitch=50, speed=165, engine="flite"),
}
ALL_VOICES = {**VOICES, **GUEST_VOICES, **FLITE_VOICES}

# espeak-ng speaks a little faster than its nominal words per minute once the clips are trimmed
# (measured on SAMPLE_MEETING and FIVE_SUBJECT_PODCAST: 0.87 to 0.89 of the nominal time).
TRIMMED_SPEECH_FACTOR = 0.88

Line = tuple[str, str] | tuple[str, str, str]  # (speaker, text) or (speaker, text, subject)


@dataclass(frozen=True)
class SpokenLine:
    start: float
    end: float
    speaker: str
    text: str
    subject: str | None = None


@dataclass(frozen=True)
class GroundTruth:
    """What a labelled recording is known to contain: its lines with times, and its subject spans."""

    duration_s: float
    lines: list[SpokenLine]
    subjects: list[tuple[float, float, str]]  # (start, end, subject), tiling [0, duration_s]
    keywords: dict[str, tuple[str, ...]]  # subject -> words a title naming it would contain

    @property
    def starts(self) -> list[float]:
        return [start for start, _, _ in self.subjects]

    def text_of(self, subject: str) -> str:
        return " ".join(line.text for line in self.lines if line.subject == subject)


@dataclass(frozen=True)
class Conversation:
    path: Path
    text: str  # the reference transcript
    turns: list[tuple[float, float, str]]  # (start, end, speaker), seconds
    duration_s: float
    lines: list[SpokenLine] = field(default_factory=list)
    subjects: list[tuple[float, float, str]] = field(default_factory=list)  # empty for unlabelled scripts
    keywords: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def speakers(self) -> set[str]:
        return {speaker for _, _, speaker in self.turns}

    @property
    def truth(self) -> GroundTruth:
        if not self.subjects:
            raise ValueError(f"{self.path.name}: its script has no subject labels")
        return GroundTruth(self.duration_s, self.lines, self.subjects, self.keywords)


def speak(text: str, voice: Voice) -> np.ndarray:
    """One utterance as int16 samples at SAMPLE_RATE, with leading/trailing silence trimmed."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "line.wav"
        if voice.engine == "flite":
            command = ["flite", "-voice", voice.name, "-t", text, "-o", str(out)]
        else:
            command = [
                "espeak-ng",
                "-v",
                voice.name,
                "-p",
                str(voice.pitch),
                "-s",
                str(voice.speed),
                "-w",
                str(out),
                text,
            ]
        subprocess.run(command, check=True, capture_output=True)
        with wave.open(str(out)) as w:
            rate = w.getframerate()
            assert w.getnchannels() == 1
            samples = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    if rate != SAMPLE_RATE:  # flite writes 16 kHz (8 kHz for kal)
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(rate, SAMPLE_RATE)
        resampled = resample_poly(samples.astype(np.float32), SAMPLE_RATE // g, rate // g)
        samples = np.clip(np.round(resampled), -32768, 32767).astype(np.int16)
    loud = np.flatnonzero(np.abs(samples) > 300)
    return samples[loud[0] : loud[-1] + 1]


def write_wav(path: Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(samples.astype(np.int16).tobytes())


def subject_spans(lines: Sequence[SpokenLine], duration_s: float) -> list[tuple[float, float, str]]:
    """The subject spans of labelled lines: each starts at its first line (the first at 0.0) and
    ends where the next starts (the last at ``duration_s``). Empty if any line has no subject."""
    if not lines or any(line.subject is None for line in lines):
        return []
    starts: list[tuple[float, str]] = []
    for line in lines:
        if not starts or starts[-1][1] != line.subject:
            starts.append((line.start if starts else 0.0, line.subject))
    ends = [start for start, _ in starts[1:]] + [duration_s]
    return [(start, end, subject) for (start, subject), end in zip(starts, ends)]


def _keywords_for(lines: Sequence[SpokenLine], keywords: dict[str, Sequence[str]] | None) -> dict[str, tuple[str, ...]]:
    table = SUBJECT_KEYWORDS if keywords is None else keywords
    named = dict.fromkeys(line.subject for line in lines if line.subject is not None)
    out = {}
    for subject in named:
        found = table.get(subject) or table.get(base_subject(subject))
        if found:
            out[subject] = tuple(found)
    return out


def _unpack(line: Line) -> tuple[str, str, str | None]:
    speaker, text, *rest = line
    return speaker, text, (rest[0] if rest else None)


def synthesize(
    script: Sequence[Line],
    path: Path,
    pause_s: float = 0.7,
    lead_s: float = 0.5,
    keywords: dict[str, Sequence[str]] | None = None,
) -> Conversation:
    """Speak `script` (speaker, text[, subject]) lines into one mono wav at `path`.

    With subject labels on every line, the conversation carries the subject spans and the
    keywords of its subjects (from ``keywords``, default ``SUBJECT_KEYWORDS``).
    """
    pause = np.zeros(int(pause_s * SAMPLE_RATE), dtype=np.int16)
    pieces = [np.zeros(int(lead_s * SAMPLE_RATE), dtype=np.int16)]
    turns, lines = [], []
    cursor = len(pieces[0])
    for line in script:
        speaker, text, subject = _unpack(line)
        clip = speak(text, ALL_VOICES[speaker])
        start, end = cursor / SAMPLE_RATE, (cursor + len(clip)) / SAMPLE_RATE
        turns.append((start, end, speaker))
        lines.append(SpokenLine(start, end, speaker, text, subject))
        pieces += [clip, pause]
        cursor += len(clip) + len(pause)
    samples = np.concatenate(pieces)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(path, samples)
    duration = len(samples) / SAMPLE_RATE
    return Conversation(
        path=path,
        text=" ".join(_unpack(line)[1] for line in script),
        turns=turns,
        duration_s=duration,
        lines=lines,
        subjects=subject_spans(lines, duration),
        keywords=_keywords_for(lines, keywords),
    )


def estimated_seconds(speaker: str, text: str) -> float:
    """About how long espeak-ng takes to say ``text`` in ``speaker``'s voice, silence trimmed."""
    return len(text.split()) * 60.0 / ALL_VOICES[speaker].speed * TRIMMED_SPEECH_FACTOR


def estimate_truth(
    script: Sequence[Line], pause_s: float = 0.7, lead_s: float = 0.5, keywords: dict[str, Sequence[str]] | None = None
) -> GroundTruth:
    """The ground truth of a labelled script without speaking it: each line lasts as long as
    ``estimated_seconds`` (espeak-ng's real clips are within a few per cent of that)."""
    cursor, lines = lead_s, []
    for line in script:
        speaker, text, subject = _unpack(line)
        seconds = estimated_seconds(speaker, text)
        lines.append(SpokenLine(round(cursor, 3), round(cursor + seconds, 3), speaker, text, subject))
        cursor += seconds + pause_s
    duration = round(cursor, 3)
    spans = subject_spans(lines, duration)
    if not spans:
        raise ValueError("every line of the script needs a subject label")
    return GroundTruth(duration, lines, spans, _keywords_for(lines, keywords))


def speaker_transcript(truth: GroundTruth | Conversation, key: str = "estimated.wav"):
    """A ``SpeakerTranscript`` of the script itself (one utterance per line, words spread evenly
    over it): the perfect ASR and diarization, for fast tests of the topic stages."""
    from autorag_dagster.core.types import SpeakerTranscript, SpeakerWord, Utterance

    utterances = []
    for line in truth.lines:
        words = line.text.split()
        step = (line.end - line.start) / len(words)
        utterances.append(
            Utterance(
                speaker=line.speaker,
                start=line.start,
                end=line.end,
                text=line.text,
                words=[
                    SpeakerWord(
                        start=line.start + i * step, end=line.start + (i + 1) * step, text=w, speaker=line.speaker
                    )
                    for i, w in enumerate(words)
                ],
            )
        )
    return SpeakerTranscript(key=key, duration_s=truth.duration_s, language="en", utterances=utterances)


# A two-minute meeting with three clearly separate subjects, for the main job's sample.
SAMPLE_MEETING: list[tuple[str, str]] = [
    (
        "alice",
        "Good morning everyone. Today we have three things to cover: the community garden, the budget, and the summer festival.",
    ),
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


# The subject of each line of SAMPLE_MEETING. The opening line announces all three subjects and
# leads straight into the garden, so it belongs to the garden; the closing line ("check the
# festival plan") belongs to the festival, the subject it ends on.
SAMPLE_MEETING_SUBJECTS: list[str] = ["garden"] * 6 + ["budget"] * 4 + ["festival"] * 9

# SAMPLE_MEETING with its subject labels: (speaker, text, subject).
LABELLED_SAMPLE_MEETING: list[tuple[str, str, str]] = [
    (speaker, text, subject) for (speaker, text), subject in zip(SAMPLE_MEETING, SAMPLE_MEETING_SUBJECTS, strict=True)
]

# Subject blocks, each a run of lines on one subject; FIVE_SUBJECT_PODCAST and long_script use them.
CYCLING: list[tuple[str, str]] = [
    (
        "carol",
        "Welcome to the neighbourhood podcast. Our first story today is about the new bicycle lanes on Harbour Road.",
    ),
    (
        "dave",
        "The city painted green lanes for bikes along three kilometres of the road, with a low kerb between cyclists and cars.",
    ),
    ("alice", "I ride my bike to work every morning, and the lane feels much safer than mixing with the buses."),
    ("bob", "Some drivers complain that the road is narrower now and that traffic moves slower at rush hour."),
    ("carol", "Did the number of cyclists go up since the lanes opened in the spring?"),
    ("dave", "The counters show about nine hundred bikes a day, almost twice as many as last year."),
    ("alice", "Parents also let their kids cycle to school now, as long as they wear a helmet."),
    ("bob", "The next step is secure bicycle racks at the train station, so commuters can leave their bikes there."),
    (
        "dave",
        "Shops along the road were worried about losing customers, but bike riders stop and shop more often than drivers.",
    ),
    (
        "alice",
        "The only problem is the junction by the bridge, where the lane ends suddenly and cyclists merge with the traffic.",
    ),
    ("bob", "The council says the bridge junction gets its own traffic light for bikes before the end of the year."),
    ("carol", "A good plan. Cyclists, please remember your lights when you ride after dark."),
]
LIBRARY: list[tuple[str, str]] = [
    ("carol", "Our second story is the public library, which reopened last month after a long renovation."),
    (
        "alice",
        "The librarians moved forty thousand books into the new building, and the shelves are finally full again.",
    ),
    ("dave", "What changed inside? I remember a dark reading room with very old chairs."),
    (
        "alice",
        "The reading room now has big windows, quiet desks and a corner where teenagers can borrow comics and novels.",
    ),
    ("bob", "I went on Tuesday and borrowed three novels. The librarian showed me how to renew books online."),
    ("carol", "Is the library offering anything new for young readers?"),
    ("alice", "Every Wednesday a librarian reads picture books aloud to toddlers and their grandparents."),
    ("dave", "My daughter joined the winter reading challenge. She has already finished twelve books."),
    ("dave", "Is there still a section for local history, with the old maps and photographs of the town?"),
    (
        "alice",
        "Yes, the history room is upstairs, and the librarians are scanning the photographs for readers to see at home.",
    ),
    ("bob", "The library also extended its opening hours, so you can borrow books until eight in the evening."),
    ("bob", "And the library card is still free for everyone who lives in the district."),
]
FOOTBALL: list[tuple[str, str]] = [
    ("carol", "Now to sport. Our local football club won the regional league on Saturday."),
    ("bob", "It was a great match. The team scored two goals in the last ten minutes and the stadium went wild."),
    ("dave", "The coach deserves the credit. He gave the young players a chance in the starting eleven."),
    ("alice", "Who scored the winning goal? I only heard the crowd cheering from my balcony."),
    ("bob", "The striker, a seventeen year old, headed the ball past the goalkeeper from a corner kick."),
    ("carol", "What happens next season for the team?"),
    ("dave", "They move up a division, so they need a bigger squad and a new grass pitch."),
    ("bob", "Season tickets go on sale next week, and the price for students stays the same."),
    ("carol", "How many fans came to the final match?"),
    ("bob", "More than four thousand, the biggest crowd at the stadium in twenty years."),
    ("dave", "The team also trains girls on Sunday mornings, and their coach wants to start a second squad."),
    ("alice", "I might finally buy one and watch the matches with the other football fans."),
]
CLINIC: list[tuple[str, str]] = [
    ("carol", "Our fourth story is about health. The new medical clinic on Elm Street opens its doors on Monday."),
    ("alice", "It has four doctors, six nurses and a pharmacy, so patients no longer travel to the hospital in town."),
    ("bob", "How do people book an appointment? The phone line at the old surgery was always busy."),
    ("alice", "Patients can book online or by phone, and there are same day appointments for urgent problems."),
    ("dave", "Will the clinic offer flu vaccines this autumn? Many older patients ask about that."),
    ("alice", "Yes, the nurses give the vaccine every Thursday afternoon from October to December."),
    ("carol", "What about dentists? That is what my friends always ask me."),
    ("bob", "A dentist joins in the spring, and the clinic will also have a physiotherapist for back pain."),
    ("bob", "Can patients reach the clinic without a car?"),
    ("alice", "The number twelve bus stops right outside, and the doctors can also visit patients at home."),
    ("dave", "The clinic also runs a weekly class for patients with diabetes, led by one of the nurses."),
    ("dave", "That is good news for our health. Shorter waiting times for every patient."),
]
ASTRONOMY: list[tuple[str, str]] = [
    ("carol", "Finally, something for clear nights. The astronomy society holds a stargazing evening next Friday."),
    ("dave", "We set up six telescopes on the hill above the quarry, far away from the street lights."),
    ("bob", "What can people see in the sky at this time of year?"),
    ("dave", "Jupiter and its four largest moons, the rings of Saturn, and the craters of our own moon."),
    ("alice", "I looked through a telescope once, and the rings of Saturn looked like a tiny drawing."),
    ("carol", "Do visitors need their own equipment, or can they just come along?"),
    (
        "dave",
        "Just come along. Bring warm clothes and a red torch, because white light spoils eyes adapted to the night sky.",
    ),
    ("bob", "And if the sky is cloudy, the society gives a talk about planets and comets in the observatory instead."),
    ("alice", "Can families bring small kids to the stargazing evening?"),
    ("dave", "Of course. Kids love the moon most of all, because through a telescope they can see every crater."),
    (
        "bob",
        "The society also lends a small telescope to members for a month, with a star map and a guide to the planets.",
    ),
    ("carol", "Thank you all. Clear skies to our listeners, and see you next week on the podcast."),
]
COMPUTERS: list[tuple[str, str]] = [
    ("alice", "Next item: the free computer course for older residents at the community centre."),
    ("bob", "The course teaches email, video calls and how to choose a strong password."),
    ("carol", "How many laptops do we have for the students of the course?"),
    ("bob", "Twelve laptops, donated by a software company, and the internet connection was upgraded in March."),
    ("dave", "Last term one student sent her first email to her grandson in Canada. She was so proud."),
    ("alice", "Could we add a lesson about online banking and avoiding scam messages?"),
    ("bob", "Yes. The teacher will cover scams, fake websites and safe shopping online in the fourth lesson."),
]
BIRDS: list[tuple[str, str]] = [
    ("carol", "Let us turn to the bird count that took place in the wetlands last weekend."),
    ("dave", "Forty people counted birds for two hours with binoculars and notebooks."),
    ("alice", "We recorded sixty two species, including a pair of herons and a rare kingfisher."),
    ("dave", "The swallows came back early this year, and the owls nested in the old barn again."),
    ("bob", "Should people put out feeders in the winter, or is that bad for wild birds?"),
    ("dave", "Feeders help in cold weather, but they must be cleaned every week so the birds stay healthy."),
    ("carol", "The results go to the national bird survey, and the next count is in May."),
]
CHESS: list[tuple[str, str]] = [
    ("bob", "One more thing: the chess club is organising a tournament for beginners."),
    ("alice", "Players of every age can enter. Each game lasts thirty minutes per player on the clock."),
    ("carol", "I learned chess last year. I still lose my queen too early in most games."),
    ("bob", "The club meets on Thursday evenings, and a grandmaster will explain some classic openings."),
    ("dave", "The winner gets a wooden chess board, carved by a local craftsman."),
    ("alice", "Sign up at the chess club before the end of the month, because there are only thirty places."),
]

SUBJECT_BLOCKS: dict[str, list[tuple[str, str]]] = {
    "garden": SAMPLE_MEETING[1:6],
    "budget": SAMPLE_MEETING[6:10],
    "festival": SAMPLE_MEETING[10:18],
    "cycling": CYCLING,
    "library": LIBRARY,
    "football": FOOTBALL,
    "clinic": CLINIC,
    "astronomy": ASTRONOMY,
    "computers": COMPUTERS,
    "birds": BIRDS,
    "chess": CHESS,
}

# Per subject, words a title that names the subject would contain; every one of them occurs
# (up to simple stemming) in the subject's own lines, and no two subjects share one.
SUBJECT_KEYWORDS: dict[str, tuple[str, ...]] = {
    "garden": ("garden", "tree", "apple", "planted", "river", "volunteer", "water", "branch", "stake", "rain"),
    "budget": ("budget", "spent", "dollar", "cost", "irrigation", "pipe", "reserve", "repair", "bench", "shed", "tool"),
    "festival": (
        "festival",
        "summer",
        "august",
        "park",
        "bakery",
        "bread",
        "music",
        "band",
        "game",
        "poster",
        "tent",
        "parking",
        "weather",
        "event",
        "children",
    ),
    "cycling": ("bicycle", "bike", "cyclist", "cycle", "lane", "road", "traffic", "helmet", "commuter", "ride", "rack"),
    "library": (
        "library",
        "librarian",
        "book",
        "reading",
        "reader",
        "novel",
        "shelves",
        "renovation",
        "borrow",
        "comic",
    ),
    "football": (
        "football",
        "sport",
        "league",
        "match",
        "team",
        "goal",
        "coach",
        "player",
        "stadium",
        "season",
        "striker",
        "fan",
    ),
    "clinic": (
        "clinic",
        "medical",
        "health",
        "doctor",
        "nurse",
        "patient",
        "appointment",
        "vaccine",
        "pharmacy",
        "dentist",
        "hospital",
        "surgery",
    ),
    "astronomy": (
        "astronomy",
        "stargazing",
        "telescope",
        "moon",
        "saturn",
        "jupiter",
        "sky",
        "observatory",
        "comet",
        "planet",
        "night",
    ),
    "computers": ("computer", "course", "laptop", "email", "internet", "password", "online", "scam", "lesson"),
    "birds": ("bird", "wetland", "species", "heron", "kingfisher", "owl", "swallow", "feeder", "binoculars", "survey"),
    "chess": ("chess", "tournament", "queen", "grandmaster", "opening", "beginner", "board", "clock"),
}


def labelled(*subjects: str) -> list[tuple[str, str, str]]:
    """The blocks of ``subjects`` one after the other, each line labelled with its subject."""
    return [(speaker, text, subject) for subject in subjects for speaker, text in SUBJECT_BLOCKS[subject]]


# A five-subject neighbourhood podcast with four voices, about six minutes long (over five of speech): bicycle lanes,
# the reopened library, the football club, the new clinic and a stargazing evening.
FIVE_SUBJECT_PODCAST: list[tuple[str, str, str]] = labelled("cycling", "library", "football", "clinic", "astronomy")

# The order in which long_script takes the blocks: neighbouring subjects never share a setting.
LONG_ORDER = (
    "cycling",
    "garden",
    "library",
    "computers",
    "football",
    "budget",
    "birds",
    "clinic",
    "chess",
    "festival",
    "astronomy",
)


def long_script(minutes: float = 10.0, pause_s: float = 0.7) -> list[tuple[str, str, str]]:
    """A labelled script of about ``minutes`` (at least that long by the estimate of
    ``estimate_truth``): whole subject blocks in ``LONG_ORDER``, cycling through them again if
    needed (a repeated subject is labelled ``"<subject>#2"`` and so on; see ``base_subject``)."""
    script: list[tuple[str, str, str]] = []
    seconds, index = 0.5, 0
    while seconds < minutes * 60:
        subject = LONG_ORDER[index % len(LONG_ORDER)]
        round_ = index // len(LONG_ORDER) + 1
        label = subject if round_ == 1 else f"{subject}#{round_}"
        for speaker, text in SUBJECT_BLOCKS[subject]:
            script.append((speaker, text, label))
            seconds += estimated_seconds(speaker, text) + pause_s
        index += 1
    return script


def base_subject(label: str) -> str:
    """``"garden#2"`` -> ``"garden"``: the subject of a repeated block."""
    return label.split("#", 1)[0]


def write_labelled(script: Sequence[Line], path: Path, reuse: bool = True) -> Conversation:
    """``script`` spoken into ``path``; with ``reuse``, an existing wav made from the same script and
    voices is kept (its ground truth is stored beside it as ``<name>.truth.json``)."""
    import json

    require_espeak()
    path = Path(path)
    meta = path.with_suffix(".truth.json")
    speakers = sorted({_unpack(line)[0] for line in script})
    fingerprint = json.dumps(
        {
            "lines": [list(line) for line in script],
            "voices": {name: list(vars(ALL_VOICES[name]).values()) for name in speakers},
        }
    )
    if reuse and path.exists() and meta.exists():
        stored = json.loads(meta.read_text(encoding="utf-8"))
        if stored.get("script") == fingerprint:
            return conversation_from_json(path, stored)
    conversation = synthesize(script, path)
    meta.write_text(
        json.dumps(
            {
                "script": fingerprint,
                "text": conversation.text,
                "duration_s": conversation.duration_s,
                "turns": conversation.turns,
                "lines": [[ln.start, ln.end, ln.speaker, ln.text, ln.subject] for ln in conversation.lines],
                "subjects": conversation.subjects,
                "keywords": conversation.keywords,
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    return conversation


def conversation_from_json(path: Path, stored: dict) -> Conversation:
    return Conversation(
        path=Path(path),
        text=stored["text"],
        turns=[tuple(t) for t in stored["turns"]],
        duration_s=stored["duration_s"],
        lines=[SpokenLine(*line) for line in stored["lines"]],
        subjects=[tuple(s) for s in stored["subjects"]],
        keywords={k: tuple(v) for k, v in stored["keywords"].items()},
    )


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


# --- a library where voices come back: the truth for cross-file speaker identity ------------------
# Four files on four subjects, five voices (three espeak-ng, two flite); alice, bob, erin and ravi
# each speak in two files, carol in one. Every speaker talks for well over the few seconds a voice
# needs to count (``VoicesConfig.voice_min_talk_s``). Two voices say their names, alice in
# garden.wav and bob in cooking.wav (both come back in another file); no other name is said.
VOICE_LIBRARY: dict[str, list[tuple[str, str]]] = {
    "garden.wav": [
        ("alice", "Hello, I'm Sarah. Today we look at the community garden by the river."),
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
        ("bob", "Welcome back to the kitchen show. My name is David. Tonight we cook a simple vegetable soup."),
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


# How a line of a script says its speaker's name ("I'm Sarah", "My name is David").
_SAYS_ITS_NAME = re.compile(r"\b(?:I'm|[Mm]y name is) ([A-Z][a-z]+)\b")


def introductions(script: Sequence[Line]) -> list[tuple[str, str]]:
    """(voice, name) for each line of ``script`` in which the voice says its own name."""
    return [(speaker, m.group(1)) for speaker, text, _ in map(_unpack, script) for m in _SAYS_ITS_NAME.finditer(text)]


def write_voice_library(folder: Path) -> dict[str, Conversation]:
    """The library's recordings under ``folder``, by file name."""
    folder.mkdir(parents=True, exist_ok=True)
    return {name: synthesize(script, folder / name) for name, script in VOICE_LIBRARY.items()}


def true_voices(diarizations: dict, conversations: dict[str, Conversation]) -> dict[tuple[str, str], str]:
    """(file, local label) -> the voice that speaks most of that label's turns (``diarizations``:
    file -> ``Diarization``)."""
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


def suggested_names(rows, truth: dict[tuple[str, str], str]) -> list[tuple[str, str, str | None, str | None]]:
    """(file, name, true voice of the local speaker, true voice of the identity) for each name
    suggested for an identity. ``rows``: what ``core.speakers.speaker_rows`` gives; ``truth``:
    what ``true_voices`` gives; an identity's true voice is the one of most of its local speakers
    (None when none is known). A right suggestion is ``(file, name, voice, voice)`` for an
    ``introductions`` entry ``(voice, name)`` of that file's script."""
    found = []
    for row in rows:
        labels = {file: label for file, label, _ in row.files}  # one local speaker per file
        voices = [truth[(file, label)] for file, label in labels.items() if (file, label) in truth]
        voice = max(set(voices), key=voices.count) if voices else None
        found += [(file, name, truth.get((file, labels[file])), voice) for name, file, _, _ in row.suggestions]
    return found


def tiny_library(folder: Path, count: int, seconds: float = 0.1, *, mtime: float | None = None) -> list[str]:
    """``count`` short valid WAV files of distinct content (quiet noise from a seed per file) in
    ``folder``, for measuring what scales with the number of files (the folder sensor, partitions).
    ``mtime``: the files' modification time (older than the sensor's settle time: complete).
    Returns their keys."""
    folder.mkdir(parents=True, exist_ok=True)
    keys = []
    for number in range(count):
        key = f"{number // 500:02d}/file-{number:05d}.wav"
        path = folder / key
        path.parent.mkdir(parents=True, exist_ok=True)
        noise = np.random.default_rng(number).standard_normal(int(seconds * SAMPLE_RATE)) * 300
        write_wav(path, noise)
        if mtime is not None:
            os.utime(path, (mtime, mtime))
        keys.append(key)
    return keys
