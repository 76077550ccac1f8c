"""Every environment variable settings.py reads is documented in the README's table."""

from __future__ import annotations

import re
from pathlib import Path

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
