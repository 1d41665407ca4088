"""Settings come only from the environment; production settings pass `check --deploy`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"}}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_settings_pass_check_deploy_without_warnings() -> None:
    result = _manage(
        {
            "DEBUG": "0",
            "SECRET_KEY": "k" * 20 + "-production-like-secret-for-the-check-" + "z" * 20,
            "ALLOWED_HOSTS": "valuation.example.be",
        },
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_no_default_secret_outside_debug() -> None:
    result = _manage({"DEBUG": "0"}, "check")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_a_malformed_boolean_is_named() -> None:
    result = _manage({"DEBUG": "maybe"}, "check")
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_geodjango_uses_the_bundled_gdal_and_geos() -> None:
    from django.conf import settings
    from django.contrib.gis import gdal

    assert "pyogrio.libs" in str(settings.GDAL_LIBRARY_PATH)
    assert "shapely.libs" in str(settings.GEOS_LIBRARY_PATH)
    assert gdal.GDAL_VERSION >= (3, 9)  # blocks file/network access in SRS parsing (no gis.W001)


@pytest.mark.parametrize(
    "variable", ["DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "MODEL_DIR", "DATA_DIR"]
)
def test_every_setting_is_documented_in_env_example(variable: str) -> None:
    text = (ROOT / ".env.example").read_text()
    assert f"\n{variable}=" in "\n" + text or f"\n# {variable}=" in "\n" + text
