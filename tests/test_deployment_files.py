"""The deployment files validate offline: the compose file, rendered as `docker compose config` would render
it, gives every platform container the variables the code reads and documents them; the Kubernetes run
launcher / step executor configuration passes dagster-k8s's own config schema (the Dagster chart's JSON schema
is not published to a package registry, so it cannot be fetched here)."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._config import process_config
from dagster_k8s import K8sRunLauncher, k8s_job_executor

from resources import QdrantResource

REPO = Path(__file__).resolve().parent.parent
PLATFORM = REPO / "platform"


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


# Compose's interpolation (compose-spec, "Interpolation"): ${VAR}, ${VAR:-default}, ${VAR-default},
# ${VAR:?error}, ${VAR?error}; `$$` is a literal dollar.
INTERPOLATION = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}")


def interpolate(value, env: dict[str, str]):
    """The compose file's values as `docker compose config` renders them from `env`."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, colon, operator, word = match.groups()
        unset = name not in env or (colon == ":" and env[name] == "")
        if not unset:
            return env[name]
        if operator == "?":
            raise ValueError(f"required variable {name} is missing a value: {word}")
        return word if operator == "-" else ""

    return INTERPOLATION.sub(substitute, value)


def rendered_compose(env: dict[str, str]) -> dict:
    return interpolate(load(PLATFORM / "compose.yaml"), env)


REQUIRED = {"STRATA_POSTGRES_PASSWORD": "s3cret", "STRATA_PII_SALT": "pepper"}
PLATFORM_SERVICES = ("code", "webserver", "daemon")


def env_references(node) -> set[str]:
    """The variables a dagster.yaml reads (`{env: NAME}`)."""
    if isinstance(node, dict):
        found = {node["env"]} if isinstance(node.get("env"), str) else set()
        return found.union(*(env_references(item) for item in node.values()))
    if isinstance(node, list):
        return set().union(*(env_references(item) for item in node))
    return set()


def test_compose_refuses_to_render_without_each_required_variable():
    for missing in REQUIRED:
        with pytest.raises(ValueError, match=f"required variable {missing} is missing"):
            rendered_compose({k: v for k, v in REQUIRED.items() if k != missing})


def test_every_platform_container_gets_every_variable_the_code_reads_and_embeds_nothing():
    from strata import services
    from strata.config import Settings
    from strata.definitions import build_resources

    compose = rendered_compose(REQUIRED)
    services_ = compose["services"]
    assert set(services_) == {"postgres", "mongo", "qdrant", "code", "webserver", "daemon"}
    resource_variables = {
        value.env_var_name
        for resource in build_resources().values()
        for value in vars(resource).values()
        if isinstance(value, dg.EnvVar)
    }
    instance_variables = env_references(load(PLATFORM / "dagster.yaml"))
    assert resource_variables and instance_variables
    for name in PLATFORM_SERVICES:
        environment = services_[name]["environment"]
        assert resource_variables | instance_variables <= set(environment), name
        # What a platform process derives from this environment is this environment: no service is embedded.
        settings = Settings.from_env(environment)
        derived = services.service_environment(settings)
        assert {k: derived[k] for k in environment if k in derived} == {
            k: v for k, v in environment.items() if k in derived
        }, name
        assert settings.pii_salt == "pepper" and "s3cret@postgres:5432" in settings.postgres_url
        assert str(settings.landing_dir) in {v.split(":")[1] for v in services_[name]["volumes"]}
    # The API key the Qdrant resource sends is the one the Qdrant server is given.
    keyed = rendered_compose(REQUIRED | {"STRATA_QDRANT_API_KEY": "k3y"})
    key_env = QdrantResource.model_fields["api_key_env"].default
    assert keyed["services"]["code"]["environment"][key_env] == "k3y"
    assert keyed["services"]["qdrant"]["environment"]["QDRANT__SERVICE__API_KEY"] == "k3y"
    # The webserver and daemon reach the code server where it serves.
    server = load(PLATFORM / "compose" / "workspace.yaml")["load_from"][0]["grpc_server"]
    command = services_["code"]["command"]
    assert server["host"] == "code" and command[command.index("-p") + 1] == str(server["port"])
    assert command[command.index("-m") + 1] == "strata.definitions"


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
