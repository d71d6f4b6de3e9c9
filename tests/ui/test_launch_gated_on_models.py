"""A run launched from the UI (GraphQL against ``dagster dev``) while the LLM is not pulled fails
at once, with the readiness sensor's message, before Whisper or the diarizer start."""

from __future__ import annotations

from collections.abc import Iterator

import ollama
import pytest

from autorag_dagster.defs.resources import OllamaResource
from autorag_dagster.defs.sensors import ollama_readiness_skip_reason
from autorag_dagster.localserve import LocalServer
from tests.support.dagster_dev import DagsterDev, wait_for
from tests.ui.test_run_launched_from_graphql import ADD_PARTITION, FINISHED, LAUNCH, RUN_STATUS

FILE_KEY = "gated.wav"
LLM = "gemma4:latest"
GATE_TIMEOUT_S = 300
EVENTS = """
query Events($runId: ID!) {
  logsForRun(runId: $runId, limit: 1000) {
    ... on EventConnection {
      events {
        __typename
        ... on MessageEvent { stepKey message eventType }
        ... on ErrorEvent { error { message cause { message cause { message } } } }
      }
    }
  }
}
"""


@pytest.fixture
def llm_not_pulled(ollama_server: LocalServer) -> Iterator[None]:
    """The LLM removed from the server for the test, pulled again afterwards."""
    client = ollama.Client(host=ollama_server.url, timeout=60)
    client.delete(LLM)
    try:
        yield
    finally:
        client.pull(LLM)


def error_text(event: dict) -> str:
    lines, error = [event.get("message") or ""], event.get("error")
    while error:
        lines.append(error["message"])
        error = error.get("cause")
    return "\n".join(lines)


def test_a_run_launched_from_the_ui_without_the_llm_fails_before_the_speech_steps(
    dagster_dev: DagsterDev, ollama_server: LocalServer, llm_not_pulled
):
    from tests.support.speech import TWO_SPEAKERS, synthesize

    synthesize(TWO_SPEAKERS[:2], dagster_dev.audio_dir / FILE_KEY)
    selector = dagster_dev.selector()
    added = dagster_dev.graphql(ADD_PARTITION, selector=selector, key=FILE_KEY)["addDynamicPartition"]
    assert added["__typename"] == "AddDynamicPartitionSuccess", added
    params = {
        "selector": {**selector, "pipelineName": "process_audio"},
        "mode": "default",
        "runConfigData": {},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": FILE_KEY}]},
    }
    launched = dagster_dev.graphql(LAUNCH, params=params)["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    def finished() -> str | None:
        dagster_dev.check_alive()
        status = dagster_dev.graphql(RUN_STATUS, runId=run_id)["runOrError"]["status"]
        return status if status in FINISHED else None

    assert wait_for(finished, f"the end of run {run_id}", GATE_TIMEOUT_S) == "FAILURE"
    events = dagster_dev.graphql(EVENTS, runId=run_id)["logsForRun"]["events"]
    started = {e["stepKey"] for e in events if e.get("eventType") == "STEP_START"}
    assert not started & {"transcript", "diarization", "topic_tree"}, started
    materialized = {e["stepKey"] for e in events if e.get("eventType") == "ASSET_MATERIALIZATION"}
    assert not materialized & {"transcript", "diarization"}, materialized
    sensor_says = ollama_readiness_skip_reason(OllamaResource(ollama_base_url=ollama_server.url)).skip_message
    assert LLM in sensor_says and "pull" in sensor_says
    text = "\n".join(error_text(e) for e in events)
    assert sensor_says in text, text[-3000:]
