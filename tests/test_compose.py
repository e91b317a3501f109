"""docker-compose.yml against the code it deploys: no Docker engine runs here, so the file is
read as data and its docsvc environment is fed to the real ``Settings``."""

from __future__ import annotations

import importlib.util
import os
import re
import typing
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from docsvc.settings import PLACEHOLDER_SECRETS, Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, dict] = COMPOSE["services"]
DOCSVC_SERVICES = ("migrate", "api", "worker", "scheduler")
LONG_RUNNING = ("api", "worker", "scheduler", "postgres", "redis", "minio", "elasticsearch")
ONE_SHOT = ("migrate", "minio-init")
STATEFUL = {"postgres": "/var/lib/postgresql/data", "redis": "/data", "minio": "/data",
            "elasticsearch": "/usr/share/elasticsearch/data", "scheduler": "/var/lib/docsvc"}

#: What an operator would put in .env: long random values, none of them a known placeholder.
REALISTIC = {
    "DOCSVC_SECRET_KEY": "q8Vx2LmN4pR7sT1uW3yZ5aB6cD8eF0gH2iJ4kL6m",
    "POSTGRES_PASSWORD": "Zp4Wq9Lr2Tx7Mv3Kd8Ns",
    "S3_ACCESS_KEY": "docsvc-app",
    "S3_SECRET_KEY": "Yh5Jk8Lm2Np4Qr6St9Vw1Xz",
    "MINIO_ROOT_USER": "minio-root",
    "MINIO_ROOT_PASSWORD": "Bc3Df5Gh7Jk9Lm2Np4Qr",
    "ELASTIC_PASSWORD": "Ef6Gh8Jk1Lm3Np5Qr7St",
}

_REFERENCE = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>\w+)")


class MissingVariable(LookupError):
    """A ``${VAR:?message}`` reference whose variable is unset: Compose refuses to start."""


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's variable substitution: ``${V}``, ``${V:-default}``, ``${V-default}``,
    ``${V:?error}``, ``${V?error}`` and ``$$`` for a literal ``$``."""

    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match["name"] or match["bare"]
        op, arg, current = match["op"], match["arg"], env.get(name)
        unset = current is None or (op is not None and op.startswith(":") and current == "")
        if op in (":?", "?") and unset:
            raise MissingVariable(f"{name}: {arg}")
        if op in (":-", "-") and unset:
            return arg
        return current or ""

    return _REFERENCE.sub(substitute, value)


def environment(service: str, env: dict[str, str]) -> dict[str, str]:
    raw = SERVICES[service].get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {key: interpolate(str(value), env) for key, value in raw.items()}


def setting_names(model: type[BaseModel] = Settings, prefix: str = "DOCSVC_") -> set[str]:
    """Every environment name ``Settings`` reads, nested models joined with ``__``."""
    names = set()
    for field_name, field in model.model_fields.items():
        name = f"{prefix}{field_name}".upper()
        names.add(name)
        for candidate in (field.annotation, *typing.get_args(field.annotation)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                names |= setting_names(candidate, f"{name}__")
    return names


def settings_from(env: dict[str, str], monkeypatch) -> Settings:
    """Build ``Settings`` the way a container would: from its environment only."""
    for key in [k for k in os.environ if k.upper().startswith("DOCSVC_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings()


def docsvc_env(service: str = "api", **overrides: str) -> dict[str, str]:
    return {k: v for k, v in environment(service, {**REALISTIC, **overrides}).items() if k.startswith("DOCSVC_")}


# --- the variables really exist --------------------------------------------------------------

def test_setting_names_cover_nested_models():
    names = setting_names()
    assert {"DOCSVC_SECRET_KEY", "DOCSVC_OBJECT_STORE__KIND", "DOCSVC_AUTH__ACCESS_TOKEN_MINUTES"} <= names
    assert "DOCSVC_OBJECT_STORE__NOPE" not in names


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_docsvc_variable_is_a_settings_field(service):
    known = setting_names()
    unknown = sorted(k for k in SERVICES[service].get("environment") or {}
                     if k.upper().startswith("DOCSVC_") and k.upper() not in known)
    assert unknown == [], f"{service} sets variables Settings never reads: {unknown}"


def test_docsvc_processes_share_one_configuration():
    envs = {name: docsvc_env(name) for name in DOCSVC_SERVICES}
    assert all(env == envs["api"] for env in envs.values()), "worker/scheduler must see what the API sees"


def test_api_environment_is_the_production_topology():
    env = docsvc_env()
    assert env["DOCSVC_ENVIRONMENT"] == "production"
    database = env["DOCSVC_DATABASE_URL"]
    assert database.startswith("postgresql+psycopg://") and "@postgres:5432/" in database
    assert env["DOCSVC_BROKER_URL"] == "redis://redis:6379/0"
    assert env["DOCSVC_OBJECT_STORE__KIND"] == "s3" and env["DOCSVC_OBJECT_STORE__ENDPOINT"] == "minio:9000"
    assert env["DOCSVC_START_WORKER"] == "false"


# --- services, health, order, storage ----------------------------------------------------------

def test_expected_services_exist():
    assert set(LONG_RUNNING + ONE_SHOT) <= set(SERVICES)
    assert SERVICES["postgres"]["image"].startswith("postgres:16")
    assert SERVICES["redis"]["image"].startswith("redis:7")
    assert "elasticsearch:8." in SERVICES["elasticsearch"]["image"]
    assert SERVICES["elasticsearch"]["environment"]["discovery.type"] == "single-node"


@pytest.mark.parametrize("service", LONG_RUNNING)
def test_long_running_services_have_healthchecks(service):
    check = SERVICES[service].get("healthcheck") or {}
    assert check.get("test") and not check.get("disable"), f"{service} has no healthcheck"


def test_dependencies_exist_and_wait_for_the_right_condition():
    for name, service in SERVICES.items():
        for target, spec in (service.get("depends_on") or {}).items():
            assert target in SERVICES, f"{name} depends on unknown service {target}"
            expected = "service_completed_successfully" if target in ONE_SHOT else "service_healthy"
            assert spec["condition"] == expected, f"{name} → {target}"
    for name in ("api", "worker", "scheduler"):
        assert {"migrate", "postgres", "redis", "minio", "minio-init"} <= set(SERVICES[name]["depends_on"])


def test_one_shot_services_do_not_restart():
    for name in ONE_SHOT:
        assert SERVICES[name]["restart"] == "no"


@pytest.mark.parametrize("service,path", sorted(STATEFUL.items()))
def test_stateful_services_keep_data_in_named_volumes(service, path):
    by_target = {target: source for source, target, *_mode in (v.split(":") for v in SERVICES[service]["volumes"])}
    assert path in by_target, f"{service} keeps {path} outside a volume"
    assert by_target[path] in (COMPOSE.get("volumes") or {}), f"{service}: {by_target[path]} is not a named volume"


def test_commands_use_the_documented_entry_points():
    assert SERVICES["api"]["command"][:2] == ["uvicorn", "docsvc.asgi:app"]
    assert SERVICES["worker"]["command"][:4] == ["celery", "-A", "docsvc.jobs.worker", "worker"]
    assert SERVICES["scheduler"]["command"][:4] == ["celery", "-A", "docsvc.jobs.worker", "beat"]
    assert SERVICES["migrate"]["command"] == ["docsvc", "bootstrap"]
    from typer.testing import CliRunner

    from docsvc.cli import app

    assert CliRunner().invoke(app, ["bootstrap", "--help"]).exit_code == 0
    assert importlib.util.find_spec("docsvc.asgi") and importlib.util.find_spec("docsvc.jobs.worker")


# --- secrets ---------------------------------------------------------------------------------

def _secret_like(key: str) -> bool:
    return bool(re.search(r"SECRET|PASSWORD|ACCESS_KEY|ROOT_USER", key.upper()))


def test_no_secret_is_written_in_the_file():
    for name, service in SERVICES.items():
        for key, value in (service.get("environment") or {}).items():
            if _secret_like(key):
                required = re.fullmatch(r".*\$\{\w+:\?[^}]+\}.*", str(value))
                assert required, f"{name}.{key} must be a required ${{VAR:?…}}"


def test_compose_refuses_to_start_without_the_secrets():
    with pytest.raises(MissingVariable, match="DOCSVC_SECRET_KEY"):
        environment("api", {k: v for k, v in REALISTIC.items() if k != "DOCSVC_SECRET_KEY"})


def test_api_settings_load_in_production_with_real_secrets(monkeypatch):
    settings = settings_from(docsvc_env(), monkeypatch)
    assert settings.environment == "production"
    assert settings.object_store.kind == "s3" and settings.object_store.secure is False
    assert settings.object_store.secret_key.get_secret_value() == REALISTIC["S3_SECRET_KEY"]
    assert settings.start_worker is False
    assert settings.resolved_broker_url == "redis://redis:6379/0"


@pytest.mark.parametrize("variable", ["DOCSVC_SECRET_KEY", "S3_SECRET_KEY"])
@pytest.mark.parametrize("placeholder", ["change-me", "minioadmin", "secret"])
def test_placeholder_secrets_are_refused_in_production(monkeypatch, variable, placeholder):
    assert placeholder in PLACEHOLDER_SECRETS
    with pytest.raises(ValidationError):
        settings_from(docsvc_env(**{variable: placeholder}), monkeypatch)


def test_a_short_secret_key_is_refused_in_production(monkeypatch):
    with pytest.raises(ValidationError, match="32 characters"):
        settings_from(docsvc_env(DOCSVC_SECRET_KEY="x" * 31), monkeypatch)


def test_filesystem_store_is_refused_in_production_unless_allowed(monkeypatch):
    env = {**docsvc_env(), "DOCSVC_OBJECT_STORE__KIND": "filesystem"}
    with pytest.raises(ValidationError, match="DOCSVC_ALLOW_FILESYSTEM_STORE_IN_PRODUCTION"):
        settings_from(env, monkeypatch)
    allowed = settings_from({**env, "DOCSVC_ALLOW_FILESYSTEM_STORE_IN_PRODUCTION": "true"}, monkeypatch)
    assert allowed.object_store.kind == "filesystem"


def test_interpolation_follows_compose_rules():
    env = {"SET": "value", "EMPTY": ""}
    assert interpolate("${SET}-${UNSET:-d}-${EMPTY:-e}-${EMPTY-f}-$$SET", env) == "value-d-e--$SET"
    with pytest.raises(MissingVariable):
        interpolate("${EMPTY:?needed}", env)

