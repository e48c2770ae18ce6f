"""Errors never show a debug page, a traceback or the routes (issue 13): DEBUG is off
unless asked for, pages have their own 404/500, the API answers JSON."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from results import api as results_api
from tenants import views as tenant_views

ROOT = Path(__file__).resolve().parents[2]
PRINT_SETTINGS = "from django.conf import settings; print(settings.DEBUG, settings.SECRET_KEY)"


def settings_in_a_new_process(var_dir: Path, **env_overrides: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST", "DATABASE_URL"))}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings", "FLEETWATCH_VAR_DIR": str(var_dir), **env_overrides})
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {PRINT_SETTINGS}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def test_debug_is_off_unless_asked_for(tmp_path):
    assert settings_in_a_new_process(tmp_path).stdout.split()[0] == "False"
    assert settings_in_a_new_process(tmp_path, DJANGO_DEBUG="true").stdout.split()[0] == "True"


def test_the_embedded_default_generates_its_secret_key_once_into_var(tmp_path):
    first = settings_in_a_new_process(tmp_path).stdout.split()[1]
    assert first == settings_in_a_new_process(tmp_path).stdout.split()[1]
    assert len(first) >= 50 and "insecure" not in first
    key_file = tmp_path / "secret_key"
    assert key_file.read_text().strip() == first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert subprocess.run(["git", "check-ignore", "-q", "var/secret_key"], cwd=ROOT, check=False).returncode == 0


def test_a_deployment_without_a_secret_key_refuses_to_start(tmp_path):
    result = settings_in_a_new_process(tmp_path, DATABASE_URL="postgres://postgres@127.0.0.1:5432/fleetwatch")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY: required with DATABASE_URL" in result.stderr
    assert not (tmp_path / "secret_key").exists()
    given = settings_in_a_new_process(tmp_path, DATABASE_URL="postgres://x@127.0.0.1/y", DJANGO_SECRET_KEY="k" * 50)
    assert given.stdout.split() == ["False", "k" * 50]


@pytest.mark.django_db
def test_unknown_pages_answer_the_custom_404_without_routes():
    response = Client().get("/no/such/page")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Page not found" in body and "api/v1/" not in body and "URLconf" not in body


@pytest.mark.django_db
def test_unknown_api_urls_answer_json():
    response = Client().get("/api/v1/no-such-endpoint")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_an_api_crash_answers_json_without_a_traceback(api_a, monkeypatch):
    def crash(self, request):
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(results_api.DetectView, "post", crash)
    api_a.raise_request_exception = False
    response = api_a.post("/api/v1/detect", {}, format="json")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": {"code": "server_error", "message": "Internal error; it has been logged.", "details": []}}


def test_a_page_crash_answers_the_custom_500(owner, monkeypatch):
    client = Client(raise_request_exception=False)
    client.force_login(owner)
    monkeypatch.setattr(tenant_views, "render", lambda *a, **k: 1 / 0)
    response = client.get("/api-keys")
    assert response.status_code == 500
    body = response.content.decode()
    assert "Something went wrong" in body and "ZeroDivisionError" not in body and "Traceback" not in body
