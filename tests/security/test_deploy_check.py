"""`manage.py check --deploy` is clean with the production settings."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_check(**env_overrides: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings_production", **env_overrides})
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def test_the_deploy_check_passes_with_production_settings():
    result = run_check(DJANGO_SECRET_KEY=secrets.token_urlsafe(64), DJANGO_ALLOWED_HOSTS="fleetwatch.example.com")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_refuse_to_start_without_a_strong_secret_key():
    result = run_check(DJANGO_ALLOWED_HOSTS="fleetwatch.example.com")
    assert result.returncode != 0 and "DJANGO_SECRET_KEY" in result.stderr
    result = run_check(DJANGO_SECRET_KEY="short", DJANGO_ALLOWED_HOSTS="fleetwatch.example.com")
    assert result.returncode != 0 and "DJANGO_SECRET_KEY" in result.stderr


def test_production_settings_require_allowed_hosts():
    result = run_check(DJANGO_SECRET_KEY=secrets.token_urlsafe(64))
    assert result.returncode != 0 and "DJANGO_ALLOWED_HOSTS" in result.stderr
