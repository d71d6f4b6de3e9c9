"""The instance folder of ``make dev`` (and of the embedded runner): its dagster.yaml limits the ``gpu``
pool to one step at a time, whether the file is new or was written before."""

from __future__ import annotations

import os
import subprocess
import sys

import yaml
from dagster import DagsterInstance
from dagster._core.instance.config import PoolGranularity

from autorag_dagster.runner import GPU_POOL, INSTANCE_YAML, dagster_home, prepare_dagster_home
from tests.support.dagster_dev import REPO_ROOT


def pool_settings(home) -> tuple:
    with DagsterInstance.from_config(str(home)) as instance:
        pools = instance.get_concurrency_config().pool_config
        return pools.default_pool_limit, pools.pool_granularity, instance.run_monitoring_settings


def test_a_new_folder_gets_the_commented_file_and_dagster_reads_a_limit_of_one(tmp_path):
    home = prepare_dagster_home(tmp_path / "new" / "dagster")
    assert (home / "dagster.yaml").read_text() == INSTANCE_YAML
    limit, granularity, monitoring = pool_settings(home)
    assert (limit, granularity) == (1, PoolGranularity.OP)
    assert monitoring["enabled"] and monitoring["free_slots_after_run_end_seconds"] > 0
    assert f"pool `{GPU_POOL}`" in INSTANCE_YAML


def test_an_older_file_is_brought_up_to_date_keeping_other_settings(tmp_path):
    config = tmp_path / "dagster.yaml"
    config.write_text(
        "telemetry:\n  enabled: true\nnux:\n  enabled: false\n"
        "concurrency:\n  default_op_concurrency_limit: 4\n  runs:\n    max_concurrent_runs: 2\n"
        "run_monitoring:\n  enabled: false\n"
    )
    prepare_dagster_home(tmp_path)
    written = yaml.safe_load(config.read_text())
    assert written["telemetry"] == {"enabled": True}  # the user's choice
    assert written["nux"] == {"enabled": False}
    assert written["run_monitoring"] == {"enabled": False, "free_slots_after_run_end_seconds": 30}
    assert written["concurrency"] == {
        "runs": {"max_concurrent_runs": 2},
        "pools": {"default_limit": 1, "granularity": "op"},  # restored; the deprecated setting dropped
    }
    assert pool_settings(tmp_path)[:2] == (1, PoolGranularity.OP)
    before = config.stat().st_mtime_ns
    prepare_dagster_home(tmp_path)  # up to date: left alone
    assert config.stat().st_mtime_ns == before


def test_the_embedded_runner_prepares_the_same_file(tmp_path):
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")  # what it wrote before
    with dagster_home(tmp_path) as home:
        assert os.environ["DAGSTER_HOME"] == str(home)
    assert pool_settings(tmp_path)[:2] == (1, PoolGranularity.OP)


def test_make_dev_prepares_the_folder_with_the_module_entry(tmp_path):
    home = tmp_path / "data" / "dagster"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "autorag_dagster.runner", str(home)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    assert str(home / "dagster.yaml") in done.stdout
    assert (home / "dagster.yaml").read_text() == INSTANCE_YAML
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "$(VENV)/python -m autorag_dagster.runner $(DAGSTER_HOME)" in makefile
