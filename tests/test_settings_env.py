"""Every environment variable settings.py reads is documented in the README's table."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet
from django.conf import settings

from chatapp import settings as settings_module

README = Path(settings.BASE_DIR) / "README.md"


def documented_variables() -> set[str]:
    rows = [line for line in README.read_text().splitlines() if line.startswith("| `")]
    return {re.match(r"\| `([A-Z0-9_]+)`", row).group(1) for row in rows}


def test_every_variable_read_in_settings_is_in_the_readme_table():
    missing = set(settings_module.ENV_VARS_READ) - documented_variables()
    assert not missing, f"add these to the README's environment table: {sorted(missing)}"


def test_the_readme_documents_no_variable_settings_does_not_read():
    stale = documented_variables() - set(settings_module.ENV_VARS_READ)
    assert not stale, f"the README documents variables nothing reads: {sorted(stale)}"


def test_settings_read_the_environment_only_through_the_recording_helper():
    source = Path(settings_module.__file__).read_text()
    direct = re.findall(r"os\.environ(?:\.get)?\s*[\[(]\s*['\"]([A-Z_]+)", source)
    assert direct == [], f"read these through _env(): {direct}"


def test_production_settings_pass_the_deploy_check(tmp_path):
    """docs/SECURITY.md rule 17: with a real secret, HTTPS and a host name, Django's deploy
    checks (and ours) find nothing, not even a warning."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "DJANGO_DEBUG")
    }
    env.update(
        DJANGO_SECRET_KEY=secrets.token_urlsafe(60),
        DJANGO_HTTPS="true",
        DJANGO_ALLOWED_HOSTS="chat.example.com",
        CHAT_VAR_DIR=str(tmp_path),
        CHAT_KEY_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_the_deploy_check_notices_an_insecure_configuration(tmp_path):
    """The check above could pass by not running: without HTTPS it must complain."""
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL",)}
    env.update(DJANGO_SECRET_KEY="short", CHAT_VAR_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "security.W004" in done.stderr + done.stdout  # no HSTS
    assert "chatapp.W002" in done.stderr + done.stdout  # people's keys under a local key
