"""Content words, TF-IDF and what is built from them without any model: key phrases, central sentences.

Terms are content words (a small built-in English stopword list removed) reduced by a light
suffix stemmer, so ``trees``/``tree`` and ``planted``/``plant`` meet. The same terms decide
whether a title is grounded in its span (``content_terms``), which phrase names a span best
(``key_phrase``) and which of its sentences says most about it (``central_sentences``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

STOPWORDS = frozenset(
    """
    a about above after again against all almost also although always am among an and another any anybody anyone
    anything anyway are aren't around as at back be became because become been before being below between both but
    by can can't cannot could couldn't did didn't do does doesn't doing don't done down during each either else
    enough etc even ever every everyone everything few first for from further get gets getting give given go goes
    going gone got had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers herself him
    himself his how how's however i i'd i'll i'm i've if in into is isn't it it's its itself just keep know last
    least less let let's like likely made make many may maybe me might mine more most much must mustn't my myself
    need needs never next no nobody none nor not nothing now of off often oh ok okay on once one only onto or other
    others otherwise ought our ours ourselves out over own per perhaps please put quite rather really right said
    same say says see seem seems several shall shan't she she'd she'll she's should shouldn't since so some
    somebody someone something sometimes still such sure take than thank thanks that that's the their theirs them
    themselves then there there's therefore these they they'd they'll they're they've thing things think this
    those though through thus to today together too toward towards under until up upon us use used very via want
    wants was wasn't way we we'd we'll we're we've well went were weren't what what's whatever when when's where
    where's whether which while who who's whom whose why why's will with within without won't would wouldn't yeah
    yes yet you you'd you'll you're you've your yours yourself yourselves good great fine lot lots um uh hmm mm
    two three four five six seven eight nine ten let's everyone morning afternoon evening tell told ask asked
    """.split()
)

_TOKEN = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*", re.UNICODE)
_SENTENCE = re.compile(r"[^.!?]+[.!?]*", re.UNICODE)


_ORDINAL = r"(?:first|second|third|fourth|fifth|sixth|next|last|final|other|new)"
_ITEM = r"(?:thing|point|item|topic|question|story|subject|issue|matter|part)"
_CUE = re.compile(
    r"^(?:(?:good|great|okay|ok|right|thanks|thank you|fine|perfect|wonderful|alright|all right|so|and|well)[,.!]?\s+)*"
    r"(?:now\b|next\b|finally\b|lastly\b|moving on\b|let(?:'s| us) (?:move|turn|talk|go|start|look|begin)\b|"
    r"let me (?:start|turn|move|begin)\b|turning to\b|on to\b|onto\b|welcome to\b|one more thing\b|"
    rf"another {_ITEM}\b|(?:our|the|my|a) {_ORDINAL} {_ITEM}\b|first of all\b|to begin\b|back to\b|"
    r"speaking of\b|switching to\b|"
    r"(?:i|we) (?:want|would like|'d like) to (?:talk|turn|move|start|begin)\b)",
    re.IGNORECASE,
)


def opens_with_cue(text: str) -> bool:
    """Whether ``text`` opens (after an acknowledgement such as "Good." or "Thanks.") with a discourse cue."""
    return bool(_CUE.match(text.strip().replace("’", "'")))


def announced(text: str) -> str:
    """What is announced at the start of ``text`` ("Now the budget." -> "the budget."): the rest of
    the first of its first two sentences that opens with a discourse cue; "" if none does."""
    for sentence in sentences(text)[:2]:
        cue = _CUE.match(sentence.strip().replace("’", "'"))
        if cue:
            return sentence.strip()[cue.end() :]
    return ""


def stem(word: str) -> str:
    """A light, stable suffix stemmer: enough to match plural and inflected forms of one word."""
    w = word.lower().replace("’", "'")
    w = re.sub(r"'s$", "", w)
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 5 and w.endswith("ing"):
        w = w[:-3]
        return w[:-1] if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz" else w
    if len(w) > 4 and w.endswith("ed") and not w.endswith("eed"):
        w = w[:-2]
        return w[:-1] if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz" else w
    if len(w) > 4 and w.endswith(("sses", "xes", "ches", "shes")):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def words(text: str) -> list[str]:
    """Word tokens of ``text`` as written (letters with inner apostrophes)."""
    return _TOKEN.findall(text)


def is_content(word: str) -> bool:
    w = word.lower().replace("’", "'")
    return len(w) > 2 and w not in STOPWORDS and re.sub(r"'s$", "", w) not in STOPWORDS


def content_terms(text: str) -> list[str]:
    """The stemmed content words of ``text``, in order, repeats kept."""
    return [stem(w) for w in words(text) if is_content(w)]


def sentences(text: str) -> list[str]:
    """``text`` cut after ``.``, ``!`` and ``?``; pieces without a word are dropped."""
    return [s.strip() for s in _SENTENCE.findall(text) if _TOKEN.search(s)]


class TfIdf:
    """TF-IDF vectors over a fixed list of documents (the utterance units of one file)."""

    def __init__(self, documents: Sequence[str]):
        self.terms_of = [content_terms(d) for d in documents]
        df: Counter[str] = Counter()
        for terms in self.terms_of:
            df.update(set(terms))
        self.vocabulary = {t: i for i, t in enumerate(sorted(df))}
        n = max(len(documents), 1)
        self.idf = np.array([math.log((1 + n) / (1 + df[t])) + 1.0 for t in sorted(df)], dtype=float)
        self.matrix = np.stack([self.vector(terms) for terms in self.terms_of]) if documents else np.zeros((0, len(df)))

    def vector(self, terms: Iterable[str]) -> np.ndarray:
        """Raw-count TF times IDF of ``terms`` (terms unknown to the documents are ignored)."""
        v = np.zeros(len(self.vocabulary), dtype=float)
        for t in terms:
            i = self.vocabulary.get(t)
            if i is not None:
                v[i] += 1.0
        return v * self.idf if len(v) else v


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return float(a @ b) / (na * nb) if na > 0 and nb > 0 else 0.0


def key_phrase(span_text: str, file_text: str, *, max_words: int = 5) -> str:
    """A short phrase naming what ``span_text`` is about, as opposed to the rest of ``file_text``.

    Terms score by their count in the span, times how much of their use in the file falls in
    the span, times an early-mention bonus (a subject is usually named as it is introduced), and
    ten times that when the span opens by announcing them ("Now the budget.").
    Phrases are runs of content words as written; the best one or two (2 to ``max_words`` words
    together) make the title. Empty when the span has no content word.
    """
    span_words = words(span_text)
    span_terms = [stem(w) for w in span_words if is_content(w)]
    if not span_terms:
        return ""
    in_span = Counter(span_terms)
    in_file = Counter(content_terms(file_text))
    first_at = {}
    for i, t in enumerate(span_terms):
        first_at.setdefault(t, i)
    n = len(span_terms)
    announced_terms = set(content_terms(announced(span_text)))

    def score(t: str) -> float:
        share = in_span[t] / max(in_file.get(t, 0), in_span[t])
        early = 1.0 + 0.5 * (1.0 - first_at[t] / n)
        return in_span[t] * share * early * (10.0 if t in announced_terms else 1.0)

    # runs of adjacent content words (as written), cut at stopwords and punctuation
    runs: list[list[str]] = []
    current: list[str] = []
    for piece in re.split(r"([,.;:!?()\"“”]|\s+)", span_text):
        if not piece or piece.isspace():
            continue
        token = _TOKEN.fullmatch(piece)
        if token and is_content(piece):
            current.append(piece)
            continue
        if current:
            runs.append(current)
        current = []
    if current:
        runs.append(current)

    phrases: dict[tuple[str, ...], tuple[float, list[str]]] = {}
    for run in runs:
        for size in (1, 2, 3):
            for i in range(len(run) - size + 1):
                surface = run[i : i + size]
                key = tuple(stem(w) for w in surface)
                if len(set(key)) < len(key):
                    continue
                value = sum(score(t) for t in key) / (1.0 + 0.35 * (size - 1))
                if key not in phrases or value > phrases[key][0]:
                    phrases[key] = (value, surface)
    ranked = sorted(phrases.items(), key=lambda kv: (-kv[1][0], len(kv[0])))
    chosen: list[list[str]] = []
    used: set[str] = set()
    for key, (_, surface) in ranked:
        if used & set(key):
            continue
        if sum(map(len, chosen)) + len(surface) > max_words:
            continue
        chosen.append(surface)
        used |= set(key)
        if sum(map(len, chosen)) >= 2 or len(chosen) == 2:
            break
    text = " and ".join(" ".join(_surface_case(w) for w in phrase) for phrase in chosen)
    return text[:1].upper() + text[1:]


def _surface_case(word: str) -> str:
    """Lower-case a word unless it looks like a name or an acronym (capitals after its first letter)."""
    return word if any(c.isupper() for c in word[1:]) else word.lower()


def central_sentences(span_sentences: Sequence[str], tfidf: TfIdf, *, limit: int = 2, max_words: int = 45) -> list[str]:
    """The sentences closest to the span's TF-IDF centroid (up to ``limit``, in their order)."""
    candidates = [s for s in span_sentences if len(words(s)) >= 4] or list(span_sentences)
    if not candidates:
        return []
    vectors = [tfidf.vector(content_terms(s)) for s in candidates]
    centroid = np.sum(vectors, axis=0) if vectors else None
    scores = [cosine(v, centroid) if centroid is not None else 0.0 for v in vectors]
    order = sorted(range(len(candidates)), key=lambda i: (-scores[i], i))
    picked: list[int] = []
    total = 0
    for i in order:
        n = len(words(candidates[i]))
        if picked and (len(picked) >= limit or total + n > max_words):
            continue
        picked.append(i)
        total += n
    return [candidates[i] for i in sorted(picked)]
