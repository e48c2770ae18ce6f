"""What a hostile tenant sends first: odd casing of the auth scheme, JSON nested
thousands deep (issue 13)."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from config.json_limits import JsonTooDeep, check_depth, loads_bounded


def test_the_bearer_scheme_is_case_insensitive(key_a):
    for scheme in ("bearer", "BEARER", "bEaReR"):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"{scheme} {key_a}")
        assert client.get("/api/v1/runs/").status_code == 200, scheme
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key_a}")
    assert client.get("/api/v1/runs/").status_code == 401


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def deep_list(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("path", ["/api/v1/metrics", "/api/v1/detect", "/api/v1/weights"])
@pytest.mark.parametrize("body", [nested(2000), deep_list(2000), deep_list(33)], ids=["objects-2000", "lists-2000", "lists-33"])
def test_json_nested_too_deep_answers_400_naming_the_limit(api_a, path, body):
    method = api_a.patch if path.endswith("weights") else api_a.post
    response = method(path, body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    error = response.json()["error"]
    assert "nested deeper than 32 levels" in error["message"]
    assert error["details"][0]["field"] == "body"


def test_the_depth_limit_is_a_setting(api_a, settings):
    settings.FLEETWATCH_MAX_JSON_DEPTH = 5
    response = api_a.post("/api/v1/detect", deep_list(6), content_type="application/json")
    assert response.status_code == 400 and "nested deeper than 5 levels" in response.json()["error"]["message"]


def test_legitimate_bodies_at_the_limit_still_parse():
    assert loads_bounded(deep_list(32), 32) == json.loads(deep_list(32))
    check_depth({"series": [{"points": [[1, 2.0]]}]}, 5)  # what ingestion needs
    for too_deep in (deep_list(33), deep_list(2000), nested(5000)):
        with pytest.raises(JsonTooDeep, match="nested deeper than 32 levels"):
            loads_bounded(too_deep, 32)


def test_scalars_and_flat_bodies_have_no_depth_to_refuse():
    for value in (1, "x", None, [], {}, [1, {"a": [2]}]):
        check_depth(value, 5)
