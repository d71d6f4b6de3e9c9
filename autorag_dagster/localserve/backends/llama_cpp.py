"""GGUF chat models on llama.cpp (llama-cpp-python): the GGUF's chat template, grammar-constrained ``format``.

- The prompt is the GGUF's own chat template rendered over the messages. When it does not fit
  the context, the oldest non-system messages are dropped, then the prompt's head, as Ollama
  does silently; llama.cpp here has no context shift, so room is kept for the answer
  (``num_predict`` tokens, else a quarter of the context, at most half of it).
- ``format`` becomes a grammar: a JSON schema constrains the answer to that schema, ``"json"``
  to any JSON object. Embedding is not offered (a 400 says so).
- Sampling options default to Ollama's (temperature 0.8, top_k 40, top_p 0.9, repeat_penalty 1.1).
  At temperature 0 with a ``format``, the grammar is checked last (``GrammarLastGreedy``): the
  same answer, without constraining the whole vocabulary at every step.
- As Ollama's runner does, a request goes to the free slot whose last prompt shares the longest
  prefix with its own, and only the rest of the prompt is evaluated: the instructions and worked
  example every request of a stage repeats, and the whole conversation a re-ask repeats, are
  evaluated once per slot. (The cached prefix was evaluated in other batch shapes, so at
  temperature 0 an answer can differ in rare near-ties from one evaluated from scratch, as with
  Ollama; ``prompt_eval_count`` still counts the whole prompt.) With the server's
  ``prompt_cache`` off, every request evaluates its whole prompt and its answer depends on the
  request alone.
- Token counts are llama.cpp's; the prompt-eval time is llama.cpp's, the eval time the rest of
  the generation (sampling included, as Ollama counts it).
- llama.cpp contexts are not thread-safe: each slot has its own, created when concurrent
  requests first need it (the scheduler runs at most ``parallel`` at once), so memory follows
  the concurrency actually used. A context runs on one thread unless ``num_thread`` says
  otherwise: more threads than free cores stall llama.cpp.
- Flash attention is on unless ``OLLAMA_FLASH_ATTENTION`` turns it off (as Ollama now enables it
  where the model supports it): on one CPU thread it evaluates a 1,000-token prompt about a fifth
  faster. It reorders the arithmetic, so an answer can differ where two tokens nearly tie.
"""

from __future__ import annotations

import ctypes
import json
import threading
import weakref
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from functools import lru_cache
from pathlib import Path
from time import perf_counter
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp import Llama
from llama_cpp._internals import LlamaModel  # what Llama loads with; alone it reads metadata only
from llama_cpp.llama_chat_format import ChatFormatterResponse, Jinja2ChatFormatter
from llama_cpp.llama_grammar import LlamaGrammar

from ..catalogue import ModelSpec, PackagedModel, parameter_size
from ..memory import Memory, RssGrowth, runner_memory
from .base import Completion, CompletionRequest, Embeddings, LoadSpec

OLLAMA_SAMPLING_DEFAULTS: dict[str, Any] = {
    "temperature": 0.8,
    "top_k": 40,
    "top_p": 0.9,
    "min_p": 0.0,
    "typical_p": 1.0,
    "repeat_penalty": 1.1,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
}
FILE_TYPES = {
    value: name.removeprefix("LLAMA_FTYPE_MOSTLY_").removeprefix("LLAMA_FTYPE_ALL_")
    for name, value in vars(llama_cpp).items()
    if name.startswith("LLAMA_FTYPE_") and name != "LLAMA_FTYPE_GUESSED"
}
"""GGUF ``general.file_type`` -> Ollama's quantization_level (3 -> ``Q4_1``)."""


def describe(entry: PackagedModel, path: Path) -> ModelSpec:
    """The spec of a GGUF chat model, from its metadata (read without loading the weights or making a context)."""
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    with closing(LlamaModel(path_model=str(path), params=params, verbose=False)) as model:
        metadata, parameters = model.metadata(), model.n_params()
    info = {key: _typed(value) for key, value in metadata.items() if not key.startswith("tokenizer.")}
    arch = info["general.architecture"]
    head_dim = info[f"{arch}.embedding_length"] // info[f"{arch}.attention.head_count"]
    info.setdefault(f"{arch}.attention.key_length", head_dim)  # llama.cpp's default: embedding / heads
    info.setdefault(f"{arch}.attention.value_length", head_dim)
    info["general.parameter_count"] = parameters
    return ModelSpec(
        name=entry.name,
        family=arch,
        parameter_size=parameter_size(parameters),
        quantization_level=FILE_TYPES.get(info.get("general.file_type"), "unknown"),
        size=path.stat().st_size,
        model_info=info,
        capabilities=("completion",),
        backend=entry.backend,
        template=metadata["tokenizer.chat_template"],
        license=info.get("general.license", ""),
        weights=path,
    )


def _typed(value: str) -> Any:
    """GGUF metadata values come back as text; numbers and booleans become numbers and booleans again."""
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(value, value)


ANY_OBJECT = {"type": "object"}
"""The schema behind ``format: "json"`` (its grammar, unlike llama.cpp's JSON_GBNF, bounds whitespace)."""


@lru_cache(maxsize=64)
def _grammar(schema: str) -> LlamaGrammar:
    """The grammar for a JSON schema given as sorted JSON text (equal schemas share one)."""
    return LlamaGrammar.from_json_schema(schema, verbose=False)


def _shared_prefix(llama: Llama, tokens: Sequence[int]) -> int:
    """How many leading ``tokens`` the context has already evaluated."""
    held = llama.input_ids[: llama.n_tokens]
    count = 0
    for a, b in zip(held, tokens):
        if int(a) != b:
            break
        count += 1
    return count


class GrammarLastGreedy:
    """Greedy decoding under a grammar, the grammar checked last, as llama.cpp's own common sampler does.

    llama-cpp-python's chain applies the grammar to every token of the vocabulary (49k for
    smollm2) before picking one, at every step. At temperature 0 the best token is picked
    anyway, so this picks the best token first and asks the grammar about that token alone;
    only when the grammar rejects it is the whole vocabulary constrained and the best allowed
    token picked. The answer is the same token for token (the argmax of the constrained
    logits is the unconstrained argmax whenever that one is allowed); most steps skip the
    expensive part. The repeat, frequency and presence penalties are applied as llama.cpp's
    penalties sampler applies them (to the tokens of the last ``last_n`` generated), on those
    tokens only rather than by a search over the vocabulary.
    """

    def __init__(
        self, model: LlamaModel, grammar: LlamaGrammar, *, last_n: int, repeat: float, frequency: float, presence: float
    ) -> None:
        self._n_vocab = model.n_vocab()
        self._grammar = llama_cpp.llama_sampler_init_grammar(
            model.vocab, grammar._grammar.encode(), grammar._root.encode()
        )
        self._free = weakref.finalize(self, llama_cpp.llama_sampler_free, self._grammar)
        self._last_n, self._repeat, self._frequency, self._presence = last_n, repeat, frequency, presence
        self._history: deque[int] = deque(maxlen=max(last_n, 0))
        self._all = (llama_cpp.llama_token_data * self._n_vocab)()
        self._all_view = np.ctypeslib.as_array(self._all)
        self._all_view["id"] = np.arange(self._n_vocab, dtype=np.int32)
        self._one = (llama_cpp.llama_token_data * 1)()
        self.full_checks = 0
        """Steps where the grammar rejected the best token and constrained the whole vocabulary."""

    def _penalise(self, logits: np.ndarray) -> None:
        if not self._history or (self._repeat == 1.0 and self._frequency == 0.0 and self._presence == 0.0):
            return
        tokens, counts = np.unique(np.fromiter(self._history, dtype=np.int64), return_counts=True)
        values = logits[tokens]
        values = np.where(values <= 0, values * np.float32(self._repeat), values / np.float32(self._repeat))
        values -= counts.astype(np.float32) * np.float32(self._frequency) + np.float32(self._presence)
        logits[tokens] = values

    def _allowed(self, token: int, logit: float) -> bool:
        self._one[0].id, self._one[0].logit, self._one[0].p = token, logit, 0.0
        single = llama_cpp.llama_token_data_array(data=self._one, size=1, selected=-1, sorted=False)
        llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(single))
        return bool(np.isfinite(self._one[0].logit))

    def sample(self, ctx: Any, idx: int = -1) -> int:
        """The next token from the logits of output ``idx`` of ``ctx`` (an ``_internals.LlamaContext``)."""
        raw = llama_cpp.llama_get_logits_ith(ctx.ctx, idx)
        logits = np.ctypeslib.as_array(raw, shape=(self._n_vocab,)).copy()
        self._penalise(logits)
        token = int(np.argmax(logits))
        if not self._allowed(token, float(logits[token])):
            self.full_checks += 1
            self._all_view["logit"] = logits
            self._all_view["p"] = 0.0
            every = llama_cpp.llama_token_data_array(data=self._all, size=self._n_vocab, selected=-1, sorted=False)
            llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(every))
            token = int(np.argmax(self._all_view["logit"]))
        llama_cpp.llama_sampler_accept(self._grammar, token)
        if self._history.maxlen:
            self._history.append(token)
        return token

    def close(self) -> None:
        self._free()


class GreedyGrammarLastLlama(Llama):
    """``Llama`` whose greedy grammar-constrained sampling checks the grammar last (see ``GrammarLastGreedy``)."""

    def _init_sampler(self, **options: Any) -> Any:
        grammar = options.get("grammar")
        if (
            grammar is None
            or options.get("temp", 0.8) != 0.0
            or options.get("mirostat_mode", 0)
            or options.get("logits_processor") is not None
        ):
            return super()._init_sampler(**options)
        return GrammarLastGreedy(
            self._model,
            grammar,
            last_n=self.last_n_tokens_size,
            repeat=options.get("repeat_penalty", 1.0),
            frequency=options.get("frequency_penalty", 0.0),
            presence=options.get("presence_penalty", 0.0),
        )


class LlamaCppBackend:
    def load(self, spec: LoadSpec) -> LlamaCppRunner:
        return LlamaCppRunner(spec)


class LlamaCppRunner:
    on_gpu = False

    def __init__(self, spec: LoadSpec):
        options = spec.options
        threads = options.num_thread if options.num_thread > 0 else 1
        self.name = spec.model.name
        self._prompt_cache = spec.prompt_cache
        self._growth = RssGrowth()
        self._settings = dict(
            model_path=str(spec.model.weights),
            n_ctx=spec.num_ctx,
            n_batch=max(1, min(options.num_batch, spec.num_ctx)),
            n_threads=threads,
            n_threads_batch=threads,
            n_gpu_layers=0,
            use_mmap=options.use_mmap is not False,
            flash_attn=spec.flash_attention,
            verbose=False,
        )
        self._lock = threading.Lock()
        self._contexts = [self._new_context()]
        self._free = list(self._contexts)
        first = self._contexts[0]
        self._template = Jinja2ChatFormatter(
            template=spec.model.template,
            eos_token=first.detokenize([first.token_eos()], special=True).decode(),
            bos_token=first.detokenize([first.token_bos()], special=True).decode(),
            stop_token_ids=[first.token_eos()],
        )

    def _new_context(self) -> Llama:
        with self._growth.measure():
            return GreedyGrammarLastLlama(**self._settings)

    def memory(self) -> Memory:
        """The process's RSS growth while each slot's context loaded; llama.cpp's tensor bytes beside it."""
        with self._lock:
            reported = sum(llama_cpp.llama_model_size(llama.model) for llama in self._contexts)
        return runner_memory(self._growth, reported, "weights_bytes_reported")

    @contextmanager
    def _slot(self, tokens: Sequence[int] = ()) -> Iterator[Llama]:
        """The free context whose evaluated tokens share the longest prefix with ``tokens``."""
        with self._lock:
            llama = None
            if self._free:
                llama = max(self._free, key=lambda ctx: _shared_prefix(ctx, tokens))
                self._free.remove(llama)
        if llama is None:
            llama = self._new_context()
            with self._lock:
                self._contexts.append(llama)
        try:
            yield llama
        finally:
            with self._lock:
                self._free.append(llama)

    def complete(self, request: CompletionRequest) -> Completion:
        options = {**OLLAMA_SAMPLING_DEFAULTS, **request.options}
        num_predict, seed = options.get("num_predict", -1), options.get("seed", -1)
        schema = ANY_OBJECT if request.format == "json" else request.format
        first = self._contexts[0]  # tokenizing reads the vocabulary only: any context will do
        n_ctx = first.n_ctx()
        room = min(num_predict if num_predict > 0 else n_ctx // 4, n_ctx // 2)
        prompt, rendered, whole = self._prompt(first, request.messages, n_ctx - max(room, 1))
        with self._slot(prompt if self._prompt_cache else ()) as llama:
            if not self._prompt_cache:
                llama.reset()  # evaluate the whole prompt
            # otherwise create_completion evaluates only what follows the prefix this context holds
            llama_cpp.llama_perf_context_reset(llama.ctx)
            started = perf_counter()
            result = llama.create_completion(
                prompt=prompt,
                max_tokens=num_predict if num_predict > 0 else None,
                stop=[*rendered.stop, *options.get("stop", [])],
                stopping_criteria=rendered.stopping_criteria,
                grammar=None if schema is None else _grammar(json.dumps(schema, sort_keys=True)),
                seed=seed if seed >= 0 else None,
                **{key: options[key] for key in OLLAMA_SAMPLING_DEFAULTS},
            )
            elapsed = perf_counter() - started
            prompt_s = llama_cpp.llama_perf_context(llama.ctx).t_p_eval_ms / 1000
        choice, usage = result["choices"][0], result["usage"]
        return Completion(
            content=choice["text"],
            prompt_eval_count=usage["prompt_tokens"],
            eval_count=usage["completion_tokens"],
            done_reason="length" if choice["finish_reason"] == "length" else "stop",
            prompt_eval_duration=prompt_s,
            eval_duration=max(elapsed - prompt_s, 0.0),
            prompt_tokens=whole,
            truncated=whole > len(prompt),
        )

    def _prompt(
        self, llama: Llama, messages: Sequence[Mapping[str, str]], limit: int
    ) -> tuple[list[int], ChatFormatterResponse, int]:
        """The prompt's tokens (at most ``limit``), the rendered template (for its stop strings) and
        the whole prompt's token count before anything was dropped."""
        kept = [dict(m) for m in messages]
        whole = None
        while True:
            rendered = self._template(messages=kept)
            tokens = llama.tokenize(rendered.prompt.encode(), add_bos=False, special=True)
            whole = len(tokens) if whole is None else whole
            droppable = [i for i, m in enumerate(kept[:-1]) if m.get("role") != "system"]
            if len(tokens) <= limit or not droppable:
                return tokens[-limit:], rendered, whole
            del kept[droppable[0]]

    def embed(self, texts: Sequence[str], truncate: bool) -> Embeddings:
        raise NotImplementedError(f'"{self.name}" does not support embeddings')

    def close(self) -> None:
        with self._lock:
            for llama in self._contexts:
                llama.close()
            self._contexts.clear()
            self._free.clear()
