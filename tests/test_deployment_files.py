"""The deployment files validate offline: the compose file parses and documents its variables, and the
Kubernetes run launcher / step executor configuration passes dagster-k8s's own config schema."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from dagster._config import process_config
from dagster_k8s import K8sRunLauncher, k8s_job_executor

REPO = Path(__file__).resolve().parent.parent
PLATFORM = REPO / "platform"


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_compose_file_parses_and_wires_every_service_with_the_strata_variables():
    compose = load(PLATFORM / "compose.yaml")
    services = compose["services"]
    assert set(services) == {"postgres", "mongo", "qdrant", "code", "webserver", "daemon"}
    for name in ("code", "webserver", "daemon"):
        environment = services[name]["environment"]
        assert {
            "STRATA_POSTGRES_URL",
            "STRATA_DAGSTER_STORAGE_URL",
            "STRATA_MONGO_URL",
            "STRATA_QDRANT_URL",
        } <= set(environment), name
        assert environment["STRATA_QDRANT_URL"] == "http://qdrant:6333"
        assert environment["STRATA_DAGSTER_STORAGE_URL"].startswith("postgresql+psycopg2://")
    workspace = load(PLATFORM / "compose" / "workspace.yaml")
    server = workspace["load_from"][0]["grpc_server"]
    assert server["host"] == "code" and str(server["port"]) in services["code"]["command"]
    assert "strata.definitions" in services["code"]["command"]


def test_every_variable_the_compose_file_interpolates_is_documented():
    text = (PLATFORM / "compose.yaml").read_text()
    used = set(re.findall(r"\$\{([A-Z_]+)", text))
    readme = (REPO / "README.md").read_text()
    assert used and all(f"`{name}`" in readme for name in used), sorted(
        n for n in used if f"`{n}`" not in readme
    )


def chart_rendered_run_launcher(values: dict) -> dict:
    """The run_launcher config the chart writes into dagster.yaml from `runLauncher.config.k8sRunLauncher`
    (names of secrets/config maps, snake_case run_k8s_config), plus what the chart always fills in."""
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    snake = {
        "containerConfig": "container_config",
        "podSpecConfig": "pod_spec_config",
        "jobSpecConfig": "job_spec_config",
        "podTemplateSpecMetadata": "pod_template_spec_metadata",
        "jobMetadata": "job_metadata",
    }
    return {
        "instance_config_map": "strata-dagster-instance",
        "dagster_home": "/opt/dagster/dagster_home",
        "postgres_password_secret": values["global"]["postgresqlSecretName"],
        "service_account_name": "strata-dagster",
        "load_incluster_config": True,
        "env_secrets": [item["name"] for item in launcher["envSecrets"]],
        "env_config_maps": [item["name"] for item in launcher["envConfigMaps"]],
        "run_k8s_config": {snake[k]: v for k, v in launcher["runK8sConfig"].items()},
    }


def test_helm_run_launcher_configuration_validates_against_dagster_k8s():
    values = load(PLATFORM / "helm" / "values.yaml")
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    result = process_config(K8sRunLauncher.config_type(), chart_rendered_run_launcher(values))
    assert result.success, result.errors
    deployment = values["dagster-user-deployments"]["deployments"][0]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "strata.definitions"]
    assert values["postgresql"]["enabled"] is False and values["generatePostgresqlPasswordSecret"] is False


def test_per_step_executor_run_config_validates_against_dagster_k8s():
    run_config = load(PLATFORM / "helm" / "k8s-job-executor.yaml")
    result = process_config(k8s_job_executor.config_schema.config_type, run_config["execution"]["config"])
    assert result.success, result.errors


def test_example_secrets_hold_no_real_values():
    documents = list(yaml.safe_load_all((PLATFORM / "helm" / "strata-config.example.yaml").read_text()))
    secret = next(d for d in documents if d["kind"] == "Secret")
    for name, value in secret["stringData"].items():
        for password in re.findall(r"://[^:/@]+:([^@]+)@", value):
            assert password == "CHANGE-ME", name
        if name.endswith(("_KEY", "_SALT")):
            assert value == "CHANGE-ME", name


def test_the_image_installs_the_pinned_cpu_torch_and_serves_the_code_location():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in dockerfile
    assert "-c constraints.txt" in dockerfile
    assert '"-m", "strata.definitions"' in dockerfile
