"""deploy/k8s: the Kubernetes manifests against the Kubernetes JSON schemas, the Helm values through
Dagster's own instance and run launcher schemas, and the run pod that dagster-k8s really builds
from them, checked for the single-box GPU protocol (one run holds one GPU, on the node of the
Ollama it talks to)."""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path

import jsonschema
import kubernetes
import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml
from dagster import DagsterInstance
from dagster._config import process_config
from dagster._core.code_pointer import ModuleCodePointer
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config
from dagster._core.launcher import LaunchRunContext
from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
from dagster._core.test_utils import create_run_for_test, instance_for_test
from dagster_k8s import K8sRunLauncher
from dagster_shared.check import CheckError
from referencing import Registry, Resource

from tests.deploy import chart

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
VALUES = K8S / "values.yaml"
# The oldest Kubernetes the manifests rely on (internalTrafficPolicy, batch/v1 ttlSecondsAfterFinished
# are older) and a current one.
KUBERNETES_VERSIONS = ("1.30.0", "1.34.0")
# Settings that come from a secret, not the ConfigMap (docs/scale-out.md creates it).
SECRET_SETTINGS = {"HF_TOKEN"}
# docker/dagster.yaml passes these to run containers; on Kubernetes the chart writes Postgres into
# the instance itself (values.yaml, postgresql) and mounts its password secret in every run pod.
POSTGRES_SETTINGS = {
    "DAGSTER_POSTGRES_HOST",
    "DAGSTER_POSTGRES_USER",
    "DAGSTER_POSTGRES_PASSWORD",
    "DAGSTER_POSTGRES_DB",
}
OLLAMA_LABELS = {"app.kubernetes.io/name": "ollama"}


def manifests() -> list[dict]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path != VALUES:
            docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def manifest(kind: str, name: str) -> dict:
    (found,) = [doc for doc in manifests() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    return found


@pytest.fixture
def values() -> dict:
    return yaml.safe_load(VALUES.read_text())


@pytest.fixture
def kubeconfig(tmp_path, monkeypatch) -> Path:
    """A kubeconfig for a cluster that is never called: the launcher only loads it."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
                "users": [{"name": "u", "user": {"token": "unused"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    return path


class RecordingBatchApi:
    """Stands in for the Kubernetes API server (there is none here): keeps the Jobs it is sent."""

    def __init__(self):
        self.jobs: list = []

    def create_namespaced_job(self, body, namespace, **_):
        self.jobs.append((namespace, body))


def run_job(values: dict, kubeconfig: Path) -> dict:
    """The Kubernetes Job that dagster-k8s's K8sRunLauncher, configured as the chart configures it
    from ``values``, submits for a run of ``process_audio``, as a plain manifest."""
    config = chart.run_launcher(values)["config"]
    resolved = process_config(K8sRunLauncher.config_type(), config)
    if not resolved.success:
        raise DagsterInvalidConfigError("run launcher config", resolved.errors, config)
    # Outside a cluster: the kubeconfig above instead of the in-cluster service account.
    settings = {**resolved.value, "load_incluster_config": False, "kubeconfig_file": str(kubeconfig)}
    batch = RecordingBatchApi()
    launcher = K8sRunLauncher(**settings, k8s_client_batch_api=batch)
    origin = JobPythonOrigin(
        "process_audio",
        RepositoryPythonOrigin(
            executable_path=sys.executable,
            code_pointer=ModuleCodePointer("autorag_dagster.definitions", "defs", working_directory=None),
            container_image="autorag-dagster:latest",
        ),
    )
    with instance_for_test() as instance:
        launcher.register_instance(instance)
        run = create_run_for_test(instance, job_name="process_audio", job_code_origin=origin)
        launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
    ((namespace, job),) = batch.jobs
    assert namespace == chart.NAMESPACE
    return kubernetes.client.ApiClient().sanitize_for_serialization(job)


def gpu_protocol_problems(job: dict) -> list[str]:
    """What keeps a run pod from holding one whole GPU on the node of its own Ollama, alone."""
    problems = []
    pod = job["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    limits = container.get("resources", {}).get("limits", {})
    if limits.get("nvidia.com/gpu") != "1":
        problems.append(f"the run container's GPU limit is {limits.get('nvidia.com/gpu')!r}, not '1'")
    affinity = pod["spec"].get("affinity", {})
    near = affinity.get("podAffinity", {}).get("requiredDuringSchedulingIgnoredDuringExecution", [])
    if not any(
        term["topologyKey"] == "kubernetes.io/hostname"
        and term["labelSelector"]["matchLabels"].items() <= ollama_pod_labels().items()
        for term in near
    ):
        problems.append("no required pod affinity to the Ollama pod of the same node")
    apart = affinity.get("podAntiAffinity", {}).get("requiredDuringSchedulingIgnoredDuringExecution", [])
    if not any(
        term["topologyKey"] == "kubernetes.io/hostname"
        and term["labelSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        for term in apart
    ):
        problems.append("no required pod anti-affinity that matches the run pod's own labels")
    ollama = manifest("DaemonSet", "ollama")["spec"]["template"]["spec"]
    if pod["spec"].get("nodeSelector") != ollama["nodeSelector"]:
        problems.append("the run pod's nodeSelector is not the Ollama DaemonSet's")
    return problems


def kubernetes_type(definition: str, version: str = KUBERNETES_VERSIONS[-1]) -> jsonschema.Validator:
    """A validator for one Kubernetes definition (``io.k8s.api.core.v1.Volume``, ...), as the chart's
    values schema refers to them, from the strict schemas kubernetes-validate ships."""
    folder = f"kubernetes-json-schema/v{version}-local-strict"
    definitions = kubernetes_validate.utils.schema_contents(f"{folder}/_definitions.json", version)
    registry = Resource.from_contents(definitions) @ Registry()
    return jsonschema.Draft202012Validator({"$ref": f"{definitions['$id']}#/$defs/{definition}"}, registry=registry)


def check_chart_values(values: dict) -> None:
    """The code location and the webserver: the keys the chart knows, and every Kubernetes-typed list
    item valid as its Kubernetes definition."""
    sections = [*chart.user_deployments(values), values["dagsterWebserver"]]
    for section in sections:
        for key, definition in chart.KUBERNETES_TYPED.items():
            for item in section.get(key, []):
                kubernetes_type(definition).validate(item)


def ollama_pod_labels() -> dict:
    return manifest("DaemonSet", "ollama")["spec"]["template"]["metadata"]["labels"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_pass_the_kubernetes_schemas(version):
    docs = manifests()
    assert {doc["kind"] for doc in docs} >= {"ConfigMap", "PersistentVolumeClaim", "DaemonSet", "Service", "Job"}
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda ds: ds["spec"]["template"]["spec"]["containers"][0].update(resource={}),  # a wrong field name
        lambda ds: ds["spec"].pop("selector"),  # a required field missing
        lambda ds: ds["spec"]["template"]["spec"]["containers"][0]["ports"][0].update(containerPort="11434"),
    ],
)
def test_a_broken_manifest_is_rejected(mutate):
    daemonset = copy.deepcopy(manifest("DaemonSet", "ollama"))
    mutate(daemonset)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(daemonset, KUBERNETES_VERSIONS[-1], strict=True)


def test_values_render_an_instance_that_dagsters_schema_accepts(values, tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(chart.instance(values)))
    config, _ = dagster_instance_config(str(home))
    assert config["run_launcher"]["class"] == "K8sRunLauncher"
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["run_monitoring"]["enabled"] is True
    assert config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0
    # The pool `gpu` (every pool's default) has one slot per GPU node, and as many runs may be in
    # flight as there are GPU nodes: a GPU step waits for a free GPU node.
    pools, runs = config["concurrency"]["pools"], config["concurrency"]["runs"]
    assert pools["granularity"] == "op"
    assert pools["default_limit"] == runs["max_concurrent_runs"] >= 1

    # The live instance reads the same limits.
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    local = chart.instance(values)
    for key in ("run_storage", "event_log_storage", "schedule_storage", "run_launcher", "compute_logs"):
        local.pop(key)
    local["storage"] = {"sqlite": {"base_dir": str(tmp_path / "storage")}}
    (home / "dagster.yaml").write_text(yaml.safe_dump(local))
    with DagsterInstance.get() as instance:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == pools["default_limit"]
        assert instance.run_monitoring_enabled


@pytest.mark.parametrize(
    ("path", "broken"),
    [
        (("concurrency", "pools"), {"defaultLimit": "four"}),
        (("dagsterDaemon", "runMonitoring"), {"enabled": True, "startTimeoutSeconds": "soon"}),
    ],
)
def test_a_broken_instance_value_is_rejected(values, tmp_path, path, broken):
    section = values
    for key in path[:-1]:
        section = section[key]
    section[path[-1]] = {**section[path[-1]], **broken}
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(chart.instance(values)))
    with pytest.raises((DagsterInvalidConfigError, CheckError)):
        dagster_instance_config(str(home))


def test_the_code_location_and_webserver_values_pass_the_charts_types(values):
    check_chart_values(values)
    (deployment,) = chart.user_deployments(values)
    assert deployment["codeServerArgs"] == ["-m", "autorag_dagster.definitions"]


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (
            lambda d: d["volumes"][0].update(persistentVolumeClaim={"claim": "autorag-audio"}),
            jsonschema.ValidationError,
        ),
        (lambda d: d["volumeMounts"][0].update(mountPath=None, readOnly="yes"), jsonschema.ValidationError),
        (lambda d: d.update(envConfigMap=d.pop("envConfigMaps")), chart.UnknownValue),
        (lambda d: d.pop("port"), chart.UnknownValue),
    ],
)
def test_broken_code_location_values_are_rejected(values, mutate, error):
    mutate(values["dagster-user-deployments"]["deployments"][0])
    with pytest.raises(error):
        check_chart_values(values)


@pytest.mark.parametrize(
    ("mutate", "wrong"),
    [
        (lambda v: v["runLauncher"]["config"]["k8sRunLauncher"].update(envConfigMap=[]), "envConfigMap"),
        (lambda v: v.update(dagsterWebServer=v.pop("dagsterWebserver")), "dagsterWebServer"),
        (lambda v: v["concurrency"]["pools"].update(limit=4), "limit"),
    ],
)
def test_a_values_key_the_chart_does_not_read_is_rejected(values, mutate, wrong):
    mutate(values)
    with pytest.raises(chart.UnknownValue, match=wrong):
        chart.instance(values)


def test_the_run_pod_holds_one_gpu_next_to_its_nodes_ollama(values, kubeconfig):
    job = run_job(values, kubeconfig)
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(job, version, strict=True)
    assert gpu_protocol_problems(job) == []
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "autorag-dagster:latest"
    sources = {ref.get("configMapRef", ref.get("secretRef"))["name"] for ref in container["envFrom"]}
    assert sources >= {"autorag-settings", "autorag-secrets"}
    mounts = {mount["mountPath"]: mount.get("readOnly", False) for mount in container["volumeMounts"]}
    assert mounts.items() >= {"/audio": True, "/data": False, "/models": False}.items()
    assert {
        volume["persistentVolumeClaim"]["claimName"] for volume in pod["volumes"] if "persistentVolumeClaim" in volume
    } == {claim["metadata"]["name"] for claim in manifests() if claim["kind"] == "PersistentVolumeClaim"}
    assert job["spec"]["backoffLimit"] == 0


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda rk: rk["containerConfig"]["resources"]["limits"].pop("nvidia.com/gpu"), "GPU limit"),
        (lambda rk: rk["podSpecConfig"]["affinity"].pop("podAffinity"), "Ollama pod of the same node"),
        (
            lambda rk: rk["podSpecConfig"]["affinity"]["podAntiAffinity"][
                "requiredDuringSchedulingIgnoredDuringExecution"
            ][0]["labelSelector"]["matchLabels"].update({"app.kubernetes.io/component": "run-worker"}),
            "anti-affinity",
        ),
    ],
)
def test_a_run_pod_that_breaks_the_gpu_protocol_is_caught(values, kubeconfig, mutate, problem):
    mutate(values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"])
    problems = gpu_protocol_problems(run_job(values, kubeconfig))
    assert any(problem in line for line in problems), problems


def test_a_wrong_field_in_the_run_container_config_is_rejected(values, kubeconfig):
    container = values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["containerConfig"]
    container["resource"] = container.pop("resources")
    with pytest.raises(Exception, match=r"Unexpected keys in model class V1Container: \{'resource'\}"):
        run_job(values, kubeconfig)


def test_every_setting_of_the_docker_run_containers_reaches_the_run_pods():
    docker_launcher = yaml.safe_load((ROOT / "docker" / "dagster.yaml").read_text())["run_launcher"]["config"]
    settings = manifest("ConfigMap", "autorag-settings")["data"]
    assert set(docker_launcher["env_vars"]) - POSTGRES_SETTINGS == set(settings) | SECRET_SETTINGS
    assert not set(settings) & SECRET_SETTINGS
    # The Docker stack's GPU defaults and fixed paths.
    compose_env = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["x-dagster-env"]
    for name in ("AUTORAG_AUDIO_DIR", "AUTORAG_DATA_DIR", "HF_HOME"):
        assert settings[name] == compose_env[name]
    for name in ("AUTORAG_WHISPER_MODEL", "AUTORAG_DIARIZER"):
        assert settings[name] == re.fullmatch(r"\$\{\w+:-(.*)\}", compose_env[name])[1]
    assert settings["AUTORAG_LANCEDB_URI"].startswith("s3://")


def test_the_postgres_settings_come_with_the_instance(values):
    postgres = values["postgresql"]
    assert postgres["postgresqlHost"] and postgres["postgresqlUsername"] and postgres["postgresqlDatabase"]
    assert values["generatePostgresqlPasswordSecret"] is False  # no password in this repository
    assert chart.run_launcher(values)["config"]["postgres_password_secret"] == chart.POSTGRES_SECRET


def test_runs_take_their_settings_from_the_run_launcher_only(values):
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": False}
    # The code server asks any node's Ollama; the run pods their own node's.
    overrides = {env["name"]: env["value"] for env in deployment["env"]}
    assert overrides["AUTORAG_OLLAMA_BASE_URL"] == "http://ollama:11434"
    settings = manifest("ConfigMap", "autorag-settings")["data"]
    assert settings["AUTORAG_OLLAMA_BASE_URL"] == "http://ollama-node:11434"
    node_local = manifest("Service", "ollama-node")
    assert node_local["spec"]["internalTrafficPolicy"] == "Local"
    for name in ("ollama", "ollama-node"):
        assert manifest("Service", name)["spec"]["selector"].items() <= ollama_pod_labels().items()


def test_ollama_runs_with_the_docker_stacks_tuning_and_pulls_the_configured_models():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    tuned = {
        name: re.fullmatch(r"\$\{\w+:-(.*)\}", value)[1]
        for name, value in compose["services"]["ollama"]["environment"].items()
    }
    (container,) = manifest("DaemonSet", "ollama")["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item for item in container["env"]}
    assert {name: env[name]["value"] for name in tuned} == tuned
    for name in ("AUTORAG_LLM_MODEL", "AUTORAG_EMBED_MODEL"):
        assert env[name]["valueFrom"]["configMapKeyRef"] == {"name": "autorag-settings", "key": name}
        assert manifest("ConfigMap", "autorag-settings")["data"][name]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_time_slicing_gives_each_gpu_to_exactly_ollama_and_one_run(values):
    sliced = yaml.safe_load(manifest("ConfigMap", "autorag-time-slicing")["data"]["any"])
    ((resource),) = sliced["sharing"]["timeSlicing"]["resources"]
    run_gpus = int(
        values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["containerConfig"]["resources"]["limits"][
            "nvidia.com/gpu"
        ]
    )
    (ollama,) = manifest("DaemonSet", "ollama")["spec"]["template"]["spec"]["containers"]
    assert resource == {
        "name": "nvidia.com/gpu",
        "replicas": run_gpus + int(ollama["resources"]["limits"]["nvidia.com/gpu"]),
    }


def test_the_guide_installs_every_file_with_the_projects_chart_version():
    import dagster

    guide = (ROOT / "docs" / "scale-out.md").read_text()
    (block,) = re.findall(r"## Installing\n.*?```bash\n(.*?)```", guide, re.DOTALL)
    applied = set(re.findall(r"-f deploy/k8s/([\w.-]+\.yaml)", block))
    assert applied == {path.name for path in K8S.glob("*.yaml")}
    for text in (block, VALUES.read_text()):
        (version,) = set(re.findall(r"helm upgrade --install .*--version (\S+)", text))
        assert version == dagster.__version__
    secret = re.search(r"create secret generic autorag-secrets (.*)", block)[1]
    assert set(re.findall(r"--from-literal=(\w+)=", secret)) == SECRET_SETTINGS
    postgres = re.search(rf"create secret generic {chart.POSTGRES_SECRET} (.*)", block)[1]
    assert "--from-literal=postgresql-password=" in postgres
    for path in K8S.glob("*.yaml"):
        assert f"`{path.name}`" in guide, f"docs/scale-out.md does not describe {path.name}"
