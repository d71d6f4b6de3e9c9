"""Answer a question from the corpus, citing the recording and the time each part comes from.

``ask`` retrieves with the hybrid search (transcript chunks and topic nodes), gives each
retrieved span an id (``S1``, ``S2``, ...) and answers only from those spans:

* **No answer.** When no row of the store reaches a cosine similarity of ``min_similarity`` to
  the question (``AUTORAG_ASK_MIN_SIMILARITY``, default ``MIN_SIMILARITY``), it says that nothing
  in the corpus answers the question instead of answering. The default is calibrated with the
  packaged embedder (all-minilm) on the benchmark (``scripts/ask_bench.py``): the best row of
  every benchmark question scores at least 0.167, that of each out-of-corpus question at most
  0.146, and the threshold sits between. The gap is narrow: the threshold keeps answers to
  questions the corpus says nothing about out, not weak answers; other embedding models spread
  their similarities differently, so calibrate it for yours with the benchmark.
* **Extractive** (the default for a small model): the retrieved transcript's sentences closest
  to the question, quoted with their speaker and their span's citation.
* **Generated** (the default for a strong model; ``AUTORAG_ASK_GENERATE`` or ``--generate``
  chooses either way): the LLM gets the spans with their ids and answers under a JSON schema,
  answer text plus the ids it cites, the ids an enum of the retrieved ones. The request follows
  the project's Ollama contract (the client's uniform ``num_ctx``, ``think: false``,
  ``keep_alive``; a schema mismatch is re-asked by the client). Every citation is then checked:
  brackets in the text must be retrieved ids and at least one span must be cited. An answer
  citing anything else is re-asked once with the problems named, then replaced by the
  extractive answer (the reason is kept in ``fallback``). The ids are replaced by citations like
  ``[garden-meeting.wav 01:12-01:40]``.

A model is small when the ``parameter_size`` that /api/show reports for it is under
``SMALL_MODEL_PARAMETERS`` (3 billion) or missing: such models (e.g. the packaged
``smollm2:135m``) rarely follow citation instructions. No Dagster here: the CLI and the
benchmark call it with a store, an embed function and a client.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, create_model

from autorag_dagster.core.ask_config import MIN_SIMILARITY, AskConfig
from autorag_dagster.core.search import Hit, search
from autorag_dagster.core.store import EmbedFn, SegmentStore
from autorag_dagster.core.timefmt import clock
from autorag_dagster.core.topics.prompts import reask_messages
from autorag_dagster.ollama.client import OllamaClient
from autorag_dagster.ollama.errors import LLMOutputError, PromptTooLongError, PromptTruncatedError

SMALL_MODEL_PARAMETERS = 3e9
"""Models with fewer parameters answer extractively unless told to generate."""
DEFAULT_K = 5
MAX_QUOTES = 2
SENTENCE_WEIGHT = 0.4
"""How much a sentence's own similarity to the question counts against its span's, picking quotes."""

Mode = Literal["extractive", "generated", "no_answer"]
PageUrl = Callable[[str, float], str]

__all__ = ["MIN_SIMILARITY", "AskConfig", "AskResult", "Citation", "Span", "ask"]

NO_ANSWER = "Nothing in the corpus answers this question."


@dataclass(frozen=True)
class Span:
    """A retrieved row the answer may cite, under its id."""

    id: str
    file: str
    start: float
    end: float
    speakers: list[str]
    kind: str
    title: str
    text: str
    similarity: float

    @property
    def label(self) -> str:
        return f"[{self.file} {clock(self.start)}-{clock(self.end)}]"


@dataclass(frozen=True)
class Citation:
    """A cited span: where it is, who speaks, the quoted or cited text, and its page link."""

    id: str
    file: str
    start: float
    end: float
    speaker: str | None
    speakers: list[str]
    text: str
    label: str
    link: str | None = None


@dataclass
class AskResult:
    question: str
    mode: Mode
    answer: str
    citations: list[Citation] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    model: str | None = None
    best_similarity: float | None = None
    min_similarity: float = MIN_SIMILARITY
    fallback: str | None = None
    reasked: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2)


# --- model size ----------------------------------------------------------------------------

_SIZE = re.compile(r"^\s*([\d.]+)\s*([KMBT]?)\s*$", re.IGNORECASE)
_SCALE = {"": 1, "K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}


def parameter_count(size: str | None) -> float | None:
    """``"135M"`` -> 1.35e8, ``"12.2B"`` -> 1.22e10; None when unreadable."""
    match = _SIZE.match(size or "")
    if not match:
        return None
    return float(match.group(1)) * _SCALE[match.group(2).upper()]


def is_small(shown: dict) -> bool:
    """Whether an /api/show answer describes a small model (see the module docstring)."""
    count = parameter_count((shown.get("details") or {}).get("parameter_size"))
    return count is None or count < SMALL_MODEL_PARAMETERS


# --- retrieval -----------------------------------------------------------------------------


def retrieve(
    store: SegmentStore,
    question: str,
    embed: EmbedFn,
    *,
    k: int = DEFAULT_K,
    files: Sequence[str] | None = None,
    speakers: Sequence[str] | None = None,
) -> tuple[float | None, list[Span]]:
    """The ``k`` best hybrid hits as spans with ids, best first, and the best cosine similarity
    of any row (the vector leg's first hit) to the question."""
    (vector,) = embed([question])
    common = dict(embed=embed, files=files, speakers=speakers, query_vector=vector)
    hits: list[Hit] = search(store, question, k=k, mode="hybrid", **common)
    nearest = search(store, question, k=1, mode="vector", **common)
    best = max([h.similarity or 0.0 for h in [*nearest, *hits]], default=None)
    return best, [
        Span(
            id=f"S{i}",
            file=h.file,
            start=h.start,
            end=h.end,
            speakers=h.speakers,
            kind=h.kind,
            title=h.title,
            text=h.text,
            similarity=h.similarity if h.similarity is not None else 0.0,
        )
        for i, h in enumerate(hits, 1)
    ]


# --- extractive answers --------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_LINE = re.compile(r"^([A-Za-z0-9_\- ]{1,40}):\s+(.*)$")


@dataclass(frozen=True)
class _Sentence:
    span: Span
    speaker: str | None
    text: str


def _sentences(span: Span) -> list[_Sentence]:
    out = []
    for line in span.text.split("\n"):
        match = _LINE.match(line) if span.kind == "chunk" else None
        speaker, words = (match.group(1), match.group(2)) if match else (None, line)
        out.extend(_Sentence(span, speaker, s.strip()) for s in _SENTENCE_END.split(words) if len(s.split()) >= 3)
    return out


def _cosine(vectors: Sequence[Sequence[float]], query: Sequence[float]) -> np.ndarray:
    matrix, q = np.asarray(vectors, dtype=np.float64), np.asarray(query, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(q) or 1.0)
    return matrix @ q / np.where(norms > 0, norms, 1.0)


def extract(question: str, spans: Sequence[Span], embed: EmbedFn, *, quotes: int = MAX_QUOTES) -> list[_Sentence]:
    """The sentences to quote: transcript sentences ranked by their own similarity to the
    question and their span's, questions last; the best one, and the next best of the same
    span or recording when it is nearly as good. Topic summaries are quoted only when no
    transcript span was retrieved (they are not what anybody said)."""
    chunks = [s for s in spans if s.kind == "chunk"] or list(spans)
    candidates = [sentence for span in chunks for sentence in _sentences(span)]
    if not candidates:
        return []
    vectors = embed([question, *(c.text for c in candidates)])
    own = _cosine(vectors[1:], vectors[0])
    scores = [
        SENTENCE_WEIGHT * float(sim)
        + (1 - SENTENCE_WEIGHT) * c.span.similarity
        - (0.2 if c.text.endswith("?") else 0.0)
        for c, sim in zip(candidates, own)
    ]
    order = sorted(range(len(candidates)), key=lambda i: -scores[i])
    best = candidates[order[0]]
    chosen = [best]
    for i in order[1:]:
        if len(chosen) >= quotes:
            break
        other = candidates[i]
        if other.span.file == best.span.file and scores[i] >= scores[order[0]] - 0.1 and other.text != best.text:
            if _overlaps(other.span, best.span):
                chosen.append(other)
    return sorted(chosen, key=lambda c: (c.span.start, c.span.text.find(c.text)))


def _overlaps(a: Span, b: Span) -> bool:
    return a.file == b.file and a.start < b.end and b.start < a.end


def _extractive(
    result: AskResult, question: str, spans: Sequence[Span], embed: EmbedFn, page_url: PageUrl | None
) -> AskResult:
    quoted = extract(question, spans, embed)
    if not quoted:  # no sentence of three words or more: the best span as it is
        best = max(spans, key=lambda s: s.similarity)
        lines = [_LINE.match(line) for line in best.text.split("\n")]
        words = " ".join(m.group(2) if m else line for m, line in zip(lines, best.text.split("\n"))).strip()
        quoted = [_Sentence(best, best.speakers[0] if len(best.speakers) == 1 else None, words)]
    parts, citations = [], []
    for sentence in quoted:
        who = f"{sentence.speaker}: " if sentence.speaker else ""
        parts.append(f"{who}\u201c{sentence.text}\u201d {sentence.span.label}")
        citations.append(_citation(sentence.span, page_url, text=sentence.text, speaker=sentence.speaker))
    result.mode, result.answer, result.citations = "extractive", " ".join(parts), citations
    return result


def _citation(span: Span, page_url: PageUrl | None, *, text: str | None = None, speaker: str | None = None) -> Citation:
    if speaker is None and len(span.speakers) == 1:
        speaker = span.speakers[0]
    return Citation(
        id=span.id,
        file=span.file,
        start=span.start,
        end=span.end,
        speaker=speaker,
        speakers=list(span.speakers),
        text=text if text is not None else span.text,
        label=span.label,
        link=page_url(span.file, span.start) if page_url else None,
    )


# --- generated answers ---------------------------------------------------------------------

SYSTEM = (
    "You answer questions about recorded conversations using only the numbered passages you are"
    " given. Every statement must come from a passage. After each sentence put the id of the"
    " passage it comes from in square brackets, for example [S1]. List every id you cite in"
    ' "citations". If the passages do not answer the question, say so briefly and cite the'
    " passage that comes closest. Reply with JSON only."
)
_BRACKET = re.compile(r"\[([^\[\]]{1,80})\]")
_REPEATED = re.compile(r"(\[[^\[\]]+\])(?:\s*\1)+")  # the same citation twice in a row


def answer_schema(ids: Sequence[str]) -> type[BaseModel]:
    """Answer text plus the cited ids, which must be some of ``ids``."""
    cited = Literal[tuple(ids)]  # type: ignore[valid-type]
    return create_model(
        "CitedAnswer",
        answer=(str, Field(min_length=1, description="The answer, with [id] after each sentence.")),
        citations=(list[cited], Field(min_length=1, description="The ids of the passages the answer uses.")),
    )


def messages_for(question: str, spans: Sequence[Span]) -> list[dict]:
    passages = "\n\n".join(
        f"[{s.id}] {s.file} {clock(s.start)}-{clock(s.end)}"
        + (f" (topic: {s.title})" if s.kind == "topic" else "")
        + f"\n{s.text}"
        for s in spans
    )
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Passages:\n\n{passages}\n\nQuestion: {question}"},
    ]


def citation_problems(value: BaseModel, ids: Sequence[str]) -> list[str]:
    """What is wrong with a generated answer's citations; empty when every one is a retrieved span."""
    known = set(ids)
    problems = []
    cited = list(getattr(value, "citations", []) or [])
    if not cited:
        problems.append("The answer cites no passage: list the ids you use in citations.")
    for ref in cited:
        if ref not in known:
            problems.append(f"citations names {ref!r}, which is not one of the passages ({', '.join(ids)}).")
    for ref in _BRACKET.findall(getattr(value, "answer", "") or ""):
        if ref.strip() not in known:
            problems.append(f"The answer cites [{ref}], which is not one of the passages ({', '.join(ids)}).")
    return problems


def _render_generated(text: str, cited: Sequence[str], by_id: dict[str, Span]) -> str:
    rendered = _BRACKET.sub(lambda m: by_id[m.group(1).strip()].label, text.strip())
    if not _BRACKET.search(text):
        rendered += " " + " ".join(dict.fromkeys(by_id[i].label for i in cited))
    return _REPEATED.sub(r"\1", rendered)


def _generated(
    result: AskResult,
    question: str,
    spans: Sequence[Span],
    client: OllamaClient,
    embed: EmbedFn,
    page_url: PageUrl | None,
) -> AskResult:
    ids = [s.id for s in spans]
    by_id = {s.id: s for s in spans}
    schema = answer_schema(ids)
    messages = messages_for(question, spans)
    problems: list[str] = []
    for attempt in range(2):
        try:
            reply = client.chat_structured(messages, schema)
        except LLMOutputError as exc:
            problems = [f"no answer matched the schema: {exc}"]
            break
        except (PromptTooLongError, PromptTruncatedError) as exc:
            if attempt:  # the re-ask (the first answer and its problems added) does not fit: quote instead
                break
            raise exc.at("ask") from None
        problems = citation_problems(reply.value, ids)
        if not problems:
            cited = list(dict.fromkeys([*_BRACKET.findall(reply.value.answer), *reply.value.citations]))
            cited = [c.strip() for c in cited]
            result.mode = "generated"
            result.answer = _render_generated(reply.value.answer, reply.value.citations, by_id)
            result.citations = [_citation(by_id[i], page_url) for i in dict.fromkeys(cited)]
            return result
        if attempt == 0:
            result.reasked = True
            messages = reask_messages(messages, reply.raw, problems)
    result.fallback = "; ".join(problems)[:500]
    return _extractive(result, question, spans, embed, page_url)


# --- the entry point -----------------------------------------------------------------------


def ask(
    store: SegmentStore,
    question: str,
    *,
    embed: EmbedFn,
    client: OllamaClient | None = None,
    generate: bool | None = None,
    k: int = DEFAULT_K,
    files: Sequence[str] | None = None,
    speakers: Sequence[str] | None = None,
    min_similarity: float = MIN_SIMILARITY,
    page_url: PageUrl | None = None,
) -> AskResult:
    """Answer ``question`` from the store's rows (see the module docstring).

    ``generate``: True or False forces the mode; None generates when ``client``'s LLM is not
    small. Without a client the answer is extractive.
    """
    question = question.strip()
    if not question:
        raise ValueError("the question is empty")
    best, spans = retrieve(store, question, embed, k=k, files=files, speakers=speakers)
    result = AskResult(question=question, mode="no_answer", answer=NO_ANSWER, best_similarity=best)
    result.min_similarity = min_similarity
    if best is None or best < min_similarity:
        result.spans = spans
        return result
    relevant = [s for s in spans if s.similarity >= min_similarity] or spans[:1]
    result.spans = relevant
    if client is not None and generate is None:
        generate = not is_small(client.show(client.llm_model))
    if generate and client is not None:
        result.model = client.llm_model
        return _generated(result, question, relevant, client, embed, page_url)
    return _extractive(result, question, relevant, embed, page_url)
