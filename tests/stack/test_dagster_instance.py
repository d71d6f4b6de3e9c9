"""docker/dagster.yaml and the workspace files, checked by Dagster's own config schemas."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance
from dagster._config import process_config
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config
from dagster._core.instance.ref import InstanceRef
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.workspace.config_schema import process_workspace_config
from dagster_docker import DockerRunLauncher
from dagster_postgres import DagsterPostgresStorage

import docker

ROOT = Path(__file__).resolve().parents[2]
INSTANCE_YAML = ROOT / "docker" / "dagster.yaml"
POSTGRES_ENV = {
    "DAGSTER_POSTGRES_HOST": "postgres",
    "DAGSTER_POSTGRES_USER": "dagster",
    "DAGSTER_POSTGRES_PASSWORD": "secret",
    "DAGSTER_POSTGRES_DB": "dagster",
}


@pytest.fixture
def instance_config() -> dict:
    return yaml.safe_load(INSTANCE_YAML.read_text())


@pytest.fixture
def dagster_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(INSTANCE_YAML, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    for key, value in POSTGRES_ENV.items():
        monkeypatch.setenv(key, value)
    return home


def write_instance(home: Path, config: dict) -> None:
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))


def test_instance_yaml_passes_dagsters_schema_with_postgres_storage(dagster_home):
    config, _ = dagster_instance_config(str(dagster_home))
    postgres = config["storage"]["postgres"]["postgres_db"]
    assert postgres["hostname"] == {"env": "DAGSTER_POSTGRES_HOST"}

    ref = InstanceRef.from_dir(str(dagster_home))
    assert ref.storage_data.module_name == "dagster_postgres"
    resolved = process_config(DagsterPostgresStorage.config_type(), yaml.safe_load(ref.storage_data.config_yaml))
    assert resolved.success, resolved.errors
    assert resolved.value["postgres_db"]["password"] == "secret"
    assert isinstance(ref.run_coordinator, QueuedRunCoordinator)
    assert ref.settings["run_monitoring"]["enabled"] is True
    assert ref.settings["run_monitoring"]["free_slots_after_run_end_seconds"] > 0


def test_run_launcher_gives_run_containers_the_network_gpu_volumes_and_settings(dagster_home):
    launcher = InstanceRef.from_dir(str(dagster_home)).run_launcher
    assert isinstance(launcher, DockerRunLauncher)
    assert launcher.networks == ["autorag-net"]

    kwargs = launcher.container_kwargs
    host_config = docker.types.HostConfig(
        version="1.45", binds=kwargs["volumes"], device_requests=kwargs["device_requests"]
    )
    (gpu,) = host_config["DeviceRequests"]
    assert (gpu["Driver"], gpu["Count"], gpu["Capabilities"]) == ("nvidia", -1, [["gpu"]])

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    volumes = compose["volumes"]
    assert host_config["Binds"] == [
        f"{volumes['audio']['name']}:/audio:ro",
        f"{volumes['data']['name']}:/data",
        f"{volumes['models']['name']}:/models",
    ]
    daemon_env = compose["services"]["daemon"]["environment"]
    assert set(launcher.env_vars) == set(daemon_env) - {"DAGSTER_CURRENT_IMAGE"}


def test_gpu_pool_limit_and_run_monitoring_in_a_live_instance(dagster_home, instance_config):
    """Our instance with only storage and folders local: the pool `gpu` gets one slot."""
    data = dagster_home.parent
    instance_config["storage"] = {"sqlite": {"base_dir": str(data / "storage")}}
    instance_config["local_artifact_storage"]["config"]["base_dir"] = str(data / "artifacts")
    instance_config["compute_logs"]["config"]["base_dir"] = str(data / "logs")
    write_instance(dagster_home, instance_config)

    # The command stack.sh runs in the daemon container.
    dagster = Path(sys.executable).with_name("dagster")
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    subprocess.run([dagster, "instance", "concurrency", "set", "gpu", "1"], env=env, check=True, capture_output=True)

    with DagsterInstance.get() as instance:
        assert isinstance(instance.run_launcher, DockerRunLauncher)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert instance.run_monitoring_enabled
        pools = instance.get_concurrency_config().pool_config
        assert pools.default_pool_limit == 1
        assert pools.pool_granularity.value == "op"
        assert instance.event_log_storage.get_concurrency_info("gpu").slot_count == 1


@pytest.mark.parametrize(
    ("section", "broken"),
    [
        ("run_monitoring", {"enabled": "sometimes"}),
        ("concurrency", {"pools": {"gpu": 1}}),
        ("storage", {"postgres": {"postgres_db": {"hostname": "postgres"}}}),
    ],
)
def test_a_broken_instance_yaml_is_rejected(dagster_home, instance_config, section, broken):
    instance_config[section] = broken
    write_instance(dagster_home, instance_config)
    with pytest.raises(DagsterInvalidConfigError):
        dagster_instance_config(str(dagster_home))


def test_a_broken_run_launcher_config_is_rejected(dagster_home, instance_config):
    instance_config["run_launcher"]["config"]["env_vars"] = "AUTORAG_LLM_MODEL"
    write_instance(dagster_home, instance_config)
    with pytest.raises(DagsterInvalidConfigError):
        InstanceRef.from_dir(str(dagster_home)).run_launcher  # noqa: B018 - reading it is what must fail


def test_workspaces_local_module_and_compose_grpc_server():
    local = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    stack = yaml.safe_load((ROOT / "docker" / "workspace.yaml").read_text())
    for workspace in (local, stack):
        assert process_workspace_config(workspace).success
    (local_location,) = local["load_from"]
    (stack_location,) = stack["load_from"]
    assert local_location["python_module"]["module_name"] == "autorag_dagster.definitions"
    assert stack_location["grpc_server"] == {
        "host": "code",
        "port": 4000,
        "location_name": local_location["python_module"]["location_name"],
    }


def test_image_installs_the_instance_and_workspace_where_the_services_look():
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    home = re.search(r"DAGSTER_HOME=(\S+)", dockerfile)[1]
    assert re.search(r"COPY docker/dagster.yaml docker/workspace.yaml \$\{DAGSTER_HOME\}/", dockerfile)
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name in ("webserver", "daemon"):
        assert f"-w {home}/workspace.yaml" in services[name]["command"], name
    code = services["code"]["command"].split()
    assert code[:3] == ["dagster", "code-server", "start"]
    assert code[code.index("-p") + 1] == "4000"
    assert code[code.index("-m") + 1] == "autorag_dagster.definitions"
    assert "ffmpeg" in dockerfile
