"""Ollama's scheduler (server/sched.go) on asyncio: which models are resident, and who may use them.

- Requests enter a bounded queue (``max_queue``; past it: 503). One loop takes them in order
  and, for each, finds a usable runner: the loaded one if its runner options match, else it
  retires that runner (reload), evicts another model (``max_loaded_models`` reached, or the
  new one does not fit the simulated VRAM) or loads the model. While it loads or waits for an
  eviction, the queue waits behind it, as in Ollama.
- A granted request holds a lease on the runner (its reference count). Work runs in one of
  ``parallel`` slots (1 for embedding-only models); requests beyond the slots wait.
- When the last lease is released a keep_alive timer starts (a new request stops it); on
  expiry, or at once for keep_alive 0, the runner is unloaded. With ``unload_delay`` the unload
  is asynchronous, as Ollama's: the answer comes at once, the model stays in /api/ps (expiring
  now) for that long. A model in ``never_unload`` (tests) ignores unloads, like a stuck runner.
- /api/ps sizes: what a real backend's runner holds (measured RSS growth, else its library's
  figure); for a simulated model, its weights plus the KV cache computed from its shape. Extra
  ``memory`` fields say which, with every figure named ``*_measured``, ``*_reported`` or
  ``*_computed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from time import perf_counter
from typing import Any, TypeVar

from .backends import Backend, LoadSpec, Runner, create_backend
from .catalogue import ModelSpec
from .config import ServerConfig
from .durations import expiry, rfc3339, utcnow
from .events import EventLog
from .memory import Memory
from .options import RunnerOptions

log = logging.getLogger(__name__)
T = TypeVar("T")


class QueueFull(Exception):
    message = "server busy, please try again.  maximum pending requests exceeded"


class ShuttingDown(Exception):
    message = "server shutting down"


@dataclass(eq=False)
class LoadedModel:
    spec: ModelSpec
    runner: Runner
    options: RunnerOptions
    parallel: int
    kv_cache_bytes_computed: int
    on_gpu: bool
    session: float  # keep_alive in seconds
    executor: ThreadPoolExecutor
    slots: asyncio.Semaphore
    expires_at: datetime
    refcount: int = 0  # leases held (running or waiting for a slot)
    running: int = 0  # requests holding a slot
    timer: asyncio.TimerHandle | None = None
    retiring: asyncio.Task | None = None
    closed: bool = False
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def name(self) -> str:
        return self.spec.name

    def memory(self) -> Memory:
        """What the runner holds now (a llama.cpp runner grows as slots get their own context)."""
        held = self.runner.memory()
        if held is not None:
            return Memory(
                held.size, held.source, {**held.figures, "kv_cache_bytes_computed": self.kv_cache_bytes_computed}
            )
        figures = {"weights_bytes_computed": self.spec.size, "kv_cache_bytes_computed": self.kv_cache_bytes_computed}
        return Memory(sum(figures.values()), "computed", figures)

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


@dataclass(eq=False)
class _Pending:
    spec: ModelSpec
    options: RunnerOptions
    keep_alive: float | None
    future: asyncio.Future


class Lease:
    """A request's hold on a loaded model; ``release()`` it when the request is done."""

    def __init__(self, scheduler: Scheduler, model: LoadedModel, load_duration: float):
        self._scheduler = scheduler
        self.model = model
        self.load_duration = load_duration  # seconds from arrival until the runner was granted
        self._released = False

    async def run(
        self,
        work: Callable[[Runner], T],
        *,
        endpoint: str,
        detail: dict[str, Any],
        summary: Callable[[T], dict[str, Any]],
    ) -> T:
        """Run ``work(runner)`` in a slot and a worker thread, recording request_start/end events."""
        model, events = self.model, self._scheduler.events
        async with model.slots:
            model.running += 1
            events.record("request_start", model.name, endpoint=endpoint, in_flight=model.running, **detail)
            started, end = perf_counter(), {"status": "error"}
            try:
                if self._scheduler.config.delay:
                    await asyncio.sleep(self._scheduler.config.delay)
                result = await asyncio.get_running_loop().run_in_executor(model.executor, work, model.runner)
                end = {"status": "ok", **summary(result)}
                return result
            finally:
                model.running -= 1
                events.record(
                    "request_end", model.name, endpoint=endpoint, duration=round(perf_counter() - started, 6), **end
                )

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._scheduler._release(self.model)


class Scheduler:
    def __init__(self, config: ServerConfig, events: EventLog):
        self.config = config
        self.events = events
        self.loaded: dict[str, LoadedModel] = {}
        self._backends: dict[str, Backend] = {}
        self._pending: asyncio.Queue[_Pending] = asyncio.Queue(config.max_queue)
        self._task: asyncio.Task | None = None
        self._never_unload = {config.offered[name].name for name in config.never_unload}

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="localserve-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while not self._pending.empty():
            pending = self._pending.get_nowait()
            if not pending.future.done():
                pending.future.set_exception(ShuttingDown(ShuttingDown.message))
        for model in list(self.loaded.values()):
            model.cancel_timer()
            if model.retiring is not None:
                model.retiring.cancel()
            await self._unload(model, "shutdown")

    # -- requests ----------------------------------------------------------------------------
    async def acquire(self, spec: ModelSpec, options: RunnerOptions, keep_alive: float | None, endpoint: str) -> Lease:
        """Wait for a runner of ``spec`` loaded with ``options``; raises QueueFull past max_queue."""
        started = perf_counter()
        options = replace(options, num_ctx=max(4, min(options.num_ctx, spec.context_length)))
        future = asyncio.get_running_loop().create_future()
        try:
            self._pending.put_nowait(_Pending(spec, options, keep_alive, future))
        except asyncio.QueueFull:
            self.events.record(
                "reject", spec.name, endpoint=endpoint, error=QueueFull.message, queued=self._pending.qsize()
            )
            raise QueueFull(QueueFull.message) from None
        try:
            model = await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.exception() is None:
                self._release(future.result())
            raise
        return Lease(self, model, perf_counter() - started)

    async def expire(self, spec: ModelSpec) -> None:
        """keep_alive 0 without a prompt: unload now if idle, else after the running requests.

        With no ``unload_delay`` the model is gone before this returns; with one, the unload
        goes on after the answer (Ollama's asynchronous unload).
        """
        model = self.loaded.get(spec.name)
        if model is None:
            return
        if model.name in self._never_unload:
            self.events.record("unload_ignored", model.name, cause="keep_alive_0")
            return
        model.session = 0.0
        model.cancel_timer()
        if model.refcount == 0:
            retiring = self._retire(model, "keep_alive_0")
            if not self.config.unload_delay:
                await asyncio.shield(retiring)

    def ps(self) -> list[dict[str, Any]]:
        now = utcnow()
        rows = []
        for model in self.loaded.values():
            expires = now if model.retiring else expiry(model.session, now) if model.refcount else model.expires_at
            memory = model.memory()
            rows.append(
                {
                    "name": model.name,
                    "model": model.name,
                    "size": memory.size,
                    "size_vram": self._vram(model, memory),
                    "digest": model.spec.digest,
                    "details": model.spec.details,
                    "expires_at": expires,
                    "context_length": model.options.num_ctx,
                    "memory": self._memory_fields(model, memory),
                }
            )
        rows.sort(key=lambda row: row["expires_at"], reverse=True)
        return [{**row, "expires_at": rfc3339(row["expires_at"])} for row in rows]

    def _vram(self, model: LoadedModel, memory: Memory) -> int:
        """GPU memory: 0 for a runner on the CPU; a simulated model's computed size on the simulated card."""
        if not model.on_gpu:
            return 0
        return memory.size if self.config.vram_bytes is None else min(memory.size, self.config.vram_bytes)

    @staticmethod
    def _memory_fields(model: LoadedModel, memory: Memory) -> dict[str, Any]:
        """The extra /api/ps fields that say where the sizes come from (Ollama clients ignore them)."""
        device = "simulated GPU" if model.on_gpu else "CPU"
        return {"source": memory.source, "device": device, "backend": model.spec.backend, **memory.figures}

    # -- the loop ------------------------------------------------------------------------------
    async def _loop(self) -> None:
        while True:
            pending = await self._pending.get()
            if pending.future.done():  # the client went away while queued
                continue
            try:
                model = await self._runner_for(pending)
            except Exception as exc:  # a failed load answers that request, the loop goes on
                log.exception("could not schedule %s", pending.spec.name)
                if not pending.future.done():
                    pending.future.set_exception(exc)
                continue
            self._use(model, pending.keep_alive)
            if pending.future.done():
                self._release(model)
            else:
                pending.future.set_result(model)

    async def _runner_for(self, pending: _Pending) -> LoadedModel:
        while True:
            retiring = next((m for m in self.loaded.values() if m.retiring), None)
            model = self.loaded.get(pending.spec.name)
            if model is not None and not model.retiring:
                changed = pending.options.changes_from(model.options)
                if not changed:
                    return model
                self.events.record(
                    "reload",
                    model.name,
                    changed=changed,
                    old={k: getattr(model.options, k) for k in changed},
                    new={k: getattr(pending.options, k) for k in changed},
                    old_num_ctx=model.options.num_ctx,
                    new_num_ctx=pending.options.num_ctx,
                )
                await asyncio.shield(self._retire(model, "reload"))
            elif retiring is not None:
                await asyncio.shield(retiring.retiring)
            elif cause := self._room_needed(pending):
                await asyncio.shield(self._retire(self._victim(), cause))
            else:
                return await self._load(pending)

    def _room_needed(self, pending: _Pending) -> str | None:
        if not self.loaded:
            return None
        if len(self.loaded) >= self.config.max_loaded_models:
            return "evicted_max_loaded"
        vram = self.config.vram_bytes
        used = sum(self._vram(m, m.memory()) for m in self.loaded.values())
        if vram is not None and used + self._estimate(pending) > vram:
            return "evicted_memory"
        return None

    def _estimate(self, pending: _Pending) -> int:
        parallel = self._parallel(pending.spec)
        return pending.spec.size + pending.spec.kv_cache_bytes(
            pending.options.num_ctx, parallel, self.config.kv_cache_type
        )

    def _parallel(self, spec: ModelSpec) -> int:
        return 1 if spec.embedding_only else self.config.num_parallel

    def _victim(self) -> LoadedModel:
        """An idle model with the shortest keep_alive, else the one with the shortest keep_alive."""
        ordered = sorted(self.loaded.values(), key=lambda m: (m.session, m.name))
        return next((m for m in ordered if m.refcount == 0), ordered[0])

    async def _load(self, pending: _Pending) -> LoadedModel:
        spec, options, config = pending.spec, pending.options, self.config
        backend_name = spec.backend
        if backend_name not in self._backends:
            self._backends[backend_name] = await asyncio.to_thread(create_backend, backend_name)
        parallel = self._parallel(spec)
        started = perf_counter()
        runner = await asyncio.to_thread(
            self._backends[backend_name].load,
            LoadSpec(spec, options, parallel, config.prompt_cache, flash_attention=config.flash_attention is not False),
        )
        if config.load_delay:
            await asyncio.sleep(config.load_delay)
        load_duration = perf_counter() - started
        kv = spec.kv_cache_bytes(options.num_ctx, parallel, config.kv_cache_type)
        session = config.keep_alive if pending.keep_alive is None else pending.keep_alive
        model = LoadedModel(
            spec=spec,
            runner=runner,
            options=options,
            parallel=parallel,
            kv_cache_bytes_computed=kv,
            on_gpu=runner.on_gpu,
            session=session,
            expires_at=expiry(session),
            executor=ThreadPoolExecutor(max_workers=parallel, thread_name_prefix=f"localserve-{spec.name}"),
            slots=asyncio.Semaphore(parallel),
        )
        model.idle.set()
        self.loaded[spec.name] = model
        memory = model.memory()
        self.events.record(
            "load",
            spec.name,
            num_ctx=options.num_ctx,
            parallel=parallel,
            size=memory.size,
            size_vram=self._vram(model, memory),
            memory_source=memory.source,
            **memory.figures,
            keep_alive=-1 if math.isinf(session) else session,
            load_duration=round(load_duration, 6),
            backend=backend_name,
        )
        return model

    # -- leases, timers, unloads ------------------------------------------------------------
    def _use(self, model: LoadedModel, keep_alive: float | None) -> None:
        model.refcount += 1
        model.idle.clear()
        model.cancel_timer()
        if keep_alive is not None:
            model.session = keep_alive

    def _release(self, model: LoadedModel) -> None:
        model.refcount -= 1
        if model.refcount > 0:
            return
        model.idle.set()
        if model.retiring or model.closed:
            return
        if model.session <= 0:
            if model.name in self._never_unload:
                self.events.record("unload_ignored", model.name, cause="keep_alive_0")
                return
            self._retire(model, "keep_alive_0")
            return
        model.expires_at = expiry(model.session)
        if not math.isinf(model.session):
            model.timer = asyncio.get_running_loop().call_later(model.session, self._on_timer, model)

    def _on_timer(self, model: LoadedModel) -> None:
        model.timer = None
        if model.refcount == 0 and model.retiring is None:
            self._retire(model, "keep_alive_expired")

    def _retire(self, model: LoadedModel, cause: str) -> asyncio.Task:
        """Stop new use of ``model`` and unload it once its leases are released (idempotent)."""
        if model.retiring is None:
            model.cancel_timer()
            model.retiring = asyncio.create_task(self._unload_when_idle(model, cause))
        return model.retiring

    async def _unload_when_idle(self, model: LoadedModel, cause: str) -> None:
        await model.idle.wait()
        if self.config.unload_delay:
            await asyncio.sleep(self.config.unload_delay)
        await self._unload(model, cause)

    async def _unload(self, model: LoadedModel, cause: str) -> None:
        if model.closed:
            return
        model.closed = True
        try:
            await asyncio.to_thread(model.runner.close)
        finally:
            model.executor.shutdown(wait=False)
            if self.loaded.get(model.name) is model:
                del self.loaded[model.name]
            self.events.record("unload", model.name, cause=cause, num_ctx=model.options.num_ctx)
