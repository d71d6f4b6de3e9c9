"""Plan the GPU's memory for Ollama: how many slots (OLLAMA_NUM_PARALLEL) at which num_ctx fit next to Whisper.

The numbers come from /api/show ``model_info`` (layers, KV heads, head sizes, sliding windows),
/api/tags ``size`` (the weights) and the card's memory (nvidia-smi, or given). Ollama allocates
the KV cache of every slot at load time; per slot it holds K and V of every layer that has its
own cache::

    per slot = sum over layers of tokens x head_count_kv x (key_length + value_length) x bytes per element

which for uniform layers is ``2 x block_count x num_ctx x head_count_kv x key_length x bytes``; a
sliding-window layer holds only ``min(num_ctx, window)`` tokens. On top of weights and KV comes an
allowance for the compute graph and runtime buffers (see ``overhead_bytes``): an estimate, which
``measure`` checks against what /api/ps reports after a real load.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from autorag_dagster.ollama.errors import pull_commands
from autorag_dagster.ollama.names import canonical_name

if TYPE_CHECKING:
    from autorag_dagster.ollama.client import OllamaClient

MIB = 1 << 20
GIB = 1 << 30

KV_BYTES_PER_ELEMENT = {"f16": 2.0, "q8_0": 1.0625, "q4_0": 0.5625}
"""Bytes per KV-cache element for OLLAMA_KV_CACHE_TYPE (q8_0 stores 32 values in 34 bytes, q4_0 in 18)."""

OVERHEAD_MIN_BYTES = 512 * MIB
OVERHEAD_FRACTION = 0.10
"""The allowance for what a loaded model holds besides weights and KV cache (the compute graph for
a 512-token batch with its output logits, CUDA context and runtime buffers): 10% of weights + KV,
at least 512 MiB. Deliberately generous; ``--measure`` shows the real total."""

PREFERRED_NUM_CTX = 8192
"""The project's per-slot context (AUTORAG_NUM_CTX's default)."""
PREFERRED_PARALLEL = 8
"""The batched stages' concurrency (AUTORAG_MAX_CONCURRENCY's default)."""
PARALLEL_BEFORE_CTX = 4
"""Slots are traded down to this many before num_ctx is lowered."""
MIN_NUM_CTX = 4096
CTX_STEP = 1024

TOLERANCE_PERCENT = 15.0
"""How far /api/ps may be from the plan before the measurement calls the plan off."""

KNOWN_SWA_PATTERNS = {"gemma2": 2, "gemma3": 6}
"""Every n-th layer has full attention, the others the sliding window, for architectures whose
``model_info`` does not carry the pattern (llama.cpp and Ollama hard-code it: Gemma 2 alternates,
Gemma 3 has 5 local layers to 1 global)."""

NVIDIA_SMI_QUERY = ("--query-gpu=memory.total,memory.used,memory.free", "--format=csv,noheader,nounits")


class PlanError(ValueError):
    """The models cannot be planned or do not fit; the message says what to change."""


def gib(n: float) -> str:
    return f"{n / GIB:.2f} GiB"


# --- the card -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gpu:
    total_bytes: int
    used_bytes: int | None
    free_bytes: int | None
    source: str

    @classmethod
    def given(cls, vram_gib: float) -> Gpu:
        return cls(round(vram_gib * GIB), None, None, "--vram-gb")


def parse_nvidia_smi(text: str) -> Gpu:
    """The first GPU's line of ``nvidia-smi`` with NVIDIA_SMI_QUERY: total, used and free MiB."""
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        total, used, free = (round(float(value) * MIB) for value in lines[0].split(","))
    except (IndexError, ValueError):
        raise PlanError(
            f"Could not read the GPU's memory from nvidia-smi (it printed {text.strip()!r}); "
            "give it with --vram-gb, e.g. `autorag tune --vram-gb 24`."
        ) from None
    return Gpu(total, used, free, f"nvidia-smi, GPU 0 of {len(lines)}")


def query_gpu() -> Gpu | None:
    """The card's memory from nvidia-smi; None where nvidia-smi is not installed."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        result = subprocess.run([exe, *NVIDIA_SMI_QUERY], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", None) or exc
        raise PlanError(f"nvidia-smi failed ({str(detail).strip()}); give the card's memory with --vram-gb.") from None
    return parse_nvidia_smi(result.stdout)


# --- a model's shape ------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    kv_heads: int
    key_length: int
    value_length: int
    window: int | None  # tokens a sliding-window layer keeps; None: the whole context


@dataclass(frozen=True)
class ModelShape:
    """What sizes a model's KV cache, read from /api/show ``model_info`` (keys ``<arch>.<key>``)."""

    name: str
    arch: str
    weights_bytes: int
    context_length: int
    block_count: int
    layers: tuple[Layer, ...]  # the layers with a KV cache of their own (none for an encoder)
    notes: tuple[str, ...]  # for the reader: filled-in keys, sliding windows, shared caches

    @classmethod
    def from_model_info(cls, name: str, info: Mapping[str, Any], weights_bytes: int) -> ModelShape:
        arch = info.get("general.architecture")
        if not arch:
            raise PlanError(f"/api/show of {name} has no general.architecture in model_info; cannot size its KV cache.")

        def get(key: str, default: Any = None) -> Any:
            value = info.get(f"{arch}.{key}")
            return default if value is None else value

        def need(key: str) -> Any:
            value = get(key)
            if value is None:
                raise PlanError(f"/api/show of {name} lacks {arch}.{key} in model_info; cannot size its KV cache.")
            return value

        blocks, context = int(need("block_count")), int(need("context_length"))
        notes: list[str] = []
        if get("attention.causal", True) is False:
            notes.append("an encoder (attention.causal = false): no KV cache")
            return cls(name, arch, weights_bytes, context, blocks, (), tuple(notes))

        kv_heads = get("attention.head_count_kv")
        if kv_heads is None:
            kv_heads = need("attention.head_count")
            notes.append("no attention.head_count_kv: one KV head per attention head")
        key = get("attention.key_length")
        if key is None:
            heads = max(_per_layer(need("attention.head_count"), blocks, name, "attention.head_count"))
            key = int(need("embedding_length")) // heads
            notes.append(f"no attention.key_length: embedding_length / head_count = {key}, as llama.cpp assumes")
        value = get("attention.value_length", key)
        key_swa, value_swa = get("attention.key_length_swa", key), get("attention.value_length_swa", value)
        window = get("attention.sliding_window")
        sliding = _sliding_layers(arch, get("attention.sliding_window_pattern"), window, blocks, notes)
        shared = int(get("attention.shared_kv_layers", 0))
        if shared:
            notes.append(f"the last {shared} layers reuse earlier layers' KV cache")
        layers = tuple(
            Layer(int(heads), int(key_swa), int(value_swa), int(window))
            if swa
            else Layer(int(heads), int(key), int(value), None)
            for heads, swa in zip(_per_layer(kv_heads, blocks, name, "attention.head_count_kv"), sliding, strict=True)
        )[: blocks - shared]
        return cls(name, arch, weights_bytes, context, blocks, layers, tuple(notes))

    def kv_bytes_per_slot(self, num_ctx: int, kv_type: str) -> int:
        elements = sum(
            min(num_ctx, layer.window or num_ctx) * layer.kv_heads * (layer.key_length + layer.value_length)
            for layer in self.layers
        )
        return round(elements * KV_BYTES_PER_ELEMENT[kv_type])


def _per_layer(value: int | list, blocks: int, name: str, key: str) -> list[int]:
    if isinstance(value, list):
        if len(value) != blocks:
            raise PlanError(f"/api/show of {name}: {key} lists {len(value)} values for {blocks} layers.")
        return [int(v) for v in value]
    return [int(value)] * blocks


def _sliding_layers(arch: str, pattern: Any, window: int | None, blocks: int, notes: list[str]) -> list[bool]:
    """Which layers use the sliding window: model_info's pattern (a flag per layer, or every n-th
    layer global), else the architecture's known pattern, else none (an upper bound)."""
    if not window:
        return [False] * blocks
    if isinstance(pattern, list) and len(pattern) == blocks:
        sliding, source = [bool(flag) for flag in pattern], "model_info's sliding_window_pattern"
    else:
        every = pattern if isinstance(pattern, int) and pattern > 0 else KNOWN_SWA_PATTERNS.get(arch)
        if every is None:
            notes.append(
                f"a {window}-token sliding window but no layer pattern in model_info: every layer is counted"
                " at the full context (an upper bound)"
            )
            return [False] * blocks
        sliding = [layer % every < every - 1 for layer in range(blocks)]
        source = f"{every - 1} sliding : 1 global"
    notes.append(
        f"{sum(sliding)} of {blocks} layers keep only a {window}-token sliding window ({source}),"
        f" {blocks - sum(sliding)} the full context"
    )
    return sliding


def read_models(client: OllamaClient, names: Iterable[str]) -> list[ModelShape]:
    """The shapes of ``names`` from /api/tags (weights) and /api/show (model_info)."""
    names = list(names)
    sizes = client.model_sizes()
    missing = [name for name in names if canonical_name(name) not in sizes]
    if missing:
        raise PlanError(f"Not pulled on {client.base_url}: {', '.join(missing)}. Pull with {pull_commands(missing)}.")
    return [
        ModelShape.from_model_info(name, client.show(name).get("model_info") or {}, sizes[canonical_name(name)])
        for name in names
    ]


# --- the plan -------------------------------------------------------------------------------


def overhead_bytes(weights_bytes: int, kv_bytes: int) -> int:
    return max(OVERHEAD_MIN_BYTES, round(OVERHEAD_FRACTION * (weights_bytes + kv_bytes)))


@dataclass(frozen=True)
class Footprint:
    """A model loaded with ``parallel`` slots of ``num_ctx`` tokens and a ``kv_type`` cache."""

    model: str
    num_ctx: int
    parallel: int
    kv_type: str
    weights_bytes: int
    kv_per_slot_bytes: int
    kv_bytes: int
    overhead_bytes: int
    total_bytes: int

    @classmethod
    def of(cls, shape: ModelShape, num_ctx: int, parallel: int, kv_type: str) -> Footprint:
        per_slot = shape.kv_bytes_per_slot(num_ctx, kv_type)
        kv = per_slot * parallel
        overhead = overhead_bytes(shape.weights_bytes, kv)
        return cls(
            shape.name,
            num_ctx,
            parallel,
            kv_type,
            shape.weights_bytes,
            per_slot,
            kv,
            overhead,
            shape.weights_bytes + kv + overhead,
        )


def trade_down(num_ctx: int, parallel: int) -> list[tuple[int, int]]:
    """(slots, num_ctx) pairs, best first: slots down to 4, then num_ctx down to 4096, then slots down to 1."""
    middle, low_ctx = min(PARALLEL_BEFORE_CTX, parallel), min(MIN_NUM_CTX, num_ctx)
    steps = [(slots, num_ctx) for slots in range(parallel, middle - 1, -1)]
    steps += [(middle, ctx) for ctx in range(num_ctx - CTX_STEP, low_ctx, -CTX_STEP)]
    steps += [(slots, low_ctx) for slots in range(middle, 0, -1)]
    return list(dict.fromkeys(steps))


@dataclass(frozen=True)
class Plan:
    gpu: Gpu
    whisper_bytes: int
    margin_bytes: int
    llm_budget_bytes: int
    llm: Footprint
    embedder: Footprint
    reasoning: tuple[str, ...]

    @property
    def env(self) -> dict[str, str]:
        """The lines for ``.env``: the server's slots and cache type, the client's context and concurrency."""
        env = {"OLLAMA_NUM_PARALLEL": str(self.llm.parallel), "OLLAMA_KV_CACHE_TYPE": self.llm.kv_type}
        if self.llm.kv_type != "f16":
            env["OLLAMA_FLASH_ATTENTION"] = "1"
        return env | {"AUTORAG_NUM_CTX": str(self.llm.num_ctx), "AUTORAG_MAX_CONCURRENCY": str(self.llm.parallel)}


def plan(
    llm: ModelShape,
    embedder: ModelShape,
    gpu: Gpu,
    *,
    kv_type: str = "q8_0",
    whisper_bytes: int = 6 * GIB,
    margin_bytes: int = GIB,
    num_ctx: int = PREFERRED_NUM_CTX,
    parallel: int = PREFERRED_PARALLEL,
) -> Plan:
    """The most slots at the largest num_ctx (``parallel`` x ``num_ctx`` preferred) whose LLM fits
    the card next to Whisper's budget and the margin; the embedder only has to fit alone."""
    if kv_type not in KV_BYTES_PER_ELEMENT:
        raise PlanError(f"Unknown KV cache type {kv_type!r}; Ollama knows {', '.join(KV_BYTES_PER_ELEMENT)}.")
    total = gpu.total_bytes
    budget = total - whisper_bytes - margin_bytes
    why = [
        f"Card: {gib(total)} ({gpu.source}). Whisper's budget ({gib(whisper_bytes)}) and the safety margin"
        f" ({gib(margin_bytes)}) leave {gib(budget)} for the LLM."
    ]
    if llm.weights_bytes > total:
        raise PlanError(
            f"{llm.name}'s weights alone ({gib(llm.weights_bytes)}) exceed the card's {gib(total)}: choose a smaller"
            " model or quantisation (AUTORAG_LLM_MODEL)."
        )
    why += [f"{llm.name}: {note}." for note in llm.notes]
    if num_ctx > llm.context_length:
        why.append(f"{llm.name} was trained on {llm.context_length} tokens: Ollama clips num_ctx {num_ctx} to that.")
        num_ctx = llm.context_length
    bytes_per = KV_BYTES_PER_ELEMENT[kv_type]
    why.append(
        f"KV cache per slot at {num_ctx} tokens ({kv_type}, {bytes_per:g} bytes per element):"
        f" {gib(llm.kv_bytes_per_slot(num_ctx, kv_type))}."
    )
    too_big: list[str] = []
    for slots, ctx in trade_down(num_ctx, parallel):
        chosen = Footprint.of(llm, ctx, slots, kv_type)
        if chosen.total_bytes <= budget:
            break
        too_big.append(f"{slots} x {ctx} ({gib(chosen.total_bytes)})")
    else:
        raise PlanError(
            f"{llm.name} does not fit next to Whisper even with 1 slot of {ctx} tokens: it needs"
            f" {gib(chosen.total_bytes)}, and {gib(budget)} of the {gib(total)} card are left after Whisper"
            f" ({gib(whisper_bytes)}) and the margin ({gib(margin_bytes)}). Choose a smaller model or quantisation,"
            " a q4_0 KV cache (--kv-type q4_0) or a smaller Whisper budget (--whisper-gb)."
        )
    if too_big:
        why.append(f"Too big for {gib(budget)} (slots x num_ctx): {', '.join(too_big)}.")
    why.append(
        f"{chosen.parallel} slots x {chosen.num_ctx} tokens: {gib(chosen.weights_bytes)} weights"
        f" + {gib(chosen.kv_bytes)} KV + {gib(chosen.overhead_bytes)} overhead = {gib(chosen.total_bytes)},"
        f" {gib(budget - chosen.total_bytes)} to spare{'' if too_big else ' (the preferred setting)'}."
    )
    if kv_type != "f16":
        why.append(f"A {kv_type} KV cache needs flash attention: OLLAMA_FLASH_ATTENTION=1.")

    embed = Footprint.of(embedder, embedder.context_length, 1, kv_type)
    alone = total - margin_bytes
    why += [f"{embedder.name}: {note}." for note in embedder.notes]
    if embed.total_bytes > alone:
        raise PlanError(
            f"The embedder {embedder.name} needs {gib(embed.total_bytes)}, more than the card's {gib(total)} less the"
            " margin: choose a smaller embedding model (AUTORAG_EMBED_MODEL)."
        )
    why.append(
        f"{embedder.name} loads alone once the LLM is evicted: {gib(embed.total_bytes)} (one slot of"
        f" {embed.num_ctx} tokens) of the {gib(alone)} it may use."
    )
    why.append(
        f"Overhead = max({gib(OVERHEAD_MIN_BYTES)}, {OVERHEAD_FRACTION:.0%} of weights + KV), an allowance for the"
        " compute graph and buffers; `autorag tune --measure` compares the plan with a real load."
    )
    return Plan(gpu, whisper_bytes, margin_bytes, budget, chosen, embed, tuple(why))


# --- checking the plan against a real load --------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """/api/ps after loading the LLM, against the plan's estimate for the context it was loaded with."""

    model: str
    load_seconds: float
    num_ctx: int
    parallel: int
    kv_type: str
    planned_bytes: int
    size_bytes: int
    size_vram_bytes: int
    off_bytes: int  # measured - planned
    off_percent: float

    @property
    def summary(self) -> str:
        direction = "above" if self.off_bytes >= 0 else "below"
        text = (
            f"{self.model} loaded in {self.load_seconds:.2f} s with num_ctx {self.num_ctx}: /api/ps size"
            f" {gib(self.size_bytes)} ({gib(self.size_vram_bytes)} in VRAM); the plan said {gib(self.planned_bytes)}:"
            f" {gib(abs(self.off_bytes))} ({abs(self.off_percent):.1f}%) {direction} the plan."
        )
        if abs(self.off_percent) > TOLERANCE_PERCENT:
            text += (
                f" That is more than {TOLERANCE_PERCENT:g}% off: if the server does not run with"
                f" OLLAMA_NUM_PARALLEL={self.parallel} and OLLAMA_KV_CACHE_TYPE={self.kv_type} yet, apply the"
                " lines below, restart it and measure again."
            )
        if self.size_vram_bytes < self.size_bytes:
            text += (
                f" {gib(self.size_bytes - self.size_vram_bytes)} of it is in system memory (partial offload):"
                " lower OLLAMA_NUM_PARALLEL or AUTORAG_NUM_CTX."
            )
        return text


def measure(client: OllamaClient, plan: Plan, shape: ModelShape) -> Measured:
    """Load the LLM with the planned num_ctx, read its /api/ps entry, then evict it again."""
    model = plan.llm.model
    seconds = client.warm(model, num_ctx=plan.llm.num_ctx)
    try:
        running = next((m for m in client.ps() if canonical_name(m.name) == canonical_name(model)), None)
    finally:
        client.evict(model)
    if running is None:
        raise PlanError(f"{model} answered the load request, but /api/ps on {client.base_url} does not list it.")
    num_ctx = running.context_length or plan.llm.num_ctx
    planned = Footprint.of(shape, num_ctx, plan.llm.parallel, plan.llm.kv_type).total_bytes
    off = running.size - planned
    return Measured(
        model,
        round(seconds, 3),
        num_ctx,
        plan.llm.parallel,
        plan.llm.kv_type,
        planned,
        running.size,
        running.size_vram,
        off,
        round(100 * off / planned, 2),
    )


# --- output ---------------------------------------------------------------------------------


def plan_json(plan: Plan, measured: Measured | None = None) -> str:
    document = {**asdict(plan), "env": plan.env, "measured": None}
    if measured is not None:
        document["measured"] = {**asdict(measured), "summary": measured.summary}
    return json.dumps(document, indent=2)
