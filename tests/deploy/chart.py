"""The part of the Dagster Helm chart's instance template (``templates/configmap-instance.yaml`` and
``templates/helpers/instance/*.tpl`` of the chart ``dagster`` at the project's dagster version)
that deploy/k8s/values.yaml sets: the run launcher, the run coordinator, run monitoring, the
concurrency pools, compute logs, Postgres storage and telemetry. It maps the chart's values onto the
instance's ``dagster.yaml`` key by key, as those templates do, so that Dagster's own config schemas
can check the result. A values key the templates do not read is an error here (a typo would
otherwise be silently ignored by the chart)."""

from __future__ import annotations

from typing import Any

RELEASE = "autorag"
NAMESPACE = "autorag"
DAGSTER_HOME = "/opt/dagster/dagster_home"  # the chart's global.dagsterHome default
POSTGRES_SECRET = "dagster-postgresql-secret"  # the chart's global.postgresqlSecretName default

# camelCase value -> instance key, for the keys the K8sRunLauncher template copies as they are.
K8S_RUN_LAUNCHER_COPIED = {
    "kubeconfigFile": "kubeconfig_file",
    "imagePullPolicy": "image_pull_policy",
    "envVars": "env_vars",
    "volumeMounts": "volume_mounts",
    "volumes": "volumes",
    "labels": "labels",
    "resources": "resources",
    "schedulerName": "scheduler_name",
    "securityContext": "security_context",
}
K8S_RUN_LAUNCHER_OTHER = {
    "loadInclusterConfig",
    "jobNamespace",
    "image",
    "envConfigMaps",
    "envSecrets",
    "failPodOnRunFailure",
    "runK8sConfig",
}
RUN_K8S_CONFIG = {
    "containerConfig": "container_config",
    "podSpecConfig": "pod_spec_config",
    "podTemplateSpecMetadata": "pod_template_spec_metadata",
    "jobSpecConfig": "job_spec_config",
    "jobMetadata": "job_metadata",
}
RUN_MONITORING = {
    "enabled": "enabled",
    "startTimeoutSeconds": "start_timeout_seconds",
    "cancelTimeoutSeconds": "cancel_timeout_seconds",
    "maxResumeRunAttempts": "max_resume_run_attempts",
    "pollIntervalSeconds": "poll_interval_seconds",
    "freeSlotsAfterRunEndSeconds": "free_slots_after_run_end_seconds",
}
POOLS = {
    "defaultLimit": "default_limit",
    "granularity": "granularity",
    "opGranularityRunBuffer": "op_granularity_run_buffer",
}
RUNS = {"maxConcurrentRuns": "max_concurrent_runs", "tagConcurrencyLimits": "tag_concurrency_limits"}


# The top-level properties of the chart's values schema (helm/dagster/values.schema.json, with
# ``concurrency`` from the chart's schema/charts/dagster/subschema/concurrency.py).
TOP_LEVEL = {
    "dagsterWebserver", "dagster-user-deployments", "postgresql", "generatePostgresqlPasswordSecret",
    "generateCeleryConfigSecret", "rabbitmq", "redis", "flower", "ingress", "imagePullSecrets",
    "computeLogManager", "scheduler", "runLauncher", "pythonLogs", "dagsterDaemon", "busybox", "migrate",
    "telemetry", "serviceAccount", "global", "retention", "additionalInstanceConfig", "concurrency",
}  # fmt: skip
# The properties of a code location (``UserDeployment``) in the chart's values schema
# (charts/dagster-user-deployments/values.schema.json).
USER_DEPLOYMENT = {
    "name", "image", "dagsterApiGrpcArgs", "codeServerArgs", "includeConfigInLaunchedRuns", "port", "env",
    "envConfigMaps", "envSecrets", "annotations", "nodeSelector", "affinity", "tolerations", "podSecurityContext",
    "securityContext", "resources", "livenessProbe", "readinessProbe", "startupProbe", "labels", "volumeMounts",
    "volumes", "schedulerName", "initContainers", "sidecarContainers",
}  # fmt: skip
# Values keys whose items the chart's schema types as these Kubernetes definitions.
KUBERNETES_TYPED = {
    "env": "io.k8s.api.core.v1.EnvVar",
    "envConfigMaps": "io.k8s.api.core.v1.ConfigMapEnvSource",
    "envSecrets": "io.k8s.api.core.v1.SecretEnvSource",
    "volumes": "io.k8s.api.core.v1.Volume",
    "volumeMounts": "io.k8s.api.core.v1.VolumeMount",
}


class UnknownValue(ValueError):
    """A values key that the chart's templates do not read."""


def _known(section: dict, known: set[str] | dict, where: str) -> None:
    unknown = set(section) - set(known)
    if unknown:
        raise UnknownValue(f"{where}: the chart reads no {sorted(unknown)}")


def user_deployments(values: dict) -> list[dict]:
    deployments = values["dagster-user-deployments"]["deployments"]
    for deployment in deployments:
        _known(deployment, USER_DEPLOYMENT, f"dagster-user-deployments.deployments[{deployment.get('name')}]")
        missing = {"name", "image", "port"} - set(deployment)
        if missing:
            raise UnknownValue(f"deployment {deployment.get('name')}: the chart requires {sorted(missing)}")
    return deployments


def image_name(image: dict) -> str:
    return f"{image['repository']}:{image['tag']}" if image.get("tag") else image["repository"]


def run_launcher(values: dict) -> dict:
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    k8s = values["runLauncher"]["config"]["k8sRunLauncher"]
    _known(k8s, set(K8S_RUN_LAUNCHER_COPIED) | K8S_RUN_LAUNCHER_OTHER, "runLauncher.config.k8sRunLauncher")
    config: dict[str, Any] = {
        "load_incluster_config": k8s["loadInclusterConfig"],
        "job_namespace": k8s.get("jobNamespace") or NAMESPACE,
        "service_account_name": f"{RELEASE}-dagster",
        "dagster_home": DAGSTER_HOME,
        "instance_config_map": f"{RELEASE}-dagster-instance",
        "postgres_password_secret": POSTGRES_SECRET,
    }
    if "image" in k8s:
        config["job_image"] = image_name(k8s["image"])
    for key, name in (("envConfigMaps", "env_config_maps"), ("envSecrets", "env_secrets")):
        if k8s.get(key):
            config[name] = [item["name"] for item in k8s[key] if "name" in item]
    for key, name in K8S_RUN_LAUNCHER_COPIED.items():
        if k8s.get(key):
            config[name] = k8s[key]
    if k8s.get("failPodOnRunFailure"):
        config["fail_pod_on_run_failure"] = True
    if k8s.get("runK8sConfig"):
        _known(k8s["runK8sConfig"], RUN_K8S_CONFIG, "runLauncher.config.k8sRunLauncher.runK8sConfig")
        config["run_k8s_config"] = {
            name: k8s["runK8sConfig"][key] for key, name in RUN_K8S_CONFIG.items() if k8s["runK8sConfig"].get(key)
        }
    return {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": config}


def concurrency(values: dict) -> dict:
    section = values.get("concurrency", {})
    _known(section, {"enabled", "pools", "runs"}, "concurrency")
    if not section.get("enabled"):
        return {}
    pools, runs = section.get("pools", {}), section.get("runs", {})
    _known(pools, POOLS, "concurrency.pools")
    _known(runs, RUNS, "concurrency.runs")
    rendered = {}
    if pools:
        rendered["pools"] = {POOLS[key]: value for key, value in pools.items() if value is not None}
    if runs:
        rendered["runs"] = {RUNS[key]: value for key, value in runs.items() if value not in (None, [])}
    return rendered


def instance(values: dict) -> dict:
    """The ``dagster.yaml`` that the chart's ConfigMap ``<release>-dagster-instance`` holds."""
    _known(values, TOP_LEVEL, "values")
    postgres = values["postgresql"]
    postgres_config = {
        "postgres_db": {
            "username": postgres["postgresqlUsername"],
            "password": {"env": "DAGSTER_PG_PASSWORD"},
            "hostname": postgres["postgresqlHost"],
            "db_name": postgres["postgresqlDatabase"],
            "port": postgres["service"]["port"],
        }
    }
    rendered: dict[str, Any] = {
        "scheduler": {"module": "dagster.core.scheduler", "class": "DagsterDaemonScheduler"},
        "schedule_storage": {
            "module": "dagster_postgres.schedule_storage",
            "class": "PostgresScheduleStorage",
            "config": postgres_config,
        },
        "run_launcher": run_launcher(values),
        "run_storage": {
            "module": "dagster_postgres.run_storage",
            "class": "PostgresRunStorage",
            "config": postgres_config,
        },
        "event_log_storage": {
            "module": "dagster_postgres.event_log",
            "class": "PostgresEventLogStorage",
            "config": postgres_config,
        },
        "telemetry": {"enabled": values["telemetry"]["enabled"]},
    }
    daemon = values["dagsterDaemon"]
    coordinator = daemon["runCoordinator"]
    if daemon["enabled"] and coordinator["enabled"]:
        assert coordinator["type"] == "QueuedRunCoordinator"
        queued = coordinator["config"]["queuedRunCoordinator"]
        _known(queued, {"maxConcurrentRuns", "tagConcurrencyLimits", "dequeueIntervalSeconds"}, "queuedRunCoordinator")
        rendered["run_coordinator"] = {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": {
                name: queued[key]
                for key, name in (
                    ("maxConcurrentRuns", "max_concurrent_runs"),
                    ("tagConcurrencyLimits", "tag_concurrency_limits"),
                    ("dequeueIntervalSeconds", "dequeue_interval_seconds"),
                )
                if key in queued
            },
        }
    monitoring = daemon.get("runMonitoring", {})
    _known(monitoring, RUN_MONITORING, "dagsterDaemon.runMonitoring")
    if daemon["enabled"] and monitoring.get("enabled"):
        rendered["run_monitoring"] = {RUN_MONITORING[key]: value for key, value in monitoring.items()}
    logs = values["computeLogManager"]
    if logs["type"] == "CustomComputeLogManager":
        rendered["compute_logs"] = logs["config"]["customComputeLogManager"]
    if concurrency(values):
        rendered["concurrency"] = concurrency(values)
    return rendered
