"""docker-compose.yml: valid Compose, and the contract of the GPU stack."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
import yaml

from autorag_dagster.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
PORT_OVERRIDE = ROOT / "docker-compose.ollama-port.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DAGSTER_SERVICES = ("code", "webserver", "daemon")
# One-off services of the profile `tools`, run by stack.sh and never started by `up`.
TOOL_SERVICES = ("models",)
# The stack's defaults where they differ from the project's (settings.py keeps the laptop's).
GPU_DEFAULTS = {"AUTORAG_WHISPER_MODEL": "large-v3-turbo", "AUTORAG_DIARIZER": "pyannote"}
DOCKER_SOCKET = "/var/run/docker.sock"
TUNED_OLLAMA = {
    "OLLAMA_FLASH_ATTENTION": "1",
    "OLLAMA_KV_CACHE_TYPE": "q8_0",
    "OLLAMA_NUM_PARALLEL": "8",
    "OLLAMA_MAX_LOADED_MODELS": "1",
    "OLLAMA_KEEP_ALIVE": "5m",
}
# `${NAME:-default}` (Compose interpolation; `$${...}` is an escaped, container-side variable).
INTERPOLATION = re.compile(r"^\$\{(?P<name>[A-Za-z_]\w*):-(?P<default>[^{}]*)\}$")
REFERENCED = re.compile(r"(?<!\$)\$\{([A-Za-z_]\w*)")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def compose_schema() -> dict:
    vendored = files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    return json.loads(vendored.read_text())


def interpolation(value: str) -> tuple[str, str]:
    match = INTERPOLATION.match(value)
    assert match, f"{value!r} is not written as ${{VAR:-default}}"
    return match["name"], match["default"]


def documented_defaults() -> dict[str, str]:
    """The `# NAME=default` lines of .env.example."""
    lines = re.findall(r"^# ([A-Z][A-Z0-9_]*)=(.*)$", ENV_EXAMPLE.read_text(), re.MULTILINE)
    return dict(lines)


def test_compose_files_pass_the_compose_spec_schema_cli():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE),
            str(PORT_OVERRIDE),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_rejects_a_broken_gpu_reservation(compose, compose_schema):
    jsonschema.validate(compose, compose_schema)
    broken = copy.deepcopy(compose)
    broken["services"]["ollama"]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] = "gpu"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, compose_schema)


def test_ollama_carries_the_tuned_settings_as_overridable_variables(compose):
    ollama = compose["services"]["ollama"]
    assert ollama["image"].startswith("ollama/ollama")
    env = ollama["environment"]
    assert set(env) == set(TUNED_OLLAMA)
    for key, default in TUNED_OLLAMA.items():
        assert interpolation(env[key]) == (key, default)


def test_multiuser_cache_appears_only_in_comments():
    for path in (COMPOSE, ROOT / "docker" / "dagster.yaml", ENV_EXAMPLE):
        lines = [line for line in path.read_text().splitlines() if "MULTIUSER_CACHE" in line]
        assert all(line.lstrip().startswith("#") for line in lines), (path, lines)
    comment = " ".join(line for line in COMPOSE.read_text().splitlines() if "MULTIUSER_CACHE" in line)
    assert "deliberately absent" in comment


def test_gpu_is_reserved_for_ollama_and_the_code_server(compose):
    for name in ("ollama", "code"):
        devices = compose["services"][name]["deploy"]["resources"]["reservations"]["devices"]
        assert len(devices) == 1, name
        device = devices[0]
        assert device["driver"] == "nvidia"
        assert device["count"] in ("all", 1)
        assert device["capabilities"] == ["gpu"]


def test_every_service_has_a_healthcheck_and_waits_for_healthy_dependencies(compose):
    services = compose["services"]
    assert set(services) == {"ollama", "postgres", *DAGSTER_SERVICES, *TOOL_SERVICES}
    assert services["ollama"]["healthcheck"]["test"] == ["CMD", "ollama", "list"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    for name in TOOL_SERVICES:
        assert services[name]["profiles"] == ["tools"] and services[name]["restart"] == "no", name
    for name, service in services.items():
        if name in TOOL_SERVICES:
            continue
        assert service["healthcheck"]["test"], name
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services
            assert condition == {"condition": "service_healthy"}, (name, dependency)
    assert set(services["code"]["depends_on"]) == {"postgres", "ollama"}
    assert set(services["webserver"]["depends_on"]) == {"postgres", "code"}
    assert set(services["daemon"]["depends_on"]) == {"postgres", "code"}


def test_the_code_server_is_on_internal_networks_only(compose):
    """autorag-net is the network run containers and devcontainers join: the code server's
    unauthenticated gRPC API is not on it; code-grpc carries that API to the webserver and the
    daemon only, code-backend carries the code server's own calls to Postgres and Ollama."""
    networks = compose["networks"]
    assert networks["autorag-net"] == {"name": "autorag-net"}
    assert networks["code-grpc"] == {"internal": True}
    assert networks["code-backend"] == {"internal": True}
    members = {
        network: {name for name, service in compose["services"].items() if network in service["networks"]}
        for network in networks
    }
    assert members == {
        "autorag-net": {"ollama", "postgres", "webserver", "daemon", "models"},
        "code-grpc": {"code", "webserver", "daemon"},
        "code-backend": {"code", "postgres", "ollama"},
    }
    assert compose["services"]["code"]["networks"] == ["code-grpc", "code-backend"]
    assert "ports" not in compose["services"]["code"]
    stack = yaml.safe_load((ROOT / "docker" / "workspace.yaml").read_text())
    assert stack["load_from"][0]["grpc_server"]["host"] == "code"


def test_only_the_daemon_mounts_the_docker_socket_and_says_why(compose):
    def mounts_socket(service: dict) -> bool:
        return any(DOCKER_SOCKET in str(volume) for volume in service.get("volumes", []))

    assert [name for name, service in compose["services"].items() if mounts_socket(service)] == ["daemon"]
    assert DOCKER_SOCKET not in yaml.safe_dump(yaml.safe_load(PORT_OVERRIDE.read_text()))
    text = COMPOSE.read_text()
    lines = text.splitlines()
    mount = next(i for i, line in enumerate(lines) if DOCKER_SOCKET in line and not line.lstrip().startswith("#"))
    comment = " ".join(line.strip("# ") for line in lines[mount - 5 : mount])
    assert "Only the daemon mounts it" in comment and "QueuedRunCoordinator" in comment
    instance = yaml.safe_load((ROOT / "docker" / "dagster.yaml").read_text())
    assert instance["run_coordinator"]["class"] == "QueuedRunCoordinator"


def test_no_password_is_written_down_and_compose_refuses_to_start_without_one(compose):
    required = re.compile(r"^\$\{DAGSTER_POSTGRES_PASSWORD:\?[^{}]+\}$")
    passwords = {
        name: service["environment"][key]
        for name, service in compose["services"].items()
        for key in service.get("environment", {})
        if "PASSWORD" in key
    }
    assert set(passwords) == {"postgres", *DAGSTER_SERVICES, *TOOL_SERVICES}
    for name, value in passwords.items():
        assert required.match(value), (name, value)
        assert "stack.sh up generates one" in value
    # Nowhere else either: not in the instance, the override or the documented defaults.
    allowed = re.compile(r"^(|\$\{DAGSTER_POSTGRES_PASSWORD:\?[^{}]+\}|\{env: DAGSTER_POSTGRES_PASSWORD\})$")
    for path in (COMPOSE, PORT_OVERRIDE, ROOT / "docker" / "dagster.yaml", ENV_EXAMPLE):
        for value in re.findall(r"password\s*[:=][ \t]*(.*)$", path.read_text(), re.IGNORECASE | re.MULTILINE):
            assert allowed.match(value.strip()), (path.name, value)
    assert documented_defaults()["DAGSTER_POSTGRES_PASSWORD"] == ""


def test_the_stack_defaults_to_the_gpu_speech_models_and_the_laptop_keeps_the_packaged_ones(compose):
    env = compose["services"]["daemon"]["environment"]
    for key, default in GPU_DEFAULTS.items():
        assert interpolation(env[key]) == (key, default)
    assert env["HF_HOME"] == "/models/huggingface"
    settings = Settings(**{key.removeprefix(ENV_PREFIX).lower(): value for key, value in GPU_DEFAULTS.items()})
    assert (settings.whisper_model, settings.diarizer) == ("large-v3-turbo", "pyannote")
    assert settings.pyannote_pipeline == "pyannote/speaker-diarization-community-1"
    laptop = Settings.model_fields
    assert (laptop["whisper_model"].default, laptop["diarizer"].default) == ("tiny.en", "resemblyzer")


def test_the_speech_models_live_on_a_named_volume_that_the_fetch_and_the_runs_share(compose):
    assert compose["volumes"]["models"] == {"name": "autorag-models"}
    models = compose["services"]["models"]
    assert "models:/models" in models["volumes"]
    assert models["command"] == "autorag speech-models"
    assert models["environment"] == compose["services"]["daemon"]["environment"]
    instance = yaml.safe_load((ROOT / "docker" / "dagster.yaml").read_text())
    assert "autorag-models:/models" in instance["run_launcher"]["config"]["container_kwargs"]["volumes"]
    assert "HF_HOME" in instance["run_launcher"]["config"]["env_vars"]
    stack_sh = (ROOT / "scripts" / "stack.sh").read_text()
    assert "models autorag speech-models --fetch" in stack_sh


def test_only_the_webserver_is_published_and_only_on_loopback(compose):
    published = {name: s["ports"] for name, s in compose["services"].items() if "ports" in s}
    assert list(published) == ["webserver"]
    (port,) = published["webserver"]
    assert port == "127.0.0.1:${DAGSTER_UI_PORT:-3000}:3000"
    override = yaml.safe_load(PORT_OVERRIDE.read_text())
    (ollama_port,) = override["services"]["ollama"]["ports"]
    assert ollama_port.startswith("127.0.0.1:") and ollama_port.endswith(":11434")


def test_dagster_services_reach_ollama_by_name_and_mount_the_folders(compose):
    volumes = compose["volumes"]
    assert volumes["audio"]["name"] == "autorag-audio"
    assert volumes["data"]["name"] == "autorag-data"
    assert volumes["audio"]["driver_opts"]["o"] == "bind"
    assert "${AUDIO_DIR:-" in volumes["audio"]["driver_opts"]["device"]
    assert "${DATA_DIR:-" in volumes["data"]["driver_opts"]["device"]
    assert "ollama-models:/root/.ollama" in compose["services"]["ollama"]["volumes"]
    assert "ollama-models" in volumes
    for name in DAGSTER_SERVICES:
        service = compose["services"][name]
        env = service["environment"]
        assert env["AUTORAG_OLLAMA_BASE_URL"] == "http://ollama:11434", name
        assert f"audio:{env['AUTORAG_AUDIO_DIR']}:ro" in service["volumes"], name
        assert f"data:{env['AUTORAG_DATA_DIR']}" in service["volumes"], name
    assert "AUTORAG_OLLAMA_BASE_URL" not in compose["services"]["ollama"]["environment"]


def test_every_project_setting_reaches_the_dagster_containers(compose):
    """Each AUTORAG_* knob is passed through as ${VAR:-}: its default lives in settings.py."""
    env = compose["services"]["daemon"]["environment"]
    settings = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    passed = {key for key in env if key.startswith(ENV_PREFIX)}
    assert passed == settings, f"add to x-dagster-env: {settings - passed}; unknown: {passed - settings}"
    fixed = {"AUTORAG_OLLAMA_BASE_URL", "AUTORAG_AUDIO_DIR", "AUTORAG_DATA_DIR"}
    for key in passed - fixed:
        assert interpolation(env[key]) == (key, GPU_DEFAULTS.get(key, "")), key
    for name in (*DAGSTER_SERVICES, *TOOL_SERVICES):
        assert compose["services"][name]["environment"] == env, name


def test_env_example_documents_every_knob_with_its_default(compose):
    documented = documented_defaults()
    for name, field in Settings.model_fields.items():
        key = ENV_PREFIX + name.upper()
        assert key in documented, f".env.example lacks {key}"
        default = "" if field.default is None else str(field.default)
        assert documented[key] == default, key
    yaml_lines = [
        line
        for path in (COMPOSE, PORT_OVERRIDE)
        for line in path.read_text().splitlines()
        if not line.lstrip().startswith("#")
    ]
    referenced = set(REFERENCED.findall("\n".join(yaml_lines)))
    stack_sh = (ROOT / "scripts" / "stack.sh").read_text()
    referenced |= set(re.findall(r"setting ([A-Z][A-Z0-9_]*) ", stack_sh))
    assert referenced - {"PWD"} <= set(documented), referenced - {"PWD"} - set(documented)
    for key, default in TUNED_OLLAMA.items():
        assert documented[key] == default
    assert "COMPOSE_FILE" in documented
