"""The Dagster UI as a user meets it: ``dagster dev`` answering GraphQL and rendering in Chromium."""

from __future__ import annotations

import pytest
from PIL import Image
from playwright.sync_api import sync_playwright

from tests.support.browser import CHROMIUM, CHROMIUM_FLAGS
from tests.support.dagster_dev import DagsterDev, wait_for

ASSET_PARENTS = {
    "audio": set(),
    "transcript": {"audio"},
    "diarization": {"audio"},
    "speaker_transcript": {"transcript", "diarization", "voices", "speaker_names"},
    "topic_tree": {"speaker_transcript"},
    "embeddings": {"audio", "speaker_transcript", "topic_tree"},
    "viz": {"audio", "speaker_transcript", "topic_tree"},
    "lancedb_index": {"embeddings"},
    "voices": {"diarization"},
    "speaker_names": set(),
}
ASSET_CHECKS = {
    "audio": {"audio_is_decoded"},
    "transcript": {"transcript_words_valid"},
    "diarization": {"diarization_turns_valid"},
    "speaker_transcript": {"speaker_words_attributed"},
    "topic_tree": {"topic_tree_tiles", "topic_tree_quality"},
    "embeddings": {"embeddings_rows_valid"},
    "viz": {"viz_page_complete"},
}
PAGE_TIMEOUT_MS = 90_000

REPOSITORY_QUERY = """
query Repository($selector: RepositorySelector!) {
  repositoryOrError(repositorySelector: $selector) {
    __typename
    ... on Repository {
      jobs { name }
      assetNodes {
        assetKey { path }
        dependencyKeys { path }
        jobNames
        assetChecksOrError { __typename ... on AssetChecks { checks { name blocking } } }
      }
      sensors { name targets { pipelineName } sensorState { status } }
      schedules { name cronSchedule pipelineName scheduleState { status } }
    }
    ... on PythonError { message }
  }
}
"""
SENSOR_FIELDS = """
    __typename
    ... on Sensor { sensorState { id status ticks(limit: 1) { status skipReason error { message } } } }
    ... on PythonError { message }
"""
START_SENSOR = f"""
mutation Start($selector: SensorSelector!) {{ startSensor(sensorSelector: $selector) {{ {SENSOR_FIELDS} }} }}
"""
SENSOR_QUERY = f"""
query Sensor($selector: SensorSelector!) {{ sensorOrError(sensorSelector: $selector) {{ {SENSOR_FIELDS} }} }}
"""
STOP_SENSOR = """
mutation Stop($id: String!) {
  stopSensor(id: $id) {
    __typename ... on StopSensorMutationResult { instigationState { status } } ... on PythonError { message }
  }
}
"""


@pytest.fixture(scope="module")
def repository(dagster_dev: DagsterDev) -> dict:
    result = dagster_dev.graphql(REPOSITORY_QUERY, selector=dagster_dev.selector())["repositoryOrError"]
    assert result["__typename"] == "Repository", result
    return result


def by_name(items: list[dict]) -> dict[str, dict]:
    return {item["name"]: item for item in items}


def test_asset_graph_has_every_stage_with_its_dependencies(repository):
    nodes = {"/".join(n["assetKey"]["path"]): n for n in repository["assetNodes"]}
    parents = {key: {"/".join(d["path"]) for d in node["dependencyKeys"]} for key, node in nodes.items()}
    assert parents == ASSET_PARENTS
    in_job = {key for key, node in nodes.items() if "process_audio" in node["jobNames"]}
    # The index is maintenance and the voices span the library: neither is per file.
    assert in_job == ASSET_PARENTS.keys() - {"lancedb_index", "voices", "speaker_names"}


WARNINGS = {"topic_tree_quality"}


def test_asset_checks_are_attached_and_blocking(repository):
    for node in repository["assetNodes"]:
        asset = "/".join(node["assetKey"]["path"])
        checks = node["assetChecksOrError"]
        assert checks["__typename"] == "AssetChecks", checks
        found = {c["name"]: c["blocking"] for c in checks["checks"]}
        expected = ASSET_CHECKS.get(asset, set())
        assert expected <= found.keys(), f"{asset}: {found}"
        # Every check blocks what follows, except the topic_tree_quality warning.
        assert all(found[name] == (name not in WARNINGS) for name in expected), f"{asset}: {found}"


def test_job_sensors_and_schedule_are_listed_and_stopped_by_default(repository, dagster_dev):
    assert {"process_audio", "tidy_library"} <= {job["name"] for job in repository["jobs"]}
    sensors = by_name(repository["sensors"])
    for name in ("audio_folder_sensor", "ollama_models_ready", "speaker_names_sensor"):
        assert sensors[name]["sensorState"]["status"] == "STOPPED", name
    targets = sorted(t["pipelineName"] for t in sensors["audio_folder_sensor"]["targets"])
    assert targets == ["process_audio", "tidy_library"]
    assert [t["pipelineName"] for t in sensors["speaker_names_sensor"]["targets"]] == ["process_audio"]
    schedule = by_name(repository["schedules"])["nightly_backfill"]
    assert schedule["scheduleState"]["status"] == "STOPPED"
    assert schedule["pipelineName"] == "process_audio"
    assert schedule["cronSchedule"] == dagster_dev.backfill_cron  # read from AUTORAG_BACKFILL_CRON


def test_started_audio_sensor_runs_and_is_evaluated_by_the_daemon(dagster_dev):
    selector = dagster_dev.selector(sensorName="audio_folder_sensor")
    started = dagster_dev.graphql(START_SENSOR, selector=selector)["startSensor"]
    assert started["__typename"] == "Sensor", started
    assert started["sensorState"]["status"] == "RUNNING"
    try:
        # The daemon evaluates it in the code location: Ollama (the local server) is ready, the
        # temporary audio folder is empty, so the tick skips and names that folder.
        def first_tick() -> dict | None:
            dagster_dev.check_alive()
            sensor = dagster_dev.graphql(SENSOR_QUERY, selector=selector)["sensorOrError"]
            ticks = sensor["sensorState"]["ticks"]
            return ticks[0] if ticks and ticks[0]["status"] != "STARTED" else None

        tick = wait_for(first_tick, "a finished tick of audio_folder_sensor", 120)
        assert tick["status"] == "SKIPPED", tick
        assert tick["skipReason"] == f"No new or changed audio in {dagster_dev.audio_dir}"
    finally:
        stopped = dagster_dev.graphql(STOP_SENSOR, id=started["sensorState"]["id"])["stopSensor"]
    assert stopped["instigationState"]["status"] == "STOPPED", stopped


def test_asset_page_renders_in_chromium(dagster_dev, tmp_path):
    screenshot = tmp_path / "topic_tree.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(f"{dagster_dev.url}/assets/topic_tree", wait_until="domcontentloaded", timeout=PAGE_TIMEOUT_MS)
            page.get_by_text("topic_tree", exact=True).first.wait_for(timeout=PAGE_TIMEOUT_MS)
            # the lineage section is filled in last: wait for the upstream asset's link
            page.get_by_role("link", name="speaker_transcript").wait_for(timeout=PAGE_TIMEOUT_MS)
            page.screenshot(path=screenshot)
            html = page.content()
        finally:
            browser.close()
    assert ">topic_tree<" in html
    assert 'href="/assets/speaker_transcript"' in html
    with Image.open(screenshot) as image:
        image.verify()
    with Image.open(screenshot) as image:
        assert image.format == "PNG" and image.size == (1440, 900)
        low, high = image.convert("L").getextrema()
        assert high - low > 100, "the screenshot is blank"
    assert screenshot.stat().st_size > 20_000
