"""The HTTP routes of the Ollama-compatible server, and ``serve()`` for the CLI.

It says what it is: /api/version is Ollama's API version plus ``+autorag-localserve``, every
model's ``details`` name its backend, /api/ps adds how its sizes were obtained, and ``serve()``
prints each model with its backend at start-up. Extension routes under ``/_autorag/`` expose
the event log and scripted answers to tests; they exist only when ``test_routes`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import re
import sys
import zlib
from collections.abc import AsyncIterator, Iterable, Iterator
from time import perf_counter, sleep
from typing import Any

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from autorag_dagster.ollama.identity import backend_label, packaged_version

from .backends import Completion, CompletionRequest, InputTooLong
from .backends.base import count_tokens, fit_context
from .catalogue import InvalidModelName, ModelSpec, ModelUnavailable, canonical_name
from .config import ServerConfig
from .durations import nanoseconds, rfc3339, utcnow
from .events import EventLog
from .options import OptionError, parse_options
from .protocol import ApiError, Body, Format, bad_request, decode_body
from .scheduler import Lease, QueueFull, Scheduler, ShuttingDown
from .script import ScriptBook, ScriptError
from .store import ModelStore

OLLAMA_API_VERSION = "0.32.15"
"""The Ollama release whose API this server follows (spec/ollama-api.md)."""
SERVER_VERSION = packaged_version(OLLAMA_API_VERSION)
"""What /api/version reports: ``0.32.15+autorag-localserve`` (semver build metadata; parses as 0.32.15)."""
NDJSON = "application/x-ndjson"


class OllamaApi:
    """Request handlers over a model store, a scheduler, an event log and a script book."""

    def __init__(self, config: ServerConfig, events: EventLog | None = None, scripts: ScriptBook | None = None):
        self.config = config
        self.events = events or EventLog()
        self.scripts = scripts or ScriptBook()
        self.store = ModelStore(config.models_dir, config.offered)
        self.scheduler = Scheduler(config, self.events)
        for name in config.pulled:
            self.pull(name, source="start-up")

    def pull(self, name: str, source: str = "api") -> ModelSpec:
        """Mark a catalogue model as pulled (writes its manifest)."""
        spec = self.config.offered[name]
        self.store.write(spec)
        self.events.record("pull", spec.name, status="success", source=source)
        return spec

    # -- helpers -------------------------------------------------------------------------------
    async def _body(self, request: Request, struct: str) -> Body:
        return Body(decode_body(await request.body(), struct), struct)

    def _pulled(self, name: str, not_found: str) -> ModelSpec:
        try:
            spec = self.store.get(name)
        except InvalidModelName:
            spec = None
        if spec is None:
            raise ApiError(404, not_found)
        return spec

    async def _acquire(
        self, spec: ModelSpec, options: dict[str, Any] | None, keep_alive: float | None, endpoint: str
    ) -> tuple[Lease, dict[str, Any]]:
        """Parse the options, then wait for a runner; returns the lease and the sampling options."""
        try:
            runner_options, sampling = parse_options(options, self.config.context_length)
        except OptionError as exc:
            raise ApiError(500, str(exc)) from None
        try:
            return await self.scheduler.acquire(spec, runner_options, keep_alive, endpoint), sampling
        except QueueFull as exc:
            raise ApiError(503, QueueFull.message) from exc
        except ShuttingDown as exc:
            raise ApiError(503, ShuttingDown.message) from exc
        except Exception as exc:  # a backend that failed to load
            raise ApiError(500, f"model failed to load: {exc}") from exc

    @staticmethod
    def _thinks(spec: ModelSpec, name: str, think: bool | str | None) -> bool:
        """Thinking models think unless told not to; asking a model without the capability is a 400."""
        wanted = think not in (None, False)
        if "thinking" not in spec.capabilities:
            if wanted:
                raise bad_request(f'"{name}" does not support thinking')
            return False
        return think is None or wanted

    @staticmethod
    def _detail(body: Body, **extra: Any) -> dict[str, Any]:
        """What a request_start event records about the request (options and keep_alive as sent)."""
        return {"options": body.data.get("options") or {}, "keep_alive": body.data.get("keep_alive"), **extra}

    async def _complete(
        self,
        lease: Lease,
        endpoint: str,
        request: CompletionRequest,
        fmt: Format,
        body: Body,
    ) -> Completion:
        last_user = next((m["content"] for m in reversed(request.messages) if m["role"] == "user"), "")
        scripted = self.scripts.take(last_user, fmt.title)

        def work(runner) -> Completion:
            if scripted is None:
                return runner.complete(request)
            fitted = fit_context(request.messages, lease.model.options.num_ctx)
            sleep(scripted.seconds)
            return Completion(
                scripted.content,
                fitted.tokens,
                count_tokens(scripted.content),
                prompt_tokens=fitted.full_tokens,
                truncated=fitted.truncated,
            )

        return await lease.run(
            work,
            endpoint=endpoint,
            detail=self._detail(body, think=body.data.get("think"), format=fmt.given),
            summary=lambda c: {
                "prompt_eval_count": c.prompt_eval_count,
                "prompt_tokens": c.full_prompt_tokens,
                "truncated": c.truncated,
                "num_ctx": lease.model.options.num_ctx,
                "eval_count": c.eval_count,
                "done_reason": c.done_reason,
                "scripted": scripted is not None,
            },
        )

    @staticmethod
    def _metrics(started: float, lease: Lease, completion: Completion) -> dict[str, int]:
        total = perf_counter() - started
        work = max(total - lease.load_duration, 1e-6)
        share = completion.prompt_eval_count / max(1, completion.prompt_eval_count + completion.eval_count)
        prompt_s, eval_s = completion.prompt_eval_duration, completion.eval_duration  # measured by the backend
        return {
            "total_duration": nanoseconds(total),
            "load_duration": nanoseconds(lease.load_duration),
            "prompt_eval_count": completion.prompt_eval_count,
            "prompt_eval_duration": max(1, nanoseconds(work * share if prompt_s is None else prompt_s)),
            "eval_count": completion.eval_count,
            "eval_duration": max(1, nanoseconds(work * (1 - share) if eval_s is None else eval_s)),
        }

    # -- routes: server ----------------------------------------------------------------------------
    async def root(self, request: Request) -> Response:
        return PlainTextResponse("Ollama is running")

    async def version(self, request: Request) -> Response:
        return JSONResponse({"version": SERVER_VERSION})

    async def tags(self, request: Request) -> Response:
        return JSONResponse(
            {
                "models": [
                    {
                        "name": s.name,
                        "model": s.name,
                        "modified_at": rfc3339(self.store.modified_at(s)),
                        "size": s.size,
                        "digest": s.digest,
                        "details": s.details,
                    }
                    for s in self.store.pulled()
                ]
            }
        )

    async def ps(self, request: Request) -> Response:
        return JSONResponse({"models": self.scheduler.ps()})

    async def show(self, request: Request) -> Response:
        body = await self._body(request, "ShowRequest")
        name = body.model()
        if not name:
            raise bad_request("model is required")
        try:
            canonical_name(name)
        except InvalidModelName:
            raise bad_request("invalid model name") from None
        spec = self._pulled(name, f"model '{name}' not found")
        return JSONResponse(
            {
                "license": spec.license,
                "modelfile": (
                    f'# Modelfile generated by "ollama show"\n# FROM {spec.name}\n\n'
                    f'FROM {spec.layers[0].digest}\nTEMPLATE """{spec.template}"""\n'
                ),
                "parameters": "",
                "template": spec.template,
                "details": spec.details,
                "model_info": dict(spec.model_info),
                "capabilities": list(spec.capabilities),
                "modified_at": rfc3339(self.store.modified_at(spec)),
            }
        )

    async def pull_route(self, request: Request) -> Response:
        body = await self._body(request, "PullRequest")
        name = body.model()
        try:
            canonical_name(name)
        except InvalidModelName:
            raise bad_request("invalid model name") from None
        lines: list[dict[str, Any]] = [{"status": "pulling manifest"}]
        error = None if name in self.config.offered else "pull model manifest: file does not exist"
        if error is None:
            try:  # a packaged model reads its installed files and hashes its weights: off the event loop
                layers = await asyncio.to_thread(lambda: self.config.offered[name].layers)
            except ModelUnavailable as exc:
                error = str(exc)
        if error is not None:
            lines.append({"error": error})
            self.events.record("pull", canonical_name(name), status="error", error=error, source="api")
        else:
            for layer in layers:
                status = {"status": f"pulling {layer.digest[7:19]}", "digest": layer.digest, "total": layer.size}
                lines += [status, {**status, "completed": layer.size // 2}, {**status, "completed": layer.size}]
            self.pull(name)
            lines += [{"status": "verifying sha256 digest"}, {"status": "writing manifest"}, {"status": "success"}]
        if body.stream():
            return _ndjson(lines)
        if "error" in lines[-1]:
            raise ApiError(500, lines[-1]["error"])
        return JSONResponse(lines[-1])

    async def delete(self, request: Request) -> Response:
        body = await self._body(request, "DeleteRequest")
        name = body.model()
        try:
            removed = self.store.remove(name)
        except InvalidModelName:
            raise bad_request(f'name "{name}" is invalid') from None
        if not removed:
            raise ApiError(404, f"model '{name}' not found")
        return Response(status_code=200)

    # -- routes: inference -------------------------------------------------------------------------
    async def chat(self, request: Request) -> Response:
        started = perf_counter()
        body = await self._body(request, "ChatRequest")
        name, messages, keep_alive, think = body.model(), body.messages(), body.keep_alive(), body.think()
        fmt, tools, options = (
            Format(body.data.get("format")),
            body.array("tools", "[]api.Tool"),
            body.mapping("options"),
        )
        if not name:
            raise bad_request("model is required")
        spec = self._pulled(name, f"model '{name}' not found")
        if not messages and keep_alive == 0:
            await self.scheduler.expire(spec)
            return JSONResponse(_chat_line(name, "", done_reason="unload"))
        thinks = self._thinks(spec, name, think)
        if spec.embedding_only:
            raise bad_request(f'"{name}" does not support chat')
        if tools and "tools" not in spec.capabilities:
            raise bad_request(f'"{name}" does not support tools')
        lease, sampling = await self._acquire(spec, options, keep_alive, "chat")
        try:
            if not messages:
                return JSONResponse(_chat_line(name, "", done_reason="load"))
            request_ = CompletionRequest(messages, fmt.value, thinks, sampling)
            completion = await self._complete(lease, "chat", request_, fmt, body)
        finally:
            lease.release()
        final = {
            **_chat_line(name, "", done_reason=completion.done_reason),
            **self._metrics(started, lease, completion),
        }
        if not body.stream():
            final["message"] = _message(completion.content, completion.thinking)
            return JSONResponse(final)
        return _ndjson(
            _streamed(
                completion,
                final,
                lambda text: _chat_line(name, text, done=False),
                lambda text: {**_chat_line(name, "", done=False), "message": _message("", text)},
            )
        )

    async def generate(self, request: Request) -> Response:
        started = perf_counter()
        body = await self._body(request, "GenerateRequest")
        name, prompt, system = body.model(), body.text("prompt"), body.text("system")
        keep_alive, think, fmt = body.keep_alive(), body.think(), Format(body.data.get("format"))
        raw, options = bool(body.flag("raw")), body.mapping("options")
        if raw and (body.text("template") or system or body.data.get("context")):
            raise bad_request("raw mode does not support template, system, or context")
        spec = self._pulled(name, f"model '{name}' not found")
        if not prompt and keep_alive == 0:
            await self.scheduler.expire(spec)
            return JSONResponse(_generate_line(name, "", done_reason="unload"))
        thinks = self._thinks(spec, name, think)
        if spec.embedding_only:
            raise bad_request(f'"{name}" does not support generate')
        lease, sampling = await self._acquire(spec, options, keep_alive, "generate")
        try:
            if not prompt:
                return JSONResponse(_generate_line(name, "", done_reason="load"))
            messages = [{"role": "system", "content": system}] if system else []
            messages.append({"role": "user", "content": prompt})
            request_ = CompletionRequest(messages, fmt.value, thinks, sampling)
            completion = await self._complete(lease, "generate", request_, fmt, body)
        finally:
            lease.release()
        final = {
            **_generate_line(name, "", done_reason=completion.done_reason),
            **self._metrics(started, lease, completion),
        }
        if not raw:
            final["context"] = _token_ids(f"{prompt} {completion.content}")
        if not body.stream():
            final["response"] = completion.content
            if completion.thinking:
                final["thinking"] = completion.thinking
            return JSONResponse(final)
        return _ndjson(
            _streamed(
                completion,
                final,
                lambda text: _generate_line(name, text, done=False),
                lambda text: {**_generate_line(name, "", done=False), "thinking": text},
            )
        )

    async def embed(self, request: Request) -> Response:
        started = perf_counter()
        body = await self._body(request, "EmbedRequest")
        name, raw_input = body.model(), body.data.get("input")
        if isinstance(raw_input, str):
            inputs = [raw_input] if raw_input else []
        elif isinstance(raw_input, list) and all(isinstance(x, str) for x in raw_input):
            inputs = raw_input
        elif raw_input is None:
            inputs = []
        else:
            raise bad_request("invalid input type")
        truncate, dimensions = body.flag("truncate") is not False, body.integer("dimensions")
        keep_alive, options = body.keep_alive(), body.mapping("options")
        if not name:
            raise bad_request("model is required")
        spec = self._pulled(name, f'model "{name}" not found, try pulling it first')
        lease, _ = await self._acquire(spec, options, keep_alive, "embed")
        try:
            if not inputs:
                return JSONResponse({"model": name, "embeddings": []})
            result = await lease.run(
                lambda runner: runner.embed(inputs, truncate),
                endpoint="embed",
                detail=self._detail(body, inputs=len(inputs), truncate=truncate),
                summary=lambda r: {"prompt_eval_count": r.prompt_eval_count},
            )
        except InputTooLong:
            raise bad_request(InputTooLong.message) from None
        except NotImplementedError as exc:  # a backend that cannot embed with this model
            raise bad_request(str(exc)) from None
        finally:
            lease.release()
        vectors = result.vectors
        if 0 < dimensions < len(vectors[0]):
            cut = np.asarray(vectors, dtype=np.float64)[:, :dimensions]
            vectors = (cut / np.linalg.norm(cut, axis=1, keepdims=True)).astype(np.float32).tolist()
        return JSONResponse(
            {
                "model": name,
                "embeddings": vectors,
                "total_duration": nanoseconds(perf_counter() - started),
                "load_duration": nanoseconds(lease.load_duration),
                "prompt_eval_count": result.prompt_eval_count,
            }
        )

    # -- routes: test extensions -----------------------------------------------------------------
    async def events_route(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.events.clear()
            return JSONResponse({})
        try:
            since = int(request.query_params.get("since", 0))
        except ValueError:
            raise bad_request("since must be an integer event seq") from None
        return JSONResponse(
            self.events.select(request.query_params.get("kind"), since, request.query_params.get("model"))
        )

    async def script_route(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.scripts.clear()
            return JSONResponse({})
        rules = decode_body(await request.body(), "ScriptRequest").get("rules")
        if not isinstance(rules, list):
            raise bad_request('expected {"rules": [{"match": ..., "content": ..., "times": N}, ...]}')
        try:
            return JSONResponse({"pending": self.scripts.add(rules)})
        except ScriptError as exc:
            raise bad_request(str(exc)) from None


def _message(content: str, thinking: str) -> dict[str, str]:
    return {"role": "assistant", "content": content, **({"thinking": thinking} if thinking else {})}


def _chat_line(model: str, content: str, done: bool = True, done_reason: str | None = None) -> dict[str, Any]:
    line = {"model": model, "created_at": rfc3339(utcnow()), "message": _message(content, ""), "done": done}
    return {**line, "done_reason": done_reason} if done_reason else line


def _generate_line(model: str, response: str, done: bool = True, done_reason: str | None = None) -> dict[str, Any]:
    line = {"model": model, "created_at": rfc3339(utcnow()), "response": response, "done": done}
    return {**line, "done_reason": done_reason} if done_reason else line


def _token_ids(text: str) -> list[int]:
    """Stand-in token ids for the deprecated ``context`` field of /api/generate."""
    return [zlib.crc32(word.encode()) % 262144 for word in text.split()]


def _pieces(text: str) -> Iterator[str]:
    """Token-like pieces of ``text``: each word with its surrounding whitespace."""
    return iter(re.findall(r"\s*\S+\s*", text) if text.strip() else ([text] if text else []))


def _streamed(completion: Completion, final: dict[str, Any], content_line, thinking_line) -> Iterator[dict[str, Any]]:
    yield from (thinking_line(piece) for piece in _pieces(completion.thinking))
    yield from (content_line(piece) for piece in _pieces(completion.content))
    yield final


def _ndjson(lines: Iterable[dict[str, Any]]) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        for line in lines:
            yield (json.dumps(line, ensure_ascii=False) + "\n").encode()

    return StreamingResponse(body(), media_type=NDJSON)


def create_app(config: ServerConfig, events: EventLog | None = None, scripts: ScriptBook | None = None) -> Starlette:
    """The Starlette app; ``app.state.api`` is the OllamaApi (event log, scripts, store, scheduler)."""
    api = OllamaApi(config, events, scripts)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await api.scheduler.start()
        try:
            yield
        finally:
            await api.scheduler.stop()

    async def api_error(request: Request, exc: ApiError) -> Response:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        text = {404: "404 page not found", 405: "405 method not allowed"}.get(exc.status_code, exc.detail)
        return PlainTextResponse(text, status_code=exc.status_code)

    routes = [
        Route("/", api.root, methods=["GET", "HEAD"]),
        Route("/api/version", api.version, methods=["GET", "HEAD"]),
        Route("/api/tags", api.tags, methods=["GET", "HEAD"]),
        Route("/api/ps", api.ps, methods=["GET"]),
        Route("/api/show", api.show, methods=["POST"]),
        Route("/api/pull", api.pull_route, methods=["POST"]),
        Route("/api/delete", api.delete, methods=["DELETE"]),
        Route("/api/chat", api.chat, methods=["POST"]),
        Route("/api/generate", api.generate, methods=["POST"]),
        Route("/api/embed", api.embed, methods=["POST"]),
    ]
    if config.test_routes:
        routes += [
            Route("/_autorag/events", api.events_route, methods=["GET", "DELETE"]),
            Route("/_autorag/script", api.script_route, methods=["POST", "DELETE"]),
        ]
    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={ApiError: api_error, HTTPException: http_error}
    )
    app.state.api = api
    return app


def startup_lines(config: ServerConfig, url: str) -> list[str]:
    """What the server says about itself at start-up: what it is, and each model it offers with its backend."""
    store = ModelStore(config.models_dir, config.offered)
    lines = [
        f"autorag packaged Ollama-compatible server {SERVER_VERSION} (not Ollama) on {url}",
        f"models directory: {config.models_dir}",
    ]
    for name in config.offered:
        backend = config.offered.backend_of(name)
        stand_in = name in config.offered.stand_ins()
        pulled = store.is_pulled(name)
        lines.append(
            f"  {name}: {backend_label(backend)} [backend {backend}]"
            + (f", a stand-in for tests, NOT {name}" if stand_in else "")
            + ("; pulled" if pulled else f"; not pulled (autorag pull {name})")
        )
    if config.test_routes:
        lines.append("test routes on: /_autorag/events, /_autorag/script")
    return lines


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def exposure_warning(host: str, port: int) -> str | None:
    """The warning for a bind that other machines may reach; None on loopback."""
    if is_loopback(host):
        return None
    return (
        f"WARNING: listening on {host}:{port}, not on loopback. This server has no authentication: "
        "whoever reaches that address can pull and load models, run prompts and, with --test-routes, "
        "read the event log. Use --host 127.0.0.1 unless other machines must reach it."
    )


def serve(host: str = "127.0.0.1", port: int = 11434, **overrides: Any) -> None:
    """Run the server in the foreground (the ``autorag ollama-serve`` command)."""
    config = ServerConfig.from_env(**overrides)
    app = create_app(config)  # pulls the start-up models first, so the lines say they are pulled
    for line in startup_lines(config, f"http://{host}:{port}"):
        print(line, file=sys.stderr, flush=True)
    warning = exposure_warning(host, port)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=5)
