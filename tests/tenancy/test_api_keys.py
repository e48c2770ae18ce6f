from django.utils import timezone

from tenants.models import ApiKey, hash_api_key


def test_only_a_keyed_hash_is_stored_and_the_prefix_identifies_the_key(tenant_a):
    api_key, key = ApiKey.issue(tenant_a, "ci")
    stored = ApiKey.objects.for_tenant(tenant_a).get()
    assert key.startswith(f"fw_{stored.prefix}_")
    assert key not in (stored.key_hash, stored.prefix, stored.name)
    assert stored.key_hash == hash_api_key(key) != hash_api_key(key + "x")
    assert stored.matches(key) and not stored.matches(key[:-1] + ("A" if key[-1] != "A" else "B"))


def test_a_key_authenticates_until_revoked(api_a, key_a, tenant_a):
    assert api_a.post("/api/v1/metrics", {}, format="json").status_code == 400  # authenticated, empty body
    stored = ApiKey.objects.for_tenant(tenant_a).get()
    assert stored.last_used_at is not None and stored.last_used_at <= timezone.now()
    stored.revoke()
    response = api_a.post("/api/v1/metrics", {}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Authorization: invalid or revoked API key"


def test_unknown_malformed_and_missing_keys_get_401(client, api_a, key_a):
    from tests.conftest import api_client_for

    for bad in ["fw_deadbeef_nope", key_a[:-2], "garbage", ""]:
        response = api_client_for(bad).post("/api/v1/metrics", {}, format="json")
        assert response.status_code == 401, bad
    response = client.post("/api/v1/metrics", "{}", content_type="application/json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Bearer"
