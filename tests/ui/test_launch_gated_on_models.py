"""A run launched from the UI (GraphQL against ``dagster dev``) while the LLM is not pulled fails
at once, with the readiness sensor's message, before Whisper or the diarizer start."""

from __future__ import annotations

from collections.abc import Iterator

import ollama
import pytest

from autorag_dagster.defs.resources import OllamaResource
from autorag_dagster.defs.sensors import ollama_readiness_skip_reason
from autorag_dagster.localserve import LocalServer
from tests.support.dagster_dev import DagsterDev
from tests.ui.test_run_launched_from_graphql import launch_file_run, wait_for_run

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
    run_id = launch_file_run(dagster_dev, FILE_KEY)
    assert wait_for_run(dagster_dev, run_id, GATE_TIMEOUT_S) == "FAILURE"
    events = dagster_dev.graphql(EVENTS, runId=run_id)["logsForRun"]["events"]
    started = {e["stepKey"] for e in events if e.get("eventType") == "STEP_START"}
    assert not started & {"transcript", "diarization", "topic_tree"}, started
    materialized = {e["stepKey"] for e in events if e.get("eventType") == "ASSET_MATERIALIZATION"}
    assert not materialized & {"transcript", "diarization"}, materialized
    sensor_says = ollama_readiness_skip_reason(OllamaResource(ollama_base_url=ollama_server.url)).skip_message
    assert LLM in sensor_says and "pull" in sensor_says
    text = "\n".join(error_text(e) for e in events)
    assert sensor_says in text, text[-3000:]
