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
    assert set(services) == {"ollama", "postgres", *DAGSTER_SERVICES}
    assert services["ollama"]["healthcheck"]["test"] == ["CMD", "ollama", "list"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    for name, service in services.items():
        assert service["healthcheck"]["test"], name
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services
            assert condition == {"condition": "service_healthy"}, (name, dependency)
    assert set(services["code"]["depends_on"]) == {"postgres", "ollama"}
    assert set(services["webserver"]["depends_on"]) == {"postgres", "code"}
    assert set(services["daemon"]["depends_on"]) == {"postgres", "code"}


def test_all_services_share_the_named_network(compose):
    assert compose["networks"]["autorag-net"]["name"] == "autorag-net"
    for name, service in compose["services"].items():
        assert service["networks"] == ["autorag-net"], name


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
        assert interpolation(env[key]) == (key, ""), key
    assert compose["services"]["code"]["environment"] == env == compose["services"]["webserver"]["environment"]


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
