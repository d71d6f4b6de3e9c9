"""The executor of every daemon-launched run keeps a run's GPU steps from overlapping, even when the
pool `gpu` has more than one slot (one per GPU node on Kubernetes, deploy/k8s)."""

import json
import time
from pathlib import Path

from dagster import Config, execute_job, job, op, reconstructable
from dagster._core.test_utils import instance_for_test

from autorag_dagster.defs import gpu_serial_executor
from autorag_dagster.defs.assets.common import GPU_TAG
from autorag_dagster.runner import GPU_POOL


class MarkConfig(Config):
    folder: str


def _hold_the_gpu(name: str, config: MarkConfig) -> None:
    start = time.monotonic()
    time.sleep(1.0)
    Path(config.folder, f"{name}.json").write_text(json.dumps([start, time.monotonic()]))


@op(tags={GPU_TAG: "true"}, pool=GPU_POOL)
def whisper(config: MarkConfig) -> None:
    _hold_the_gpu("whisper", config)


@op(tags={GPU_TAG: "true"}, pool=GPU_POOL)
def diarizer(config: MarkConfig) -> None:
    _hold_the_gpu("diarizer", config)


@job(executor_def=gpu_serial_executor())
def two_independent_gpu_steps():
    whisper()
    diarizer()


def test_a_runs_gpu_steps_never_overlap_with_two_pool_slots(tmp_path):
    config = {"ops": {name: {"config": {"folder": str(tmp_path)}} for name in ("whisper", "diarizer")}}
    overrides = {"concurrency": {"pools": {"default_limit": 2, "granularity": "op"}}}
    with instance_for_test(overrides=overrides) as instance:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 2
        with execute_job(reconstructable(two_independent_gpu_steps), instance, run_config=config) as result:
            assert result.success
    (first, second) = sorted(json.loads((tmp_path / f"{name}.json").read_text()) for name in ("whisper", "diarizer"))
    assert first[1] <= second[0], f"the GPU steps overlapped: {first} and {second}"


def test_the_code_locations_jobs_use_it():
    from autorag_dagster.defs import build_definitions

    job_def = build_definitions().resolve_job_def("process_audio")
    assert job_def.executor_def.name == gpu_serial_executor().name
    gpu_steps = {node.name for node in job_def.graph.node_defs if node.tags.get(GPU_TAG) == "true"}
    assert gpu_steps == {"transcript", "diarization", "topic_tree", "embeddings"}
