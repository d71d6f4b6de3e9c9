"""The VRAM planner: KV arithmetic on recorded model_info of real models, its decisions, and real loads.

Expected numbers are written out as arithmetic: per slot, 2 (K and V) x layers x tokens x KV heads
x key_length x bytes per element (f16 2, q8_0 1.0625, q4_0 0.5625).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autorag_dagster.cli import app
from autorag_dagster.localserve import DEFAULT_CATALOGUE, ModelSpec
from autorag_dagster.ollama.planner import (
    GIB,
    MIB,
    TOLERANCE_PERCENT,
    Gpu,
    ModelShape,
    PlanError,
    measure,
    parse_nvidia_smi,
    plan,
    read_models,
    trade_down,
)
from autorag_dagster.settings import get_settings
from tests.support.models import EMBED
from tests.support.ollama_clients import make_client

FIXTURES = Path(__file__).parent / "fixtures"


def recorded(stem: str) -> dict:
    return json.loads((FIXTURES / f"{stem}.json").read_text())


def shape(stem: str, weights: int | None = None) -> ModelShape:
    fixture = recorded(stem)
    return ModelShape.from_model_info(
        fixture["tags"]["name"], fixture["show"]["model_info"], weights or fixture["tags"]["size"]
    )


def served(stem: str) -> ModelSpec:
    """A recorded model as the local server's deterministic backend serves it (same /api/tags and /api/show)."""
    fixture = recorded(stem)
    tags, show = fixture["tags"], fixture["show"]
    return ModelSpec(
        name=tags["name"],
        family=tags["details"]["family"],
        parameter_size=tags["details"]["parameter_size"],
        quantization_level=tags["details"]["quantization_level"],
        size=tags["size"],
        model_info=show["model_info"],
        capabilities=tuple(show["capabilities"]),
    )


# --- KV cache per slot ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stem", "kv_type", "expected"),
    [
        ("llama3.1_8b", "f16", 2 * 32 * 8192 * 8 * 128 * 2),
        ("llama3.1_8b", "q8_0", 2 * 32 * 8192 * 8 * 128 * 1.0625),
        ("llama3.1_8b", "q4_0", 2 * 32 * 8192 * 8 * 128 * 0.5625),
        ("qwen2.5_7b", "f16", 2 * 28 * 8192 * 4 * 128 * 2),  # key_length = 3584 / 28
        ("qwen3_8b", "q8_0", 2 * 36 * 8192 * 8 * 128 * 1.0625),
        ("qwen3_4b", "f16", 2 * 36 * 8192 * 8 * 128 * 2),  # key_length 128 as given, not 2560 / 32 = 80
        ("smollm2_135m", "f16", 2 * 30 * 8192 * 3 * 64 * 2),  # key_length = 576 / 9
        # Gemma 3: layers 5, 11, ..., 47 (every 6th) see the whole context, the other 40 a 1024-token window.
        ("gemma3_12b", "f16", 2 * (40 * 1024 + 8 * 8192) * 8 * 256 * 2),
        ("gemma3_12b", "q8_0", 2 * (40 * 1024 + 8 * 8192) * 8 * 256 * 1.0625),
        ("gemma3_4b", "q8_0", 2 * (29 * 1024 + 5 * 8192) * 4 * 256 * 1.0625),  # 34 layers: 5, 11, 17, 23, 29 global
        ("nomic-embed-text", "f16", 0),  # an encoder keeps no KV cache
    ],
)
def test_kv_cache_per_slot_at_8192_tokens(stem, kv_type, expected):
    assert shape(stem).kv_bytes_per_slot(8192, kv_type) == expected


def test_published_architecture_values_are_read_and_missing_keys_filled_in_as_llama_cpp_does():
    llama = shape("llama3.1_8b")
    assert (llama.arch, llama.block_count, llama.context_length) == ("llama", 32, 131072)
    assert {(layer.kv_heads, layer.key_length, layer.value_length, layer.window) for layer in llama.layers} == {
        (8, 128, 128, None)
    }
    assert "embedding_length / head_count = 128" in llama.notes[0]

    gemma = shape("gemma3_12b")
    windows = [layer.window for layer in gemma.layers]
    assert windows == [1024, 1024, 1024, 1024, 1024, None] * 8
    assert "40 of 48 layers keep only a 1024-token sliding window" in gemma.notes[0]

    nomic = shape("nomic-embed-text")
    assert (nomic.arch, nomic.block_count, nomic.layers) == ("nomic-bert", 12, ())
    assert "encoder" in nomic.notes[0]


def test_a_short_context_fits_inside_the_sliding_window():
    assert shape("gemma3_12b").kv_bytes_per_slot(512, "f16") == 2 * 48 * 512 * 8 * 256 * 2


def test_a_window_without_a_known_layer_pattern_counts_every_layer_in_full():
    gemma = recorded("gemma3_12b")["show"]["model_info"]
    info = {key.replace("gemma3.", "newgemma."): value for key, value in gemma.items()} | {
        "general.architecture": "newgemma"
    }
    unknown = ModelShape.from_model_info("newgemma:12b", info, 8_100_000_000)
    assert unknown.kv_bytes_per_slot(8192, "f16") == 2 * 48 * 8192 * 8 * 256 * 2
    assert "upper bound" in unknown.notes[0]

    info["newgemma.attention.sliding_window_pattern"] = 6
    with_pattern = ModelShape.from_model_info("newgemma:12b", info, 1)
    assert with_pattern.kv_bytes_per_slot(8192, "f16") == 2 * (40 * 1024 + 8 * 8192) * 8 * 256 * 2


def test_per_layer_keys_of_hybrid_and_kv_sharing_models():
    """A synthetic six-layer model: per-layer KV heads (0 on recurrent layers), smaller heads on
    sliding-window layers, a flag per layer for the window, and two layers reusing earlier caches."""
    info = {
        "general.architecture": "toy",
        "toy.block_count": 6,
        "toy.context_length": 32768,
        "toy.attention.head_count": 8,
        "toy.attention.head_count_kv": [2, 0, 2, 4, 2, 2],
        "toy.attention.key_length": 256,
        "toy.attention.value_length": 256,
        "toy.attention.key_length_swa": 128,
        "toy.attention.value_length_swa": 128,
        "toy.attention.sliding_window": 512,
        "toy.attention.sliding_window_pattern": [True, False, True, False, True, True],
        "toy.attention.shared_kv_layers": 2,
    }
    toy = ModelShape.from_model_info("toy", info, 1)
    # Layers 0-3 have caches: 0 and 2 sliding (2 heads, 128 + 128), 1 recurrent (0 heads),
    # 3 global (4 heads, 256 + 256); layers 4 and 5 reuse them.
    assert toy.kv_bytes_per_slot(8192, "f16") == (2 * 512 * 2 * (128 + 128) + 8192 * 4 * (256 + 256)) * 2


def test_model_info_without_the_layer_count_is_a_clear_error():
    info = dict(recorded("qwen3_8b")["show"]["model_info"])
    del info["qwen3.block_count"]
    with pytest.raises(PlanError, match=r"qwen3:8b lacks qwen3\.block_count"):
        ModelShape.from_model_info("qwen3:8b", info, 1)


# --- decisions ------------------------------------------------------------------------------


def test_trade_down_order_slots_to_4_then_context_to_4096_then_slots_to_1():
    assert trade_down(8192, 8) == [
        (8, 8192), (7, 8192), (6, 8192), (5, 8192), (4, 8192),
        (4, 7168), (4, 6144), (4, 5120), (4, 4096),
        (3, 4096), (2, 4096), (1, 4096),
    ]  # fmt: skip
    assert trade_down(2048, 2) == [(2, 2048), (1, 2048)]


def test_24_gib_holds_a_gemma_like_model_with_8_slots_of_8192_q8_0():
    gemma_like = shape("gemma3_12b", weights=9_600_000_000)
    result = plan(gemma_like, shape("nomic-embed-text"), Gpu.given(24))

    kv = 8 * 2 * (40 * 1024 + 8 * 8192) * 8 * 256 * 1.0625
    assert (result.llm.parallel, result.llm.num_ctx, result.llm.kv_bytes) == (8, 8192, kv)
    assert result.llm.overhead_bytes == round(0.10 * (9_600_000_000 + kv))
    assert result.llm.total_bytes == 9_600_000_000 + kv + round(0.10 * (9_600_000_000 + kv))
    assert result.llm_budget_bytes == (24 - 6 - 1) * GIB
    assert result.env == {
        "OLLAMA_NUM_PARALLEL": "8",
        "OLLAMA_KV_CACHE_TYPE": "q8_0",
        "OLLAMA_FLASH_ATTENTION": "1",
        "AUTORAG_NUM_CTX": "8192",
        "AUTORAG_MAX_CONCURRENCY": "8",
    }
    assert any("(the preferred setting)" in line for line in result.reasoning)
    # The embedder loads alone: weights and the minimum overhead, no KV cache.
    assert result.embedder.total_bytes == 274_302_450 + 512 * MIB


def test_12_gib_trades_slots_down_to_4_then_context():
    result = plan(shape("qwen3_4b"), shape("nomic-embed-text"), Gpu.given(12))

    budget = (12 - 6 - 1) * GIB
    four_by_8192 = 2_500_000_000 + 4 * 2 * 36 * 8192 * 8 * 128 * 1.0625 + 512 * MIB
    four_by_7168 = 2_500_000_000 + 4 * 2 * 36 * 7168 * 8 * 128 * 1.0625 + 512 * MIB
    assert four_by_8192 > budget >= four_by_7168
    assert (result.llm.parallel, result.llm.num_ctx, result.llm.total_bytes) == (4, 7168, four_by_7168)
    assert result.env["OLLAMA_NUM_PARALLEL"] == result.env["AUTORAG_MAX_CONCURRENCY"] == "4"
    too_big = next(line for line in result.reasoning if line.startswith("Too big"))
    assert "8 x 8192" in too_big and "4 x 8192" in too_big and "7168" not in too_big


def test_an_f16_cache_plans_without_flash_attention_and_num_ctx_is_clipped_to_the_trained_context():
    result = plan(shape("smollm2_135m"), shape("nomic-embed-text"), Gpu.given(24), kv_type="f16", num_ctx=16384)

    assert (result.llm.parallel, result.llm.num_ctx) == (8, 8192)
    assert result.llm.kv_bytes == 8 * 2 * 30 * 8192 * 3 * 64 * 2
    assert "OLLAMA_FLASH_ATTENTION" not in result.env
    assert any("clips num_ctx 16384" in line for line in result.reasoning)


def test_a_model_bigger_than_the_card_is_a_clear_error():
    with pytest.raises(PlanError, match=r"weights alone \(8\.94 GiB\) exceed the card's 8\.00 GiB"):
        plan(shape("gemma3_12b", weights=9_600_000_000), shape("nomic-embed-text"), Gpu.given(8))


def test_a_model_that_cannot_sit_next_to_whisper_says_what_to_change():
    # 12 GiB - 6 - 1 leaves 5 GiB; llama3.1:8b needs 4.9 GB + 2 * 32 * 4096 * 8 * 128 * 1.0625 + 512 MiB at 1 x 4096.
    with pytest.raises(PlanError) as error:
        plan(shape("llama3.1_8b"), shape("nomic-embed-text"), Gpu.given(12))
    message = str(error.value)
    assert "even with 1 slot of 4096 tokens" in message and "--whisper-gb" in message and "--kv-type q4_0" in message


# --- the card -------------------------------------------------------------------------------


def test_nvidia_smi_output_is_read_in_mib():
    gpu = parse_nvidia_smi("24564, 1043, 23521\n24564, 0, 24564\n")
    assert (gpu.total_bytes, gpu.used_bytes, gpu.free_bytes) == (24564 * MIB, 1043 * MIB, 23521 * MIB)
    assert gpu.source == "nvidia-smi, GPU 0 of 2"
    with pytest.raises(PlanError, match="--vram-gb"):
        parse_nvidia_smi("[N/A], [N/A], [N/A]\n")


# --- against the local Ollama-compatible server ---------------------------------------------


@pytest.fixture
def qwen_server(start_server):
    """Serves the recorded qwen3:8b with 8 slots of a q8_0 cache, as the plan for 24 GiB asks."""

    def start(**overrides):
        return start_server(
            catalogue=DEFAULT_CATALOGUE.with_specs(served("qwen3_8b")),
            pulled=["qwen3:8b", EMBED],
            kv_cache_type="q8_0",
            **{"num_parallel": 8, **overrides},
        )

    return start


def test_the_measured_load_matches_the_plan_within_the_tolerance(qwen_server):
    server = qwen_server()
    with make_client(server.url, llm_model="qwen3:8b") as client:
        llm, embedder = read_models(client, ["qwen3:8b", EMBED])
        result = plan(llm, embedder, Gpu.given(24))
        measured = measure(client, result, llm)
        assert client.ps() == []  # evicted again

    kv = 8 * 2 * 36 * 8192 * 8 * 128 * 1.0625
    assert (result.llm.parallel, result.llm.num_ctx) == (8, 8192)
    assert measured.size_bytes == measured.size_vram_bytes == 5_200_000_000 + kv
    # The local server allocates weights + KV exactly as planned; the plan adds the overhead allowance.
    assert measured.off_bytes == -result.llm.overhead_bytes == -round(0.10 * (5_200_000_000 + kv))
    assert abs(measured.off_percent) <= TOLERANCE_PERCENT
    assert f"({abs(measured.off_percent):.1f}%) below the plan" in measured.summary
    assert "more than" not in measured.summary and "partial offload" not in measured.summary


def test_a_server_with_other_settings_or_too_little_vram_is_reported_as_off(qwen_server):
    server = qwen_server(num_parallel=2, vram_bytes=6 * GIB)
    with make_client(server.url, llm_model="qwen3:8b") as client:
        llm, embedder = read_models(client, ["qwen3:8b", EMBED])
        measured = measure(client, plan(llm, embedder, Gpu.given(24)), llm)

    assert measured.size_bytes == 5_200_000_000 + 2 * 2 * 36 * 8192 * 8 * 128 * 1.0625
    assert measured.size_vram_bytes == 6 * GIB
    assert measured.off_percent < -TOLERANCE_PERCENT
    assert "OLLAMA_NUM_PARALLEL=8" in measured.summary and "partial offload" in measured.summary


# --- the command ----------------------------------------------------------------------------


@pytest.fixture
def autorag(monkeypatch, tmp_path):
    """Run the CLI against a given server with the given models (no stray .env)."""
    monkeypatch.chdir(tmp_path)

    def run(url: str, *args: str, llm: str = "qwen3:8b"):
        monkeypatch.setenv("AUTORAG_OLLAMA_BASE_URL", url)
        monkeypatch.setenv("AUTORAG_LLM_MODEL", llm)
        monkeypatch.setenv("AUTORAG_EMBED_MODEL", EMBED)
        get_settings.cache_clear()
        return CliRunner().invoke(app, ["tune", *args])

    yield run
    get_settings.cache_clear()


def test_tune_prints_the_table_the_reasons_and_the_env_lines(qwen_server, autorag):
    result = autorag(qwen_server().url, "--vram-gb", "24")

    assert result.exit_code == 0, result.output
    assert "VRAM plan" in result.output and "KV cache" in result.output
    assert "8 slots x 8192 tokens" in result.output
    for line in (
        "OLLAMA_NUM_PARALLEL=8",
        "OLLAMA_KV_CACHE_TYPE=q8_0",
        "AUTORAG_NUM_CTX=8192",
        "AUTORAG_MAX_CONCURRENCY=8",
    ):
        assert f"\n{line}\n" in result.output


def test_tune_json_with_a_measured_load(qwen_server, autorag):
    result = autorag(qwen_server().url, "--vram-gb", "24", "--json", "--measure")

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["gpu"] == {"total_bytes": 24 * GIB, "used_bytes": None, "free_bytes": None, "source": "--vram-gb"}
    assert (report["llm"]["parallel"], report["llm"]["num_ctx"], report["llm"]["kv_type"]) == (8, 8192, "q8_0")
    assert report["env"]["OLLAMA_NUM_PARALLEL"] == "8"
    assert report["measured"]["off_bytes"] == -report["llm"]["overhead_bytes"]
    assert report["measured"]["load_seconds"] >= 0 and "below the plan" in report["measured"]["summary"]


def test_tune_asks_for_the_card_size_where_there_is_no_nvidia_smi(qwen_server, autorag, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    result = autorag(qwen_server().url)

    assert result.exit_code == 2
    assert "nvidia-smi is not installed here" in result.output and "--vram-gb 24" in result.output


def test_tune_explains_a_model_too_big_for_the_card_and_a_missing_model(qwen_server, autorag):
    server = qwen_server()
    too_big = autorag(server.url, "--vram-gb", "4")
    assert too_big.exit_code == 1
    assert "exceed the card's 4.00 GiB" in too_big.output and "Traceback" not in too_big.output

    missing = autorag(server.url, "--vram-gb", "24", llm="llama3.1:8b")
    assert missing.exit_code == 1
    assert "Not pulled" in missing.output and "autorag pull llama3.1:8b" in missing.output
