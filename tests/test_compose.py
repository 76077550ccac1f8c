"""compose.yaml, the deployment for a team (README.md, "Docker Compose"): the app with two
Uvicorn workers behind PostgreSQL and Redis, each with a volume and a health check, and only
environment variables that the settings read."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from django.conf import settings

from chatapp import settings as settings_module

COMPOSE = Path(settings.BASE_DIR) / "compose.yaml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _default(value: str) -> str:
    """A value as Compose fills it from an empty environment: `${X:-d}` -> d, `${X:?e}` -> X."""
    value = re.sub(r"\$\{(\w+):-([^}]*)\}", r"\2", value)
    return re.sub(r"\$\{(\w+):\?[^}]*\}", r"\1", value)


def test_the_app_is_given_only_variables_the_settings_read(compose):
    environment = compose["services"]["app"]["environment"]
    unknown = set(environment) - set(settings_module.ENV_VARS_READ)
    assert not unknown, f"settings.py reads none of these: {sorted(unknown)}"
    for needed in ("DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "DJANGO_ALLOWED_HOSTS"):
        assert needed in environment


def test_secrets_come_from_the_environment_and_are_required(compose):
    environment = compose["services"]["app"]["environment"]
    assert environment["DJANGO_SECRET_KEY"].startswith("${DJANGO_SECRET_KEY:?")
    assert "${POSTGRES_PASSWORD:?" in environment["DATABASE_URL"]
    for key in ("AIMLAPI_API_KEY", "SEGMIND_API_KEY", "GEMINI_API_KEY"):
        assert environment[key] == f"${{{key}:-}}"


def test_the_app_reaches_the_database_and_redis_services_it_waits_for(compose):
    services = compose["services"]
    app, db = services["app"], services["db"]
    database = urlsplit(_default(app["environment"]["DATABASE_URL"]))
    assert database.scheme == "postgres"
    assert database.hostname == "db"
    assert database.username == db["environment"]["POSTGRES_USER"]
    assert database.password == "POSTGRES_PASSWORD"
    assert db["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert database.path == "/" + db["environment"]["POSTGRES_DB"]
    assert urlsplit(app["environment"]["REDIS_URL"]).hostname == "redis"
    assert app["depends_on"] == {
        "db": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }


def test_two_workers_after_the_migrations(compose):
    command = " ".join(compose["services"]["app"]["command"])
    assert command.index("manage.py migrate") < command.index("uvicorn chatapp.asgi:application")
    assert "--workers 2" in command


@pytest.mark.parametrize("service", ["app", "db", "redis"])
def test_every_service_has_a_health_check_and_a_named_volume(compose, service):
    spec = compose["services"][service]
    assert spec["healthcheck"]["test"]
    volumes = [volume.split(":")[0] for volume in spec["volumes"]]
    assert volumes
    assert set(volumes) <= set(compose["volumes"])
