import json

from autorag_dagster.core.topics.cache import AnswerCache

BASE = dict(
    model_digest="sha256:abc",
    options={"num_ctx": 8192, "temperature": 0.0},
    messages=[{"role": "user", "content": "hello"}],
    schema={"title": "X", "type": "object"},
)


def test_key_is_stable_and_covers_every_part():
    key = AnswerCache.key(**BASE)
    assert key == AnswerCache.key(**{**BASE, "options": {"temperature": 0.0, "num_ctx": 8192}})  # order-free
    variants = [
        {"model_digest": "sha256:abd"},
        {"options": {"num_ctx": 16384, "temperature": 0.0}},
        {"messages": [{"role": "user", "content": "hello!"}]},
        {"schema": {"title": "Y", "type": "object"}},
    ]
    keys = {AnswerCache.key(**{**BASE, **v}) for v in variants}
    assert key not in keys and len(keys) == len(variants)


def test_put_get_roundtrip_is_atomic(tmp_path):
    cache = AnswerCache(tmp_path / "llm")
    key = AnswerCache.key(**BASE)
    assert cache.get(key) is None
    cache.put(key, {"raw": '{"a": 1}', "prompt_tokens": 3})
    assert cache.get(key) == {"raw": '{"a": 1}', "prompt_tokens": 3}
    files = [p for p in (tmp_path / "llm").rglob("*") if p.is_file()]
    assert files == [cache.path(key)] and files[0].name == f"{key}.json"
    cache.put(key, {"raw": "again"})  # overwrite in place
    assert json.loads(cache.path(key).read_text()) == {"raw": "again"}


def test_corrupt_entry_is_a_miss(tmp_path):
    cache = AnswerCache(tmp_path)
    key = AnswerCache.key(**BASE)
    cache.path(key).parent.mkdir(parents=True)
    cache.path(key).write_text('{"raw": ')
    assert cache.get(key) is None
    cache.path(key).write_text("[1, 2]")
    assert cache.get(key) is None


def test_the_runner_key_covers_num_predict_prompt_version_retries_and_context(monkeypatch):
    from autorag_dagster.core.topics import prompts
    from autorag_dagster.core.topics.runner import StageRunner
    from autorag_dagster.core.topics.schemas import NodeSummary
    from autorag_dagster.gpu import GpuTenancy
    from autorag_dagster.ollama import OllamaClient

    def key(**overrides) -> str:
        options = dict(llm_model="m", embed_model="e", max_output_tokens=256, validation_retries=2, temperature=0.0)
        with OllamaClient("http://127.0.0.1:9", **{**options, **overrides}) as client:  # nothing is asked
            runner = StageRunner(client, GpuTenancy(client), None)
            runner.fingerprint = "sha256:abc"
            return runner.cache_key(BASE["messages"], NodeSummary, 8192)

    base = key()
    assert base == key()
    assert len({base, key(max_output_tokens=512), key(validation_retries=0), key(temperature=0.2)}) == 4
    monkeypatch.setattr(prompts, "PROMPT_VERSION", "another")
    assert key() != base
