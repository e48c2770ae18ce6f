"""The operators' counters keep rejections by a fixed set of reasons: what a client
sends (decoder messages, headers, sizes) never becomes a counter key (issue 13)."""

from __future__ import annotations

import gzip

import cramjam
import pytest

from analytics.models import TenantDailyCounter

OTLP = "/api/v1/otlp/v1/metrics"
PROMETHEUS = "/api/v1/prometheus/write"
METRICS = "/api/v1/metrics"


def hostile_requests(i: int) -> list[tuple[str, bytes, str, dict[str, str]]]:
    """Five bad requests, each quoting ``i`` somewhere a decoder or a header would."""
    text = f"bad-{i}".encode()
    return [
        (OTLP, b"\xff" * (i % 50 + 1) + text, "application/x-protobuf", {}),
        (OTLP, b'{"resourceMetrics": [' + text + b"]}", "application/json", {}),
        (OTLP, gzip.compress(b"x")[: 5 + i % 10] + text, "application/x-protobuf", {"HTTP_CONTENT_ENCODING": "gzip"}),
        (OTLP, b"", "application/x-protobuf", {"HTTP_CONTENT_ENCODING": f"br-{i}"}),
        (PROMETHEUS, bytes(cramjam.snappy.compress_raw(b"\xff\xff" + text)), "application/x-protobuf",
         {"HTTP_CONTENT_ENCODING": "snappy" if i % 2 else f"zstd-{i}"}),
    ] + ([(METRICS, b'{"points": [' + text + b"]}", "application/json", {})] if i % 5 == 0 else [])


@pytest.mark.django_db
def test_distinct_bad_requests_add_a_bounded_number_of_reasons(api_a, tenant_a):
    sent = 0
    for i in range(100):
        for path, body, content_type, headers in hostile_requests(i):
            response = api_a.generic("POST", path, body, content_type=content_type, **headers)
            assert response.status_code == 400, (path, response.content[:200])
            sent += 1
    assert sent >= 500
    counter = TenantDailyCounter.objects.for_tenant(tenant_a).get()
    reasons = counter.rejected_by_reason
    assert counter.rejected_batches == sent
    # 560 distinct requests, five reasons: the fixed phrases of Problem.counted_as
    assert set(reasons) == {"body: malformed JSON", "body: malformed OTLP JSON", "body: malformed gzip",
                            "body: malformed protobuf", "field: unsupported"}


def test_the_client_still_hears_the_decoders_message(api_a, db):
    response = api_a.generic("POST", OTLP, b"", content_type="application/x-protobuf", HTTP_CONTENT_ENCODING="br-7")
    assert "br-7" in response.json()["error"]["message"]


@pytest.mark.django_db
def test_otlp_json_nested_too_deep_is_a_400(api_a):
    deep = b'{"resourceMetrics": ' + b"[" * 3000 + b"]" * 3000 + b"}"
    response = api_a.generic("POST", OTLP, deep, content_type="application/json")
    assert response.status_code == 400
    assert "nested deeper than 32 levels" in response.json()["error"]["message"]


@pytest.mark.django_db
@pytest.mark.parametrize("body", [b"84", b"[]", b'"x"', b"null"])
def test_otlp_json_that_is_not_an_object_is_a_400(api_a, body):
    """Found by the schema fuzz: ``84`` reached protobuf's ParseDict (a 500)."""
    response = api_a.generic("POST", OTLP, body, content_type="application/json")
    assert response.status_code == 400
    assert "malformed OTLP JSON" in response.json()["error"]["message"]
