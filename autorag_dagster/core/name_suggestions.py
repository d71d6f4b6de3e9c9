"""Names a speaker transcript suggests for its speakers, with the words that suggest them.

Two kinds of evidence, found by pattern matching on the words as transcribed:

- an introduction ("I'm Ana", "I am Ana", "my name is Ana", "this is Ana speaking", "Ana here",
  "call me Ana") suggests the name for the speaker who says it;
- being addressed ("Ben, what do you think?", "over to you, Ben", "go ahead, Ben", "what about
  you, Ben?", "thank you, Ben") suggests the name for the speaker who speaks next (the next
  utterance of a different speaker). Thanks at the opening of an utterance ("Thanks, Ben. ...")
  answer what was just said, so they suggest the name for the previous speaker instead.

A name is one or two capitalised words (Whisper capitalises names; "I'm sure" stays lowercase)
that are not common words: scikit-learn's English stop words plus the words below that follow
"I'm" or open a question in speech. Suggestions are only suggestions: nothing here renames a
speaker.
"""

from __future__ import annotations

import bisect
import re
from functools import lru_cache

from autorag_dagster.core.align import UNKNOWN_SPEAKER
from autorag_dagster.core.types import NameSuggestion, SpeakerTranscript, Utterance

# Stop words that are also first names: capitalised after "I'm" or "thanks," they are names.
NAMES_AMONG_STOP_WORDS = frozenset({"bill", "will", "may", "mark"})

# Common words that Whisper may capitalise where a name could stand: sentence openers, what
# people say they are ("I'm Sure", "I'm Canadian"), how a group is addressed ("thanks, Everyone").
COMMON_WORDS = frozenset(
    """
    okay ok yeah yep yes nope right alright sure great good fine cool well so now anyway honestly
    actually basically seriously listen look oh ah uh um hmm wow hey hi hello welcome thanks thank
    sorry glad happy pleased delighted thrilled excited honoured honored grateful thankful proud
    afraid worried curious interested confused tired busy late early ready just really pretty not
    going trying looking thinking talking working getting coming saying telling asking wondering
    hoping planning calling speaking sitting standing joining joined doing done new old certain
    aware convinced responsible sure-ish kind sort like definitely absolutely totally exactly
    probably maybe guys folks everybody everyone all team friends sir madam ma'am man dude mate
    buddy people ladies gentlemen today tomorrow yesterday tonight morning afternoon evening
    monday tuesday wednesday thursday friday saturday sunday january february march april june
    july august september october november december english british american canadian australian
    irish scottish welsh german french spanish italian portuguese dutch swedish norwegian danish
    finnish polish russian ukrainian chinese japanese korean indian mexican brazilian african
    european asian catholic christian jewish muslim hindu buddhist god jesus lord dr mr mrs ms
    prof professor doctor
    """.split()
)

TITLES = ("Dr", "Mr", "Mrs", "Ms", "Prof")
NAME = r"(?P<name>(?:(?:dr|mr|mrs|ms|prof)\.?\s+)?[^\W\d_][\w'’-]*(?:\s+[^\W\d_][\w'’-]*)?)"
OPENING = r"(?:^|(?<=[.!?])\s+|\b(?:hi|hello|hey|okay|ok|yes|yeah|so|well)[,!.]?\s+)"
QUESTION = r"(?:what|how|why|where|when|who|which|do|does|did|would|could|can|will|are|is|have|any|your)\b"

INTRODUCTIONS = [
    re.compile(rf"\b(?:I'm|I’m|I am)\s+{NAME}", re.IGNORECASE),
    re.compile(rf"\bmy name(?:'s|’s|\s+is)\s+{NAME}", re.IGNORECASE),
    re.compile(rf"\bcall me\s+{NAME}", re.IGNORECASE),
    re.compile(rf"\b(?:this is|it's|it’s)\s+{NAME}\s+(?:speaking|here)\b", re.IGNORECASE),
    re.compile(rf"{OPENING}{NAME}\s+here(?=\s*(?:[.,!?]|$))", re.IGNORECASE),
]
ADDRESSED = [
    re.compile(rf"{OPENING}{NAME},\s+{QUESTION}", re.IGNORECASE),
    re.compile(rf",\s+{NAME}\?", re.IGNORECASE),
    re.compile(rf"\bover to you,?\s+{NAME}", re.IGNORECASE),
    re.compile(rf"{OPENING}{NAME},\s+over to you\b", re.IGNORECASE),
    re.compile(rf"\bgo ahead,?\s+{NAME}", re.IGNORECASE),
]
THANKS = re.compile(rf"\b(?:thanks|thank you)(?:\s+(?:so|very)\s+much)?,?\s+{NAME}", re.IGNORECASE)
OPENING_WORDS = 2  # thanks after at most this many words of an utterance answer the previous speaker
CONTEXT_WORDS = 3  # words of evidence kept on each side of the matched words


@lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """Words that are never taken for a name (lowercase)."""
    # scikit-learn comes with the diarizer (spectralcluster depends on it)
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return (frozenset(ENGLISH_STOP_WORDS) - NAMES_AMONG_STOP_WORDS) | COMMON_WORDS


def _is_name_word(word: str) -> bool:
    return (
        len(word) >= 2
        and word[0].isupper()
        and all(c.isalpha() or c in "'’-" for c in word)
        and word.lower() not in common_words()
        and not word.lower().endswith(("'s", "’s"))  # "I'm Ana's sister"
    )


def name_in(matched: str) -> str | None:
    """The name a pattern captured (one or two words, after a title such as "Dr."), or None if
    its first word is no name."""
    words = [word.strip("'’-") for word in matched.split()]
    if len(words) > 1 and words[0].rstrip(".") in TITLES:
        name = name_in(" ".join(words[1:3]))
        return f"{words[0]} {name}" if name else None
    if not words or not _is_name_word(words[0]):
        return None
    if len(words) > 1 and _is_name_word(words[1]):
        return f"{words[0]} {words[1]}"
    return words[0]


class _Text:
    """An utterance's words joined with spaces, and which word each character belongs to."""

    def __init__(self, utterance: Utterance):
        self.words = utterance.words
        self.starts: list[int] = []
        parts, cursor = [], 0
        for word in utterance.words:
            text = word.text.strip()
            self.starts.append(cursor)
            parts.append(text)
            cursor += len(text) + 1
        self.text = " ".join(parts)

    def word_at(self, char: int) -> int:
        return max(0, bisect.bisect_right(self.starts, char) - 1)

    def evidence(self, first: int, last: int) -> str:
        lo, hi = max(0, first - CONTEXT_WORDS), min(len(self.words), last + 1 + CONTEXT_WORDS)
        return " ".join(w.text.strip() for w in self.words[lo:hi])


def _other_speaker(utterances: list[Utterance], index: int, step: int) -> str | None:
    """The speaker of the nearest utterance before (step -1) or after (+1) that is someone else."""
    speaker, i = utterances[index].speaker, index + step
    while 0 <= i < len(utterances):
        if utterances[i].speaker not in (speaker, UNKNOWN_SPEAKER):
            return utterances[i].speaker
        i += step
    return None


def suggest_names(transcript: SpeakerTranscript) -> list[NameSuggestion]:
    """Every name the transcript suggests for one of its speakers, in time order, with evidence."""
    found: dict[tuple[str, str, float], NameSuggestion] = {}
    utterances = transcript.utterances
    for index, utterance in enumerate(utterances):
        if utterance.speaker == UNKNOWN_SPEAKER or not utterance.words:
            continue
        text = _Text(utterance)
        if not any(c.islower() for c in text.text):  # no casing to tell names from words
            continue
        matches = [(m, "introduction", utterance.speaker) for p in INTRODUCTIONS for m in p.finditer(text.text)]
        nxt = _other_speaker(utterances, index, +1)
        matches += [(m, "addressed", nxt) for p in ADDRESSED for m in p.finditer(text.text)]
        for m in THANKS.finditer(text.text):
            previous = _other_speaker(utterances, index, -1)
            opening = text.word_at(m.start()) <= OPENING_WORDS
            matches.append((m, "addressed", previous if opening and previous else nxt))
        for m, kind, speaker in matches:
            name = name_in(m.group("name"))
            if speaker is None or name is None:
                continue
            first_name_word = text.word_at(m.start("name"))
            last_name_word = first_name_word + len(name.split()) - 1
            time = round(text.words[first_name_word].start, 3)
            key = (speaker, name, time)
            if key not in found:
                found[key] = NameSuggestion(
                    speaker=speaker,
                    name=name,
                    time=time,
                    words=text.evidence(text.word_at(m.start()), last_name_word),
                    kind=kind,
                )
    return sorted(found.values(), key=lambda s: (s.time, s.speaker))
