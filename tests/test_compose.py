"""docker-compose.yml, checked without a Docker engine: real images, healthchecks, and only
settings the code reads."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
LONG_RUNNING = {
    "postgres",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "personkort-api",
}


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_and_healthchecks() -> None:
    services = compose()["services"]
    assert LONG_RUNNING | {"airflow-init"} == set(services)
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck", {}).get("test")
        assert check and check[0] == "CMD", name
    for name, service in services.items():
        for needed in service.get("depends_on", {}):
            assert needed in services, (name, needed)
    commands = {n: str(s.get("command", "")) for n, s in services.items()}
    assert "airflow db migrate" in commands["airflow-init"]
    for role in ("api-server", "scheduler", "dag-processor", "triggerer"):
        assert any(f"airflow {role}" == c for c in commands.values()), role
    assert commands["personkort-api"].startswith("personkort serve")


def test_images_are_real_and_match_the_pins() -> None:
    services = compose()["services"]
    assert services["postgres"]["image"] == "postgres:15"
    dockerfile = (ROOT / "Dockerfile").read_text()
    (base,) = re.findall(r"^FROM (\S+)", dockerfile, re.M)
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    airflow = next(p.split("==")[1] for p in pins if p.startswith("apache-airflow=="))
    assert base == f"apache/airflow:{airflow}-python3.11"
    for name, service in services.items():
        assert service.get("image") or service.get("build"), name


def test_settings_passed_are_settings_the_code_reads() -> None:
    documented = set(re.findall(r"^(PERSONKORT_\w+)=", (ROOT / ".env.example").read_text(), re.M))
    for name, service in compose()["services"].items():
        for key in service.get("environment", {}):
            if key.startswith("PERSONKORT_"):
                assert key in documented, (name, key)
            else:
                assert key.startswith(("AIRFLOW__", "POSTGRES_")), (name, key)
        if "env_file" in service:
            assert service["env_file"] == ".env"
    dag = (ROOT / "dags" / "personkort_nightly.py").read_text()
    for variable in re.findall(r'environ\.get\("(PERSONKORT_\w+)"', dag):
        assert variable in documented


REQUIRED_SECRETS = {
    "POSTGRES_PASSWORD",
    "AIRFLOW_JWT_SECRET",
    "AIRFLOW_FERNET_KEY",
    "AIRFLOW_ADMIN_USER",
    "PERSONKORT_JWT_SECRET",
    "PERSONKORT_AUDIT_KEY",
    "PERSONKORT_AUDIT_SIGNING_KEY",
    "PERSONKORT_STORE_KEYS",
}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|_KEY|ADMIN_USER|AUTH_MANAGER_USERS")
INTERPOLATION = re.compile(r"\$\{(\w+)(?:(:?[-?+])([^}]*))?\}")


def _interpolations() -> list[tuple[str, str, str]]:
    """Every ``${NAME<op>value}`` in the compose file: (name, op, value)."""
    text = (ROOT / "docker-compose.yml").read_text()
    return [(m[1], m[2] or "", m[3] or "") for m in INTERPOLATION.finditer(text)]


def test_no_default_secrets() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert "change-me" not in text
    assert not re.search(r"admin:admin", text)
    assert "PERSONKORT_DEV_MODE" not in text  # compose is production-shaped: no dev keys
    for name, op, value in _interpolations():
        if SECRET_NAME.search(name):
            assert op == ":?", f"{name} has a default ({op}{value}) or none required"
    # A literal value for a secret-looking setting (not from the .env) is a default secret.
    services = compose()["services"]
    for service in [compose()["x-personkort"], *services.values()]:
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key) and not key.endswith("_FILE"):
                assert "${" in str(value), (key, value)


def test_every_required_secret_refuses_to_start_without_it() -> None:
    used = {name: op for name, op, _ in _interpolations() if name in REQUIRED_SECRETS}
    assert set(used) == REQUIRED_SECRETS
    assert set(used.values()) == {":?"}
    env_example = (ROOT / ".env.example").read_text()
    for name in REQUIRED_SECRETS:
        assert re.search(rf"^{name}=$", env_example, re.M), f"{name} is not listed empty"
    # The personkort services get every key the API needs outside development mode.
    environment = compose()["x-personkort"]["environment"]
    for name in ("PERSONKORT_JWT_SECRET", "PERSONKORT_AUDIT_KEY", "PERSONKORT_AUDIT_SIGNING_KEY"):
        assert environment[name].startswith(f"${{{name}:?"), name
    assert environment["PERSONKORT_STORE_KEYS"].startswith("${PERSONKORT_STORE_KEYS:?")
