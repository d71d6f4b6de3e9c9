"""Errors a person can act on: each message says what failed, where, and what to run next."""

from __future__ import annotations


def pull_commands(models: list[str]) -> str:
    """The commands that pull ``models`` on the packaged local server and on a real Ollama."""
    names = " ".join(models)
    return (
        f"`autorag pull {names}` (or, on a real Ollama, `ollama pull {names}`;"
        " with the Docker stack, `./scripts/stack.sh pull`)"
    )


class OllamaError(RuntimeError):
    """Base class of every error the Ollama client raises on purpose."""

    retryable = False


class ModelNotFoundError(OllamaError):
    """The server answered 404: the model is not pulled there."""

    def __init__(self, model: str, base_url: str):
        self.model, self.base_url = model, base_url
        super().__init__(
            f"Model {model!r} is not pulled on the Ollama server at {base_url}. Pull it with {pull_commands([model])}."
        )


class ModelPullError(OllamaError):
    """A pull failed, typically because the registry does not know the name."""

    def __init__(self, model: str, base_url: str, reason: str):
        self.model, self.base_url, self.reason = model, base_url, reason
        super().__init__(
            f"Could not pull {model!r} through the Ollama server at {base_url}: {reason}. "
            "Check the model name and tag (e.g. 'gemma4:latest', 'nomic-embed-text')."
        )


class OllamaUnreachableError(OllamaError):
    """Nothing answers at the base URL (refused), or the connection dropped mid-request."""

    def __init__(self, base_url: str, *, dropped: bool = False, attempts: int = 1):
        self.base_url, self.dropped = base_url, dropped
        self.retryable = dropped
        what = (
            f"the connection to Ollama at {base_url} dropped ({attempts} attempts)"
            if dropped
            else f"cannot reach Ollama at {base_url} (connection refused)"
        )
        super().__init__(
            f"{what[0].upper()}{what[1:]}. Start it with `ollama serve`, `./scripts/stack.sh up`"
            " (Docker stack) or `autorag ollama-serve` (the packaged local server), or point"
            " AUTORAG_OLLAMA_BASE_URL at a running server."
        )


class OllamaBusyError(OllamaError):
    """503: the server's queue is full; raised once the retries are spent."""

    retryable = True

    def __init__(self, base_url: str, reason: str, attempts: int):
        self.base_url, self.attempts = base_url, attempts
        super().__init__(
            f"Ollama at {base_url} is busy ({reason!r}) and refused the request {attempts} times."
            " Lower AUTORAG_MAX_CONCURRENCY, raise OLLAMA_MAX_QUEUE or OLLAMA_NUM_PARALLEL on the"
            " server, or allow more AUTORAG_REQUEST_RETRIES."
        )


class OllamaTimeoutError(OllamaError):
    """A request outlived the client timeout; raised once the retries are spent."""

    retryable = True

    def __init__(self, base_url: str, endpoint: str, timeout: float, attempts: int):
        self.base_url, self.timeout, self.attempts = base_url, timeout, attempts
        super().__init__(
            f"Ollama at {base_url} did not answer {endpoint} within {timeout:g} s"
            f" ({attempts} attempts). Raise AUTORAG_REQUEST_TIMEOUT (now {timeout:g}) or lower"
            " the load on the server (AUTORAG_MAX_CONCURRENCY)."
        )


class OllamaRequestError(OllamaError):
    """Any other error status (400, 500...), with the server's own text."""

    def __init__(self, base_url: str, endpoint: str, status: int, reason: str):
        self.base_url, self.endpoint, self.status, self.reason = base_url, endpoint, status, reason
        super().__init__(f"Ollama at {base_url} rejected {endpoint} (HTTP {status}): {reason}")


class ModelStillLoadedError(OllamaError):
    """An evicted model is still listed by /api/ps after the confirmation window."""

    def __init__(self, model: str, base_url: str, waited: float):
        self.model, self.base_url, self.waited = model, base_url, waited
        super().__init__(
            f"Model {model!r} is still loaded on the Ollama server at {base_url}: /api/ps lists it"
            f" {waited:g} s after it was asked to unload (keep_alive 0), so its memory is not free."
            " Another client may be using it, or its runner is stuck. See what is loaded with"
            f" `autorag models` (or `ollama ps`), stop it with `ollama stop {model}` or restart the"
            " server, then run again."
        )


class LLMOutputError(OllamaError):
    """Every answer failed its schema; callers catch this to fall back to a safe value."""

    def __init__(self, model: str, schema_name: str, raw_answers: list[str], errors: list[str]):
        self.model, self.schema_name = model, schema_name
        self.raw_answers, self.errors = raw_answers, errors
        last = errors[-1] if errors else "no answer"
        super().__init__(
            f"{model} gave no answer matching {schema_name} in {len(raw_answers)} attempts; last problem: {last}"
        )


def _context_fix(num_ctx: int, num_predict: int, needed: int, setting: str) -> str:
    return (
        f"Raise {setting} (now {num_ctx}) to at least {needed + num_predict}, or lower"
        f" AUTORAG_LLM_MAX_OUTPUT_TOKENS (num_predict, now {num_predict}) if answers are short."
    )


class PromptTooLongError(OllamaError):
    """A prompt that does not fit in ``num_ctx`` beside the answer's room: never sent, since Ollama
    would cut it silently. ``stage`` names the step that built it, when known."""

    def __init__(
        self,
        model: str,
        tokens: int,
        num_ctx: int,
        num_predict: int,
        *,
        stage: str | None = None,
        setting: str = "AUTORAG_NUM_CTX",
    ):
        self.model, self.tokens, self.num_ctx, self.num_predict = model, tokens, num_ctx, num_predict
        self.stage, self.setting = stage, setting
        self.budget = num_ctx - num_predict
        where = f"The {stage} prompt" if stage else "A prompt"
        super().__init__(
            f"{where} for {model} needs about {tokens} tokens (estimated), but num_ctx {num_ctx} leaves"
            f" {max(self.budget, 0)} once {num_predict} are kept for the answer, and Ollama would cut it"
            f" silently. {_context_fix(num_ctx, num_predict, tokens, setting)}"
        )

    def at(self, stage: str, setting: str | None = None) -> PromptTooLongError:
        """The same error, naming the stage (and the setting of that stage's context)."""
        return PromptTooLongError(
            self.model, self.tokens, self.num_ctx, self.num_predict, stage=stage, setting=setting or self.setting
        )


class PromptTruncatedError(OllamaError):
    """An answer whose ``prompt_eval_count`` fills the prompt's whole room: the server may have cut
    the prompt, so the answer is not used."""

    def __init__(
        self,
        model: str,
        evaluated: int,
        estimated: int,
        num_ctx: int,
        num_predict: int,
        *,
        stage: str | None = None,
        setting: str = "AUTORAG_NUM_CTX",
    ):
        self.model, self.evaluated, self.estimated = model, evaluated, estimated
        self.num_ctx, self.num_predict, self.stage, self.setting = num_ctx, num_predict, stage, setting
        where = f"the {stage} prompt" if stage else "a prompt"
        super().__init__(
            f"The server evaluated {evaluated} tokens of {where} for {model} (estimated at {estimated}),"
            f" which fills the {num_ctx - num_predict} tokens num_ctx {num_ctx} leaves beside the answer's"
            f" {num_predict}: the prompt may have been cut, so its answer is not used."
            f" {_context_fix(num_ctx, num_predict, evaluated, setting)}"
        )

    def at(self, stage: str, setting: str | None = None) -> PromptTruncatedError:
        return PromptTruncatedError(
            self.model,
            self.evaluated,
            self.estimated,
            self.num_ctx,
            self.num_predict,
            stage=stage,
            setting=setting or self.setting,
        )
